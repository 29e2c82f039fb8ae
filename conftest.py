"""In-repo glue only (the plugin itself comes from the installed package's entry point).

Runs from a checkout must never write into the user's cache by accident from
the harness's own tests: tests/ pass --et-build-cache explicitly.
"""

from __future__ import annotations

import os

# Deterministic CPU math and quiet threads for reproducible numbers across runs.
os.environ.setdefault("OMP_NUM_THREADS", "1")
