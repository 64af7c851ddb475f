"""`fusion eval` sharded over two gloo processes (torchrun) against one process, and the
per-model sweep counts that let models of different configs be scored on one read."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
from model_fakes import tiny_config, tiny_params  # noqa: E402

from fusion.cli import main  # noqa: E402
from fusion.data.reader import NuScenesReader, ReaderOptions  # noqa: E402
from fusion.distributed import Shard  # noqa: E402
from fusion.eval.evaluate import _SweepFrames  # noqa: E402
from fusion.model import build_detector, save_detector  # noqa: E402
from fusion.motion.sweeps import keep_sweeps  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
VERSION = "v1.0-synth"


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 scenes x 3 keyframes (day, night), small images: 6 samples to shard."""
    out = tmp_path_factory.mktemp("shards") / "root"
    argv = [
        "generate", "--out", str(out), "--version", VERSION, "--scenes", "2",
        "--samples-per-scene", "3", "--seed", "11", "--conditions", "day,night",
        "--workers", "1", "--image-size", "224x126",
    ]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    return out


def test_shards_are_contiguous_blocks_covering_every_sample_once():
    tokens = [f"t{i}" for i in range(7)]
    for world in (1, 2, 3, 7, 9):
        parts = [Shard(r, world).of(tokens) for r in range(world)]
        assert [t for p in parts for t in p] == tokens
        assert max(len(p) for p in parts) - min(len(p) for p in parts) <= max(1, 7 // world)


def test_keep_sweeps_equals_reading_fewer_sweeps(synth_root: Path):
    many = NuScenesReader(synth_root, VERSION, ReaderOptions(lidar_sweeps=10, radar_sweeps=3))
    few = NuScenesReader(synth_root, VERSION, ReaderOptions(lidar_sweeps=3, radar_sweeps=1))
    tok = many.sample_tokens("synth_all")[1]
    a, b = keep_sweeps(many.frame(tok), 3, 1), few.frame(tok)
    assert many.frame(tok).lidar.num_sweeps == 10 and a.lidar.num_sweeps == 3
    np.testing.assert_array_equal(a.lidar.points, b.lidar.points)
    assert a.lidar.keyframe_points == b.lidar.keyframe_points
    assert set(a.radars) == set(b.radars)
    for ch in a.radars:
        np.testing.assert_array_equal(a.radars[ch].points, b.radars[ch].points)
    # more sweeps than the frame holds: unchanged
    assert keep_sweeps(b, 10, 5).lidar.points is b.lidar.points
    # a sweep without points hides where the cut goes: None, and eval reads the frame again
    full = many.frame(tok)
    pts = full.lidar.points
    lags = np.unique(pts[:, 4])
    holed = dataclasses.replace(
        full, lidar=dataclasses.replace(full.lidar, points=pts[pts[:, 4] != lags[1]])
    )
    assert keep_sweeps(holed, 3, 1) is None
    frames = _SweepFrames(many, ())
    cfg = dataclasses.replace(
        tiny_config(),
        point_cloud=dataclasses.replace(tiny_config().point_cloud, sweeps=3),
        radar=dataclasses.replace(tiny_config().radar, sweeps=1),
    )
    np.testing.assert_array_equal(frames.for_model(holed, cfg).lidar.points, b.lidar.points)


def _weights(folder: Path) -> Path:
    """A fusion model reading 1 LIDAR sweep and a LIDAR model reading 3: two configs."""
    base = tiny_config(score_threshold=0.05)
    for i, (variant, sweeps) in enumerate((("fusion", 1), ("lidar", 3))):
        cfg = dataclasses.replace(
            base, point_cloud=dataclasses.replace(base.point_cloud, sweeps=sweeps)
        )
        torch.manual_seed(i)
        save_detector(
            build_detector(cfg, variant, tiny_params()), folder / f"{variant}.safetensors"
        )
    return folder


def _argv(root: Path, weights: Path, out: Path) -> list[str]:
    return [
        "eval", "--dataroot", str(root), "--version", VERSION, "--split", "synth_all",
        "--models", "fusion,lidar", "--weights", str(weights), "--out", str(out),
        "--pictures", "2", "--no-progress",
    ]  # fmt: skip


@pytest.mark.slow
def test_two_gloo_processes_score_like_one(synth_root: Path, tmp_path: Path):
    weights = _weights(tmp_path / "w")
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(_argv(synth_root, weights, single)) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "fusion.cli", *_argv(synth_root, weights, sharded)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("split synth_all, 6 samples") == 1  # rank 0 alone prints it

    for model in ("fusion", "lidar"):
        a = json.loads((single / model / "results_nusc.json").read_text())
        b = json.loads((sharded / model / "results_nusc.json").read_text())
        assert list(a["results"]) == list(b["results"])  # every sample, in split order
        assert len(a["results"]) == 6
        assert a == b
        assert sum(len(v) for v in a["results"].values()) > 0  # boxes, not an empty submission
        ma = json.loads((single / model / "metrics_summary.json").read_text())
        mb = json.loads((sharded / model / "metrics_summary.json").read_text())
        ma.pop("eval_time"), mb.pop("eval_time")
        assert ma == mb
    sa = json.loads((single / "summary.json").read_text())
    sb = json.loads((sharded / "summary.json").read_text())
    assert sa["samples"] == sb["samples"] == 6
    assert sa["models"] == sb["models"] and sa["conditions"] == sb["conditions"]
    assert set(sa["conditions"]) == {"day", "night"}
    assert sorted(p.name for p in (single / "plots").iterdir()) == sorted(
        p.name for p in (sharded / "plots").iterdir()
    )
