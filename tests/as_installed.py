"""Run pytest with this checkout's ``et_hil`` found the way an installed package is
found (a meta path finder, as pip's editable installs and wheels do), not on
``sys.path``: the way a user's repository sees the plugin.

    python tests/as_installed.py PYTEST_ARGS...

Run it without the checkout on ``PYTHONPATH``.
"""

import importlib.machinery
import sys
from pathlib import Path

CHECKOUT = str(Path(__file__).resolve().parent.parent)


class CheckoutFinder:
    """Finds the top-level ``et_hil`` package in this checkout, and nothing else."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "et_hil":
            return importlib.machinery.PathFinder.find_spec(name, [CHECKOUT])
        return None


# An editable install of another checkout would serve its harness: ours instead.
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
# First: an editable install also leaves the wheel's data folder (et_hil/_data) in
# site-packages, a namespace portion that the path finder would return for et_hil.
sys.meta_path.insert(0, CheckoutFinder)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(CHECKOUT)]

import pytest  # noqa: E402

sys.exit(pytest.main(sys.argv[1:]))
