"""The ``host`` board kind: ExecuTorch's portable runtime on this machine."""

from __future__ import annotations

from et_hil.boards.kind import BoardKind

HOST_KIND = BoardKind(
    name="host",
    board="et_hil.boards.host.board:HostBoard",
    summary="ExecuTorch's portable runtime on this machine (a worker process)",
    fidelities={"host-wall": "wall time of the host CPU running the portable runtime"},
    host_memory=True,
    golden_reference=False,  # ExecuTorch's own runtime is the portable kernels' reference
)
