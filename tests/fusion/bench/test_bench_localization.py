"""`fusion bench localization`: one short drive per receiver mode; the JSON holds the figures,
the markdown is generated from it (`--from-json` gives the same text)."""

from __future__ import annotations

import json
import math

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
