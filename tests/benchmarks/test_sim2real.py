"""benchmarks/sim2real.py on the real keyframe of tests/data: its ego returns are counted and
removed by the preprocessing's ego filter, a dataroot against itself has no gap, the markdown
comes from the JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from bench_scripts import load_script


@pytest.fixture(scope="module")
def sim2real():
    return load_script("sim2real.py")


def test_the_real_keyframe_against_itself(sim2real, real_root: Path, tmp_path: Path) -> None:
    out, md = tmp_path / "s.json", tmp_path / "s.md"
    argv = ["--real", str(real_root), "--synth", f"same={real_root}", "--json-out", str(out)]
    assert sim2real.main([*argv, "--markdown-out", str(md), "--plots", str(tmp_path / "p")]) == 0
    result = json.loads(out.read_text())
    lidar = result["real"]["lidar"]
    # the real HDL-32E sees its own car: thousands of returns within 3 m, ~none after the filter
    assert lidar["within_3m_per_scan"] > 5000 and lidar["within_3m_after_ego_filter"] < 100
    assert lidar["points_per_scan"] == 34688 and lidar["scans"] == 1
    car = result["real"]["objects"]["car"]
    assert car["boxes"] > 0
    # every car box has a heading against the ego's axis, 0-90 degrees
    assert sum(car["heading_to_ego_hist"]) == car["boxes"] and 0.0 <= car["across_share"] <= 1.0
    # nuScenes' JPEGs: IJG quality 80 (the generator's default), ~145 kB an image at 1600x900
    day = result["real"]["cameras"]["day"]
    assert day["jpeg_quality"] == [80] and 100 < day["jpeg_kb"] < 200
    for key, value in sim2real.gaps(result["real"], result["synth"]["same"]).items():
        assert math.isnan(value) or value == pytest.approx(0.0, abs=1e-9), key
    assert md.read_text() == sim2real.to_markdown(result)
    assert sorted(result["plots"]) == sorted(p.name for p in (tmp_path / "p").iterdir())


def test_tv_distance(sim2real) -> None:
    assert sim2real.tv_distance([1, 1], [2, 2]) == 0.0
    assert sim2real.tv_distance([1, 0], [0, 3]) == 1.0
    assert sim2real.tv_distance([3, 1], [1, 3]) == pytest.approx(0.5)


def test_jpeg_quality_reads_the_tables_back(sim2real, tmp_path: Path) -> None:
    import numpy as np

    from fusion.data.sensor_io import encode_jpeg

    img = np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    for q in (50, 80, 90, 95):
        (tmp_path / f"{q}.jpg").write_bytes(encode_jpeg(img, q))  # OpenCV's libjpeg, not Pillow's
        kb, quality = sim2real.jpeg_file_stats(tmp_path / f"{q}.jpg")
        assert quality == q and kb > 0
    assert sim2real.jpeg_quality({0: [1] * 64, 1: [200] * 64}) is None
