"""The suites need nothing but the et-hil plugin; this makes models.py importable."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
