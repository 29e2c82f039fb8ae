"""Build the CI test image offline: a debootstrap'd Debian base, then Dockerfile.

No image registry is reachable here, so the base is made with ``debootstrap``
and ``docker import``; the image on top holds the FVP double and the ExecuTorch
runtime. It is tagged by the content of its inputs and reused while they do not
change. Run ``python tests/docker_ci/build_image.py`` to build it by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOUBLE = HERE.parent / "fvp_double"
BASE_TAG = "et-hil-base:bookworm"
ROOTFS = Path(os.environ.get("ET_HIL_ROOTFS", "/var/cache/et-hil/rootfs-bookworm"))
MIRROR = "http://deb.debian.org/debian"


def _run(*argv: str, **kwargs: object) -> None:
    subprocess.run(argv, check=True, **kwargs)  # type: ignore[call-overload]


def ensure_base(client: object) -> str:
    """Import the debootstrap'd Debian base if the engine lacks it; returns its tag."""
    import docker
    import docker.errors

    assert isinstance(client, docker.DockerClient)
    try:
        client.images.get(BASE_TAG)
        return BASE_TAG
    except docker.errors.ImageNotFound:
        pass
    if not (ROOTFS / "usr" / "bin").exists():
        ROOTFS.parent.mkdir(parents=True, exist_ok=True)
        _run("debootstrap", "--variant=minbase", "bookworm", str(ROOTFS), MIRROR)
    # the with block closes tar's pipe and waits for it
    with subprocess.Popen(["tar", "-C", str(ROOTFS), "-c", "."], stdout=subprocess.PIPE) as tar:
        assert tar.stdout is not None
        client.api.import_image_from_stream(
            tar.stdout, repository=BASE_TAG.split(":")[0], tag=BASE_TAG.split(":")[1]
        )
    if tar.returncode != 0:
        raise RuntimeError(
            f"tar of {ROOTFS} failed (exit {tar.returncode}): remove it to debootstrap again"
        )
    return BASE_TAG


def find_torch_wheel() -> Path:
    """The CPU torch 2.13.0 wheel: from pip's find-links folders, else downloaded."""
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        for wheel in sorted(Path(folder).glob("torch-2.13.0*cp311*.whl")):
            return wheel
    target = Path(tempfile.gettempdir()) / "et-hil-wheels"
    target.mkdir(exist_ok=True)
    for wheel in sorted(target.glob("torch-2.13.0*cp311*.whl")):
        return wheel
    _run(
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
        "torch==2.13.0",
        "-d",
        str(target),
    )
    return next(iter(sorted(target.glob("torch-2.13.0*.whl"))))


def ca_bundle() -> Path:
    """The host's CA bundle (pip inside the build needs it behind an inspecting proxy)."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    import certifi

    return Path(certifi.where())


def content_tag(base_id: str, wheel: Path) -> str:
    """``et-hil-ci:<hash>`` of everything that goes into the image."""
    h = hashlib.sha256(base_id.encode() + wheel.name.encode())
    for path in [HERE / "Dockerfile", *sorted(DOUBLE.glob("*.py")), DOUBLE / "launcher.sh"]:
        h.update(path.name.encode() + path.read_bytes())
    return f"et-hil-ci:{h.hexdigest()[:12]}"


def build() -> str:
    """Build (or find) the CI image; returns its tag."""
    import docker
    import docker.errors

    client = docker.from_env()
    base = ensure_base(client)
    wheel = find_torch_wheel()
    tag = content_tag(client.images.get(base).id, wheel)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="et-hil-ci-") as tmp:
        context = Path(tmp)
        shutil.copy(HERE / "Dockerfile", context / "Dockerfile")
        shutil.copy(ca_bundle(), context / "ca-certificates.crt")
        (context / "wheels").mkdir()
        os.link(
            wheel, context / "wheels" / wheel.name
        ) if wheel.stat().st_dev == context.stat().st_dev else shutil.copy(
            wheel, context / "wheels" / wheel.name
        )
        (context / "fvp_double").mkdir()
        for name in ("fvp_double.py", "make_elf.py", "launcher.sh"):
            shutil.copy2(DOUBLE / name, context / "fvp_double" / name)
        client.images.build(
            path=str(context), tag=tag, buildargs={"BASE_IMAGE": base}, rm=True, network_mode="host"
        )
    return tag


if __name__ == "__main__":
    print(build())
