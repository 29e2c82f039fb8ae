"""Fixtures for the harness's own tests."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from _pytest.pytester import SysModulesSnapshot  # pytester's own, with a keep rule

if TYPE_CHECKING:
    from et_hil.boards.host.board import HostBoard
    from et_hil.programs.builder import Builder

pytest_plugins = ["pytester"]

# Modules whose tests take minutes, run first. pytest-xdist hands tests out in
# collection order, so a test of minutes collected near the end keeps one worker busy
# long after the other has run out of work (longest-first scheduling). Whole modules
# move, in their own order, so their module-scoped fixtures are still set up once.
LONGEST_FIRST = ("test_verdict_stability.py", "test_serial_pytest.py", "test_labgrid.py")


TESTS = Path(__file__).resolve().parent

# A hang fails a test here after this long: the slowest test not marked slow took 79 s on two
# busy cores (December 2026). A longer test carries @pytest.mark.timeout, about three times
# its own time. pyproject.toml's `timeout` is the suites' (cold real-model builds take minutes).
DEFAULT_TIMEOUT_S = 120


def pytest_configure(config: pytest.Config) -> None:
    """Warnings are errors in the harness's own tests.

    "error" goes first, under pyproject.toml's targeted ignores of third-party
    warnings. Not in pyproject.toml itself: the suites read that file too (make
    demo, the nightly, the suite runs of tests/), where a library's new warning is
    to be shown, not to fail a nightly. A ResourceWarning (a file or process left
    open) is shown, not an error: it comes when the garbage collector finds the
    object, inside whichever test runs then, which would fail an unrelated test.
    """
    config.getini("filterwarnings")[0:0] = ["error", "default::ResourceWarning"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the modules of :data:`LONGEST_FIRST` at the front (a stable sort), and give
    every test here without a limit of its own :data:`DEFAULT_TIMEOUT_S` (unless
    ``--timeout`` or ``PYTEST_TIMEOUT`` sets one for this run)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    if config.getoption("timeout", None) is not None or "PYTEST_TIMEOUT" in os.environ:
        return
    for item in items:
        if TESTS in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT_S))


# A model file the pytester tests share: small, exportable, quick to build.
MODELS_PY = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.scale = scale

    def forward(self, x):
        return torch.tanh(self.fc(x)) * self.scale


class Slow(nn.Module):
    """Repeated large matmuls: seconds on the portable kernels."""

    def forward(self, x):
        for _ in range(300):
            x = torch.tanh(x @ x)  # ~20 ms each on this machine
        return x


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # Python control flow on values: torch.export rejects it
            return x * 2
        return x


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    return Tiny(**kw).eval()


def x(seed=0, shape=(2, 8)):
    return (torch.randn(shape, generator=torch.Generator().manual_seed(seed)),)
'''


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One artifact cache for every pytester run of this session (builds happen once)."""
    return tmp_path_factory.mktemp("artifact-cache")


def _keep_library_modules(own_folder: Path) -> SysModulesSnapshot:
    """A snapshot of ``sys.modules`` whose restore drops only the modules an in-process
    run imported from its own folder (its test files, conftest and model files).

    pytester's own snapshot drops every module first imported inside the run, so that
    the next run imports its same-named test files afresh. Dropping library modules
    with them leaves a library half old, half new in the next test that imports it:
    after a run that first imported docker (urllib3 already loaded), the docker client
    of a later test failed with requests' "You can only merge into CookieJar"; after
    one that first built a BundleIO program, ExecuTorch's serializer wrote bundles its
    own reader fails on (IndexError); importing torch's operator libraries again fails
    ("Only a single TORCH_LIBRARY"). CI met the first two on a replacement xdist
    worker, whose first tests were in-process runs; which worker runs which in-process
    runs first varies, so they came and went.
    """

    def is_a_library(name: str) -> bool:
        module = sys.modules.get(name)
        places: list[object] = [getattr(module, "__file__", None)]
        # a package's folders; some modules answer any attribute (torch.classes)
        with contextlib.suppress(TypeError):
            places.extend(getattr(module, "__path__", None) or [])
        return not any(isinstance(p, str) and own_folder in Path(p).parents for p in places)

    return SysModulesSnapshot(preserve=is_a_library)


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytest's pytester, whose in-process runs keep the library modules they import
    (see :func:`_keep_library_modules`)."""
    # pytester takes its snapshots in a private method, once when it is made (restored
    # when the test ends) and once per in-process run: both are replaced here.
    private = "_Pytester__take_sys_modules_snapshot"
    if not hasattr(pytest.Pytester, private) or not hasattr(pytester, "_sys_modules_snapshot"):
        pytest.fail(f"pytest {pytest.__version__} changed pytester: update tests/conftest.py")
    monkeypatch.setattr(
        pytest.Pytester, private, lambda self: _keep_library_modules(self.path), raising=True
    )
    pytester._sys_modules_snapshot = _keep_library_modules(pytester.path)
    return pytester


@pytest.fixture
def et_pytester(pytester: pytest.Pytester, shared_cache: Path) -> pytest.Pytester:
    """A pytester with the shared model file and cache option ready."""
    pytester.makepyfile(tinymodels=MODELS_PY)
    pytester.syspathinsert()
    pytester.makeini(
        f"""
        [pytest]
        addopts = -p no:cacheprovider -p no:labgrid --et-build-cache={shared_cache}
        filterwarnings = ignore::DeprecationWarning
            ignore::FutureWarning
            ignore::UserWarning
        """
    )
    return pytester


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostBoard]:
    """The host board, open, for one test module."""
    from et_hil.boards.host.board import HostBoard
    from et_hil.boards.spec import load_boards

    board = HostBoard(load_boards()["host"], tmp_path_factory.mktemp("host-logs"))
    board.open()
    yield board
    board.close()


@pytest.fixture(scope="module")
def builder(shared_cache: Path) -> Builder:
    """A builder on the session's shared artifact cache."""
    from et_hil.programs.builder import Builder
    from et_hil.programs.cache import ArtifactCache

    return Builder(ArtifactCache(shared_cache))
