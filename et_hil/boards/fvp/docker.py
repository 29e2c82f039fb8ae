"""FVPs in Docker: the same rendered command, run in a container (docker SDK).

Each run gets a fresh container: no network, the image's non-root user,
memory and CPU limits, labels naming the harness process. The run folder is
bind-mounted when the engine is on this machine, and copied in and out when it
is remote (``DOCKER_HOST=ssh://...`` or ``tcp://...``, where host paths mean
nothing). The container is removed after every run, whatever happened, and
containers left by a killed session are reaped the next time a board opens.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from et_hil.boards.base import Availability
from et_hil.boards.fvp import platform as fvp
from et_hil.boards.fvp.executor import LOG_NAME, ProcessOutcome
from et_hil.errors import InfrastructureError
from et_hil.versions import installed_version

LABEL = "org.et-hil"
MANAGED = f"{LABEL}.managed"
OWNER = f"{LABEL}.owner"
RUN_DIR_IN_CONTAINER = "/work/run"
HOST_ELF_IN_CONTAINER = "/work/runner/arm_executor_runner"
BUILD_HINT = "build it with: et-hil docker build --accept-eula (docs/boards/fvp-docker.md)"


def default_image() -> str:
    """The FVP image tag for the pinned versions (what ``et-hil docker build`` makes):
    the installed ExecuTorch, and the FVP versions of the platform files."""
    c300 = fvp.load_platform("corstone300-u55").version
    c320 = fvp.load_platform("corstone320").version
    return f"et-hil-fvp:et{installed_version('executorch')}-c300-{c300}-c320-{c320}"


def _namespace() -> str:
    """This machine's boot and PID namespace: PIDs mean something only within it."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}/{boot}/{pidns}"


def _owner() -> str:
    return f"{_namespace()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def engine_problem(exc: BaseException) -> Availability:
    """Turn a docker SDK connection error into a reason and a fix."""
    text = str(exc)
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if "Permission denied" in text or "PermissionError" in text:
        return Availability(
            False,
            f"no permission on the Docker socket ({host})",
            "add your user to the 'docker' group (then log in again) or use rootless Docker",
        )
    if "No such file" in text or "FileNotFoundError" in text or "Connection refused" in text:
        return Availability(
            False,
            f"the Docker daemon is not running ({host})",
            "start it: sudo systemctl start docker (or run dockerd)",
        )
    return Availability(False, f"cannot reach the Docker engine at {host}: {text[:200]}", "")


class DockerFvpExecutor:
    """Runs the FVP argv in a container of ``image``.

    Args:
        image: image name or id (labels say which FVP versions and runners it holds).
        memory: container memory limit (docker syntax, e.g. ``4g``).
        cpus: CPU limit.
        env_names: host environment variables to pass into the container.
    """

    brings_runners = True  # images made by et-hil docker build hold the runners (labels)

    def __init__(
        self, image: str, memory: str = "4g", cpus: float = 2.0, env_names: Sequence[str] = ()
    ) -> None:
        self.image_name = image
        self.memory = memory
        self.cpus = cpus
        self.env_names = tuple(env_names)
        self._client: Any = None
        self._image: Any = None
        self._reaped = False

    # -- engine and image ---------------------------------------------------------------

    def _connect(self) -> Any:
        if self._client is None:
            import docker

            client = docker.from_env(timeout=60)  # type: ignore[attr-defined]
            client.ping()
            self._client = client
        return self._client

    @property
    def engine(self) -> str:
        """The engine's address, as results record it."""
        return str(self._connect().api.base_url)

    @property
    def remote(self) -> bool:
        """True when the engine is not on this machine (no bind mounts)."""
        host = os.environ.get("DOCKER_HOST", "")
        return bool(host) and not host.startswith("unix://")

    def availability(self, platform: fvp.FvpPlatform) -> Availability:
        """Docker reachable, the image present, built for these versions."""
        try:
            import docker.errors
        except ImportError:
            return Availability(False, "the docker Python package is missing", "pip install docker")
        try:
            client = self._connect()
        except docker.errors.DockerException as exc:
            if "FileNotFoundError" in str(exc) and not os.environ.get("DOCKER_HOST"):
                from shutil import which

                if which("docker") is None and which("dockerd") is None:
                    return Availability(
                        False,
                        "Docker is not installed",
                        "install it (Debian: apt-get install docker.io) or put the FVP on PATH",
                    )
            return engine_problem(exc)
        try:
            self._image = client.images.get(self.image_name)
        except docker.errors.ImageNotFound:
            return Availability(False, f"Docker image {self.image_name} is missing", BUILD_HINT)
        except docker.errors.APIError as exc:
            return Availability(False, f"Docker image {self.image_name}: {exc}", BUILD_HINT)
        labels = self._image.labels or {}
        wanted = {
            f"{LABEL}.executorch": installed_version("executorch"),
            f"{LABEL}.fvp.{platform.name}": platform.version,
        }
        for key, value in wanted.items():
            if labels.get(key) != value:
                return Availability(
                    False,
                    f"Docker image {self.image_name} holds {key.removeprefix(LABEL + '.')}="
                    f"{labels.get(key)}, this harness needs {value}",
                    BUILD_HINT,
                )
        if not self._reaped:
            self.reap_leftovers()
            self._reaped = True
        return Availability(True)

    def image_runner(self, platform: fvp.FvpPlatform) -> str | None:
        """The runner ELF the image holds for a platform (label), if any."""
        labels = (self._image.labels if self._image is not None else None) or {}
        value = labels.get(f"{LABEL}.runner.{platform.name}")
        return str(value) if value else None

    def reap_leftovers(self) -> list[str]:
        """Remove containers of this machine's harness processes that no longer run."""
        removed = []
        host = _namespace()
        # ignore_removed: another process may remove a listed container before the
        # SDK inspects it (a 404 would end the sweep)
        for container in self._connect().containers.list(
            all=True, filters={"label": f"{MANAGED}=true"}, ignore_removed=True
        ):
            owner = container.labels.get(OWNER, "")
            owner_host, _, pid = owner.rpartition(":")
            if owner_host == host and pid.isdigit() and not _pid_alive(int(pid)):
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                    removed.append(container.name)
        return removed

    def remove_leftovers(self) -> list[str]:
        """Remove every container this process started that is still there: one
        created just as a run was interrupted (before this process could name it)
        is found by its owner label."""
        if self._client is None:
            return []
        removed = []
        with contextlib.suppress(Exception):  # closing must not fail on a lost engine
            for container in self._client.containers.list(
                all=True, filters={"label": f"{OWNER}={_owner()}"}, ignore_removed=True
            ):
                container.remove(force=True)
                removed.append(container.name)
        return removed

    # -- FvpExecutor --------------------------------------------------------------------

    def executable(self, platform: fvp.FvpPlatform) -> str:
        """The FVP binary on the image's PATH."""
        return platform.executable

    def elf_path(self, elf: Path) -> str:
        """Where a host runner ELF appears in the container."""
        return HOST_ELF_IN_CONTAINER

    def run_dir_path(self, run_dir: Path) -> str:
        """Where the run folder appears in the container."""
        return RUN_DIR_IN_CONTAINER

    def describe(self) -> str:
        """Image and engine, for result records."""
        digest = self._image.id if self._image is not None else "?"
        return f"docker {self.image_name} ({digest}) on {self.engine}"

    def run(
        self, argv: Sequence[str], run_dir: Path, timeout_s: float, host_elf: Path | None = None
    ) -> ProcessOutcome:
        """Run ``argv`` in a fresh container; kill it at ``timeout_s``; always remove it."""
        import docker
        import requests

        client = self._connect()
        started = time.monotonic()
        volumes: dict[str, dict[str, str]] = {}
        if not self.remote:
            run_dir.chmod(0o777)  # the image's user is not this process's user
            volumes[str(run_dir)] = {"bind": RUN_DIR_IN_CONTAINER, "mode": "rw"}
            if host_elf is not None:
                volumes[str(host_elf)] = {"bind": HOST_ELF_IN_CONTAINER, "mode": "ro"}
        environment = {k: os.environ[k] for k in self.env_names if k in os.environ}
        try:
            container = client.containers.create(
                self.image_name,
                command=list(argv),
                working_dir=RUN_DIR_IN_CONTAINER,
                network_mode="none",
                mem_limit=self.memory,
                nano_cpus=int(self.cpus * 1e9),
                labels=self._labels(run_dir),
                volumes=volumes,
                environment=environment,
            )
        except docker.errors.DockerException as exc:
            raise InfrastructureError(
                f"cannot create a container of {self.image_name}: {exc}"
            ) from exc
        timed_out = False
        code: int | None = None
        try:
            if self.remote:
                self._copy_in(container, run_dir, host_elf)
            container.start()
            try:
                code = int(container.wait(timeout=timeout_s)["StatusCode"])
            except requests.exceptions.RequestException as exc:
                # A read timeout at our deadline is the run's timeout; anything
                # earlier is the engine's connection failing.
                if time.monotonic() - started < timeout_s * 0.9:
                    raise InfrastructureError(
                        f"lost the Docker engine while waiting: {exc}"
                    ) from exc
                timed_out = True
                with contextlib.suppress(docker.errors.DockerException):
                    container.kill()
            log = container.logs(stdout=True, stderr=True).decode(errors="replace")
            if self.remote:
                self._copy_out(container, run_dir)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise InfrastructureError(f"container of {self.image_name} failed: {exc}") from exc
        finally:
            with contextlib.suppress(
                docker.errors.DockerException, requests.exceptions.RequestException
            ):
                container.remove(force=True)
        (run_dir / LOG_NAME).write_text(log)
        return ProcessOutcome(log, code, timed_out, time.monotonic() - started, self.describe())

    @staticmethod
    def _labels(run_dir: Path) -> dict[str, str]:
        labels = {MANAGED: "true", OWNER: _owner(), f"{LABEL}.run": run_dir.name}
        # A CI job id (or any tag) to find a job's containers by: ET_HIL_CONTAINER_TAG.
        if tag := os.environ.get("ET_HIL_CONTAINER_TAG"):
            labels[f"{LABEL}.tag"] = tag
        return labels

    # -- remote engines: no shared filesystem ---------------------------------------------

    def _copy_in(self, container: Any, run_dir: Path, host_elf: Path | None) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path in sorted(run_dir.iterdir()):
                if path.is_file():
                    tar.add(path, arcname=path.name)
        container.put_archive(RUN_DIR_IN_CONTAINER, buffer.getvalue())
        if host_elf is not None:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                tar.add(host_elf, arcname=Path(HOST_ELF_IN_CONTAINER).name)
            container.put_archive(str(Path(HOST_ELF_IN_CONTAINER).parent), buffer.getvalue())

    def _copy_out(self, container: Any, run_dir: Path) -> None:
        stream, _ = container.get_archive(RUN_DIR_IN_CONTAINER + "/.")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and (name.startswith("out-") or name.endswith(".bin")):
                    data = tar.extractfile(member)
                    if data is not None:
                        (run_dir / name).write_bytes(data.read())
