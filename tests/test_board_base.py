"""The run prologue every board shares (:class:`et_hil.boards.base.BaseBoard`): inputs
checked, the board's own refusal, the run folder and the time limit, all before a
board starts anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from et_hil.boards.base import Availability, BaseBoard, RunRequest, RunResult
from et_hil.boards.spec import BoardSpec
from et_hil.boards.tosa.board import TosaBoard
from et_hil.errors import ConfigError
from et_hil.programs.artifact import Artifact


def artifact(folder: Path, target: str = "portable", model: str = "Net") -> Artifact:
    """A program's metadata as the builder writes it (no .pte is needed: nothing runs)."""
    metadata = {
        "model": model,
        "target": target,
        "input_specs": [{"shape": [2, 3], "dtype": "float32"}],
    }
    return Artifact(key="k", folder=folder, metadata=metadata, cache_hit=False, obtain_s=0.0)


class RecordingBoard(BaseBoard):
    """Says only what differs: it refuses model 'Refused', and records each request."""

    def __init__(self, spec: BoardSpec) -> None:
        self.spec = spec
        self.requests: list[RunRequest] = []

    def availability(self) -> Availability:
        return Availability(True)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def check_program(self, artifact: Artifact, inputs: object) -> None:
        if artifact.model_name == "Refused":
            raise ConfigError(f"board '{self.spec.name}': not this one")

    def execute(self, request: RunRequest) -> RunResult:
        self.requests.append(request)
        return RunResult(self.spec.name, tuple(request.inputs), 0.0, 0.0, "wall", request.run_dir)


@pytest.fixture
def board() -> RecordingBoard:
    return RecordingBoard(BoardSpec(name="rec", kind="rec", target="portable", run_timeout_s=42.0))


def test_execute_gets_numpy_inputs_a_made_folder_and_the_boards_time_limit(
    board: RecordingBoard, tmp_path: Path
) -> None:
    tensor = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    run_dir = tmp_path / "runs" / "one"
    board.run(artifact(tmp_path), [tensor], run_dir=run_dir, debug_buffer_size=64)
    (request,) = board.requests
    assert isinstance(request.inputs[0], np.ndarray)
    np.testing.assert_array_equal(request.inputs[0], tensor.numpy())
    assert run_dir.is_dir()
    assert request.timeout_s == 42.0  # the board file's run_timeout_s
    assert request.debug_buffer_size == 64
    assert request.expected is None
    assert request.subject == "model 'Net'"


@pytest.mark.parametrize(("given", "used"), [(None, 42.0), (0, 42.0), (7, 7.0)])
def test_the_time_limit_is_the_callers_else_the_boards(
    board: RecordingBoard, tmp_path: Path, given: float | None, used: float
) -> None:
    inputs = [np.zeros((2, 3), np.float32)]
    board.run(artifact(tmp_path), inputs, run_dir=tmp_path / "r", timeout_s=given)
    assert board.requests[-1].timeout_s == used


def test_wrong_inputs_stop_the_run_before_anything_is_made(
    board: RecordingBoard, tmp_path: Path
) -> None:
    run_dir = tmp_path / "r"
    with pytest.raises(ConfigError, match=r"input 0 is \[3, 2\] float32, the program was built"):
        board.run(artifact(tmp_path), [np.zeros((3, 2), np.float32)], run_dir=run_dir)
    assert not run_dir.exists()
    assert board.requests == []


def test_the_boards_own_refusal_comes_before_the_run_folder(
    board: RecordingBoard, tmp_path: Path
) -> None:
    run_dir = tmp_path / "r"
    inputs = [np.zeros((2, 3), np.float32)]
    with pytest.raises(ConfigError, match="board 'rec': not this one"):
        board.run(artifact(tmp_path, model="Refused"), inputs, run_dir=run_dir)
    assert not run_dir.exists()
    assert board.requests == []


def test_a_board_that_does_not_say_how_it_runs_cannot_be_made() -> None:
    class Unfinished(BaseBoard):
        def availability(self) -> Availability:
            return Availability(True)

        def open(self) -> None:
            pass

        def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="abstract method execute"):
        Unfinished()  # type: ignore[abstract]


def test_the_tosa_board_refuses_a_program_of_another_target_without_starting(
    tmp_path: Path,
) -> None:
    spec = BoardSpec(name="tosa", kind="tosa", target="tosa-int")
    tosa = TosaBoard(spec, tmp_path / "work")
    run_dir = tmp_path / "r"
    with pytest.raises(ConfigError) as info:
        tosa.run(artifact(tmp_path), [np.zeros((2, 3), np.float32)], run_dir=run_dir)
    assert str(info.value) == (
        "board 'tosa': program of model 'Net' was built for target 'portable'; this board "
        "runs TOSA-lowered programs (target tosa-int, tosa-int+<extensions> or tosa-fp)"
    )
    assert not run_dir.exists()
    assert not tosa.worker.alive  # its worker was never started
