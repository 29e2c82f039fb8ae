"""A board file's ``[<kind>.firmware]`` table: how et-hil builds the runner a board
runs (the QEMU kind's today; a firmware build of any kind can take it)."""

from __future__ import annotations

from typing import Annotated

import msgspec

_Count = Annotated[int, msgspec.Meta(gt=0, extra={"expect": "a positive integer"})]
_Bytes = Annotated[int, msgspec.Meta(ge=0, extra={"expect": "a byte count >= 0"})]


class FirmwareSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A board file's ``[qemu.firmware]``: how et-hil builds the runner when the
    board names none (see :mod:`et_hil.firmware`)."""

    kernels: Annotated[
        str,
        msgspec.Meta(
            description="'wide': every portable, quantized and cortex_m (CMSIS-NN) kernel; "
            "'portable': the same without cortex_m",
            extra={"expect": "'wide' or 'portable'"},
        ),
    ] = "wide"
    ops: Annotated[
        tuple[str, ...] | None,
        msgspec.Meta(
            description="a selected kernel list instead ('aten::add.out', ...)",
            extra={"expect": "a list of operator names"},
        ),
    ] = None
    intermediate_buffer_bytes: Annotated[
        _Bytes,
        msgspec.Meta(description="ETDump intermediate-output buffer; 0: no intermediate outputs"),
    ] = 0
    method_pool_bytes: Annotated[
        _Count | None, msgspec.Meta(description="method allocator pool (runner default if unset)")
    ] = None
