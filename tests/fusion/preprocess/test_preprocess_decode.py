"""The fast camera path: JPEGs decoded at reduced DCT scale, one-step warp, against a full
decode plus the training resize."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calibration import PinholeCamera
from fusion.config import IMAGE_STD, load_config
from fusion.data.sensor_io import decode_camera_image, jpeg_reduction
from fusion.errors import DataError
from fusion.preprocess.inputs import image_view, view_camera, warp_image

# Stated tolerance of the reduced path, in 8-bit levels of the network input (un-normalized):
# libjpeg's DCT-domain scaling and a bilinear warp against a full decode and an area resize.
MEAN_LEVELS = 2.5
P99_LEVELS = 16.0


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny")  # 352 x 128 network input


def _levels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) * (np.asarray(IMAGE_STD, np.float32)[:, None, None] * 255.0)


def test_jpeg_reduction_keeps_the_network_resolution(cfg):
    net = cfg.camera.image_hw  # (128, 352)
    assert jpeg_reduction(1600, 900, net) == 4  # 400 x 225 covers 352 x 128 after the fit
    assert jpeg_reduction(704, 396, net) == 2  # 352 x 198: exactly the network width
    assert jpeg_reduction(352, 198, net) == 1
    assert jpeg_reduction(1600, 900, (256, 704)) == 2


def test_reduced_decode_matches_full_decode_plus_resize(cfg, real_frame, real_root):
    for ch, data in real_frame.cameras.items():
        raw = (real_root / data.filename).read_bytes()
        full, cam_full = decode_camera_image(raw, data.camera, cfg.camera.image_hw, "full", ch)
        np.testing.assert_array_equal(full, data.image)  # the reader's own decode
        small, cam_small = decode_camera_image(raw, data.camera, cfg.camera.image_hw, "reduced", ch)
        assert small.shape == (225, 400, 3)
        v_full = image_view(full.shape[1], full.shape[0], cfg)
        v_small = image_view(small.shape[1], small.shape[0], cfg)
        ref = warp_image(full, v_full, cfg)  # the training path
        fast = warp_image(small, v_small, cfg, one_step=True)
        d = _levels(fast, ref)
        assert d.mean() <= MEAN_LEVELS, (ch, d.mean())
        assert np.percentile(d, 99) <= P99_LEVELS, (ch, np.percentile(d, 99))
        # the same network-input camera either way
        np.testing.assert_allclose(
            view_camera(cam_small, v_small, cfg).intrinsics,
            view_camera(cam_full, v_full, cfg).intrinsics,
            atol=1e-9,
        )


def test_reduced_camera_projects_like_the_full_one(cfg):
    k = np.array([[1266.4, 0.0, 816.3], [0.0, 1266.4, 491.5], [0.0, 0.0, 1.0]])
    cam = PinholeCamera(k, 1600, 900)
    img = np.full((900, 1600, 3), 128, np.uint8)
    ok, jpg = cv2.imencode(".jpg", img)
    assert ok
    _, small = decode_camera_image(jpg.tobytes(), cam, cfg.camera.image_hw, "reduced")
    assert (small.width, small.height) == (400, 225)
    p = np.array([[3.0, -1.0, 20.0]])  # camera frame, m
    np.testing.assert_allclose(small.project(p)[0] * 4.0, cam.project(p)[0], atol=1e-9)


def test_one_step_warp_equals_the_resize_at_scale_one_and_one_half(cfg):
    rng = np.random.default_rng(0)
    for w, h in ((352, 198), (704, 396)):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        view = image_view(w, h, cfg)
        assert view.scale in (1.0, 0.5)
        a, b = warp_image(img, view, cfg), warp_image(img, view, cfg, one_step=True)
        # identical pixels; only float rounding of the normalization differs
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_truncated_jpeg_is_a_data_error(cfg):
    cam = PinholeCamera(np.eye(3), 64, 32)
    ok, jpg = cv2.imencode(".jpg", np.zeros((32, 64, 3), np.uint8))
    with pytest.raises(DataError, match="truncated JPEG"):
        decode_camera_image(jpg.tobytes()[:-10], cam, (32, 64), "reduced", "cam.jpg")
    with pytest.raises(DataError, match="not a JPEG or PNG"):
        decode_camera_image(b"\x00\x01garbage", cam, (32, 64), "full", "cam.jpg")


def test_reader_decodes_at_reduced_scale_when_asked(cfg, real_root, real_frame):
    from fusion.data.reader import NuScenesReader, ReaderOptions

    opts = ReaderOptions.from_config(cfg, image_decode="reduced", lidar_sweeps=1, radar_sweeps=1)
    frame = NuScenesReader(real_root, "v1.0-mini", opts).frame(real_frame.sample_token)
    for ch, data in frame.cameras.items():
        full = real_frame.cameras[ch]
        assert data.image.shape == (225, 400, 3)
        np.testing.assert_allclose(data.camera.intrinsics[:2], full.camera.intrinsics[:2] / 4)
        assert (data.camera.width, data.camera.height) == (400, 225)
