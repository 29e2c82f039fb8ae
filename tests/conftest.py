"""Fixtures for the harness's own tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Imported here, in every test process, before any in-process pytester run: such
# a run drops the modules first imported inside it from sys.modules when it ends,
# while classes of theirs live on (board kinds, cached platforms), and msgspec
# resolves a Struct's string annotations through sys.modules[cls.__module__].
# A kind's table checked in a later in-process run then fails with NameError.
import et_hil.boards.fvp.kind
import et_hil.boards.fvp.platform
import et_hil.boards.labgrid.settings
import et_hil.boards.qemu.kind
import et_hil.boards.serial.settings
import et_hil.boards.spec
import et_hil.report.record  # noqa: F401  (the imports above are for their side effect)

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


@pytest.fixture(scope="session")
def _libraries_loaded_once() -> None:
    """torch's and ExecuTorch's operator libraries, imported before any in-process
    pytester run. Such a run drops the modules first imported inside it from
    sys.modules; the next run imports them again, and a module that defines an
    operator library (torch._inductor.test_operators, through torch._dynamo) then
    fails: "Only a single TORCH_LIBRARY can be used to register the namespace"."""
    import torchao.quantization.pt2e.quantize_pt2e
    import torchao.quantization.pt2e.reference_representation_rewrite  # noqa: F401


@pytest.fixture
def et_pytester(
    pytester: pytest.Pytester, shared_cache: Path, _libraries_loaded_once: None
) -> pytest.Pytester:
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
