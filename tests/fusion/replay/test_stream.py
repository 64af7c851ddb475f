"""The online synchronizer is causal: property tests over random message streams (arrival
order, jitter, gaps) check that no message or pose from the future is used, each camera and
radar message goes into at most one frame, tolerances hold, and what is missing is counted."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from calibration import PinholeCamera, Transform, quaternion_from_yaw
from fusion.sources.base import (
    CameraImage,
    EgoPose,
    LidarScan,
    LogMessage,
    RadarScan,
    Rig,
    SensorCalibration,
)
from fusion.sync.online import OnlineSynchronizer, PoseBuffer, StreamOptions

CAMS = ("CAM_FRONT", "CAM_BACK")
RADARS = ("RADAR_FRONT",)


def _rig(cams: tuple[str, ...] = CAMS, radars: tuple[str, ...] = RADARS) -> Rig:
    """LIDAR_TOP, `cams` (a 32x16 pinhole each) and `radars`, every sensor at the ego origin."""
    k = np.array([[50.0, 0, 16], [0, 50.0, 8], [0, 0, 1]])
    sensors = {
        "LIDAR_TOP": SensorCalibration("LIDAR_TOP", Transform(np.eye(4), "LIDAR_TOP", "ego"))
    }
    for ch in cams:
        sensors[ch] = SensorCalibration(
            ch, Transform(np.eye(4), ch, "ego"), PinholeCamera(k, 32, 16)
        )
    for ch in radars:
        sensors[ch] = SensorCalibration(ch, Transform(np.eye(4), ch, "ego"))
    return Rig(sensors)


def _ego(t_us: int) -> Transform:
    """The ego drives at 10 m/s along x, turning at 0.1 rad/s."""
    t = t_us * 1e-6
    return Transform.from_translation_quaternion(
        [10.0 * t, 0.0, 0.0], quaternion_from_yaw(0.1 * t), src="ego", dst="global"
    )


def _payload(kind: str, t: int):
    match kind:
        case "lidar":
            return LidarScan(np.array([[5.0, 5.0, 0.0, 1.0, 0.0]], np.float32))
        case "camera":
            return CameraImage(np.zeros((16, 32, 3), np.uint8))
        case "radar":
            f = np.zeros((18, 1), np.float32)
            f[0] = 10.0
            f[3], f[11], f[14] = 1, 3, 0  # passes the default filters
            return RadarScan(f)
        case "pose":
            return EgoPose(_ego(t))


def _msg(channel: str, kind: str, t: int, arrival: int, key: bool = False) -> LogMessage:
    return LogMessage(channel, kind, t, arrival, b"", lambda r, o: None, f"{channel}@{t}", key)


@st.composite
def streams(draw):
    """Sensor messages at their rates with jitter, dropouts and arrival delays."""
    n = draw(st.integers(4, 14))  # LIDAR scans at 20 Hz
    out = []
    for i in range(n):
        t = 1_000_000 + i * 50_000 + draw(st.integers(-2_000, 2_000))
        out.append(("LIDAR_TOP", "lidar", t))
    for ch, period in ((CAMS[0], 83_000), (CAMS[1], 83_000), (RADARS[0], 77_000)):
        t = 1_000_000 + draw(st.integers(-60_000, 60_000))
        while t < 1_000_000 + n * 50_000:
            if draw(st.integers(0, 5)):  # one message in six is lost
                out.append((ch, "camera" if ch.startswith("CAM") else "radar", t))
            t += period + draw(st.integers(-5_000, 5_000))
    t = 900_000
    while t < 1_000_000 + n * 50_000 + 100_000:
        if draw(st.integers(0, 9)):  # some pose gaps
            out.append(("pose", "pose", t))
        t += 20_000
    msgs = []
    for ch, kind, t in out:
        delay = draw(st.integers(0, 40_000))  # arrival = sensor time + transport delay
        msgs.append((t + delay, ch, kind, t))
    msgs.sort()
    return [(_msg(ch, kind, t, a), _payload(kind, t)) for a, ch, kind, t in msgs]


def _options(**kw) -> StreamOptions:
    base = dict(
        camera_channels=CAMS,
        radar_channels=RADARS,
        camera_tolerance_us=40_000,
        radar_tolerance_us=45_000,
        lidar_sweeps=3,
        radar_sweeps=2,
        wait_us=35_000,
        trigger="lidar",
    )
    return StreamOptions(**(base | kw))


@settings(max_examples=60, deadline=None)
@given(streams())
def test_frames_use_only_past_messages_each_once_within_tolerance(stream):
    opts = _options()
    sync = OnlineSynchronizer(opts, _rig())
    arrived: dict[str, int] = {}  # origin -> arrival index
    used: list[str] = []
    frames = 0

    def check(trig, k: int) -> None:
        nonlocal frames
        frame = sync.build(trig)
        if frame is None:
            return
        frames += 1
        t = frame.timestamp_us
        for data in (*frame.cameras.values(), *frame.radars.values()):
            ts = data.pose.timestamp_us
            is_cam = data.pose.channel in CAMS
            tol = opts.camera_tolerance_us if is_cam else opts.radar_tolerance_us
            assert data.filename in arrived, "a message not yet received was used"
            assert abs(ts - t) <= tol and ts <= t + opts.wait_us
            if data.pose.channel not in frame.reused:  # a neighbour's, marked: used again
                used.append(data.filename)
        # LIDAR sweeps: the trigger and strictly older scans that had arrived
        dts = np.unique(frame.lidar.points[:, 4])
        assert dts.min() == 0 and (dts >= 0).all()
        assert (frame.lidar.points[:, 4] == 0).sum() == 1  # the trigger scan once (1 point)
        for dt in dts[dts > 0]:
            assert f"LIDAR_TOP@{t - round(dt * 1e6)}" in arrived
        # the reference pose is what the poses received so far give, never a later one
        past = PoseBuffer(10_000, opts.max_extrapolation_us)
        for m, p in stream[:k]:
            if m.kind == "pose":
                past.add(m.timestamp_us, p.ego_to_global)
        assert frame.reference.ego_to_global.allclose(past.at(t), atol=1e-9)
        present = set(frame.cameras) | set(frame.radars)
        assert set(opts.camera_channels + opts.radar_channels) - present == set(frame.missing)

    for k, (msg, payload) in enumerate(stream):
        for trig in sync.ready(msg.log_time_us):
            check(trig, k)
        arrived[msg.origin] = k
        sync.push(msg, payload)
    for trig in sync.ready(flush=True):
        check(trig, len(stream))
    assert frames + sync.counters.no_pose == sync.counters.triggers
    assert len(used) == len(set(used)), "a message was used in two frames"
    c = sync.counters
    assert sum(c.missing.values()) + sum(c.used.values()) == frames * (len(CAMS) + len(RADARS))


@settings(max_examples=40, deadline=None)
@given(streams())
def test_every_trigger_is_built_or_counted(stream):
    sync = OnlineSynchronizer(_options(max_pending=3), _rig())
    built = 0
    for msg, payload in stream:
        sync.push(msg, payload)
        for trig in sync.ready(msg.log_time_us):
            built += sync.build(trig) is not None
    for trig in sync.ready(flush=True):
        built += sync.build(trig) is not None
    c = sync.counters
    assert built + c.overflow + c.no_pose == c.triggers
    assert sync.pending == 0


def test_a_sensor_out_of_tolerance_is_missing_not_fused():
    sync = OnlineSynchronizer(_options(), _rig())
    for t in range(900_000, 1_200_000, 20_000):
        sync.push(_msg("pose", "pose", t, t), _payload("pose", t))
    sync.push(_msg("CAM_FRONT", "camera", 941_000, 941_000), _payload("camera", 0))  # 59 ms early
    sync.push(_msg("CAM_BACK", "camera", 990_000, 990_000), _payload("camera", 0))  # 10 ms early
    sync.push(_msg("LIDAR_TOP", "lidar", 1_000_000, 1_000_000), _payload("lidar", 0))
    (trig,) = sync.ready(1_000_000 + 35_000)
    frame = sync.build(trig)
    assert set(frame.cameras) == {"CAM_BACK"}
    assert "CAM_FRONT" in frame.missing and "RADAR_FRONT" in frame.missing
    assert sync.counters.missing == {"CAM_FRONT": 1, "RADAR_FRONT": 1}


def test_a_trigger_waits_for_a_late_sensor_but_not_past_its_wait():
    sync = OnlineSynchronizer(_options(), _rig())
    for t in range(900_000, 1_200_000, 20_000):
        sync.push(_msg("pose", "pose", t, t), _payload("pose", t))
    sync.push(_msg("LIDAR_TOP", "lidar", 1_000_000, 1_000_000), _payload("lidar", 0))
    assert sync.ready(1_010_000) == []  # cameras and radar may still come
    assert sync.next_deadline() == 1_035_000
    # a camera stamped after t + wait arrives: it must not be used
    sync.push(_msg("CAM_FRONT", "camera", 1_036_000, 1_036_000), _payload("camera", 0))
    (trig,) = sync.ready(1_035_000)
    assert "CAM_FRONT" in sync.build(trig).missing


def test_sweeps_are_strictly_older_than_the_trigger():
    sync = OnlineSynchronizer(_options(), _rig())
    for t in range(800_000, 1_200_000, 20_000):
        sync.push(_msg("pose", "pose", t, t), _payload("pose", t))
    for t in (900_000, 950_000, 1_000_000, 1_050_000):  # the 1.05 s scan arrives before release
        sync.push(_msg("LIDAR_TOP", "lidar", t, 1_052_000), _payload("lidar", t))
    frames = [sync.build(p) for p in sync.ready(1_052_000)]
    assert [f.timestamp_us for f in frames] == [900_000, 950_000, 1_000_000]
    assert len(frames[0].lidar.points) == 1  # nothing older had arrived
    third = frames[2]
    np.testing.assert_allclose(np.sort(third.lidar.points[:, 4]), [0.0, 0.05, 0.1], atol=1e-9)


def test_poses_interpolate_and_extrapolate_only_within_the_horizon():
    buf = PoseBuffer(100, max_extrapolation_us=100_000)
    assert buf.at(0) is None
    for t in (0, 100_000, 200_000):
        buf.add(t, _ego(t))
    assert buf.at(150_000).allclose(_ego(150_000), atol=1e-3)
    # constant velocity and yaw rate ahead of the newest pose, within the horizon
    ahead = buf.at(280_000)
    assert np.allclose(ahead.translation, _ego(280_000).translation, atol=1e-3)
    assert math.isclose(
        math.atan2(ahead.rotation[1, 0], ahead.rotation[0, 0]), 0.1 * 0.28, abs_tol=1e-6
    )
    assert buf.at(300_001) is None  # beyond the horizon: unknown, not guessed
    # before the oldest pose kept: the same rule backwards (fusion.motion.poses.pose_at)
    assert np.allclose(buf.at(-50_000).translation, _ego(-50_000).translation, atol=1e-3)
    assert buf.at(-100_001) is None


def test_online_frames_of_the_real_keyframe_have_its_offsets(real_frame):
    """The real keyframe as a log (fusion.sources) through the online synchronizer: the frame
    has the offline reader's sensor offsets; tighter tolerances leave the far cameras out."""
    from shared_data import REAL_ROOT, REAL_VERSION

    from fusion.sources import open_source

    source = open_source(REAL_ROOT, version=REAL_VERSION)
    cams = tuple(sorted(c for c in real_frame.cameras))

    def frame(tolerance_us: int):
        opts = _options(
            camera_channels=cams, radar_channels=(), camera_tolerance_us=tolerance_us,
            wait_us=tolerance_us, trigger="keyframes", lidar_sweeps=1,
        )  # fmt: skip
        sync = OnlineSynchronizer(opts, source.rig())
        for msg in source.messages():
            sync.push(msg, msg.decode())
        (trig,) = sync.ready(flush=True)
        return sync.build(trig)

    loose = frame(50_000)
    assert loose.sample_token == real_frame.sample_token and not loose.missing
    assert loose.offsets_us == {k: v for k, v in real_frame.offsets_us.items() if "RADAR" not in k}
    assert loose.reference.ego_to_global.allclose(real_frame.reference.ego_to_global, atol=1e-9)
    assert max(abs(v) for v in loose.offsets_us.values()) == 43_107  # CAM_FRONT_LEFT
    assert set(frame(30_000).missing) == {"CAM_FRONT_LEFT", "CAM_FRONT"}


def test_pose_buffer_keeps_the_newest_poses_sorted_as_it_wraps():
    """The buffer holds the newest `size` poses in time order however many arrive (its arrays
    wrap in place), a pose seen twice is kept once, and an out-of-order pose is sorted in: every
    lookup equals `pose_at` on the poses it should hold."""
    from fusion.motion.poses import pose_at

    size = 7
    buf = PoseBuffer(size, max_extrapolation_us=100_000)
    held: list[int] = []
    rng = np.random.default_rng(3)
    stamps = [int(t) for t in range(0, 4_000_000, 100_000)]
    for k, t in enumerate(stamps):
        late = k % 5 == 4  # every fifth pose arrives just after the next one
        order = [t + 50_000, t] if late else [t]
        if k % 9 == 8:  # and one older than every pose held, which the buffer leaves out
            order.append(-1_000_000 - t)
        for s in order:
            buf.add(s, _ego(s))
            buf.add(s, _ego(s))  # the same pose twice: one row
            if s not in held and s >= 0:
                held.append(s)
            kept = sorted(held)[-size:]
            assert len(buf) == len(kept)
            assert buf.latest_us == kept[-1]
            q = int(rng.uniform(kept[0] - 50_000, kept[-1] + 50_000))
            want = pose_at(
                np.array(kept, np.int64),
                np.array([_ego(x).translation for x in kept]),
                np.array([_ego(x).quaternion for x in kept]),
                q,
                100_000,
            )
            got = buf.at(q)
            assert (want is None) == (got is None)
            if want is not None:
                np.testing.assert_allclose(got.matrix, want.matrix, atol=1e-12)
    buf.clear()
    assert len(buf) == 0 and buf.at(0) is None and buf.latest_us is None
