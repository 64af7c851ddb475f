"""Sensor file readers against the devkit's own readers."""

import numpy as np
import pytest

from fusion.data.sensor_io import (
    RADAR_PCD_DTYPE,
    RadarFilter,
    encode_radar_pcd,
    load_lidar_bin,
    load_radar_pcd,
    resolve_inside,
)
from fusion.errors import DataError


def write_radar_pcd(path, rows):
    """Rows of 18 values -> a nuScenes binary radar PCD (with the devkit's one trailing byte)."""
    rec = np.zeros(len(rows), dtype=RADAR_PCD_DTYPE)
    for i, r in enumerate(rows):
        rec[i] = tuple(r)
    path.write_bytes(encode_radar_pcd(rec))


def radar_rows(n=40, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        rows.append(
            [
                *rng.uniform(-50, 50, 2),
                0.0,
                rng.integers(0, 8),
                rng.integers(0, 100),
                rng.uniform(-5, 30),
                *rng.uniform(-10, 10, 4),
                1,
                rng.choice([1, 3, 3, 3]),
                19,
                19,
                rng.choice([0, 0, 0, 5]),
                1,
                17,
                17,
            ]
        )
    return rows


@pytest.mark.parametrize("preset", ["default", "none"])
def test_radar_matches_devkit(tmp_path, preset):
    from nuscenes.utils.data_classes import RadarPointCloud

    path = tmp_path / "r.pcd"
    write_radar_pcd(path, radar_rows())
    ours = load_radar_pcd(path, RadarFilter.preset(preset))
    f = RadarFilter.preset(preset)
    ref = RadarPointCloud.from_file(
        str(path), list(f.invalid_states), list(f.dynprop_states), list(f.ambig_states)
    ).points
    assert ours.shape == ref.shape and ours.shape[0] == 18
    np.testing.assert_array_equal(ours, ref.astype(np.float32))
    if preset == "default":
        assert 0 < ours.shape[1] < 40  # the filters dropped some and kept some


def test_radar_empty_marker_and_truncation(tmp_path):
    path = tmp_path / "empty.pcd"
    write_radar_pcd(path, [[np.nan] * 3 + [0] * 15])
    assert load_radar_pcd(path).shape == (18, 0)
    path = tmp_path / "cut.pcd"
    write_radar_pcd(path, radar_rows(10))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated radar PCD") as e:
        load_radar_pcd(path)
    assert "cut.pcd" in str(e.value)
    path.write_bytes(b"# .PCD v0.7\nVERSION 0.7\n")
    with pytest.raises(DataError, match="header"):
        load_radar_pcd(path)


def test_lidar_bin_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.normal(scale=30.0, size=(100, 5)).astype(np.float32)
    pts[:, 3] = rng.uniform(0, 255, 100)  # intensity 0..255
    pts[:, 4] = rng.integers(0, 32, 100)  # ring 0..31
    pts.tofile(tmp_path / "a.pcd.bin")
    np.testing.assert_array_equal(load_lidar_bin(tmp_path / "a.pcd.bin"), pts)


def test_resolve_inside(tmp_path):
    assert resolve_inside(tmp_path, "samples/x.jpg") == (tmp_path / "samples/x.jpg").resolve()
    for bad in ["../x.jpg", "/etc/passwd", "samples/../../x"]:
        with pytest.raises(DataError, match="outside the dataroot"):
            resolve_inside(tmp_path, bad)


def test_radar_scans_sharing_a_header_layout_decode_each_on_its_own():
    """Scans of one radar repeat their header but for the point count (the layout is parsed once
    per header): each scan decodes to its own points, one cut short after a whole one with the
    same header is still an error naming it, and a bound violation is reported per field."""
    from fusion.data.sensor_io import decode_radar_pcd

    def scan(rows):
        rec = np.zeros(len(rows), dtype=RADAR_PCD_DTYPE)
        for i, r in enumerate(rows):
            rec[i] = tuple(r)
        return encode_radar_pcd(rec), rec

    for n, seed in ((12, 1), (12, 2), (30, 3), (12, 4)):
        raw, rec = scan(radar_rows(n, seed))
        got = decode_radar_pcd(raw, "a.pcd")
        want = np.stack([rec[f].astype(np.float32) for f in RADAR_PCD_DTYPE.names])
        np.testing.assert_array_equal(got, want)
        with pytest.raises(DataError, match="truncated radar PCD") as e:
            decode_radar_pcd(raw[:-50], "b.pcd")
        assert "b.pcd" in str(e.value)
    rows = radar_rows(12, 5)
    rows[3][5] = 150.0  # rcs beyond +100 dBsm
    rows[7][6] = 500.0  # vx beyond 200 m/s: the first field in the check's order is named
    with pytest.raises(DataError, match=r"1 of 12 radar points have rcs outside") as e:
        decode_radar_pcd(scan(rows)[0], "c.pcd")
    assert "first: 150" in str(e.value) and "c.pcd" in str(e.value)
