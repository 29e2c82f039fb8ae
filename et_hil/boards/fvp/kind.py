"""The ``fvp`` board kind: its ``[fvp]`` table, its command-line options, its fidelities.

Light on purpose (no numpy, no docker SDK): the plugin reads it at start-up.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from et_hil.boards.kind import BoardKind, OptionAdder
from et_hil.boards.memory import SemihostingPools
from et_hil.executor_runner.command_line import FIXED_SHAPES

Backend = Literal["local", "docker"]


class FvpSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A board file's ``[fvp]`` table."""

    platform: Annotated[
        str,
        msgspec.Meta(description="FVP platform file in fvp/ (corstone320 ...)"),
    ]
    runner_elf: Annotated[
        str | None,
        msgspec.Meta(description="the runner ELF, relative to the board file's folder"),
    ] = None
    cycles: Annotated[
        bool, msgspec.Meta(description="run without --fast: cycle-approximate NPU")
    ] = False
    retries: Annotated[
        int,
        msgspec.Meta(ge=0, description="retries of launch/licence failures per run"),
    ] = 1
    num_macs: Annotated[int | None, msgspec.Meta(description="MACs of the FVP's NPU")] = None
    backends: Annotated[
        tuple[Backend, ...],
        msgspec.Meta(
            description="where the FVP may run, in order",
            extra={"expect": "a list of 'local' and/or 'docker'"},
        ),
    ] = ("local", "docker")
    image: Annotated[str | None, msgspec.Meta(description="Docker image with the FVPs")] = None


@dataclasses.dataclass(frozen=True)
class FvpOptions:
    """Command-line and environment settings of FVP boards (over their board files').

    Attributes:
        cycles: run without ``--fast`` (``--et-fvp-cycles``).
        retries: retries of infrastructure failures per run (``--et-fvp-retries``).
        fvp_dir: where to look for FVP binaries before ``PATH`` (``$ET_HIL_FVP_DIR``).
        backends: where FVPs may run, in order (``--et-fvp-backend``).
        image: the Docker image with the FVPs (``--et-fvp-image``, ``$ET_HIL_FVP_IMAGE``).
        docker_env: host environment variables passed into FVP containers
            (``$ET_HIL_DOCKER_ENV``, comma-separated names).
    """

    cycles: bool = False
    retries: int | None = None
    fvp_dir: Path | None = None
    backends: tuple[str, ...] = ()
    image: str | None = None
    docker_env: tuple[str, ...] = ()


def add_options(group: OptionAdder) -> None:
    """The FVP options of pytest's et-hil group."""
    group.addoption(
        "--et-fvp-cycles",
        deprecated=["--fvp-cycles"],
        action="store_true",
        help="run FVPs without --fast: cycle-approximate NPU timing and PMU counts (slower)",
    )
    group.addoption(
        "--et-fvp-backend",
        deprecated=["--fvp-backend"],
        action="append",
        default=[],
        choices=("local", "docker"),
        help="where FVPs run, in order of preference (repeatable; default: local, then docker)",
    )
    group.addoption(
        "--et-fvp-image",
        deprecated=["--fvp-image"],
        metavar="IMAGE",
        help="Docker image with the FVPs (default: $ET_HIL_FVP_IMAGE or the versioned "
        "et-hil-fvp tag that 'et-hil docker build' makes)",
    )
    group.addoption(
        "--et-fvp-retries",
        deprecated=["--fvp-retries"],
        type=int,
        metavar="N",
        help="retries of FVP launch and licence failures per run (default: board file, or 1)",
    )


def from_environment() -> FvpOptions:
    """FVP options from the environment alone (``et-hil`` commands, defaults)."""
    fvp_dir = os.environ.get("ET_HIL_FVP_DIR")
    return FvpOptions(
        fvp_dir=Path(fvp_dir) if fvp_dir else None,
        image=os.environ.get("ET_HIL_FVP_IMAGE"),
        docker_env=tuple(n for n in os.environ.get("ET_HIL_DOCKER_ENV", "").split(",") if n),
    )


def options_from(option: Any) -> FvpOptions:
    """FVP options from pytest's parsed options, over the environment's.

    Raises:
        ValueError: a bad ``--et-fvp-retries``.
    """
    if option.fvp_retries is not None and option.fvp_retries < 0:
        raise ValueError(f"--et-fvp-retries must be >= 0, got {option.fvp_retries}")
    environment = from_environment()
    return dataclasses.replace(
        environment,
        cycles=option.fvp_cycles,
        retries=option.fvp_retries,
        backends=tuple(option.fvp_backend),
        image=option.fvp_image or environment.image,
    )


def check_settings(settings: FvpSettings | None, path: Path) -> list[str]:
    """The ``[fvp]`` platform must be a known platform file."""
    if settings is None:
        return []
    from et_hil.datafiles import fvp_platform_dir

    known = sorted(p.stem for p in fvp_platform_dir().glob("*.toml"))
    if settings.platform not in known:
        return [f"[fvp] platform '{settings.platform}' is unknown (known: {', '.join(known)})"]
    return []


FVP_KIND = BoardKind(
    name="fvp",
    board="et_hil.boards.fvp.board:FvpBoard",
    summary="an Arm Corstone FVP running the upstream semihosting runner, local or in Docker",
    fidelities={
        "fvp-fast": "FVP with --fast: functional only, timings mean nothing",
        "fvp-cycles": "FVP NPU model without --fast: cycle-approximate NPU",
    },
    settings_table="fvp",
    settings_type=FvpSettings,
    settings_required=True,
    check_settings=check_settings,
    add_commands="et_hil.boards.fvp.cli:add_commands",
    memory_fields={"file_pool_bytes": "the semihosting runner's file pool"},
    memory_fields_refused={
        "program_bytes": "the semihosting runner reads the program into its file pool "
        "(file_pool_bytes)"
    },
    fixed_shapes=FIXED_SHAPES,
    memory_layout=SemihostingPools("the FVP runner"),
    add_options=add_options,
    options_from=options_from,
    options_type=FvpOptions,
    options_from_environment=from_environment,
    doctor="et_hil.boards.fvp.doctor",
)
