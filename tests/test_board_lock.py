"""Exclusive use of boards: pools hand out free units, waits end with a clear
message, and a holder that dies (even by SIGKILL) frees its unit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from et_hil.boards.serial import lock as board_lock
from et_hil.boards.serial.settings import Unit
from et_hil.errors import InfrastructureError

A = Unit("a", "socket://lab-host:4001")
B = Unit("b", "socket://lab-host:4002")


def test_a_pool_hands_out_each_free_unit_once(tmp_path: Path) -> None:
    first = board_lock.acquire("mps3", [A, B], timeout_s=0, folder=tmp_path)
    second = board_lock.acquire("mps3", [A, B], timeout_s=0, folder=tmp_path)
    assert {first.unit.name, second.unit.name} == {"a", "b"}
    with pytest.raises(
        InfrastructureError, match=r"board 'mps3': every unit is in use after 0\.2 s"
    ):
        board_lock.acquire("mps3", [A, B], timeout_s=0.2, folder=tmp_path)
    first.release()
    third = board_lock.acquire("mps3", [A, B], timeout_s=0, folder=tmp_path)
    assert third.unit == first.unit
    second.release()
    third.release()


def test_a_waiter_gets_the_unit_when_it_is_released(tmp_path: Path) -> None:
    holder = board_lock.acquire("x", [A], timeout_s=0, folder=tmp_path)
    code = (
        "import sys, time; from pathlib import Path\n"
        "from et_hil.boards.serial import lock as board_lock\n"
        "from et_hil.boards.serial.settings import Unit\n"
        "asked = time.time()\n"
        "print('waiting', flush=True)\n"
        f"lease = board_lock.acquire('x', [Unit('a', '{A.port}')], 30, Path(sys.argv[1]))\n"
        "print(asked, lease.acquired_at, lease.waited_s)\n"
    )
    waiter = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert waiter.stdout is not None
    assert waiter.stdout.readline().strip() == "waiting"  # imports done
    time.sleep(1.0)  # the waiter is in acquire(), polling the held unit
    released = time.time()
    holder.release()
    out, _ = waiter.communicate(timeout=30)
    assert waiter.returncode == 0
    asked, acquired_at, waited_s = map(float, out.split())
    # Order of events on one clock (time.time() is the same in both processes),
    # not a duration a busy machine could stretch: the waiter asked while the
    # unit was held and got it only after the release.
    assert asked < released < acquired_at
    # and its lease reports the wait, which lies inside the asking (1 ms for rounding)
    assert 0 < waited_s <= acquired_at - asked + 1e-3


def test_a_killed_holder_frees_its_unit(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path\n"
        "from et_hil.boards.serial import lock as board_lock\n"
        "from et_hil.boards.serial.settings import Unit\n"
        f"lease = board_lock.acquire('x', [Unit('a', '{A.port}')], 5, Path(sys.argv[1]))\n"
        "print('held', flush=True); time.sleep(600)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InfrastructureError):
            board_lock.acquire("x", [A], timeout_s=0.2, folder=tmp_path)
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate(timeout=10)  # waits, and closes its stdout pipe
        lease = board_lock.acquire("x", [A], timeout_s=2, folder=tmp_path)
        lease.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()


def test_two_names_of_one_port_share_a_lock(tmp_path: Path) -> None:
    device = tmp_path / "ttyACM0"
    device.write_text("")
    by_id = tmp_path / "usb-ARM_V2M-MPS3-if01"
    by_id.symlink_to(device)
    assert board_lock.lock_path(str(by_id), tmp_path) == board_lock.lock_path(str(device), tmp_path)
    lease = board_lock.acquire("x", [Unit("0", str(by_id))], 0, tmp_path)
    with pytest.raises(InfrastructureError):
        board_lock.acquire("y", [Unit("0", str(device))], 0.2, tmp_path)
    lease.release()


def test_a_device_node_is_named_by_its_by_id_link(tmp_path: Path) -> None:
    """After USB re-enumeration ttyACM0 may become ttyACM1: the lock follows the
    by-id name, not the number."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    first, second = tmp_path / "ttyACM0", tmp_path / "ttyACM1"
    first.write_text("")
    second.write_text("")
    link = by_id / "usb-ARM_V2M-MPS3_0001-if01-port0"
    link.symlink_to(first)
    assert board_lock.port_identity(str(first), by_id) == str(link)
    assert board_lock.port_identity(str(link), by_id) == str(link)
    link.unlink()
    link.symlink_to(second)  # re-enumerated
    assert board_lock.port_identity(str(link), by_id) == str(link)
    assert board_lock.port_identity(str(second), by_id) == str(link)
    assert board_lock.port_identity("rfc2217://lab:4000", by_id) == "rfc2217://lab:4000"


def test_unit_state_survives_between_holders(tmp_path: Path) -> None:
    lease = board_lock.acquire("x", [A], 0, tmp_path)
    lease.set_state(firmware_sha256="abc")
    lease.release()
    again = board_lock.acquire("x", [A], 0, tmp_path)
    assert again.state()["firmware_sha256"] == "abc"
    assert again.state()["holder"]["pid"] == os.getpid()
    again.release()


def test_unit_status_says_who_holds_a_unit(tmp_path: Path) -> None:
    assert board_lock.unit_status(A, tmp_path) == (False, "free")
    lease = board_lock.acquire("x", [A], 0, tmp_path)
    held, who = board_lock.unit_status(A, tmp_path)
    assert held
    assert f"pid {os.getpid()}" in who
    lease.release()
    assert board_lock.unit_status(A, tmp_path) == (False, "free")


def test_a_lock_file_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    # a directory where the lock file should be: open() fails even for root,
    # as an unwritable file of another user fails for everyone else
    board_lock.lock_path(A.port, tmp_path).mkdir()
    with pytest.raises(InfrastructureError, match=r"board 'x': cannot lock .* set ET_HIL_LOCK_DIR"):
        board_lock.acquire("x", [A], 0, tmp_path)
