"""Repro folders: everything needed to rerun one failed check, and nothing else.

A failed check leaves a folder that stands on its own::

    case.json              board, tolerances, failure, versions, the rerun command
    artifact/              the program as built (.pte, metadata, ETRecord, references)
    inputs.npz             the inputs the board ran (logical layout)
    outputs.npz            what the board gave (when it gave anything)
    reference_<name>.npz   the reference outputs it was compared with
    board.toml             the board file, for boards that are not built in
    run/                   the board's own files: logs, ETDump, command line

``et-hil repro DIR`` runs the program on the board again and prints the verdict.

Ownership: repro folders live under ``<results folder>/repro/<run folder>/``,
and each run folder carries a marker naming the results file and run that made
it. The harness removes only run folders whose marker it wrote for the same
results file (their records were just replaced); a folder without a marker, or
made for another results file, is never touched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from harness.boards.base import BoardOptions
from harness.boards.spec import BoardSpec
from harness.build.artifact import Artifact
from harness.datafiles import builtin_board_dir
from harness.verdict.tolerance import Tolerances

if TYPE_CHECKING:
    from harness.verdict.compare import Comparison

MARKER = ".et-hil-run.json"
CASE = "case.json"


# -- run folders and their ownership ------------------------------------------------------


def run_folder(repro_root: Path, results_path: Path, run_id: str) -> Path:
    """Where this run's repro folders go (created, with its marker, by the first one)."""
    return repro_root / f"{results_path.stem}-{run_id}"


def mark_run_folder(folder: Path, results_path: Path, run_id: str) -> None:
    """Create a run folder with the marker that proves et-hil made it, and for whom."""
    marker = folder / MARKER
    if marker.exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(
        marker,
        {
            "tool": "et-hil",
            "results": str(results_path.resolve()),
            "run_id": run_id,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def prune_replaced_runs(repro_root: Path, results_path: Path, keep_run_id: str) -> list[Path]:
    """Remove the run folders of earlier runs of ``results_path`` (whose records the
    new run has just replaced). Only folders with our marker for this very results
    file are removed; everything else under ``repro_root`` is left as it is."""
    removed: list[Path] = []
    if not repro_root.is_dir():
        return removed
    wanted = str(results_path.resolve())
    for folder in sorted(repro_root.iterdir()):
        marker = folder / MARKER
        if folder.is_symlink() or not folder.is_dir() or not marker.is_file():
            continue
        try:
            owner = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue  # not provably ours
        if owner.get("tool") != "et-hil" or owner.get("results") != wanted:
            continue
        if owner.get("run_id") == keep_run_id:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def case_folder_name(nodeid: str, call: int = 1) -> str:
    """A file-system-safe, unique name for a test's (n-th check's) repro folder."""
    digest = hashlib.sha256(nodeid.encode()).hexdigest()[:8]  # long ids may share a prefix
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:120] + "-" + digest
    return name if call == 1 else f"{name}-check{call}"


# -- writing one case ----------------------------------------------------------------------


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(dict(data), indent=1, sort_keys=True, default=str) + "\n")


def _save_arrays(path: Path, arrays: Sequence[npt.NDArray[Any]]) -> None:
    np.savez(path, **{f"out_{i}": np.asarray(a) for i, a in enumerate(arrays)})


def _load_arrays(path: Path) -> list[npt.NDArray[Any]]:
    with np.load(path, allow_pickle=False) as data:
        return [data[f"out_{i}"] for i in range(len(data.files))]


def save_case(
    folder: Path,
    *,
    artifact: Artifact,
    spec: BoardSpec,
    inputs: Sequence[npt.NDArray[Any]],
    references: Mapping[str, Sequence[npt.NDArray[Any]]],
    tolerances: Tolerances,
    outputs: Sequence[npt.NDArray[Any]] | None,
    run_dir: Path | None,
    failure_class: str,
    message: str,
    test: str | None = None,
    timeout_s: float | None = None,
    debug_buffer_size: int = 0,
    owner: tuple[Path, str] | None = None,
    options: BoardOptions | None = None,
) -> Path:
    """Write a repro folder for one failed check; returns it.

    The artifact is copied (not linked): a cache may be cleared, and a repro
    folder is evidence that must outlive it. ``owner`` (results file, run id)
    marks the parent run folder as the harness's (see :func:`mark_run_folder`).
    """
    from harness.versions import tool_versions

    if owner is not None:
        mark_run_folder(folder.parent, *owner)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copytree(artifact.folder, folder / "artifact")
    np.savez(folder / "inputs.npz", **{f"in_{k}": np.asarray(a) for k, a in enumerate(inputs)})
    if outputs is not None:
        _save_arrays(folder / "outputs.npz", outputs)
    for name, arrays in references.items():
        _save_arrays(folder / f"reference_{name}.npz", arrays)
    if run_dir is not None and run_dir.is_dir():
        shutil.copytree(run_dir, folder / "run", dirs_exist_ok=True)
    board_file = None
    if spec.path is not None and spec.path.is_file() and spec.path.parent != builtin_board_dir():
        board_file = "board.toml"
        shutil.copyfile(spec.path, folder / board_file)
    command = f"et-hil repro {folder}"
    _write_json(
        folder / CASE,
        {
            "test": test,
            "board": spec.name,
            "board_file": board_file,
            "board_file_origin": str(spec.path) if spec.path else None,
            # command-line settings of the board (runner ELF, FVP mode and backends)
            "board_options": dataclasses.asdict(options) if options else None,
            "artifact_key": artifact.key,
            "model": artifact.model_name,
            "target": artifact.target,
            "quantized": artifact.quantized,
            "references": list(references),
            "tolerances": tolerances.as_dict(),
            "timeout_s": timeout_s,
            "debug_buffer_size": debug_buffer_size,
            "failure_class": failure_class,
            "message": message,
            "versions": tool_versions(),
            "command": command,
        },
    )
    rerun = folder / "rerun.sh"
    rerun.write_text('#!/bin/sh\nexec et-hil repro "$(dirname "$0")" "$@"\n')
    rerun.chmod(0o755)
    return folder


# -- rerunning one case --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """A repro folder, read back."""

    folder: Path
    data: Mapping[str, Any]
    artifact: Artifact
    inputs: list[npt.NDArray[Any]]
    references: dict[str, list[npt.NDArray[Any]]]
    tolerances: Tolerances

    @property
    def board(self) -> str:
        """The board the case failed on."""
        return str(self.data["board"])


def load_case(folder: Path) -> Case:
    """Read a repro folder.

    Raises:
        ConfigError: the folder is not a repro folder, or is incomplete.
    """
    from harness.errors import ConfigError

    folder = Path(folder).expanduser().resolve()
    case_file = folder / CASE
    if not case_file.is_file():
        raise ConfigError(
            f"{folder} is not a repro folder (no {CASE}); failed tests' repro folders are "
            "under <results folder>/repro/, and each failure message names its folder"
        )
    try:
        data = json.loads(case_file.read_text())
        artifact = Artifact.from_folder(
            data["artifact_key"], folder / "artifact", cache_hit=True, obtain_s=0.0
        )
        with np.load(folder / "inputs.npz", allow_pickle=False) as npz:
            inputs = [npz[f"in_{k}"] for k in range(len(npz.files))]
        references = {
            name: _load_arrays(folder / f"reference_{name}.npz") for name in data["references"]
        }
        tolerances = Tolerances.from_dict(data["tolerances"])
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"repro folder {folder} is incomplete or damaged: {exc}") from exc
    return Case(folder, data, artifact, inputs, references, tolerances)


def board_files_of(case: Case) -> list[Path]:
    """The board file a case needs beyond the built-in ones."""
    name = case.data.get("board_file")
    return [case.folder / name] if name else []


def _dataclass_from(cls: type[Any], saved: Mapping[str, Any]) -> Any:
    """A dataclass of options from its saved JSON form (paths and tuples restored)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value = saved.get(field.name)
        if value is None:
            continue
        if isinstance(value, str) and "Path" in str(field.type):
            value = Path(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[field.name] = value
    return cls(**values)


def _options(saved: Mapping[str, Any] | None) -> BoardOptions | None:
    """The board options a case ran with, from ``case.json``."""
    if not saved:
        return None
    from harness.boards import registry

    options: BoardOptions = _dataclass_from(BoardOptions, {**saved, "kind_options": None})
    kind_options = {}
    for kind_name, value in (saved.get("kind_options") or {}).items():
        kind = registry.kinds().get(kind_name)
        if kind is not None and kind.options_type is not None and isinstance(value, Mapping):
            kind_options[kind_name] = _dataclass_from(kind.options_type, value)
    return dataclasses.replace(options, kind_options=kind_options)


def rerun(
    case: Case,
    board_name: str | None = None,
    extra_board_files: Sequence[str | Path] = (),
    work_dir: Path | None = None,
) -> tuple[str, tuple[Comparison, ...]]:
    """Run a case's program again on its board (or ``board_name``) and judge it with
    the case's own references and limits.

    Returns:
        The verdict (``pass``, or the failure class: ``numeric_mismatch``,
        ``degenerate``, ``quantization_quality``) and the comparisons.

    Raises:
        HarnessError: the board cannot run here, or the run failed again (its
            failure class is the verdict).
    """
    from harness.boards import make_board
    from harness.boards.spec import load_boards, resolve_board_names
    from harness.errors import BoardUnavailable
    from harness.verdict.compare import compare_with_references, failure_class_of
    from harness.verdict.degenerate import degenerate_outputs

    boards = load_boards([*board_files_of(case), *extra_board_files])
    name = resolve_board_names([board_name or case.board], boards)[0]
    work = work_dir or case.folder / "rerun"
    shutil.rmtree(work, ignore_errors=True)
    board = make_board(boards[name], work / "logs", _options(case.data.get("board_options")))
    availability = board.availability()
    if not availability.ok:
        raise BoardUnavailable(name, availability.reason, availability.hint)
    board.open()
    try:
        run = board.run(
            case.artifact,
            case.inputs,
            run_dir=work / "run",
            timeout_s=case.data.get("timeout_s"),
            debug_buffer_size=int(case.data.get("debug_buffer_size") or 0),
            expected=next(iter(case.references.values()), None),
        )
    finally:
        board.close()
    comparisons = compare_with_references(
        run.outputs, case.references, case.artifact, case.tolerances
    )
    degenerate = degenerate_outputs(
        list(run.outputs),
        case.references["eager_float"],
        case.references.get("fake_quant"),
        case.artifact.output_scales if case.artifact.quantized else None,
    )
    failure = failure_class_of(comparisons, degenerate)
    return (str(failure) if failure else "pass"), comparisons


def main(folder: str, board: str | None, board_files: Sequence[str]) -> int:
    """``et-hil repro DIR``: rerun, print the verdict; exit 0 on pass, 1 on failure."""
    from harness.errors import HarnessError
    from harness.verdict.compare import format_table

    case = load_case(Path(folder))
    print(
        f"repro {case.folder}\n  test {case.data.get('test')}\n  model '{case.data['model']}' "
        f"on board '{board or case.board}' (failed before as {case.data['failure_class']})"
    )
    try:
        verdict, comparisons = rerun(case, board, board_files)
    except HarnessError as exc:
        print(f"verdict: {exc.failure_class}\n{exc}")
        return 1
    print(format_table(comparisons))
    print(f"verdict: {verdict}")
    return 0 if verdict == "pass" else 1
