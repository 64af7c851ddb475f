"""Every decoder, fed random bytes or a real message's bytes mutated (bytes flipped, cut,
overwritten, extended), returns its payload type or raises DataError naming the origin:
never another exception."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from source_logs import SYNTH_SCENE, SYNTH_VERSION

from fusion.errors import DataError
from fusion.sources import decoders as dec
from fusion.sources import open_source
from fusion.sources.base import CameraImage, EgoPose, ImuSample, LidarScan, RadarScan

PAYLOAD = {"lidar": LidarScan, "radar": RadarScan, "camera": CameraImage, "pose": EgoPose}
PAYLOAD["imu"] = ImuSample
LAYOUTS = ("dataroot", "mcap", "ros2-mcap", "ros1")
STREAMS = ("LIDAR_TOP", "RADAR_FRONT", "CAM_FRONT", "pose", "odom", "imu")
SEEDS = [f"{layout}/{ch}" for layout in LAYOUTS for ch in STREAMS]
SEEDS += ["cdr/image", "ros1/image", "foxglove/pointcloud-lidar", "foxglove/pointcloud-radar"]


def _ros_image(fmt: dec.RosFormat) -> bytes:
    ts = dec.typestore(fmt)
    t = ts.types
    stamp = t["builtin_interfaces/msg/Time"](sec=1, nanosec=2)
    header = t["std_msgs/msg/Header"](
        **({"seq": 0} if fmt == "ros1" else {}), stamp=stamp, frame_id="cam"
    )
    pixels = np.arange(4 * 6 * 3, dtype=np.uint8)
    img = t["sensor_msgs/msg/Image"](
        header=header, height=4, width=6, encoding="bgr8", is_bigendian=0, step=18, data=pixels
    )
    ser = ts.serialize_cdr if fmt == "cdr" else ts.serialize_ros1
    return bytes(ser(img, "sensor_msgs/msg/Image"))


@pytest.fixture(scope="module")
def seeds(synth_root: Path, synth_logs: dict[str, Path]) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for layout in LAYOUTS:
        path = synth_root if layout == "dataroot" else synth_logs[layout]
        src = open_source(path, version=SYNTH_VERSION, scene=SYNTH_SCENE)
        for m in src.messages():
            key = f"{layout}/{m.channel}"
            if key in SEEDS and key not in out:
                out[key] = (m.decoder, m.raw, PAYLOAD[m.kind])
    for fmt in ("cdr", "ros1"):
        out[f"{fmt}/image"] = (partial(dec.decode_ros_image, fmt=fmt), _ros_image(fmt), CameraImage)
    lidar, radar = out["mcap/LIDAR_TOP"][1], out["mcap/RADAR_FRONT"][1]
    out["foxglove/pointcloud-lidar"] = (dec.decode_foxglove_pointcloud, lidar, LidarScan)
    out["foxglove/pointcloud-radar"] = (dec.decode_foxglove_pointcloud, radar, RadarScan)
    assert set(out) == set(SEEDS)
    for decoder, raw, payload in out.values():  # every seed is a valid message
        assert isinstance(decoder(raw, "seed"), payload)
    return out


@st.composite
def mutated(draw: st.DrawFn, raw: bytes) -> bytes:
    b = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        n = len(b)
        op = draw(st.sampled_from(["flip", "cut", "overwrite", "extend", "insert"]))
        pos = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            b[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del b[pos:]
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            b[pos : pos + len(chunk)] = chunk
        elif op == "extend":
            b += draw(st.binary(min_size=1, max_size=64))
        else:
            b[pos:pos] = draw(st.binary(min_size=1, max_size=8))
    return bytes(b)


def _check(decoder, payload: type, raw: bytes) -> None:  # noqa: ANN001
    try:
        out = decoder(raw, "fuzzed-origin")
    except DataError as err:
        assert err.path == "fuzzed-origin"
        return
    assert isinstance(out, payload)


@pytest.mark.parametrize("name", SEEDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decoders_parse_or_raise_data_error(name: str, seeds: dict[str, tuple], data) -> None:  # noqa: ANN001
    decoder, raw, payload = seeds[name]
    bytes_in = data.draw(st.one_of(st.binary(max_size=256), mutated(raw)), label="bytes")
    _check(decoder, payload, bytes_in)


def test_a_decoded_pose_is_its_translation_and_quaternion_and_its_matrix_when_asked() -> None:
    """A pose record decodes to its translation and unit quaternion (w >= 0, the sign
    `Transform.quaternion` gives); the matrix, built when first asked for, is
    `Transform.from_translation_quaternion`'s. A pose from a Transform gives the same views."""
    from calibration import Transform

    q = np.array([-0.6, 0.1, -0.3, 0.2])
    q = q / np.linalg.norm(q)
    pose = dec.decode_pose_record(dec.pose_record(np.array([1.0, -2.0, 3.5]), q), "p")
    assert isinstance(pose, EgoPose)
    np.testing.assert_array_equal(pose.translation, [1.0, -2.0, 3.5])
    np.testing.assert_allclose(pose.quaternion, -q, atol=1e-15)  # w >= 0
    assert not pose.translation.flags.writeable and not pose.quaternion.flags.writeable
    want = Transform.from_translation_quaternion([1.0, -2.0, 3.5], q, src="ego", dst="global")
    assert pose.ego_to_global.allclose(want, atol=1e-12)
    assert pose.ego_to_global is pose.ego_to_global  # built once
    other = EgoPose(want)
    np.testing.assert_allclose(other.quaternion, pose.quaternion, atol=1e-12)
    np.testing.assert_array_equal(other.translation, want.translation)
    with pytest.raises(ValueError, match="EgoPose takes"):
        EgoPose(want, translation=np.zeros(3), quaternion=np.array([1.0, 0, 0, 0]))
    with pytest.raises(ValueError, match="EgoPose takes"):
        EgoPose(translation=np.zeros(3))
