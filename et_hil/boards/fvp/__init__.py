"""Arm Corstone FVP boards: platform data (``platforms/*.toml``), the command line,
and running it locally or in Docker."""
