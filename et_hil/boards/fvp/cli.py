"""The fvp kind's ``et-hil`` subcommand: ``et-hil docker build|reap``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from et_hil.versions import docker_build_args


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``et-hil docker build|reap``: the FVP image, and containers killed sessions left."""
    docker_cmd = sub.add_parser(
        "docker", parents=[common], help="build the FVP image; reap leftover containers"
    )
    docker_cmd.add_argument("action", choices=("build", "reap"))
    docker_cmd.add_argument("--accept-eula", action="store_true", help="accept Arm's EULA")
    docker_cmd.add_argument("--tag", help="image tag (default: the versioned et-hil-fvp tag)")
    docker_cmd.set_defaults(func=cmd_docker)


def _docker_dir() -> Path:
    return Path(__file__).resolve().parents[3] / "docker"


def cmd_docker(args: argparse.Namespace) -> int:
    """Build the FVP image, or remove containers left by killed sessions."""
    import docker
    import docker.errors

    from et_hil.boards.fvp.docker import DockerFvpExecutor, default_image

    tag = args.tag or default_image()
    if args.action == "reap":
        try:
            removed = DockerFvpExecutor(tag).reap_leftovers()
        except docker.errors.DockerException as exc:
            from et_hil.boards.fvp.docker import engine_problem

            problem = engine_problem(exc)
            print(f"et-hil: error: {problem.reason}; {problem.hint}", file=sys.stderr)
            return 1
        print(f"removed {len(removed)} leftover containers" + (f": {removed}" if removed else ""))
        return 0
    if not args.accept_eula:
        print(
            "The image holds the Arm Corstone FVPs and the Arm GNU toolchain, licensed under "
            "Arm's EULA (https://developer.arm.com/downloads/-/arm-ecosystem-fvps).\n"
            "Read it, then run again with --accept-eula to accept it and build.",
            file=sys.stderr,
        )
        return 2
    context = _docker_dir()
    if not (context / "Dockerfile").exists():
        print(
            f"et-hil: error: {context}/Dockerfile not found (run from a checkout)", file=sys.stderr
        )
        return 2
    print(f"building {tag} from {context} (FVP downloads and runner builds take a while)")
    try:
        client = docker.from_env()  # type: ignore[attr-defined]
        for chunk in client.api.build(
            path=str(context),
            tag=tag,
            buildargs={"ACCEPT_ARM_EULA": "yes", **docker_build_args()},
            rm=True,
            decode=True,
        ):
            if "stream" in chunk:
                sys.stdout.write(chunk["stream"])
            if "error" in chunk:
                print(f"et-hil: error: image build failed: {chunk['error']}", file=sys.stderr)
                return 1
    except docker.errors.DockerException as exc:
        print(f"et-hil: error: {exc}", file=sys.stderr)
        return 1
    print(f"built {tag}")
    return 0
