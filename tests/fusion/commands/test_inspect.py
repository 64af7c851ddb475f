"""`fusion inspect` through the CLI, as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from shared_data import REAL_ROOT, REAL_SAMPLE, REAL_VERSION

from fusion.cli import main

ARGS = ["inspect", "--dataroot", str(REAL_ROOT), "--version", REAL_VERSION, "--sample", REAL_SAMPLE]


def test_json_is_one_object_that_agrees_with_the_devkit(capsys, real_nusc):
    from nuscenes.utils.geometry_utils import BoxVisibility, points_in_box

    assert main([*ARGS, "--json"]) == 0
    out = capsys.readouterr().out
    info = json.loads(out)  # exactly one object: json.loads rejects trailing data
    assert info["sample_token"] == REAL_SAMPLE
    assert info["lidar_points"] == 34688
    assert info["timestamps_us"]["LIDAR_TOP"] == 1532402927647951
    assert (
        set(info["lidar_to_camera"]) == set(info["camera_intrinsics"])
        and len(info["camera_intrinsics"]) == 6
    )
    sample = real_nusc.get("sample", REAL_SAMPLE)
    _, lidar_boxes, _ = real_nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
    pts = (
        np.fromfile(real_nusc.get_sample_data_path(sample["data"]["LIDAR_TOP"]), np.float32)
        .reshape(-1, 5)[:, :3]
        .T
    )
    by_token = {b["token"]: b for b in info["boxes"]}
    assert len(by_token) == 69
    for b in lidar_boxes:
        assert by_token[b.token]["points_in_box"] == int(points_in_box(b, pts).sum())
    for ch, m in info["lidar_to_camera"].items():
        m = np.array(m)
        _, cam_boxes, _ = real_nusc.get_sample_data(
            sample["data"][ch], box_vis_level=BoxVisibility.NONE
        )
        for b in cam_boxes:
            c = np.array(by_token[b.token]["center_lidar"])
            np.testing.assert_allclose(m[:3, :3] @ c + m[:3, 3], b.center, atol=1e-3)
    for b in info["boxes"]:
        assert set(b) >= {
            "token",
            "category",
            "center_lidar",
            "size_wlh",
            "yaw_lidar",
            "points_in_box",
        }


def test_summary_text(capsys):
    assert main(ARGS) == 0
    out = capsys.readouterr().out
    assert "CAM_FRONT_LEFT" in out and "-43.1" in out  # its offset from the LIDAR keyframe, ms
    assert "69 GT boxes" in out and "34688 points" in out


def test_render_writes_png(tmp_path, capsys):
    out = tmp_path / "inspect.png"
    assert main([*ARGS, "--render", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 100_000


def test_cli_error_is_one_line_and_nonzero(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fusion.cli", "inspect", "--dataroot", str(tmp_path / "missing")]
        + ["--version", "v1.0-mini"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "missing" in lines[0] and "dataroot does not exist" in lines[0]


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    assert "usage" in capsys.readouterr().out
