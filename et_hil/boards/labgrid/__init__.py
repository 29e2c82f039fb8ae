"""Boards in a labgrid lab: places reserved and acquired through labgrid's
coordinator, their consoles served by its exporters (see docs/boards/labgrid.md)."""
