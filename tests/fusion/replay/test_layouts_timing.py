"""The real scene's timing, sweeps included, through the ingest pump alone: whatever the log's
convention of log times, the frames are the same, for each trigger, and a keyframe's frame is
the same whichever trigger is used.

The timing follows nuScenes scene-0916 (its sample_data tables; the sweeps' files are not in
tests/data, so the test draws streams with their statistics): LIDAR at 20 Hz with periods
46.5-53.5 ms; each camera at 12 Hz (it fires for 3 of every 5 scans, and for every keyframe), a
fixed offset before the scan as the spin passes it (CAM_FRONT_LEFT 42.7 ms, CAM_FRONT 35.0,
CAM_FRONT_RIGHT 27.2, CAM_BACK_RIGHT 19.6, CAM_BACK 10.0, CAM_BACK_LEFT 0.1; +-1.5 ms); five
radars running free at 13-14 Hz with their own phases, the scan nearest each keyframe marked as
the keyframe's; an ego pose at every message's time; a keyframe every 10 scans. Log orders:
each message at its sensor time (the dataroot, MCAP, ROS bags of `fusion convert`), and
nuscenes2mcap's (a keyframe's images and radar scans logged at its LIDAR scan's time), each
with the ties of one log time in either order.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from test_stream import _payload, _rig

from fusion.sources.base import LogMessage
from fusion.sync.ingest import IngestPump
from fusion.sync.online import OnlineSynchronizer, StreamOptions

CAMERA_OFFSETS_US = {
    "CAM_FRONT_LEFT": 42_700,
    "CAM_FRONT": 35_000,
    "CAM_FRONT_RIGHT": 27_200,
    "CAM_BACK_RIGHT": 19_600,
    "CAM_BACK": 10_000,
    "CAM_BACK_LEFT": 100,
}
RADAR_PERIODS_US = {
    "RADAR_FRONT": 75_000,
    "RADAR_FRONT_LEFT": 70_900,
    "RADAR_FRONT_RIGHT": 70_900,
    "RADAR_BACK_LEFT": 74_900,
    "RADAR_BACK_RIGHT": 74_500,
}


def _message(ch: str, kind: str, t: int, token: str | None) -> LogMessage:
    payload = _payload(kind, t)
    return LogMessage(
        ch, kind, t, t, b"", lambda r, o, p=payload: p, f"{ch}@{t}", token is not None, token
    )


@st.composite
def real_timing(draw) -> list[LogMessage]:
    """Messages of about 3 s of the real rig's timing (module docstring), log time = sensor
    time, in log order."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    first_key = int(rng.integers(0, 10))
    scans, t = [], 1_000_000
    for _ in range(60):
        scans.append(t)
        t += int(rng.integers(46_500, 53_500))
    keys = {i: f"sample{i}" for i in range(first_key, len(scans), 10)}
    out = []
    for i, ts in enumerate(scans):
        out.append(_message("LIDAR_TOP", "lidar", ts, keys.get(i)))
        for n, (ch, off) in enumerate(CAMERA_OFFSETS_US.items()):
            if i in keys or (i + n) % 5 not in (1, 3):
                out.append(_message(ch, "camera", ts - off + int(rng.integers(-1500, 1500)),
                                    keys.get(i)))  # fmt: skip
    for ch, period in RADAR_PERIODS_US.items():
        times = np.arange(scans[0] - int(rng.integers(0, period)), scans[-1] + period, period)
        times = times + rng.integers(-1000, 1000, len(times))
        nearest = {int(np.argmin(np.abs(times - scans[i]))): tok for i, tok in keys.items()}
        out += [_message(ch, "radar", int(x), nearest.get(j)) for j, x in enumerate(times)]
    out += [_message("pose", "pose", m.timestamp_us, None) for m in list(out)]
    return sorted(out, key=lambda m: (m.log_time_us, m.kind == "pose"))


def _keyframe_time(msgs: list[LogMessage]) -> list[LogMessage]:
    """nuscenes2mcap's convention: a keyframe's messages logged at its LIDAR scan's time."""
    at = {m.sample_token: m.timestamp_us for m in msgs if m.kind == "lidar" and m.sample_token}
    out = [
        LogMessage(
            m.channel,
            m.kind,
            m.timestamp_us,
            at[m.sample_token],
            m.raw,
            m.decoder,
            m.origin,
            m.is_keyframe,
            m.sample_token,
        )  # fmt: skip
        if m.sample_token in at
        else m
        for m in msgs
    ]
    return sorted(out, key=lambda m: m.log_time_us)  # (stable: ties keep their order)


def real_synchronizer(trigger: str, **overrides) -> OnlineSynchronizer:
    """The synchronizer of the real rig's six cameras and five radars, with the `tiny` config's
    tolerances (camera 50 ms, radar 60 ms, wait 50 ms), one sweep each unless overridden."""
    options = StreamOptions(
        **{
            "camera_channels": tuple(CAMERA_OFFSETS_US),
            "radar_channels": tuple(RADAR_PERIODS_US),
            "camera_tolerance_us": 50_000,
            "radar_tolerance_us": 60_000,
            "lidar_sweeps": 1,
            "radar_sweeps": 1,
            "wait_us": 50_000,
            "trigger": trigger,
            **overrides,
        }
    )
    return OnlineSynchronizer(options, _rig(tuple(CAMERA_OFFSETS_US), tuple(RADAR_PERIODS_US)))


def _frames(msgs: list[LogMessage], trigger: str) -> dict[int, dict[str, tuple[int, bool]]]:
    """--rate 0 through the ingest pump: per trigger, per sensor (time taken, reused)."""
    pump = IngestPump(real_synchronizer(trigger))
    built = []
    for m in msgs:
        built += pump.offer(m, m.log_time_us)
    built += pump.release(flush=True)
    out = {}
    for x in built:
        f = x.frame
        taken = {ch: (c.pose.timestamp_us, ch in f.reused) for ch, c in f.cameras.items()}
        taken |= {ch: (r.pose.timestamp_us, ch in f.reused) for ch, r in f.radars.items()}
        out[f.timestamp_us] = taken
    return out


@settings(max_examples=12, deadline=None)
@given(real_timing())
def test_every_log_order_gives_the_same_frames_on_the_real_timing(msgs):
    orders = {
        "sensor time": msgs,
        "sensor time, ties reversed": sorted(reversed(msgs), key=lambda m: m.log_time_us),
        "keyframe time": _keyframe_time(msgs),
        "keyframe time, ties reversed": _keyframe_time(
            sorted(reversed(msgs), key=lambda m: m.log_time_us)
        ),
    }
    keyframes = {m.timestamp_us for m in msgs if m.kind == "lidar" and m.sample_token}
    runs = {}
    for trigger in ("keyframes", "lidar"):
        ref = _frames(msgs, trigger)
        for name, order in orders.items():
            assert _frames(order, trigger) == ref, (trigger, name)
        runs[trigger] = ref
    assert set(runs["keyframes"]) == keyframes and len(runs["lidar"]) == 60
    # a keyframe's frame is the same under either trigger: its own images and radar scans
    for t in keyframes:
        assert runs["lidar"][t] == runs["keyframes"][t]
        assert len(runs["keyframes"][t]) == 11 and not any(
            r for _, r in runs["keyframes"][t].values()
        )
    # the triggers between keyframes reuse neighbours' messages: the case orders could differ on
    assert sum(r for f in runs["lidar"].values() for _, r in f.values()) > 50
