import numpy as np

from calibration import Transform, quaternion_from_yaw
from fusion.frame import SensorPose, transform_between
from fusion.motion.poses import PoseStream, transform_at


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


def test_transform_between_is_the_composed_chain_to_the_last_bit():
    """`transform_between` multiplies the matrices itself: the same floats, and the same frame
    names, as composing the four `Transform`s hop by hop."""
    rng = np.random.default_rng(0)

    def rigid(src: str, dst: str) -> Transform:
        q = rng.normal(size=4)
        return Transform.from_translation_quaternion(rng.normal(size=3) * 300, q, src=src, dst=dst)

    for _ in range(200):
        a = SensorPose("RADAR_FRONT", 10, rigid("RADAR_FRONT", "ego"), rigid("ego", "global"))
        b = SensorPose("LIDAR_TOP", 20, rigid("LIDAR_TOP", "ego"), rigid("ego", "global"))
        src_ego = Transform(a.ego_to_global.matrix, src="ego@10", dst="global")
        dst_ego = Transform(b.ego_to_global.matrix, src="ego@20", dst="global")
        src_sensor = Transform(a.sensor_to_ego.matrix, src="RADAR_FRONT", dst="ego@10")
        dst_sensor = Transform(b.sensor_to_ego.matrix, src="LIDAR_TOP", dst="ego@20")
        chain = dst_sensor.inverse() @ dst_ego.inverse() @ src_ego @ src_sensor
        got = transform_between(a, b)
        assert (got.src, got.dst) == (chain.src, chain.dst) == ("RADAR_FRONT", "LIDAR_TOP")
        np.testing.assert_array_equal(got.matrix, chain.matrix)
