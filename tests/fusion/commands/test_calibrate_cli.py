"""`fusion calibrate` as a user runs it."""

import json

import cv2
import numpy as np
import pytest
from shared_data import REAL_ROOT, REAL_VERSION

from calibration import PinholeCamera, random_board_poses, render_checkerboard
from fusion.cli import main


def test_board_mode_recovers_intrinsics(tmp_path, capsys):
    cam = PinholeCamera(np.array([[633.2, 0, 408.1], [0, 633.2, 245.8], [0, 0, 1]]), 800, 450)
    for i, pose in enumerate(random_board_poses(cam, (9, 6), 0.05, 8, seed=3)):
        cv2.imwrite(
            str(tmp_path / f"view{i:02d}.png"), render_checkerboard(cam, pose, (9, 6), 0.05, seed=i)
        )
    (tmp_path / "blank.png").write_bytes(
        cv2.imencode(".png", np.full((450, 800), 128, np.uint8))[1].tobytes()
    )
    assert (
        main(
            ["calibrate", "board", str(tmp_path), "--pattern", "9x6", "--square", "0.05", "--json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    k = np.array(out["intrinsics"])
    assert k[0, 0] == pytest.approx(633.2, rel=5e-3) and k[1, 1] == pytest.approx(633.2, rel=5e-3)
    assert out["skipped"] == ["blank.png"] and len(out["used"]) == 8
    assert out["image_hw"] == [450, 800]


def test_board_mode_errors(tmp_path, capsys):
    assert main(["calibrate", "board", str(tmp_path), "--pattern", "9x6", "--square", "0.05"]) == 2
    assert "no .jpg or .png images" in capsys.readouterr().err
    assert main(["calibrate", "board", str(tmp_path), "--pattern", "nine", "--square", "0.05"]) == 2
    assert "--pattern must look like 9x6" in capsys.readouterr().err


def test_check_mode_on_the_real_keyframe(capsys):
    assert (
        main(
            [
                "calibrate",
                "check",
                "--dataroot",
                str(REAL_ROOT),
                "--version",
                REAL_VERSION,
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out["cameras"]) == 6
    front = out["cameras"]["CAM_FRONT"]
    assert front["calibrated"] is True and front["fraction_of_perturbations_worse"] == 1.0
