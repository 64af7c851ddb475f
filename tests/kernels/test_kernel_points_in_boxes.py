"""points_in_boxes / count_points_in_boxes: devkit counts on the real keyframe, backends exact."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_params import SMALL_BACKENDS
from shared_data import REAL_ROOT

from kernels import count_points_in_boxes, points_in_boxes


@pytest.fixture(scope="module")
def devkit_frame():
    try:
        from nuscenes.nuscenes import NuScenes
        from nuscenes.utils.data_classes import LidarPointCloud
        from nuscenes.utils.geometry_utils import points_in_box
    except ImportError as exc:
        pytest.skip(f"nuscenes-devkit not installed ({exc})")
    nusc = NuScenes("v1.0-mini", str(REAL_ROOT), verbose=False)
    sample = nusc.sample[0]
    path, boxes, _ = nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
    pc = LidarPointCloud.from_file(path)
    counts = np.array([points_in_box(b, pc.points[:3]).sum() for b in boxes])
    return pc.points[:3].T.copy(), boxes, counts


def to_array(boxes) -> np.ndarray:
    # devkit wlh = (w, l, h); our boxes are (x, y, z, l, w, h, yaw)
    return np.array(
        [[*b.center, b.wlh[1], b.wlh[0], b.wlh[2], b.orientation.yaw_pitch_roll[0]] for b in boxes]
    )


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_counts_equal_devkit_on_real_keyframe(devkit_frame, backend) -> None:
    pts, boxes, devkit_counts = devkit_frame
    assert len(boxes) == 69
    ours = count_points_in_boxes(pts, to_array(boxes), backend=backend)
    np.testing.assert_array_equal(ours, devkit_counts)
    assert devkit_counts.sum() > 0


def test_first_box_index_real(devkit_frame) -> None:
    pts, boxes, _ = devkit_frame
    arr = to_array(boxes)
    ref = points_in_boxes(pts, arr, backend="numpy")
    np.testing.assert_array_equal(points_in_boxes(pts, arr, backend="numba"), ref)
    inside_any = ref >= 0
    assert inside_any.sum() <= count_points_in_boxes(pts, arr).sum()


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_inclusive_boundaries_and_overlaps(backend) -> None:
    boxes = np.array(
        [[0, 0, 0, 4, 2, 2, 0.0], [1, 0, 0, 2, 2, 2, 0.0], [10, 10, 0, 4, 2, 2, np.pi / 2]]
    )
    pts = np.array(
        [
            [2, 1, 1],
            [2.0001, 0, 0],
            [0, -1, -1],
            [1.5, 0, 0],
            [10, 12, 1],
            [11, 10, 0],
            [11.0001, 10, 0],
            [np.nan, 0, 0],
        ],
        np.float32,
    )
    np.testing.assert_array_equal(
        np.asarray(points_in_boxes(pts, boxes, backend=backend)), [0, -1, 0, 0, 2, 2, -1, -1]
    )
    # box 1 spans x in [0, 2]: (2, 1, 1) on its corner, (0, -1, -1) on its face, (1.5, 0, 0) inside
    np.testing.assert_array_equal(
        np.asarray(count_points_in_boxes(pts, boxes, backend=backend)), [3, 3, 2]
    )
    empty = np.zeros((0, 3), np.float32)
    assert np.asarray(points_in_boxes(empty, boxes, backend=backend)).shape == (0,)
    np.testing.assert_array_equal(
        np.asarray(count_points_in_boxes(pts, np.zeros((0, 7)), backend=backend)), []
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 200), st.integers(0, 8), st.sampled_from([5.0, 3000.0]), st.integers(0, 2**31)
)
def test_property_numba_equals_oracle(n, m, spread, seed) -> None:
    # the Numba kernels bin points in >= 2 m cells (wider for spread-out clouds): boxes
    # straddling bins, on bin edges and far from every point must not change the answer
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-spread, spread, (n, 4)).astype(np.float32)
    pts[: n // 4, :2] = np.round(pts[: n // 4, :2])  # on bin edges
    boxes = np.c_[
        rng.uniform(-spread, spread, (m, 3)),
        rng.uniform(0.1, spread, (m, 3)),
        rng.uniform(-4, 4, m),
    ]
    np.testing.assert_array_equal(
        points_in_boxes(pts, boxes, backend="numba"), points_in_boxes(pts, boxes, backend="numpy")
    )
    np.testing.assert_array_equal(
        count_points_in_boxes(pts, boxes, backend="numba"),
        count_points_in_boxes(pts, boxes, backend="numpy"),
    )
