"""The ``[serial.labgrid]`` table: a serial board reached through a labgrid lab.

::

    [serial.labgrid]
    coordinator = "labgrid.lab.example.com:20408"   # default: $LG_COORDINATOR
    tags = { board = "mps3-an547", pool = "ci" }    # any place with these tags...
    # place = "mps3-left"                           # ...or one place by name
    timeout_s = 1800                                # wait in labgrid's queue this long
    console = "console"                             # the place's serial port, if it has several

With it, ``[serial]`` has no ``port`` or ``[[serial.unit]]``: labgrid hands out the
place and its console for each run. Flash and reset commands may name
``{place}`` and ``{exporter}`` (the host the place's resources are on).
"""

# No `from __future__ import annotations` here: msgspec reads these annotations
# as objects, not as strings to evaluate in this module's namespace later (a
# pytester in-process run can drop this module from sys.modules in between).
import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Annotated

import msgspec

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default port
# labgrid's TAG_KEY / TAG_VAL: what its coordinator accepts in a filter
_TAG_KEY = re.compile(r"^[a-z][a-z0-9_]+$")
_TAG_VALUE = re.compile(r"^[a-z0-9_-]+$")
_Text = Annotated[str, msgspec.Meta(min_length=1, extra={"expect": "a non-empty string"})]


class LabgridTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``[serial.labgrid]``: the labgrid place (or pool of places) a run reserves."""

    coordinator: Annotated[
        _Text | None,
        msgspec.Meta(
            description="HOST:PORT of labgrid-coordinator (default: $LG_COORDINATOR, "
            f"else {DEFAULT_COORDINATOR})",
            extra={"expect": "HOST:PORT"},
        ),
    ] = None
    place: Annotated[
        _Text | None, msgspec.Meta(description="one place, by name (`labgrid-client places`)")
    ] = None
    tags: Annotated[
        dict[str, str],
        msgspec.Meta(
            description="a pool: any place with all these tags (`labgrid-client set-tags`)",
            extra={"expect": "a table of strings"},
        ),
    ] = msgspec.field(default_factory=dict)
    timeout_s: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            description="how long a run waits in labgrid's reservation queue",
            extra={"expect": "a number >= 0"},
        ),
    ] = 1800.0
    console: Annotated[
        _Text | None,
        msgspec.Meta(description="the serial resource's name, when the place has several"),
    ] = None


@dataclasses.dataclass(frozen=True)
class LabgridSettings:
    """Where and what to reserve.

    Attributes:
        coordinator: ``HOST:PORT`` of the coordinator, as given (``None``: from
            the environment when the run starts, see :meth:`address`).
        filters: the reservation filter: the place's tags, and ``name`` for one place.
        timeout_s: how long a run waits for a place.
        console: the serial resource to use, when a place has several.
    """

    coordinator: str | None
    filters: Mapping[str, str]
    timeout_s: float
    console: str | None

    def address(self) -> str:
        """The coordinator to use: the board file's, else ``$LG_COORDINATOR``
        (labgrid's own variable), else labgrid's default."""
        return self.coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR

    def address_source(self) -> str:
        """Where :meth:`address` came from, for messages."""
        if self.coordinator:
            return "[serial.labgrid] coordinator"
        if os.environ.get("LG_COORDINATOR"):
            return "$LG_COORDINATOR"
        return "labgrid's default; set $LG_COORDINATOR or [serial.labgrid] coordinator"

    def describe(self) -> str:
        """``place vboard0`` or ``a place with pool=ci``, for messages."""
        if set(self.filters) == {"name"}:
            return f"place {self.filters['name']}"
        text = " ".join(f"{k}={v}" for k, v in sorted(self.filters.items()))
        return f"a place with {text}"


def labgrid_settings(table: LabgridTable, problems: list[str]) -> LabgridSettings | None:
    """The settings of a well-typed table, or ``None`` with its problems added."""
    found = len(problems)
    if table.place is None and not table.tags:
        problems.append(
            "[serial.labgrid] needs 'place' (one place) or 'tags' (a pool of identical places)"
        )
    if "name" in table.tags:
        problems.append("[serial.labgrid] tags: use 'place' for the place's name")
    for key, value in table.tags.items():
        if not _TAG_KEY.match(key) or not _TAG_VALUE.match(value):
            problems.append(
                f"[serial.labgrid] tag {key} = {value!r}: labgrid takes lower-case keys "
                "[a-z][a-z0-9_]+ and values [a-z0-9_-]+"
            )
    if len(problems) > found:
        return None
    filters = dict(table.tags)
    if table.place is not None:
        filters["name"] = table.place
    return LabgridSettings(
        coordinator=table.coordinator,
        filters=filters,
        timeout_s=table.timeout_s,
        console=table.console,
    )
