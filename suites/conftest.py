"""The suites need nothing but the et-hil plugin; this makes their model modules
importable and registers the suites' own markers."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config: pytest.Config) -> None:
    """Register the real-model suite's markers (the repository runs --strict-markers).

    ``pytest suites`` runs every suite, the real networks included (minutes a board
    when the cache is cold: a MobileNetV2 takes up to ~100 s to build for tosa).
    ``-m "not real_model"`` leaves them out; ``-m "not real_model or
    real_model_slice"`` keeps the few that CI runs every time.
    """
    config.addinivalue_line(
        "markers", "real_model: a real network of suites/real_models.py (-m real_model)"
    )
    config.addinivalue_line(
        "markers",
        "real_model_slice: the real networks cheap enough for every CI run (-m real_model_slice)",
    )
