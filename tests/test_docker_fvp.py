"""FVP boards in Docker, through a real engine and the CI test image (the FVP
double and the ExecuTorch runtime, built offline by tests/docker_ci)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

# 900 s: the first test on each worker builds the CI image (debootstrap) if it is not
# there yet; with the image built, the longest took 109 s.
pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.timeout(900)]

TESTS = """
import pytest
import tinymodels as m

@pytest.mark.parametrize("quantize", [None, "int8"])
def test_tiny(et_check, quantize):
    result = et_check(m.tiny(), m.x(), quantize=quantize)
    assert result.run.fidelity == "fvp-fast"
"""
TCP_ENGINE = "tcp://127.0.0.1:2375"


def _client():
    import docker

    client = docker.from_env()
    client.ping()
    return client


@pytest.fixture(scope="session")
def ci_image() -> str:
    """The CI test image, built (or found) once per session."""
    try:
        _client()
    except Exception as exc:
        if os.environ.get("ET_HIL_REQUIRE_DOCKER"):
            pytest.fail(f"Docker is required here (ET_HIL_REQUIRE_DOCKER) but unreachable: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "docker_ci"))
    import build_image

    return build_image.build()


@pytest.fixture
def docker_env(et_pytester, monkeypatch, ci_image):
    tag = uuid.uuid4().hex
    monkeypatch.setenv("ET_HIL_CONTAINER_TAG", tag)
    monkeypatch.setenv("ET_HIL_DOCKER_ENV", "ET_HIL_FVP_DOUBLE_MODE")
    monkeypatch.delenv("ET_HIL_FVP_DOUBLE_MODE", raising=False)
    et_pytester.makepyfile(TESTS)
    return {"image": ci_image, "tag": tag}


def containers(tag: str) -> list:
    # ignore_removed: the SDK inspects each listed container, and the harness may
    # remove one in between (seen in CI: a 404 from this helper, mid-cancel)
    return _client().containers.list(
        all=True, filters={"label": f"org.et-hil.tag={tag}"}, ignore_removed=True
    )


def args(image: str, *extra: str) -> list[str]:
    return [
        "--et-board=corstone320",
        "--et-compile-target=portable",
        "--et-fvp-backend=docker",
        f"--et-fvp-image={image}",
        *extra,
    ]


def records(pytester) -> list[dict]:
    path = pytester.path / "et-hil-results" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_runs_end_to_end_through_containers_on_two_workers(et_pytester, docker_env):
    result = et_pytester.runpytest_subprocess(*args(docker_env["image"], "-n", "2"))
    result.assert_outcomes(passed=2)
    for record in records(et_pytester):
        where = record["board_facts"]["where"]
        assert where.startswith(f"docker {docker_env['image']} (sha256:")
        assert where.endswith("on http+docker://localhost")
    assert containers(docker_env["tag"]) == []


def test_a_timeout_kills_its_container(et_pytester, docker_env, monkeypatch):
    monkeypatch.setenv("ET_HIL_FVP_DOUBLE_MODE", "hang")
    started = time.monotonic()
    result = et_pytester.runpytest_subprocess(
        *args(docker_env["image"], "-k", "None", "--et-run-timeout=2")
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*RunTimeout*no result after 7 s*the FVP was killed*"])
    assert records(et_pytester)[0]["failure_class"] == "timeout"
    # The hung container is killed at the run's 2 s + 5 s (the double would sleep
    # for days); the rest is pytest starting in a subprocess and the container's
    # start and removal. 60 s is generous so that a busy machine cannot fail it.
    assert time.monotonic() - started < 60
    assert containers(docker_env["tag"]) == []


def test_containers_of_a_killed_session_are_reaped_at_the_next_start(et_pytester, docker_env):
    env = dict(os.environ, ET_HIL_FVP_DOUBLE_MODE="hang")
    killed = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            *args(docker_env["image"], "-k", "None", "--et-run-timeout=120"),
        ],
        cwd=et_pytester.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not containers(docker_env["tag"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = containers(docker_env["tag"])
    assert left, "the hanging run never started its container"
    os.killpg(killed.pid, signal.SIGKILL)  # no cleanup runs: the container stays
    killed.wait()
    assert [c.id for c in containers(docker_env["tag"])] == [left[0].id]

    et_pytester.runpytest_subprocess(*args(docker_env["image"], "-k", "None")).assert_outcomes(
        passed=1
    )
    assert containers(docker_env["tag"]) == []


def test_missing_image_says_how_to_build_it(et_pytester, docker_env):
    result = et_pytester.runpytest_subprocess(*args("et-hil-ci:no-such-tag", "-rs"))
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*Docker image et-hil-ci:no-such-tag is missing*et-hil docker build --accept-eula*"]
    )


def test_image_for_other_versions_is_refused(et_pytester, docker_env, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {docker_env['image']}\nLABEL org.et-hil.executorch=0.9.0\n"
    )
    old = f"et-hil-ci-old:{docker_env['tag'][:12]}"
    _client().images.build(path=str(tmp_path), tag=old, rm=True)
    try:
        result = et_pytester.runpytest_subprocess(*args(old, "-rs"))
        result.assert_outcomes(skipped=2)
        result.stdout.fnmatch_lines(
            ["*Docker image * holds executorch=0.9.0, this harness needs 1.5.1*"]
        )
    finally:
        _client().images.remove(old, force=True)


def test_daemon_not_running_is_said_plainly(et_pytester, docker_env, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = et_pytester.runpytest_subprocess(*args(docker_env["image"], "-rs"))
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*the Docker daemon is not running*start it*"])


def test_permission_problem_on_the_socket_is_said_plainly():
    import docker.errors

    from et_hil.boards.fvp.docker import engine_problem

    # The message docker-py raises when the socket is not ours (as root we cannot
    # provoke it for real: root may open any socket).
    error = docker.errors.DockerException(
        "Error while fetching server API version: ('Connection aborted.', "
        "PermissionError(13, 'Permission denied'))"
    )
    found = engine_problem(error)
    assert not found.ok
    assert "no permission on the Docker socket" in found.reason
    assert "docker' group" in found.hint


def test_remote_engine_copies_files_instead_of_mounting(et_pytester, docker_env, monkeypatch):
    import docker

    try:
        docker.DockerClient(base_url=TCP_ENGINE).ping()
    except Exception:
        pytest.skip(f"no Docker engine listening on {TCP_ENGINE} (.ci/run starts one)")
    monkeypatch.setenv("DOCKER_HOST", TCP_ENGINE)
    result = et_pytester.runpytest_subprocess(*args(docker_env["image"]))
    result.assert_outcomes(passed=2)
    where = records(et_pytester)[0]["board_facts"]["where"]
    assert where.endswith("on http://127.0.0.1:2375")
    assert containers(docker_env["tag"]) == []


def test_sigterm_to_the_process_group_removes_every_container(et_pytester, docker_env, monkeypatch):
    from tests.test_fvp_board import QUICK, cancel_mid_run, finished_tests

    et_pytester.makepyfile(test_a_quick=QUICK)  # sorts first: finishes before the hangs
    monkeypatch.setenv("ET_HIL_FVP_DOUBLE_MODE", "hang")
    quick = {"test_quick[corstone320-0]", "test_quick[corstone320-1]"}
    command = [sys.executable, "-m", "pytest", "-n", "2"]
    command += args(docker_env["image"], "--et-run-timeout=300")
    proc, signalled = cancel_mid_run(
        et_pytester,
        command,
        lambda: containers(docker_env["tag"]) and finished_tests(et_pytester) == quick,
        signal.SIGTERM,
    )
    # Removed soon after the signal, not at the 300 s run timeout; 60 s lets the
    # workers tear down on a busy 2-core machine.
    while containers(docker_env["tag"]) and time.monotonic() < signalled + 60:
        time.sleep(0.2)
    assert containers(docker_env["tag"]) == []
    assert proc.returncode == 2
    assert finished_tests(et_pytester) == quick
