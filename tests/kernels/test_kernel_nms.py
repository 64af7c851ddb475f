"""BEV IoU against shapely; nms_bev / circle_nms backends against independent references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_params import SMALL_BACKENDS

from kernels import bev_iou, circle_nms, nms_bev

shapely = pytest.importorskip("shapely", reason="shapely not installed")
from shapely.geometry import Polygon  # noqa: E402


def polygon(b: np.ndarray) -> Polygon:
    x, y, _, l, w, _, yaw = b
    c, s = np.cos(yaw), np.sin(yaw)
    return Polygon(
        [
            (x + dx * c - dy * s, y + dx * s + dy * c)
            for dx, dy in [(l / 2, w / 2), (-l / 2, w / 2), (-l / 2, -w / 2), (l / 2, -w / 2)]
        ]
    )


def shapely_iou(a: np.ndarray, b: np.ndarray) -> float:
    pa, pb = polygon(a), polygon(b)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union > 0 else 0.0


def random_boxes(rng: np.random.Generator, m: int, spread: float = 6.0) -> np.ndarray:
    return np.c_[
        rng.uniform(-spread, spread, (m, 2)),
        np.zeros(m),
        rng.uniform(0.5, 4, (m, 2)),
        np.ones(m),
        rng.uniform(-np.pi, np.pi, m),
    ]


box = st.tuples(
    st.floats(-3, 3), st.floats(-3, 3), st.floats(0.1, 5), st.floats(0.1, 5), st.floats(-7, 7)
)


@settings(max_examples=150, deadline=None)
@given(box, box)
def test_iou_equals_shapely(a, b) -> None:
    ba = np.array([a[0], a[1], 0, a[2], a[3], 1, a[4]])
    bb = np.array([b[0], b[1], 0, b[2], b[3], 1, b[4]])
    assert abs(bev_iou(ba, bb) - shapely_iou(ba, bb)) < 1e-9


def test_iou_special_cases() -> None:
    a = np.array([0, 0, 0, 2, 1, 1, 0.0])
    assert bev_iou(a, a) == pytest.approx(1.0, abs=1e-12)
    assert bev_iou(a, a + [0, 0, 0, 0, 0, 0, np.pi]) == pytest.approx(1.0, abs=1e-12)
    assert bev_iou(a, a + [2, 0, 0, 0, 0, 0, 0]) == 0.0  # touching edges
    assert bev_iou(a, a + [1, 0, 0, 0, 0, 0, 0]) == pytest.approx(1 / 3, abs=1e-12)
    assert bev_iou(a, a + [50, 0, 0, 0, 0, 0, 0]) == 0.0


def greedy_shapely(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if all(shapely_iou(boxes[k], boxes[i]) <= thr for k in keep):
            keep.append(int(i))
    return keep


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_nms_bev_matches_shapely_greedy(backend) -> None:
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 40)
    scores = rng.random(40)
    scores[5] = scores[6]  # a tie: lower index first
    ref = greedy_shapely(boxes, scores, 0.1)
    got = np.asarray(nms_bev(boxes, scores, 0.1, backend=backend))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ref)
    assert 0 < len(ref) < 40
    assert len(np.asarray(nms_bev(np.zeros((0, 7)), np.zeros(0), 0.1, backend=backend))) == 0


def circle_reference(centers: np.ndarray, scores: np.ndarray, radius: float) -> list[int]:
    """CenterPoint's loop, with its squared-distance threshold = radius**2."""
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(order), bool)
    keep = []
    for a, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        for j in order[a + 1 :]:
            if (centers[i, 0] - centers[j, 0]) ** 2 + (
                centers[i, 1] - centers[j, 1]
            ) ** 2 <= radius**2:
                suppressed[j] = True
    return keep


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_circle_nms(backend) -> None:
    rng = np.random.default_rng(1)
    centers = rng.uniform(-5, 5, (60, 3))
    centers[1, :2] = centers[0, :2] + [1.0, 0.0]  # exactly at the radius: suppressed
    scores = rng.random(60)
    scores[0], scores[1] = 0.99, 0.98
    got = np.asarray(circle_nms(centers, scores, 1.0, backend=backend))
    np.testing.assert_array_equal(got, circle_reference(centers, scores, 1.0))
    assert 1 not in got.tolist()


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 30), st.floats(0.0, 0.9), st.integers(0, 2**31))
def test_property_numba_equals_oracle(m, thr, seed) -> None:
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, m, 4.0)
    scores = rng.random(m)
    np.testing.assert_array_equal(
        nms_bev(boxes, scores, thr, backend="numba"), nms_bev(boxes, scores, thr, backend="numpy")
    )
    np.testing.assert_array_equal(
        circle_nms(boxes, scores, thr * 3, backend="numba"),
        circle_nms(boxes, scores, thr * 3, backend="numpy"),
    )


def test_nan_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        nms_bev(np.full((2, 7), np.nan), np.ones(2), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        circle_nms(np.zeros((2, 2)), np.array([1.0, np.nan]), 0.5)
