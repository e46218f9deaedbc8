"""What every benchmark script starts with: the repository on the import path (the
scripts run as ``python benchmarks/NAME.py`` from a checkout), TensorFlow's C++ log
quiet, and where the reference photos are. Import it before the project's modules."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository root."""
SHARED = ROOT.parent / "shared" / "data"
"""The reference data beside the checkout (``../shared/data``)."""
SEED = SHARED / "seed-faces"
"""The 128 seed photos, ``SEED/<person>/<photo>``."""

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
