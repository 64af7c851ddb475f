"""The pose-error sensitivity's parts: result boxes displaced as an ego-pose error would place
them (`displace_results`), the errors drawn per keyframe, and the interpolated RMS that keeps
mAP within a tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration import Transform, quaternion_from_yaw, yaw_from_quaternion
from fusion.errors import FusionError
from fusion.eval.pose_sensitivity import draw_pose_errors, largest_error_within
from fusion.postprocess.results import displace_results

EGO = np.array([412.5, -87.25])


def _boxes() -> list[dict]:
    rng = np.random.default_rng(3)
    out = []
    for i in range(6):
        xy = EGO + rng.uniform(-40, 40, 2)
        out.append(
            {
                "sample_token": "tok",
                "translation": [float(xy[0]), float(xy[1]), float(rng.uniform(0, 2))],
                "size": [1.9, 4.5, 1.6],
                "rotation": [float(v) for v in quaternion_from_yaw(rng.uniform(-3, 3))],
                "velocity": [float(v) for v in rng.uniform(-8, 8, 2)],
                "detection_name": "car",
                "detection_score": float(1.0 - 0.1 * i),
                "attribute_name": "",
            }
        )
    return out


def test_a_zero_error_is_the_identity():
    boxes = _boxes()
    moved = displace_results(boxes, EGO, np.zeros(2), 0.0)
    assert moved == boxes  # exactly: not a rounded copy
    assert all(m is not b for m, b in zip(moved, boxes, strict=True))


def test_a_translation_moves_every_centre_by_exactly_that():
    boxes = _boxes()
    offset = np.array([0.3, -0.125])
    moved = displace_results(boxes, EGO, offset, 0.0)
    for m, b in zip(moved, boxes, strict=True):
        np.testing.assert_allclose(
            np.subtract(m["translation"], b["translation"]), [*offset, 0.0], atol=1e-12
        )
        assert m["rotation"] == b["rotation"] and m["velocity"] == b["velocity"]
        assert m["size"] == b["size"] and m["detection_score"] == b["detection_score"]
    assert boxes == _boxes()  # the input is left as it was


def test_a_yaw_error_turns_positions_about_the_ego_and_yaw_and_velocity_by_the_same_angle():
    boxes = _boxes()
    dyaw = math.radians(2.0)
    moved = displace_results(boxes, EGO, np.zeros(2), dyaw)
    for m, b in zip(moved, boxes, strict=True):
        d0 = np.subtract(b["translation"][:2], EGO)
        d1 = np.subtract(m["translation"][:2], EGO)
        assert np.linalg.norm(d1) == pytest.approx(np.linalg.norm(d0), abs=1e-9)
        turn = math.atan2(d1[1], d1[0]) - math.atan2(d0[1], d0[0])
        assert math.remainder(turn - dyaw, 2 * math.pi) == pytest.approx(0.0, abs=1e-12)
        heading = yaw_from_quaternion(m["rotation"]) - yaw_from_quaternion(b["rotation"])
        assert math.remainder(heading - dyaw, 2 * math.pi) == pytest.approx(0.0, abs=1e-12)
        v0, v1 = b["velocity"], m["velocity"]
        assert math.hypot(*v1) == pytest.approx(math.hypot(*v0), abs=1e-12)
        vturn = math.atan2(v1[1], v1[0]) - math.atan2(v0[1], v0[0])
        assert math.remainder(vturn - dyaw, 2 * math.pi) == pytest.approx(0.0, abs=1e-12)
        assert m["translation"][2] == b["translation"][2]
    # a box on the ego position does not move, only turns
    on_ego = dict(boxes[0], translation=[*EGO, 1.0])
    (m,) = displace_results([on_ego], EGO, np.zeros(2), dyaw)
    np.testing.assert_allclose(m["translation"], [*EGO, 1.0], atol=1e-12)


def test_the_displacement_is_the_box_seen_through_the_wrong_pose():
    """A box in the ego frame taken to the global frame through an ego pose off by (t, dyaw)
    lands where `displace_results` puts the box taken there through the true pose."""
    yaw, dxy, dyaw = 0.7, np.array([0.4, -0.2]), math.radians(-1.5)
    true = Transform.from_translation_quaternion(
        [*EGO, 0.3], quaternion_from_yaw(yaw), src="ego", dst="global"
    )
    wrong = Transform.from_translation_quaternion(
        [*(EGO + dxy), 0.3], quaternion_from_yaw(yaw + dyaw), src="ego", dst="global"
    )
    centre, heading, vel = np.array([[12.0, -3.5, 0.8]]), 0.4, np.array([[5.0, 1.0, 0.0]])

    def box(pose: Transform, pose_yaw: float) -> dict:
        return {
            "translation": [float(v) for v in pose.apply(centre)[0]],
            "rotation": [float(v) for v in quaternion_from_yaw(pose_yaw + heading)],
            "velocity": [float(v) for v in pose.apply_vectors(vel)[0, :2]],
        }

    expected = box(wrong, yaw + dyaw)
    (m,) = displace_results([box(true, yaw)], EGO, dxy, dyaw)
    np.testing.assert_allclose(m["translation"], expected["translation"], atol=1e-9)
    np.testing.assert_allclose(m["velocity"], expected["velocity"], atol=1e-12)
    np.testing.assert_allclose(m["rotation"], expected["rotation"], atol=1e-12)


def test_the_draw_is_deterministic_per_seed_and_scaled_with_the_rms():
    a_xy, a_yaw = draw_pose_errors(50, 0.2, 0.01, seed=4)
    b_xy, b_yaw = draw_pose_errors(50, 0.2, 0.01, seed=4)
    np.testing.assert_array_equal(a_xy, b_xy)
    np.testing.assert_array_equal(a_yaw, b_yaw)
    c_xy, _ = draw_pose_errors(50, 0.2, 0.01, seed=5)
    assert not np.allclose(a_xy, c_xy)
    d_xy, d_yaw = draw_pose_errors(50, 0.1, 0.005, seed=4)  # the same directions, half the size
    np.testing.assert_allclose(d_xy, a_xy / 2, rtol=1e-12)
    np.testing.assert_allclose(d_yaw, a_yaw / 2, rtol=1e-12)
    z_xy, z_yaw = draw_pose_errors(50, 0.0, 0.0, seed=4)
    assert not z_xy.any() and not z_yaw.any()
    with pytest.raises(FusionError):
        draw_pose_errors(5, -0.1, 0.0, seed=0)


def test_the_drawn_errors_have_the_asked_rms():
    xy, yaw = draw_pose_errors(20_000, 0.29, math.radians(0.22), seed=0)
    assert xy.shape == (20_000, 2) and yaw.shape == (20_000,)
    assert np.sqrt(np.mean(np.sum(xy**2, axis=1))) == pytest.approx(0.29, rel=0.02)
    assert math.degrees(np.sqrt(np.mean(yaw**2))) == pytest.approx(0.22, rel=0.02)
    # isotropic and centred: the same RMS on each axis, mean near 0
    assert np.sqrt(np.mean(xy**2, axis=0)) == pytest.approx([0.29 / math.sqrt(2)] * 2, rel=0.03)
    assert np.abs(xy.mean(axis=0)).max() < 0.01


def test_largest_error_within_interpolates_where_the_loss_first_passes_the_tolerance():
    rms = [0.0, 0.05, 0.1, 0.2]
    assert largest_error_within(rms, [0.0, 0.004, 0.016, 0.05], 0.01) == pytest.approx(0.075)
    # unsorted input, and a later point back within the tolerance does not count
    assert largest_error_within(
        [0.2, 0.0, 0.1, 0.05], [0.005, 0.0, 0.02, 0.0], 0.01
    ) == pytest.approx(0.075)
    assert largest_error_within(rms, [0.0, 0.001, 0.002, 0.009], 0.01) is None
    assert largest_error_within(rms, [0.02, 0.03, 0.04, 0.05], 0.01) == 0.0
