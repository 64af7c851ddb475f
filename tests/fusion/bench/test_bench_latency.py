"""`fusion bench latency`: every stage from the log's bytes through the streaming pipeline, the
issue's JSON schema, warm-up excluded, markdown from the JSON, a Chrome trace and the plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from model_fakes import tiny_config, tiny_params

from fusion.bench.latency import latency_markdown, targets
from fusion.data.sensor_io import jpeg_reduction
from fusion.engines.runner import STAGES
from fusion.model import build_detector, save_detector
from fusion.stats import STAT_KEYS
from fusion.sync.ingest import StreamFrames

SCENE = "scene-0553"  # the real keyframe's scene


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
    for model, lanes in payload["models"].items():  # the log (one keyframe) cycled, reset each pass
        for lane in lanes.values():
            st = lane["stream"]
            assert st["frames_per_loop"] == 1 and st["loops"] >= 4 and st["frames_built"] == 5
            assert st["dropped"] == {"overflow": 0, "no_pose": 0}
            assert st["camera_decoded_per_frame"] == st["camera_kept_per_frame"] == 6.0
            # the real keyframe's dataroot has no radar files: fusion counts them missing
            radars = set(tiny_config().radar.channels) if model == "fusion" else set()
            assert st["missing"] == dict.fromkeys(radars, 5)
    assert "OnlineSynchronizer" in payload["input"]


def test_stream_frames_cycle_the_log_at_reduced_scale(real_root: Path):
    from fusion.sources import open_source

    cfg = tiny_config()
    source = open_source(real_root, version="v1.0-mini")
    small = StreamFrames(source, cfg, ("camera", "lidar", "radar"), "reduced")
    full = StreamFrames(source, cfg, ("camera", "lidar", "radar"), "full")
    first = [small.next() for _ in range(3)]
    # each pass's frame is released by the flush at its end (it waits for radars that never
    # come), so three frames are three full passes, the synchronizer reset after each
    assert small.loops == 3 and small.frames_per_loop == 1
    a, b = first[0].frame, first[2].frame
    assert a.timestamp_us == b.timestamp_us and len(a.cameras) == 6
    np.testing.assert_array_equal(a.lidar.points, b.lidar.points)  # nothing left from pass 1
    ref = full.next().frame
    k = jpeg_reduction(1600, 900, cfg.camera.image_hw)
    assert k > 1
    for ch, cam in a.cameras.items():
        calib = ref.cameras[ch]
        assert calib.image.shape == (900, 1600, 3)
        assert cam.image.shape == (-(-900 // k), -(-1600 // k), 3)
        np.testing.assert_allclose(cam.camera.intrinsics[:2], calib.camera.intrinsics[:2] / k)
    for sf in first:
        assert sf.read_ms > 0 and sf.decode_ms > 0 and 0 < sf.camera_ms < sf.read_ms + sf.decode_ms


def test_bench_latency_reads_any_log(real_root: Path, tmp_path: Path, capsys):
    """A Foxglove MCAP of the same keyframe through the same benchmark."""
    from fusion.cli import main

    log = tmp_path / "frame.mcap"
    argv = ["convert", "--dataroot", str(real_root), "--version", "v1.0-mini", "--scene", SCENE]
    argv += ["--to", "mcap", "--out", str(log)]
    assert main(argv) == 0
    torch.manual_seed(0)
    save_detector(
        build_detector(tiny_config(), "camera", tiny_params()), tmp_path / "camera.safetensors"
    )
    out = tmp_path / "lat.json"
    argv = ["bench", "latency", "--log", str(log), "--models", "camera", "--weights", str(tmp_path)]
    argv += ["--backends", "torch", "--min-queries", "2", "--min-seconds", "0", "--warmup", "1"]
    argv += ["--work-dir", str(tmp_path / "work"), "--json-out", str(out)]
    assert main(argv) == 0
    payload = json.loads(out.read_text())
    lane = payload["models"]["camera"]["torch"]
    assert lane["frames"] == 2 and lane["stream"]["camera_decoded_per_frame"] == 6.0
    assert payload["input"].startswith("mcap ")
    assert lane["stages"]["read"]["p50_ms"] > 0 and lane["stages"]["decode"]["p50_ms"] > 0
