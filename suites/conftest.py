"""The suites need nothing but the et-hil plugin; this makes their model modules
importable, registers the suites' own markers and keeps the real-model suite opt-in."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REAL_MODEL_FILE = "test_real_models.py"


def pytest_configure(config: pytest.Config) -> None:
    """Register the real-model suite's markers (the repository runs --strict-markers)."""
    config.addinivalue_line(
        "markers", "real_model: a real network of suites/real_models.py (-m real_model)"
    )
    config.addinivalue_line(
        "markers",
        "real_model_slice: the real networks cheap enough for every CI run (-m real_model_slice)",
    )


def _real_models_requested(config: pytest.Config) -> bool:
    if "real_model" in (config.option.markexpr or ""):
        return True
    return any(Path(str(arg).split("::")[0]).name == REAL_MODEL_FILE for arg in config.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the real networks out of a plain ``pytest suites``.

    They take minutes a board (a cold MobileNetV2 build alone takes up to ~100 s on
    tosa), while ``pytest suites`` is the quick run users and the harness's own tests
    make. They run when asked for: ``-m real_model`` (all), ``-m real_model_slice`` (the
    CI slice), or by naming suites/test_real_models.py.
    """
    if _real_models_requested(config):
        return
    dropped = [item for item in items if item.get_closest_marker("real_model")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("real_model")]
