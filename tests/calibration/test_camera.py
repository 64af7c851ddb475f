import numpy as np
import pytest

from calibration import PinholeCamera

K = np.array([[1266.4, 0, 816.3], [0, 1266.4, 491.5], [0, 0, 1]])


def test_project_unproject_roundtrip():
    cam = PinholeCamera(K, 1600, 900)
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [rng.uniform(-5, 5, 200), rng.uniform(-3, 3, 200), rng.uniform(1, 60, 200)]
    )
    uv, depth, ok = cam.project(pts)
    np.testing.assert_allclose(cam.unproject(uv, depth), pts, atol=1e-9)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] < 1600) & (uv[:, 1] >= 0) & (uv[:, 1] < 900)
    np.testing.assert_array_equal(ok, inside)


def test_points_behind_are_invalid():
    cam = PinholeCamera(K, 1600, 900)
    _, depth, ok = cam.project(np.array([[0.0, 0.0, -5.0], [0.0, 0.0, 0.0], [0.0, 0.0, 5.0]]))
    assert ok.tolist() == [False, False, True]
    assert depth.tolist() == [-5.0, 0.0, 5.0]


def test_scale_and_crop_keep_projection_consistent():
    cam = PinholeCamera(K, 1600, 900)
    p = np.array([[1.0, 0.5, 10.0], [-2.0, 1.0, 20.0]])
    uv, _, _ = cam.project(p)
    small = cam.scaled(0.44)
    assert (small.width, small.height) == (704, 396)
    np.testing.assert_allclose(small.project(p)[0], uv * 0.44)
    crop = small.cropped(0, 140, 704, 256)
    np.testing.assert_allclose(crop.project(p)[0], uv * 0.44 - [0, 140])
    assert (crop.width, crop.height) == (704, 256)


def test_frustum_shape_and_depths():
    cam = PinholeCamera(K, 1600, 900)
    fr = cam.frustum(16, 44, np.arange(1.0, 49.0))
    assert fr.shape == (48, 16, 44, 3)
    np.testing.assert_allclose(
        fr[..., 2], np.arange(1.0, 49.0)[:, None, None] * np.ones((1, 16, 44))
    )
    uv, _, ok = cam.project(fr.reshape(-1, 3))
    assert ok.all()  # every frustum cell centre is inside the image
    np.testing.assert_allclose(uv[0], [1600 / 88, 900 / 32])


def test_rejects_bad_intrinsics():
    with pytest.raises(ValueError):
        PinholeCamera(np.eye(2), 10, 10)
    with pytest.raises(ValueError):
        PinholeCamera(np.diag([-1.0, 1.0, 1.0]), 10, 10)
    with pytest.raises(ValueError):
        PinholeCamera(K, 0, 10)
