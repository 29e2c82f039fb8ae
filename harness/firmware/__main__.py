"""``python -m harness.firmware ...``: the same as ``et-hil firmware ...``."""

from __future__ import annotations

import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main(["firmware", *sys.argv[1:]]))
