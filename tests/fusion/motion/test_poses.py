import json

import numpy as np
import pytest

from calibration import quaternion_from_yaw, yaw_from_quaternion
from fusion.data.canbus import load_can_bus
from fusion.errors import DataError
from fusion.motion.poses import PoseStream


def circle_stream(n=11, dt_us=50_000, speed=10.0, yaw_rate=0.2):
    """Ego driving a circle: poses every dt_us."""
    t = np.arange(n) * dt_us
    yaw = yaw_rate * t * 1e-6
    r = speed / yaw_rate
    trans = np.column_stack([r * np.sin(yaw), r * (1 - np.cos(yaw)), np.zeros(n)])
    rots = np.array([quaternion_from_yaw(y) for y in yaw])
    return PoseStream(t, trans, rots)


def test_exact_at_samples_and_interpolated_between():
    s = circle_stream()
    p = s.at(100_000)
    np.testing.assert_allclose(p.translation, s.translations[2])
    mid = s.at(125_000)
    np.testing.assert_allclose(mid.translation, (s.translations[2] + s.translations[3]) / 2)
    assert yaw_from_quaternion(mid.quaternion) == pytest.approx(0.2 * 0.125)
    assert (mid.src, mid.dst) == ("ego", "global")


def test_outside_stream_raises():
    s = circle_stream()
    with pytest.raises(DataError, match="outside"):
        s.at(-1)
    with pytest.raises(DataError, match="outside"):
        s.at(10**9)


def test_unsorted_input_is_sorted():
    s = circle_stream()
    perm = np.random.default_rng(1).permutation(len(s))
    t = PoseStream(s.timestamps_us[perm], s.translations[perm], s.rotations[perm])
    np.testing.assert_allclose(t.at(125_000).matrix, s.at(125_000).matrix)


def test_velocity_and_yaw_rate():
    s = circle_stream(n=41, dt_us=20_000)
    v = s.velocity(400_000)
    assert v[0] == pytest.approx(10.0, rel=1e-3)  # forward in the ego frame
    assert abs(v[1]) < 0.05
    assert s.yaw_rate(400_000) == pytest.approx(0.2, rel=1e-6)


def test_can_bus_loads(tmp_path):
    s = circle_stream(n=51, dt_us=20_000)
    (tmp_path / "can_bus").mkdir()
    pose = [
        {
            "utime": int(t),
            "pos": p.tolist(),
            "orientation": q.tolist(),
            "vel": [10.0, 0, 0],
            "accel": [0, 0, 0],
            "rotation_rate": [0, 0, 0.2],
        }
        for t, p, q in zip(s.timestamps_us, s.translations, s.rotations, strict=True)
    ]
    imu = [
        {
            "utime": int(t),
            "linear_accel": [0, 2.0, 9.81],
            "q": [1, 0, 0, 0],
            "rotation_rate": [0, 0, 0.2],
        }
        for t in range(0, 1_000_001, 10_000)
    ]
    (tmp_path / "can_bus" / "scene-0001_pose.json").write_text(json.dumps(pose))
    (tmp_path / "can_bus" / "scene-0001_ms_imu.json").write_text(json.dumps(imu))
    can = load_can_bus(tmp_path, "scene-0001")
    assert can is not None and len(can.pose) == 51
    assert can.yaw_rate(333_333) == pytest.approx(0.2)
    np.testing.assert_allclose(can.pose.at(500_000).matrix, s.at(500_000).matrix, atol=1e-9)
    assert load_can_bus(tmp_path, "scene-0002") is None
    (tmp_path / "can_bus" / "scene-0003_pose.json").write_text("{not json")
    with pytest.raises(DataError, match="scene-0003_pose.json"):
        load_can_bus(tmp_path, "scene-0003")


def test_offline_and_online_poses_follow_one_rule() -> None:
    """`PoseStream` (offline) and `PoseBuffer` (online) are the same interpolator: exact on a
    pose, interpolated between, extrapolated at constant velocity and turn rate past either end
    within the horizon (exact on a constant turn), unknown beyond it."""
    import math

    import numpy as np
    import pytest

    from calibration import Transform
    from fusion.errors import DataError
    from fusion.motion.poses import PoseStream
    from fusion.sync.online import PoseBuffer

    def truth(t_us: int) -> tuple[np.ndarray, np.ndarray]:
        s = t_us * 1e-6  # 10 m/s along x, turning at 0.2 rad/s
        yaw = 0.2 * s
        return np.array([10.0 * s, 0.5, 0.0]), np.array(
            [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
        )

    times = np.arange(0, 1_000_001, 100_000)
    poses = [truth(int(t)) for t in times]
    horizon = 150_000
    stream = PoseStream(
        times, [p[0] for p in poses], [p[1] for p in poses], max_extrapolation_us=horizon
    )
    buf = PoseBuffer(100, max_extrapolation_us=horizon)
    for t, (trans, quat) in zip(times, poses, strict=True):
        buf.add(int(t), Transform.from_translation_quaternion(trans, quat, src="ego", dst="global"))
    for t in (0, 300_000, 350_000, 1_000_000, 1_100_000, 1_150_000, -100_000, -150_000):
        offline, online = stream.at(t), buf.at(t)
        assert online is not None
        np.testing.assert_allclose(offline.matrix, online.matrix, atol=1e-12)
        trans, quat = truth(t)
        # yaw exact (a constant turn); translation along the chord, within 1 mm of the arc
        np.testing.assert_allclose(offline.translation, trans, atol=1e-3)
        assert abs(abs(float(offline.quaternion @ quat)) - 1) < 1e-9  # within 1e-4 rad
    for t in (1_150_001, -150_001):
        assert buf.at(t) is None
        with pytest.raises(DataError, match="outside"):
            stream.at(t)
