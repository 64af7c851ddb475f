"""`fusion bench latency`: every stage from bytes, the issue's JSON schema, warm-up excluded,
markdown from the JSON, a Chrome trace and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from model_fakes import tiny_config, tiny_params

from fusion.bench.latency import latency_markdown, targets
from fusion.bench.stats import STAT_KEYS
from fusion.model import build_detector, save_detector
from fusion.pipeline import STAGES


def test_bench_latency_from_bytes_follows_the_schema(real_root: Path, tmp_path: Path, capsys):
    from fusion.cli import main

    torch.manual_seed(0)
    for variant in ("fusion", "camera"):
        save_detector(
            build_detector(tiny_config(), variant, tiny_params()),
            tmp_path / f"{variant}.safetensors",
        )
    out, md, trace, png = (tmp_path / n for n in ("lat.json", "lat.md", "t.json", "lat.png"))
    argv = ["bench", "latency", "--dataroot", str(real_root), "--version", "v1.0-mini"]
    argv += ["--models", "fusion,camera", "--weights", str(tmp_path)]
    argv += ["--backends", "torch,onnxruntime", "--min-queries", "3", "--min-seconds", "0"]
    argv += ["--warmup", "2", "--work-dir", str(tmp_path / "work"), "--json-out", str(out)]
    argv += ["--markdown-out", str(md), "--trace", str(trace), "--plot", str(png)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "e2e p99" in printed and "onnxruntime / torch (fusion)" in printed
    payload = json.loads(out.read_text())
    assert {"env", "models"} <= set(payload)
    assert set(payload["models"]) == {"fusion", "camera"}
    for model, lanes in payload["models"].items():
        assert set(lanes) == {"torch", "onnxruntime"}
        for lane in lanes.values():
            assert {"frames", "warmup", "peak_rss_mb", "end_to_end", "stages"} <= set(lane)
            assert lane["frames"] == 3 and lane["warmup"] == 2  # warm-up counted, left out
            assert lane["peak_rss_mb"] > 0
            assert tuple(lane["end_to_end"]) == STAT_KEYS
            assert set(lane["stages"]) <= set(STAGES)
            for stage in ("read", "decode", "images", "camera_net", "bev_pool", "bev_net"):
                assert lane["stages"][stage]["p50_ms"] > 0, (model, stage)
                assert tuple(lane["stages"][stage]) == STAT_KEYS
            e2e = lane["end_to_end"]
            assert e2e["min_ms"] <= e2e["p50_ms"] <= e2e["p99_ms"] <= e2e["max_ms"]
            stage_sum = sum(s["min_ms"] for s in lane["stages"].values())
            assert e2e["max_ms"] >= stage_sum * 0.999
    assert payload["models"]["fusion"]["torch"]["stages"]["voxelize"]["p50_ms"] > 0
    assert payload["models"]["camera"]["torch"]["stages"]["voxelize"]["p50_ms"] == 0
    env = payload["env"]
    for key in ("cpu", "cores", "threads", "versions", "precision", "execution_provider"):
        assert key in env, key
    assert env["thread_settings"]["ort_spinning"] is False
    assert env["onnxruntime_session"]["inter_op_threads"] == 1
    assert md.read_text() == latency_markdown(payload)
    assert [t["target"] for t in payload["targets"]] == [t["target"] for t in targets(payload)]
    events = json.loads(trace.read_text())["traceEvents"]
    assert {e["name"] for e in events} >= {"read", "decode", "camera_net", "postprocess"}
    assert all(e["ph"] == "X" and e["dur"] > 0 for e in events)
    assert len({e["tid"] for e in events}) == 4  # one track per model x backend
    assert png.stat().st_size > 10_000
