"""Benchmark tests reuse the model tests' tiny config and synthetic frames."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "model"))
