"""Property-based: random and mutated bytes fed to every file reader (LIDAR, radar, JPEG, CAN bus
JSON, splits JSON) either parse to a plausible result or raise DataError: nothing else escapes.
Examples are bounded so the module stays well under a minute on 2 cores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import REAL_ROOT

from fusion.data.canbus import load_can_bus
from fusion.data.reader import load_splits
from fusion.data.sensor_io import (
    LIDAR_BEAMS,
    LIDAR_MAX_COORD_M,
    RADAR_FIELDS,
    decode_jpeg,
    decode_lidar_bin,
    decode_radar_pcd,
)
from fusion.errors import DataError

REAL = REAL_ROOT
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _lidar_seed() -> bytes:
    path = next((REAL / "samples" / "LIDAR_TOP").iterdir())
    return path.read_bytes()[: 20 * 200]  # 200 real points


def _jpeg_seed() -> bytes:
    import simplejpeg

    rng = np.random.default_rng(0)
    return simplejpeg.encode_jpeg(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), quality=80)


def _radar_seed() -> bytes:
    from radar_seed import radar_bytes

    return radar_bytes()


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few byte flips, a cut, an insertion or a splice of random bytes."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "splice"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        match op:
            case "flip":
                data[i] = draw(st.integers(0, 255))
            case "cut":
                del data[i : i + draw(st.integers(1, 64))]
            case "insert":
                data[i:i] = draw(st.binary(max_size=16))
            case "splice":
                chunk = draw(st.binary(min_size=1, max_size=32))
                data[i : i + len(chunk)] = chunk
    return bytes(data)


def _either(fn, *args):  # noqa: ANN001, ANN202
    try:
        return fn(*args)
    except DataError as err:
        assert err.path is not None and err.reason
        return None


@SETTINGS
@given(st.one_of(st.binary(max_size=400), mutated(_lidar_seed())))
def test_lidar_decoder(raw: bytes) -> None:
    pts = _either(decode_lidar_bin, raw, "x.pcd.bin")
    if pts is not None:
        assert pts.dtype == np.float32 and pts.shape[1] == 5 and len(pts) > 0
        assert np.isfinite(pts).all() and np.abs(pts[:, :3]).max() <= LIDAR_MAX_COORD_M
        assert pts[:, 4].max() <= LIDAR_BEAMS - 1


@SETTINGS
@given(st.one_of(st.binary(max_size=600), mutated(_radar_seed())))
def test_radar_decoder(raw: bytes) -> None:
    pts = _either(decode_radar_pcd, raw, "x.pcd")
    if pts is not None:
        assert pts.shape[0] == len(RADAR_FIELDS) and np.isfinite(pts).all()


@SETTINGS
@given(st.one_of(st.binary(max_size=400), mutated(_jpeg_seed())))
def test_jpeg_decoder(raw: bytes) -> None:
    img = _either(decode_jpeg, raw, "x.jpg", (24, 32))
    if img is not None:
        assert img.shape == (24, 32, 3) and img.dtype == np.uint8


def _can_seed() -> bytes:
    msgs = [
        {"utime": 1_000_000 + 20_000 * i, "pos": [i * 0.2, 0.0, 0.0],
         "orientation": [1.0, 0.0, 0.0, 0.0], "vel": [10.0, 0.0, 0.0]}
        for i in range(5)
    ]  # fmt: skip
    return json.dumps(msgs).encode()


@pytest.fixture(scope="module")
def can_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("can")
    (root / "can_bus").mkdir()
    return root


@SETTINGS
@given(st.one_of(st.binary(max_size=200), mutated(_can_seed())))
def test_can_bus_reader(can_root: Path, raw: bytes) -> None:
    (can_root / "can_bus" / "scene-0001_pose.json").write_bytes(raw)
    can = _either(load_can_bus, can_root, "scene-0001")
    if can is not None:
        assert np.isfinite(can.pose.translations).all() and len(can.pose) > 0
        assert np.isfinite(can.velocity(int(can.pose.timestamps_us[0]))).all()


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=200),
        mutated(json.dumps({"synth_val": ["scene-0001"], "synth_train": []}).encode()),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids),
            max_leaves=8,
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_splits_reader(tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "splits.json"
    path.write_bytes(raw)
    splits = _either(load_splits, path)
    if splits is not None:
        assert all(
            isinstance(v, list) and all(isinstance(n, str) for n in v) for v in splits.values()
        )
