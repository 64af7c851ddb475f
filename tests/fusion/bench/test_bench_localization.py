"""`fusion bench localization`: one short drive per receiver mode; the JSON holds the figures,
the markdown is generated from it (`--from-json` gives the same text)."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from fusion.cli import main


def test_bench_localization_writes_json_and_markdown(tmp_path, capsys):
    js, md = tmp_path / "loc.json", tmp_path / "loc.md"
    argv = ["bench", "localization", "--drives", "1", "--duration", "45"]
    assert main([*argv, "--json-out", str(js), "--markdown-out", str(md)]) == 0
    result = json.loads(js.read_text())
    for key in ("ate_std_m", "heading_std_deg", "rpe_std_m", "ate_rtk_m", "outage_drift_m"):
        assert math.isfinite(result["figures"][key]) and result["figures"][key] > 0
    assert result["figures"]["ate_rtk_m"] < result["figures"]["ate_std_m"]
    assert set(result["met"]) == set(result["targets"])
    text = md.read_text()
    assert "| ATE RMS (m) |" in text and "robot_localization" in text
    md2 = tmp_path / "again.md"
    assert main(["bench", "localization", "--from-json", str(js), "--markdown-out", str(md2)]) == 0
    assert md2.read_text() == text


def test_detection_comparison_with_the_pose_error_sensitivity(tmp_path):
    """On a tiny generated set (RTK: every keyframe has an estimated pose): the undisplaced row
    of the sensitivity is the true-pose run's figures exactly; a 3 m pose error costs mAP and
    adds to mATE; the markdown has the section and `--from-json` regenerates it."""
    root = tmp_path / "det"
    gen = ["generate", "--out", str(root), "--version", "v1.0-synth", "--scenes", "1",
           "--samples-per-scene", "4", "--seed", "11", "--conditions", "day", "--workers", "1",
           "--image-size", "160x90", "--gnss", "rtk"]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(gen) == 0
    js, md = tmp_path / "loc.json", tmp_path / "loc.md"
    argv = ["bench", "localization", "--drives", "1", "--duration", "45", "--detection",
            str(root), "--sensitivity-rms", "0,3", "--sensitivity-yaw", "0",
            "--sensitivity-draws", "2", "--json-out", str(js), "--markdown-out",
            str(md)]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(js.read_text())
    assert result["command"].endswith(
        "--sensitivity-rms 0,3 --sensitivity-yaw 0 --sensitivity-draws 2"
    )
    (det,) = result["detection"]
    true = det["true"]["poses"]["subsets"]["with_pose"]["fusion"]
    sens = det["sensitivity"]
    rows = {(r["rms_m"], r["yaw_rms_deg"]): r for r in sens["rows"]}
    yaw = round(det["heading_error_at_keyframes_deg"], 4)
    measured = round(det["pose_error_at_keyframes_m"], 4)
    assert set(rows) == {(r, y) for r in (0.0, measured, 3.0) for y in (0.0, yaw)}
    assert 0 < measured < 0.2 and 0 < yaw < 1  # RTK
    base, far = rows[(0.0, 0.0)], rows[(3.0, 0.0)]
    assert true["mean_ap"] > 0.3  # the shipped model finds the boxes: a loss can show
    for key in ("mean_ap", "nd_score", "tp_errors", "label_aps"):
        assert base[key] == true[key], key
    assert base["drawn_rms_m"] == 0.0 and 1.0 < far["drawn_rms_m"] < 5.0
    assert far["mean_ap"] < base["mean_ap"] - 0.1
    # the undisplaced case scored once; the others once per draw, averaged
    assert len(base["draws"]) == 1 and len(far["draws"]) == 2
    assert far["mean_ap"] == pytest.approx(np.mean([d["mean_ap"] for d in far["draws"]]))
    assert far["draws"][0]["mean_ap"] != far["draws"][1]["mean_ap"]  # two different draws
    assert len(sens["largest_rms_within_m_draws"]) == 2
    assert far["tp_errors"]["trans_err"] > base["tp_errors"]["trans_err"] + 0.3
    assert sens["largest_rms_within_m"] is None or 0 <= sens["largest_rms_within_m"] < 3.0
    text = md.read_text()
    assert "### Pose-error sensitivity (RTK)" in text and "the estimate's heading error |" in text
    assert f"| 0.000 | 0.000 | 0.000 | 0.000 | {true['mean_ap']:.4f} | +0.0000 |" in text
    md2 = tmp_path / "again.md"
    assert main(["bench", "localization", "--from-json", str(js), "--markdown-out", str(md2)]) == 0
    assert md2.read_text() == text
