"""Makes the notify test helpers (notify_harness, notify_samples) importable by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
