"""benchmarks/accuracy/headings.py on the real keyframes of tests/data: detections equal to the
annotated cars match every car with no heading error; the same detections turned by 90 degrees
all count as about 90 degrees off; positions at cell centres count as centred; a centre error is
split along and across the ray from the LIDAR and along the box's length and width; the JSON and
the plot are written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import load_script
from pyquaternion import Quaternion
from shared_data import REAL_KEYFRAMES


@pytest.fixture(scope="module")
def headings():
    return load_script("accuracy/headings.py")


def _cars_as_detections(turn: float) -> dict[str, list[dict]]:
    tables = REAL_KEYFRAMES / "v1.0-mini"
    cats = {c["token"]: c["name"] for c in json.loads((tables / "category.json").read_text())}
    inst = json.loads((tables / "instance.json").read_text())
    car = {i["token"] for i in inst if cats[i["category_token"]].startswith("vehicle.car")}
    out: dict[str, list[dict]] = {}
    for a in json.loads((tables / "sample_annotation.json").read_text()):
        if a["instance_token"] in car and a["num_lidar_pts"] > 0:
            q = Quaternion(axis=[0, 0, 1], angle=turn) * Quaternion(a["rotation"])
            out.setdefault(a["sample_token"], []).append(
                {
                    "sample_token": a["sample_token"],
                    "translation": a["translation"],
                    "size": a["size"],
                    "rotation": list(q.elements),
                    "detection_name": "car",
                    "detection_score": 0.9,
                }
            )
    return out


def test_detections_equal_to_the_cars_and_turned_by_90_degrees(headings, tmp_path: Path) -> None:
    runs = {}
    for name, turn in (("same", 0.0), ("turned", math.pi / 2)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"results": _cars_as_detections(turn)}))
        runs[name] = path
    out, png = tmp_path / "h.json", tmp_path / "h.png"
    argv = ["--dataroot", str(REAL_KEYFRAMES), "--json-out", str(out), "--plot", str(png)]
    argv += [f"--run={name}={path}" for name, path in runs.items()]
    assert headings.main(argv) == 0
    result = json.loads(out.read_text())
    same, turned = result["runs"]["same"], result["runs"]["turned"]
    assert same["matched"] == same["annotations"] > 10
    assert same["within_15deg"] == 1.0 and same["about_90deg"] == 0.0
    assert turned["matched"] == same["matched"]
    assert turned["about_90deg"] == 1.0 and turned["within_15deg"] == 0.0
    assert sum(same["heading_error_hist"]) == same["matched"]
    assert same["position_error"]["median_m"] < 1e-6
    assert same["position_error"]["within_0.5m"] == 1.0
    assert sum(same["position_error"]["radial_hist"]) == same["matched"]
    assert png.stat().st_size > 10_000


def test_a_detection_at_a_cell_centre_counts_as_centred(headings) -> None:
    """One car detected at the centre of a BEV cell of the LIDAR_TOP frame: centred; half a cell
    off: not."""
    tables = headings._tables(REAL_KEYFRAMES, "v1.0-mini")
    token = tables["sample_annotation"][0]["sample_token"]
    sd = next(
        r for r in tables["sample_data"] if r["sample_token"] == token and r["is_key_frame"]
        and r["filename"].startswith("samples/LIDAR_TOP")
    )  # fmt: skip
    pose = next(e for e in tables["ego_pose"] if e["token"] == sd["ego_pose_token"])
    cal = next(
        c for c in tables["calibrated_sensor"] if c["token"] == sd["calibrated_sensor_token"]
    )
    q_ego, q_cal = Quaternion(pose["rotation"]), Quaternion(cal["rotation"])

    def at(x: float, y: float) -> dict[str, list[dict]]:  # a LIDAR_TOP point -> global
        p = q_cal.rotate(np.array([x, y, 0.0])) + np.asarray(cal["translation"])
        p = q_ego.rotate(p) + np.asarray(pose["translation"])
        box = {"translation": list(p), "size": [2, 4, 1.5], "rotation": pose["rotation"],
               "detection_name": "car", "detection_score": 0.9, "sample_token": token}  # fmt: skip
        return {token: [box]}

    grid, cell = (-51.2, -51.2), (0.8, 0.8)
    centred = headings.measure(tables, at(10.0, 4.4), "vehicle.car", "car", 0.3, 2.0, grid, cell)
    edge = headings.measure(tables, at(10.4, 4.8), "vehicle.car", "car", 0.3, 2.0, grid, cell)
    assert centred["detections"] == edge["detections"] == 1
    assert centred["centre_in_central_cell_fifth"] == 1.0
    assert edge["centre_in_central_cell_fifth"] == 0.0


def test_a_centre_error_is_split_along_the_ray_and_the_box(headings) -> None:
    """A car 10 m ahead of the LIDAR, heading across the ray: a detection 0.5 m short of it on
    the ray is -0.5 along the ray and along the car's width; 0.3 m to its left is +0.3 across
    the ray and along the car's length."""
    ray, yaw = np.array([10.0, 0.0]), math.pi / 2
    short = headings._position_error(np.array([-0.5, 0.0]), ray, yaw)
    left = headings._position_error(np.array([0.0, 0.3]), ray, yaw)
    np.testing.assert_allclose(short, (-0.5, 0.0, 0.0, 0.5), atol=1e-9)
    np.testing.assert_allclose(left, (0.0, 0.3, 0.3, 0.0), atol=1e-9)
    summary = headings._position_summary(np.array([short, left]))["position_error"]
    assert summary["within_0.5m"] == 1.0 and summary["radial_median_m"] == pytest.approx(-0.25)
    assert headings._position_summary(np.zeros((0, 4))) == {"position_error": None}
