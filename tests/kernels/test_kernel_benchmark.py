"""The benchmark's inputs: the real rig geometry (against the devkit) and the 10-sweep cloud."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from shared_data import REAL_ROOT

bench = importlib.import_module("fusion.bench.kernels")


def test_rig_matches_devkit_transforms() -> None:
    try:
        from nuscenes.nuscenes import NuScenes
        from nuscenes.utils.geometry_utils import transform_matrix
        from pyquaternion import Quaternion
    except ImportError as exc:
        pytest.skip(f"nuscenes-devkit not installed ({exc})")
    nusc = NuScenes("v1.0-mini", str(REAL_ROOT), verbose=False)
    sample = nusc.sample[0]

    def chain(token: str, inverse: bool) -> np.ndarray:
        sd = nusc.get("sample_data", token)
        cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
        pose = nusc.get("ego_pose", sd["ego_pose_token"])
        sensor = transform_matrix(cs["translation"], Quaternion(cs["rotation"]), inverse=inverse)
        ego = transform_matrix(pose["translation"], Quaternion(pose["rotation"]), inverse=inverse)
        return sensor @ ego if inverse else ego @ sensor

    intr, extr = bench.real_rig(REAL_ROOT)
    lidar_from_global = chain(sample["data"]["LIDAR_TOP"], inverse=True)
    for k, ch in enumerate(bench.CAMERAS):
        expected = lidar_from_global @ chain(sample["data"][ch], inverse=False)
        np.testing.assert_allclose(extr[k], expected, atol=1e-6)
        cs = nusc.get(
            "calibrated_sensor",
            nusc.get("sample_data", sample["data"][ch])["calibrated_sensor_token"],
        )
        np.testing.assert_allclose(intr[k], cs["camera_intrinsic"])


def test_frustum_projects_back_to_pixels() -> None:
    intr, extr = bench.real_rig(REAL_ROOT)
    pts = bench.frustum_points(intr, extr)
    assert pts.shape == (6, 48, 16, 44, 3)
    cam = (pts[1].reshape(-1, 3).astype(np.float64) - extr[1][:3, 3]) @ extr[1][:3, :3]
    np.testing.assert_allclose(cam[:, 2], np.repeat(bench.DEPTHS, 16 * 44), rtol=1e-5)
    uv = cam @ intr[1].T
    uv = uv[:, :2] / uv[:, 2:]
    np.testing.assert_allclose(uv[0], [1600 / 88, 900 / 32], atol=1e-2)  # first pixel centre


def test_ten_sweeps_cloud(real_scan) -> None:
    cloud = bench.ten_sweeps(real_scan)
    assert cloud.shape == (10 * len(real_scan), 5) and cloud.dtype == np.float32
    np.testing.assert_allclose(cloud[len(real_scan) :, 4][:3], 0.05)
    np.testing.assert_allclose(cloud[: len(real_scan), :3], real_scan[:, :3], atol=0.1)
