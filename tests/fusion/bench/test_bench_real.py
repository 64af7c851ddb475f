"""`fusion bench real`: the devkit's split found, its scores passed through, the present-class
mean, absent sweep files counted, the weights' sha256, markdown from the JSON, small pictures."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch
from model_fakes import tiny_config, tiny_params

from fusion.bench.real import devkit_split, per_dataroot, to_markdown
from fusion.errors import FusionError
from fusion.model import build_detector, save_detector

# the devkit's scored ground truth of the real keyframe (its range and points filter applied)
REAL_GT = {"car": 4, "truck": 2, "barrier": 15, "pedestrian": 10, "traffic_cone": 3}


def test_bench_real_on_the_real_keyframe(real_root: Path, tmp_path: Path, capsys):
    from fusion.cli import main

    torch.manual_seed(0)
    weights = tmp_path / "w" / "lidar.safetensors"
    save_detector(build_detector(tiny_config(), "lidar", tiny_params()), weights)
    out, md, plots = tmp_path / "real.json", tmp_path / "real.md", tmp_path / "real"
    argv = ["bench", "real", "--dataroot", str(real_root), "--models", "lidar"]
    assert main(argv) == 2  # a dataroot is read: its version is required
    assert "--version" in capsys.readouterr().err
    argv += ["--version", "v1.0-mini"]
    argv += ["--weights", str(weights.parent), "--work", str(tmp_path / "work")]
    argv += ["--json-out", str(out), "--markdown-out", str(md), "--plots", str(plots)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["weights"]["lidar"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    (ds,) = result["datasets"]
    assert ds["split"] == "mini_train" and ds["scenes"] == ["scene-0553"] and ds["samples"] == 1
    assert {c: n for c, n in ds["gt_boxes_scored"].items() if n} == REAL_GT
    assert ds["present_classes"] == [c for c in ds["gt_boxes_scored"] if c in REAL_GT]
    m = ds["models"]["lidar"]
    # the devkit's own summary, as fusion eval wrote it, is what the bench reports
    summary = json.loads(
        (tmp_path / "work" / "scene-0553" / "lidar" / "metrics_summary.json").read_text()
    )
    assert m["mean_ap"] == summary["mean_ap"] and m["label_aps"] == summary["mean_dist_aps"]
    present_mean = sum(m["label_aps"][c] for c in REAL_GT) / len(REAL_GT)
    assert m["mean_ap_present"] == pytest.approx(present_mean)
    assert m["sweeps"] == {"lidar": 1, "radar": 0}
    assert m["absent_sweeps"] == {"lidar": 0, "radar": 0, "by_channel": {}}
    kinds = sorted(p["kind"] for p in ds["pictures"])
    assert kinds == ["bev", "cameras", "class"]
    for pic in ds["pictures"]:
        png = plots / pic["file"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 250_000
    text = md.read_text()
    assert text in capsys.readouterr().out
    assert result["plots_rel"] == "real" and text == to_markdown(result)
    assert "mean AP over the 5 present classes" in text and "fusion bench real" in text
    # the markdown comes back from the JSON alone
    again = tmp_path / "again.md"
    assert main(["bench", "real", "--from-json", str(out), "--markdown-out", str(again)]) == 0
    assert again.read_text() == text


def test_absent_sweep_files_are_the_readers_count(real_copy: Path, tmp_path: Path):
    from fusion.cli import main

    # one LIDAR sweep listed before the keyframe, its file absent (a keyframes-only download)
    table = real_copy / "v1.0-mini" / "sample_data.json"
    records = json.loads(table.read_text())
    key = next(r for r in records if r["filename"].startswith("samples/LIDAR_TOP/"))
    sweep = {**key, "token": "sweep0", "is_key_frame": False, "next": key["token"], "prev": ""}
    sweep["filename"] = "sweeps/LIDAR_TOP/absent.pcd.bin"
    sweep["timestamp"] = key["timestamp"] - 50_000
    key["prev"] = "sweep0"
    table.write_text(json.dumps([*records, sweep]))
    cfg = tiny_config()
    two = dataclasses.replace(cfg, point_cloud=dataclasses.replace(cfg.point_cloud, sweeps=2))
    torch.manual_seed(0)
    save_detector(build_detector(two, "lidar", tiny_params()), tmp_path / "lidar.safetensors")
    out = tmp_path / "real.json"
    argv = ["bench", "real", "--dataroot", str(real_copy), "--version", "v1.0-mini"]
    argv += ["--models", "lidar"]
    assert main([*argv, "--weights", str(tmp_path), "--json-out", str(out)]) == 0
    m = json.loads(out.read_text())["datasets"][0]["models"]["lidar"]
    assert m["sweeps"] == {"lidar": 2, "radar": 0}
    assert m["absent_sweeps"] == {"lidar": 1, "radar": 0, "by_channel": {"LIDAR_TOP": 1}}


def test_the_split_is_the_devkits(real_copy: Path):
    assert devkit_split(real_copy, "v1.0-mini") == "mini_train"
    table = real_copy / "v1.0-mini" / "scene.json"
    scenes = json.loads(table.read_text())
    scenes[0]["name"] = "scene-9999"
    table.write_text(json.dumps(scenes))
    with pytest.raises(FusionError, match="no devkit split"):
        devkit_split(real_copy, "v1.0-mini")


def test_a_split_for_all_dataroots_or_one_each():
    assert per_dataroot(None, 2) == [None, None]
    assert per_dataroot([], 2) == [None, None]
    assert per_dataroot(["mini_val"], 2) == ["mini_val", "mini_val"]
    assert per_dataroot(["ho_test", "mini_train"], 2) == ["ho_test", "mini_train"]
    with pytest.raises(FusionError, match="one per --dataroot"):
        per_dataroot(["a", "b"], 3)


def test_trained_on_names_every_part_of_a_mix():
    from fusion.bench.real import _trained_on

    assert (
        _trained_on({"version": "v1.0-synth", "split": "synth_train"}) == "v1.0-synth synth_train"
    )
    run = {
        "version": "v1.0-mini",
        "split": "mini_val",
        "data": [
            {"data": "/d/scene 0916 v1.0-mini mini_val", "samples": 41, "repeat": 4},
            {"data": "/tmp/synth v1.0-synth synth_all", "samples": 120, "repeat": 1},
        ],
    }
    assert _trained_on(run) == "v1.0-mini mini_val (41 x 4) + v1.0-synth synth_all (120 x 1)"


def test_a_dataroot_the_weights_trained_on_is_marked_seen():
    from fusion.bench.real import _seen_note

    run = {"data": [{"data": "/d/scene v1.0-mini mini_val", "samples": 41, "repeat": 4}]}
    ds = {"dataroot": "/d/scene", "version": "v1.0-mini", "split": "mini_val"}
    assert "Seen in training** by fusion" in _seen_note({"fusion": {"run": run}}, ds)[0]
    assert _seen_note({"fusion": {"run": run}}, ds | {"dataroot": "/d/other"}) == []
    assert _seen_note({"fusion": {"run": {}}}, ds) == []


def test_a_scene_split_in_two_is_read_and_scored_per_part(tmp_path: Path) -> None:
    """benchmarks/accuracy/split_scene.py cuts the two scene-0916 keyframes of tests/data into
    a training part and a held-out part; the reader and bench real's labels see two scenes."""
    import subprocess
    import sys

    from shared_data import REAL_KEYFRAMES

    from fusion.bench.real import devkit, scored_gt_counts, split_scene_names
    from fusion.data.reader import NuScenesReader

    root = Path(__file__).resolve().parents[3]
    out = tmp_path / "ho"
    script = root / "benchmarks" / "accuracy" / "split_scene.py"
    cmd = [sys.executable, str(script), str(REAL_KEYFRAMES), str(out), "--at", "1"]
    subprocess.run(cmd, check=True, capture_output=True)
    reader = NuScenesReader(out, "v1.0-mini")
    first, second = reader.sample_tokens("ho_train"), reader.sample_tokens("ho_test")
    assert len(first) == len(second) == 1
    assert first != second
    assert split_scene_names(out, "v1.0-mini", "ho_train") == ["scene-0916-a"]
    assert split_scene_names(out, "v1.0-mini", "ho_test") == ["scene-0916-b"]
    # a devkit split still names the dataroot's scenes it holds (none of these)
    assert split_scene_names(out, "v1.0-mini", "mini_val") == []
    assert len(reader.frame(second[0]).boxes) > 10
    # the ground truth a held-out split is scored against, through the devkit's custom splits
    nusc = devkit(out, "v1.0-mini")
    assert scored_gt_counts(nusc, "ho_test")["car"] > 5
    both = scored_gt_counts(devkit(REAL_KEYFRAMES, "v1.0-mini"), "mini_val")
    parts = [scored_gt_counts(nusc, s) for s in ("ho_train", "ho_test")]
    assert {k: parts[0][k] + parts[1][k] for k in both} == both
