"""Keep torch's and ExecuTorch's own noise out of the user's test output.

Building a program imports and drives torch, torchao and ExecuTorch, which emit
warnings about their own internals, log lines about their own environment when
imported (optional kernels, Triton) and, through ``torch.__trace``, DEBUG log
records meant for ``TORCH_TRACE`` files. In a user's repository these would
fill pytest's warnings summary and every failure's captured log. Warnings are
silenced only where the harness drives those libraries, and only when they come
from those libraries' modules; log records only when they are the known ones:
the user's own warnings and logs still show.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import warnings
from collections.abc import Iterator

# Modules whose internal warnings are not the user's to act on (copyreg and
# importlib carry torch's and ExecuTorch's pickling and resource-loading calls).
THIRD_PARTY = r"(torch|torchao|executorch|tosa_tools|ethosu|copyreg|importlib)(\.|$)"

# Log records those libraries emit when they are imported or first used, about
# their own build and environment (optional CUDA kernels, Triton, a deprecation
# inside torchao): (logger, message pattern). Matched exactly, so any other
# record of theirs, and every record of the user's, still shows.
NOISE = (
    ("torchao", r"Failed to load .*\.so"),
    ("torchao.kernel.intmm", r"Detected no triton"),
    ("torch.utils._pytree", r"register_constant\(\) on Enum subclasses is deprecated"),
)


@contextlib.contextmanager
def third_party_warnings_silenced() -> Iterator[None]:
    """Ignore the warnings that third-party library code issues about itself inside
    the block: deprecations, and notes such as ExecuTorch's Inspector's
    (warnings attributed to the user's code, the test's, still show)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=Warning, module=THIRD_PARTY)
        yield


class _DropNoise(logging.Filter):
    """Drops one library logger's known records about its own environment."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def quiet_third_party_logs() -> None:
    """Keep :data:`NOISE` out of captured logs and stderr (idempotent; call before
    the libraries are imported: each record is dropped at its own logger)."""
    for name, pattern in NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise(pattern))


class _DropUnlessTracing(logging.Filter):
    """Drops torch's structured-trace records unless ``TORCH_TRACE`` asks for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(os.environ.get("TORCH_TRACE"))


def quiet_torch_trace_log() -> None:
    """Keep ``torch.__trace`` DEBUG records out of captured logs (idempotent)."""
    logger = logging.getLogger("torch.__trace")
    if not any(isinstance(f, _DropUnlessTracing) for f in logger.filters):
        logger.addFilter(_DropUnlessTracing())
