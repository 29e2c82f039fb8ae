"""The ``tosa`` board kind: the TOSA reference model runs the delegated parts."""

from __future__ import annotations

from et_hil.boards.kind import BoardKind

TOSA_KIND = BoardKind(
    name="tosa",
    board="et_hil.boards.tosa.board:TosaBoard",
    summary="the TOSA reference model running the delegated part, host runtime the rest",
    fidelities={"tosa-reference": "wall time of the TOSA reference model: not a device"},
    host_memory=True,
    golden_reference=False,  # the TOSA reference model is the specification's
    fixed_shapes="TOSA delegates are compiled for one static shape",
)
