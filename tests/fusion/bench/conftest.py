"""Benchmark tests reuse the model tests' tiny config and synthetic frames."""

from __future__ import annotations
