"""`fusion bench latency` times every stage of each model on the real keyframe."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from model_fakes import tiny_config, tiny_params

from fusion.engines.runner import StageTimes
from fusion.model import build_detector, save_detector


def test_bench_latency_reports_every_stage(real_root: Path, tmp_path: Path, capsys):
    from fusion.cli import main

    torch.manual_seed(0)
    for variant in ("fusion", "camera"):
        save_detector(
            build_detector(tiny_config(), variant, tiny_params()),
            tmp_path / f"{variant}.safetensors",
        )
    out = tmp_path / "lat.json"
    argv = [
        "bench",
        "latency",
        "--dataroot",
        str(real_root),
        "--models",
        "fusion,camera",
        "--weights",
        str(tmp_path),
        "--samples",
        "1",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--backend",
        "onnxruntime",
        "--work-dir",
        str(tmp_path / "work"),
        "--json",
        str(out),
    ]
    assert main(argv) == 0
    assert "frames / s" in capsys.readouterr().out
    stats = json.loads(out.read_text())["models"]
    assert set(stats) == {"fusion", "camera"}
    for stage in ("images", "camera_net", "bev_pool", "bev_net", "postprocess"):
        assert stats["camera"][stage]["median_ms"] > 0, stage
    for stage in ("voxelize", "lidar_net", "scatter"):  # the keyframe has LIDAR but no radar
        assert stats["fusion"][stage]["median_ms"] > 0, stage
        assert stats["camera"][stage]["median_ms"] == 0, stage
    assert set(stats["fusion"]) == {*StageTimes.names(), "total"}
