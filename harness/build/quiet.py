"""Keep torch's and ExecuTorch's own noise out of the user's test output.

Building a program imports and drives torch, torchao and ExecuTorch, which emit
deprecation warnings about their own internals and, through ``torch.__trace``,
DEBUG log records meant for ``TORCH_TRACE`` files. In a user's repository these
would fill pytest's warnings summary and every failure's captured log. They are
silenced only where the harness drives those libraries, and only when they come
from those libraries' modules: the user's own warnings still show.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator

# Modules whose internal deprecations are not the user's to act on (copyreg and
# importlib carry torch's and ExecuTorch's pickling and resource-loading calls).
THIRD_PARTY = r"(torch|torchao|executorch|tosa_tools|ethosu|copyreg|importlib)(\.|$)"
_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


@contextlib.contextmanager
def third_party_warnings_silenced() -> Iterator[None]:
    """Ignore the third-party libraries' own deprecation warnings inside the block."""
    with warnings.catch_warnings():
        for category in _CATEGORIES:
            warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY)
        yield


class _DropUnlessTracing(logging.Filter):
    """Drops torch's structured-trace records unless ``TORCH_TRACE`` asks for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(os.environ.get("TORCH_TRACE"))


def quiet_torch_trace_log() -> None:
    """Keep ``torch.__trace`` DEBUG records out of captured logs (idempotent)."""
    logger = logging.getLogger("torch.__trace")
    if not any(isinstance(f, _DropUnlessTracing) for f in logger.filters):
        logger.addFilter(_DropUnlessTracing())
