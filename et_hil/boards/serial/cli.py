"""The serial kind's ``et-hil`` subcommand: ``et-hil units``."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from et_hil.boards.spec import load_boards
from et_hil.errors import InfrastructureError
from et_hil.tables import text_table

if TYPE_CHECKING:
    from et_hil.boards.labgrid.settings import LabgridSettings


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``et-hil units``: the serial boards' units, present, free or held, and by whom."""
    sub.add_parser(
        "units", parents=[common], help="serial boards' units: present, free or held, and by whom"
    ).set_defaults(func=cmd_units)


def cmd_units(args: argparse.Namespace) -> int:
    """The units of each serial board: port present, free or held, and by whom."""
    from et_hil.boards.serial import lock as board_lock
    from et_hil.boards.serial.settings import serial_settings

    rows: list[tuple[str, ...]] = [("board", "unit", "port", "present", "lock")]
    for name, spec in sorted(load_boards(args.board_file).items()):
        if spec.kind != "serial":
            continue
        settings = serial_settings(spec)
        if settings.labgrid is not None:
            rows += _labgrid_rows(name, settings.labgrid)
            continue
        for unit in settings.units:
            present = "://" in unit.port or Path(unit.port).exists()
            try:
                _, who = board_lock.unit_status(unit)
            except OSError as exc:  # e.g. a lock folder this user may not write
                who = f"unknown ({exc.strerror or exc})"
            rows.append((name, unit.name, unit.port, "yes" if present else "no", who))
    if len(rows) == 1:
        print("no serial boards (add a board file with --board-file)")
        return 0
    print(text_table(rows))
    print(f"locks: {board_lock.lock_dir()}")
    return 0


def _labgrid_rows(name: str, lab: LabgridSettings) -> list[tuple[str, ...]]:
    """A labgrid board's places, as its coordinator tells (through a place agent)."""
    from et_hil.boards.labgrid.places import PlaceAgent, labgrid_availability

    where = f"labgrid {lab.address()}"
    reach = labgrid_availability(lab)
    if not reach.ok:
        return [(name, lab.describe(), where, "no", reach.reason)]
    with tempfile.TemporaryDirectory(prefix="et-hil-units-") as scratch:
        agent = PlaceAgent(name, lab, Path(scratch), Path(scratch))
        try:
            places = agent.status()
        except InfrastructureError as exc:
            return [(name, lab.describe(), where, "?", exc.message)]
        finally:
            agent.close()
    if not places:
        return [(name, lab.describe(), where, "no", "no place matches")]
    rows: list[tuple[str, ...]] = []
    for place in places:
        if place["acquired"]:
            who = f"acquired by {place['acquired']}"
        elif place["reserved_by"]:
            who = f"reserved by {place['reserved_by']}"
        else:
            who = "free"
        rows.append((name, place["place"], where, "yes", who))
    return rows
