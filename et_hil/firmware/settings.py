"""A board file's ``[<kind>.firmware]`` table: how et-hil builds the runner a board
runs (the QEMU kind's today; a firmware build of any kind can take it)."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import msgspec

_Count = Annotated[int, msgspec.Meta(gt=0, extra={"expect": "a positive integer"})]
_Bytes = Annotated[int, msgspec.Meta(ge=0, extra={"expect": "a byte count >= 0"})]
_Seconds = Annotated[float, msgspec.Meta(gt=0, extra={"expect": "a number of seconds > 0"})]

# A cold wide build measured 329 s on 2 cores (the build record's build_s); a
# relink, 3 to 75 s. Five times the cold build before it is called hung.
BUILD_TIMEOUT_S = 1800.0
# Unpacking the pinned bundle's largest tarball (ExecuTorch) measured 0.3 s.
UNPACK_TIMEOUT_S = 300.0


@dataclasses.dataclass(frozen=True)
class StepTimeouts:
    """Time limits of a firmware build's steps, in seconds; a step still running
    at its limit is killed with its whole process group.

    Attributes:
        build_s: upstream's build script (CMake configure, compile, link).
        unpack_s: unpacking one tarball of the source bundle.
    """

    build_s: float = BUILD_TIMEOUT_S
    unpack_s: float = UNPACK_TIMEOUT_S


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
    build_timeout_s: Annotated[
        _Seconds,
        msgspec.Meta(
            description="time limit of the runner build (configure, compile, link), seconds"
        ),
    ] = BUILD_TIMEOUT_S
    unpack_timeout_s: Annotated[
        _Seconds,
        msgspec.Meta(description="time limit of unpacking one source-bundle tarball, seconds"),
    ] = UNPACK_TIMEOUT_S

    def timeouts(self) -> StepTimeouts:
        """The time limits of this firmware's build steps."""
        return StepTimeouts(build_s=self.build_timeout_s, unpack_s=self.unpack_timeout_s)
