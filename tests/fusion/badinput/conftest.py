"""Bases of the malformed-input corpus: the real keyframe (tests/data) and one small synthetic
scene with radar, sweeps and CAN bus (generated once per session, like tests/test_validate.py)."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
from shared_data import REAL_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fusion.cli import main  # noqa: E402

REAL = REAL_ROOT
SYNTH_ARGS = [
    "--scenes", "1", "--samples-per-scene", "2", "--seed", "11", "--image-size", "160x90",
    "--conditions", "fog", "--workers", "1",
]  # fmt: skip


def generate_synth(out: Path) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["generate", "--out", str(out), *SYNTH_ARGS]) == 0
    return out


@pytest.fixture(scope="session")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> a pristine dataroot (never modified: each case copies it)."""
    synth = generate_synth(tmp_path_factory.mktemp("badinput") / "synth")
    return {"real": REAL, "synth": synth}


@pytest.fixture(scope="session")
def baseline(bases: dict[str, Path]) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """name -> channels missing in the pristine base (all frames, first frame): the generated
    scene has a radar keyframe beyond the sync tolerance (65.9 ms > 60 ms), left out of its
    frame by design; a case's expected missing set adds to it."""
    from corpus import baseline_missing

    return {name: baseline_missing(root) for name, root in bases.items()}
