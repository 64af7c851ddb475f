import numpy as np
import pytest

from calibration import Transform, quaternion_from_yaw
from fusion.frame import SensorPose
from fusion.poses import PoseStream
from fusion.sync import Message, Synchronizer, transform_at, transform_between


def moving_poses():
    t = np.arange(0, 1_000_001, 10_000)
    trans = np.column_stack([10.0 * t * 1e-6, np.zeros_like(t), np.zeros_like(t)])  # 10 m/s along x
    rots = np.array([quaternion_from_yaw(0.1 * ti * 1e-6) for ti in t])
    return PoseStream(t, trans, rots)


def test_transform_between_goes_through_global():
    poses = moving_poses()
    lidar = Transform.from_translation_quaternion(
        [0.9, 0, 1.8], quaternion_from_yaw(-np.pi / 2), src="LIDAR_TOP", dst="ego"
    )
    cam = Transform.from_translation_quaternion(
        [1.7, 0, 1.5], [0.5, -0.5, 0.5, -0.5], src="CAM_FRONT", dst="ego"
    )
    tl, tc = 500_000, 460_000
    got = transform_at(poses, lidar, tl, cam, tc)
    assert (got.src, got.dst) == ("LIDAR_TOP", "CAM_FRONT")
    # a static world point seen by the lidar at tl must land at the same world point from the cam
    p_lidar = np.array([[5.0, 20.0, 0.5]])
    world = (poses.at(tl) @ lidar).apply(p_lidar)
    expect = (poses.at(tc) @ cam).inverse().apply(world)
    np.testing.assert_allclose(got.apply(p_lidar), expect, atol=1e-9)
    # skipping the global hop (ignoring 40 ms of motion at 10 m/s) is off by ~0.4 m
    naive = (cam.inverse() @ lidar).apply(p_lidar)
    assert np.linalg.norm(naive - expect) > 0.3


def test_transform_between_identity_for_same_sensor_and_time():
    s = SensorPose(
        "LIDAR_TOP",
        7,
        Transform.from_translation_quaternion([1, 2, 3], [1, 0, 0, 0], src="LIDAR_TOP", dst="ego"),
        Transform.from_translation_quaternion(
            [5, 5, 0], quaternion_from_yaw(1.0), src="ego", dst="global"
        ),
    )
    np.testing.assert_allclose(transform_between(s, s).matrix, np.eye(4), atol=1e-12)


def msgs(channel, times):
    return [Message(channel, int(t), f"{channel}@{t}") for t in times]


def test_synchronizer_tolerance_offsets_and_missing():
    lidar = msgs("LIDAR_TOP", [0, 500_000, 1_000_000])
    cam = msgs("CAM_FRONT", [-20_000, 480_000, 1_200_000])
    radar = msgs("RADAR_FRONT", [10_000, 530_000, 990_000])
    sync = Synchronizer("LIDAR_TOP", {"CAM_FRONT": 50_000, "RADAR_FRONT": 40_000})
    frames = sync.synchronize({"LIDAR_TOP": lidar, "CAM_FRONT": cam, "RADAR_FRONT": radar})
    assert [f.timestamp_us for f in frames] == [0, 500_000, 1_000_000]
    assert frames[0].offsets_us == {"LIDAR_TOP": 0, "CAM_FRONT": -20_000, "RADAR_FRONT": 10_000}
    assert frames[1].offsets_us["RADAR_FRONT"] == 30_000
    assert frames[2].missing == ("CAM_FRONT",)  # 200 ms away: beyond tolerance
    assert frames[2].offsets_us["RADAR_FRONT"] == -10_000
    summary = sync.report.summary()
    assert summary["CAM_FRONT"]["found"] == 2 and summary["CAM_FRONT"]["missing"] == 1
    assert summary["RADAR_FRONT"]["max_abs_offset_us"] == 30_000


def test_synchronizer_never_reuses_a_message():
    lidar = msgs("LIDAR_TOP", [0, 50_000])
    cam = msgs("CAM_FRONT", [25_000])
    frames = Synchronizer("LIDAR_TOP", {"CAM_FRONT": 30_000}).synchronize(lidar + cam)
    assert "CAM_FRONT" in frames[0].messages
    assert frames[1].missing == ("CAM_FRONT",)


def test_synchronizer_needs_reference():
    with pytest.raises(ValueError, match="reference"):
        Synchronizer("LIDAR_TOP", {"CAM_FRONT": 1}).synchronize(msgs("CAM_FRONT", [0]))
    with pytest.raises(ValueError):
        Synchronizer("LIDAR_TOP", {"CAM_FRONT": -1})


def test_synchronizer_on_a_recorded_scene(real_reader, real_frame):
    """The reader's message streams, synchronized, reproduce the sample's sensor offsets."""
    messages = real_reader.messages("scene-0553")
    assert len(messages) == 7
    cams = {m.channel for m in messages} - {"LIDAR_TOP"}
    sync = Synchronizer("LIDAR_TOP", {ch: 50_000 for ch in cams})
    (frame,) = sync.synchronize(messages)
    assert frame.offsets_us == real_frame.offsets_us
    assert frame.missing == ()
    assert sync.report.summary()["CAM_FRONT_LEFT"]["max_abs_offset_us"] == 43_107
    tight = Synchronizer("LIDAR_TOP", {ch: 30_000 for ch in cams}).synchronize(messages)
    assert set(tight[0].missing) == {"CAM_FRONT_LEFT", "CAM_FRONT"}


def test_pose_stream_interpolates_between_sensor_poses(real_reader, real_frame):
    stream = real_reader.pose_stream("scene-0553")
    assert stream.source == "ego_pose" and len(stream) == 7
    cam = real_frame.cameras["CAM_FRONT"].pose
    np.testing.assert_allclose(stream.at(cam.timestamp_us).matrix, cam.ego_to_global.matrix)
    # between CAM_FRONT (-35.5 ms) and CAM_FRONT_RIGHT (-27.6 ms): on the segment joining them
    right = real_frame.cameras["CAM_FRONT_RIGHT"].pose
    mid = stream.at((cam.timestamp_us + right.timestamp_us) // 2).translation
    ends = np.array([cam.ego_to_global.translation, right.ego_to_global.translation])
    np.testing.assert_allclose(mid, ends.mean(axis=0), atol=1e-3)
