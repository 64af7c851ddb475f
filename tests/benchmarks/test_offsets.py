"""benchmarks/accuracy/offsets.py on the real keyframes of tests/data: a head that outputs the
targets scores correlation 1 and no error; one that puts every centre at the middle of its cell
scores the middle's error and no correlation; the shipped weights are measured on the same
cars and the JSON is written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_script
from shared_data import REAL_KEYFRAMES

from fusion.config import DETECTION_CLASSES, load_config
from fusion.data.reader import NuScenesReader
from fusion.model.weights import packaged_weights
from fusion.train.dataset import box_targets

CAR = DETECTION_CLASSES.index("car")


@pytest.fixture(scope="module")
def offsets():
    return load_script("accuracy/offsets.py")


@pytest.fixture(scope="module")
def targets() -> list:
    cfg = load_config("real_sweeps10")
    reader = NuScenesReader(REAL_KEYFRAMES, "v1.0-mini", config=cfg)
    return [box_targets(reader.frame(t), cfg, cfg.params) for t in reader.sample_tokens("mini_val")]


def test_a_head_that_outputs_the_targets_and_one_that_outputs_the_middle(offsets, targets) -> None:
    exact = offsets.measure(((t.regression, t) for t in targets), CAR)
    assert exact["boxes"] > 20
    assert exact["correlation_xy"] == pytest.approx([1.0, 1.0])
    assert exact["mean_abs_error_cells"] == 0.0
    assert 0.15 < exact["mean_abs_error_of_the_middle_cells"] < 0.35

    middle = offsets.measure(((np.full_like(t.regression, 0.5), t) for t in targets), CAR)
    assert middle["boxes"] == exact["boxes"]
    assert middle["correlation_xy"] == [None, None]
    assert middle["mean_abs_error_cells"] == pytest.approx(
        exact["mean_abs_error_of_the_middle_cells"]
    )


def test_the_shipped_weights_on_the_real_keyframes(offsets, targets, tmp_path: Path) -> None:
    out = tmp_path / "offsets.json"
    argv = ["--weights", str(packaged_weights("lidar")), "--samples", "2"]
    argv += ["--set", f"real={REAL_KEYFRAMES},v1.0-mini,mini_val", "--json-out", str(out)]
    assert offsets.main(argv) == 0
    real = json.loads(out.read_text())["sets"]["real"]
    cars = sum(int((t.heatmap[:, t.mask].argmax(axis=0) == CAR).sum()) for t in targets)
    assert real["boxes"] == cars
    assert all(-1.0 <= c <= 1.0 for c in real["correlation_xy"])
    assert real["mean_abs_error_cells"] > 0.0
