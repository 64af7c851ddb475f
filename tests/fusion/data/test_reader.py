"""The reader on the real keyframe, against the devkit, and on every kind of bad input."""

import json

import numpy as np
import pytest
from shared_data import REAL_SAMPLE, REAL_VERSION

from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.errors import DataError

CAMS = [
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_FRONT_LEFT",
    "CAM_BACK",
    "CAM_BACK_LEFT",
    "CAM_BACK_RIGHT",
]


def test_real_frame_contents(real_frame, real_nusc):
    f = real_frame
    assert f.sample_token == REAL_SAMPLE and f.scene_name == "scene-0553"
    assert f.lidar.points.shape == (34688, 5) and f.lidar.points.dtype == np.float32
    assert set(f.cameras) == set(CAMS)
    assert all(c.image.shape == (900, 1600, 3) for c in f.cameras.values())
    assert f.radars == {} and f.missing == {}
    assert len(f.boxes) == 69
    sample = real_nusc.get("sample", REAL_SAMPLE)
    for ch in CAMS:
        sd = real_nusc.get("sample_data", sample["data"][ch])
        assert f.cameras[ch].pose.timestamp_us == sd["timestamp"]
        assert f.offsets_us[ch] == sd["timestamp"] - sample["timestamp"]
    # the scan is stored as-is in the sensor frame: x y z intensity, dt = 0
    raw = np.fromfile(
        real_nusc.get_sample_data_path(sample["data"]["LIDAR_TOP"]), np.float32
    ).reshape(-1, 5)
    np.testing.assert_array_equal(f.lidar.points[:, :4], raw[:, :4])
    assert (f.lidar.points[:, 4] == 0).all()


def test_boxes_match_devkit_lidar_frame(real_frame, real_nusc):
    sample = real_nusc.get("sample", REAL_SAMPLE)
    _, boxes, _ = real_nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
    ours = real_frame.boxes
    assert [b.token for b in boxes] == list(ours.tokens)
    for i, b in enumerate(boxes):
        np.testing.assert_allclose(ours.center_lidar[i], b.center, atol=1e-9)
        np.testing.assert_allclose(ours.size_wlh[i], b.wlh)
        yaw = b.orientation.yaw_pitch_roll[0]
        assert np.cos(ours.yaw_lidar[i] - yaw) == pytest.approx(1.0, abs=1e-9)
        vel = real_nusc.box_velocity(b.token)[:2]
        np.testing.assert_array_equal(np.isnan(ours.velocity_global[i]), np.isnan(vel))


def test_lidar_to_camera_matches_devkit_camera_boxes(real_frame, real_nusc):
    """Box centres mapped LIDAR(t_lidar) -> camera(t_cam) equal the devkit's camera-frame boxes."""
    from nuscenes.utils.geometry_utils import BoxVisibility

    sample = real_nusc.get("sample", REAL_SAMPLE)
    ours = dict(zip(real_frame.boxes.tokens, real_frame.boxes.center_lidar, strict=True))
    for ch in CAMS:
        _, boxes, K = real_nusc.get_sample_data(
            sample["data"][ch], box_vis_level=BoxVisibility.NONE
        )
        to_cam = real_frame.sensor_to_lidar(ch).inverse()
        assert (to_cam.src, to_cam.dst) == ("LIDAR_TOP", ch)
        assert len(boxes) == 69
        for b in boxes:
            np.testing.assert_allclose(to_cam.apply(ours[b.token][None])[0], b.center, atol=1e-3)
        np.testing.assert_allclose(real_frame.cameras[ch].camera.intrinsics, K)


def test_points_in_boxes_match_devkit(real_frame, real_nusc):
    from nuscenes.utils.geometry_utils import points_in_box

    from fusion.commands.inspect import box_points

    sample = real_nusc.get("sample", REAL_SAMPLE)
    _, boxes, _ = real_nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
    pts = real_frame.lidar.points[:, :3].T
    expect = [int(points_in_box(b, pts).sum()) for b in boxes]
    assert box_points(real_frame).tolist() == expect
    assert sum(expect) > 900  # not a vacuous all-zero match


def test_split_and_unknown_split(real_reader):
    assert real_reader.sample_tokens(split="mini_train") == [REAL_SAMPLE]
    assert real_reader.sample_tokens(split="mini_val") == []
    with pytest.raises(DataError, match="unknown split"):
        real_reader.sample_tokens(split="nope")
    with pytest.raises(DataError, match="unknown sample"):
        real_reader.frame("0" * 32)


# -- bad input ---------------------------------------------------------------------------------
def _sd_file(root, channel):
    sd = json.loads((root / REAL_VERSION / "sample_data.json").read_text())
    rec = next(r for r in sd if f"__{channel}__" in r["filename"])
    return root / rec["filename"]


def test_missing_dataroot_and_table(tmp_path, real_copy):
    with pytest.raises(DataError, match="dataroot does not exist") as e:
        NuScenesReader(tmp_path / "nope", REAL_VERSION)
    assert "nope" in str(e.value)
    with pytest.raises(DataError, match="version folder"):
        NuScenesReader(real_copy, "v9.9")
    (real_copy / REAL_VERSION / "ego_pose.json").unlink()
    with pytest.raises(DataError, match="table 'ego_pose' is missing"):
        NuScenesReader(real_copy, REAL_VERSION)


def test_corrupt_table(real_copy):
    (real_copy / REAL_VERSION / "sample.json").write_text("[{")
    with pytest.raises(DataError, match="devkit cannot load"):
        NuScenesReader(real_copy, REAL_VERSION)


def corrupt_lidar_truncate(path):
    path.write_bytes(path.read_bytes()[:-7])


def corrupt_lidar_nan(path):
    pts = np.fromfile(path, np.float32).reshape(-1, 5)
    pts[100, 1] = np.nan
    pts[200, 0] = np.inf
    pts.tofile(path)


def corrupt_delete(path):
    path.unlink()


def corrupt_empty(path):
    path.write_bytes(b"")


def corrupt_jpeg_garbage(path):
    path.write_bytes(b"\xff\xd8" + bytes(range(256)) * 10 + b"\xff\xd9")


def corrupt_jpeg_truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


CASES = [
    ("LIDAR_TOP", corrupt_lidar_truncate, "not a positive multiple of 20"),
    ("LIDAR_TOP", corrupt_lidar_nan, "2 of 34688 LIDAR points have NaN or Inf"),
    ("LIDAR_TOP", corrupt_delete, "file is missing"),
    ("LIDAR_TOP", corrupt_empty, "not a positive multiple"),
    ("CAM_BACK", corrupt_jpeg_garbage, "corrupt image"),
    ("CAM_BACK", corrupt_jpeg_truncate, "truncated JPEG"),
    ("CAM_FRONT", corrupt_delete, "file is missing"),
]


@pytest.mark.parametrize(
    ("channel", "corrupt", "reason"), CASES, ids=[f"{c}-{f.__name__}" for c, f, _ in CASES]
)
def test_bad_sensor_file_raises_then_tolerant_marks_missing(real_copy, channel, corrupt, reason):
    path = _sd_file(real_copy, channel)
    corrupt(path)
    strict = NuScenesReader(real_copy, REAL_VERSION, ReaderOptions(lidar_sweeps=1))
    with pytest.raises(DataError, match=reason) as err:
        strict.frame(REAL_SAMPLE)
    assert path.name in str(err.value)
    tolerant = NuScenesReader(real_copy, REAL_VERSION, ReaderOptions(lidar_sweeps=1, tolerant=True))
    frame = tolerant.frame(REAL_SAMPLE)
    assert set(frame.missing) == {channel}
    assert reason.split()[0] in frame.missing[channel]
    assert tolerant.skipped == {channel: 1}
    others = [c for c in CAMS if c != channel]
    assert all(c in frame.cameras for c in others)
    assert (frame.lidar is None) == (channel == "LIDAR_TOP")


def test_filename_outside_dataroot(real_copy, tmp_path):
    table = real_copy / REAL_VERSION / "sample_data.json"
    sd = json.loads(table.read_text())
    rec = next(r for r in sd if "__CAM_FRONT__" in r["filename"])
    outside = tmp_path / "secret.jpg"
    outside.write_bytes((real_copy / rec["filename"]).read_bytes())
    rec["filename"] = "../secret.jpg"
    table.write_text(json.dumps(sd))
    with pytest.raises(DataError, match="outside the dataroot"):
        NuScenesReader(real_copy, REAL_VERSION, ReaderOptions(lidar_sweeps=1)).frame(REAL_SAMPLE)


def test_image_size_mismatch(real_copy):
    import cv2

    path = _sd_file(real_copy, "CAM_FRONT")
    img = cv2.imread(str(path))
    cv2.imwrite(str(path), cv2.resize(img, (800, 450)))
    with pytest.raises(DataError, match="800x450, sample_data says 1600x900"):
        NuScenesReader(real_copy, REAL_VERSION, ReaderOptions(lidar_sweeps=1)).frame(REAL_SAMPLE)
