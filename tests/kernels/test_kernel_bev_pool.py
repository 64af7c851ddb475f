"""bev_pool: backends against the oracle and a brute-force sum; gradients by gradcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest
from kernel_params import SMALL_BACKENDS

from kernels import bev_pool, bev_pool_backward, precompute_bev_pool

RANGE = (-8.0, -8.0, -2.0, 8.0, 8.0, 2.0)
CELL = (2.0, 4.0, 4.0)  # 8 x 4 grid


def frustum(rng: np.random.Generator, shape=(2, 5, 3, 4)) -> np.ndarray:
    pts = rng.uniform(-10, 10, (*shape, 3))
    pts[..., 2] = rng.uniform(-3, 3, shape)
    pts[0, 0, 0, 0] = [-8.0, -8.0, -2.0]  # lower corner: inside
    pts[0, 0, 0, 1] = [8.0, 0.0, 0.0]  # upper x edge: outside
    pts[1, 0, 0, 0] = [np.nan, 0.0, 0.0]
    return pts


def brute_force(points: np.ndarray, depth: np.ndarray, context: np.ndarray) -> np.ndarray:
    ncam, d, h, w, _ = points.shape
    c = context.shape[1]
    out = np.zeros((c, 4, 8))
    for idx in np.ndindex(ncam, d, h, w):
        p = points[idx]
        if not np.isfinite(p).all():
            continue
        ix, iy, iz = (math.floor((p[j] - RANGE[j]) / CELL[j]) for j in range(3))
        if 0 <= ix < 8 and 0 <= iy < 4 and iz == 0:
            n, _, y, x = idx
            out[:, iy, ix] += depth[idx] * context[n, :, y, x]
    return out


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_matches_brute_force(backend, dtype) -> None:
    rng = np.random.default_rng(0)
    pts = frustum(rng)
    g = precompute_bev_pool(pts, RANGE, CELL)
    assert (g.nx, g.ny) == (8, 4)
    assert g.point_cell[0] >= 0 and g.point_cell[1] == -1
    depth = rng.random((2, 5, 3, 4)).astype(dtype)
    context = rng.standard_normal((2, 6, 3, 4)).astype(dtype)
    ref = bev_pool(depth, context, g, backend="numpy")
    np.testing.assert_allclose(ref, brute_force(pts, depth, context), rtol=1e-5, atol=1e-5)
    out = np.asarray(bev_pool(depth, context, g, backend=backend))
    assert out.dtype == dtype and out.shape == (6, 4, 8)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_backward_matches_oracle(backend) -> None:
    rng = np.random.default_rng(1)
    g = precompute_bev_pool(frustum(rng), RANGE, CELL)
    depth = rng.random((2, 5, 3, 4))
    context = rng.standard_normal((2, 6, 3, 4))
    grad = rng.standard_normal((6, 4, 8))
    ref = bev_pool_backward(grad, depth, context, g, backend="numpy")
    got = bev_pool_backward(grad, depth, context, g, backend=backend)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10, atol=1e-12)
    # directional derivative: <grad, d out> = <grad_depth, d depth> for the linear map
    dd = rng.standard_normal(depth.shape)
    lhs = np.sum(grad * bev_pool(dd, context, g, backend="numpy"))
    np.testing.assert_allclose(lhs, np.sum(ref[0] * dd), rtol=1e-10)


@pytest.mark.parametrize("backend", SMALL_BACKENDS)
def test_gradcheck(backend) -> None:
    torch = pytest.importorskip("torch")
    from kernels import BevPoolFunction

    rng = np.random.default_rng(2)
    # tiny on purpose: gradcheck calls the forward twice per input element (slow in the simulator)
    pts = rng.uniform(-7, 7, (1, 3, 2, 2, 3))
    pts[..., 2] = 0.0
    pts[0, 1] = pts[0, 0]  # two depth bins share cells, so sums of several terms are checked
    g = precompute_bev_pool(pts, RANGE, CELL)
    assert g.num_points_inside == 12
    depth = torch.rand(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    context = torch.randn(1, 2, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda d, c: BevPoolFunction.apply(d, c, g, backend), (depth, context)
    )


def test_all_outside_and_bad_shapes() -> None:
    pts = np.full((1, 2, 2, 2, 3), 100.0)
    g = precompute_bev_pool(pts, RANGE, CELL)
    assert g.num_points_inside == 0 and len(g.interval_cells) == 0
    out = bev_pool(np.ones((1, 2, 2, 2), np.float32), np.ones((1, 3, 2, 2), np.float32), g)
    np.testing.assert_array_equal(out, np.zeros((3, 4, 8), np.float32))
    with pytest.raises(ValueError):
        bev_pool(np.ones((1, 3, 2, 2), np.float32), np.ones((1, 3, 2, 2), np.float32), g)
    with pytest.raises(ValueError):
        precompute_bev_pool(np.zeros((2, 2, 2, 3)), RANGE, CELL)


def test_numba_large_matches_torch_outer_product() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    pts = rng.uniform(-9, 9, (6, 12, 8, 22, 3))
    g = precompute_bev_pool(pts, RANGE, CELL)
    depth = rng.random((6, 12, 8, 22)).astype(np.float32)
    context = rng.standard_normal((6, 16, 8, 22)).astype(np.float32)
    # torch peer: materialize the outer product, then index_add_ by cell
    prod = torch.from_numpy(depth)[:, :, None] * torch.from_numpy(context)[:, None]  # N D C H W
    flat = prod.permute(0, 1, 3, 4, 2).reshape(-1, 16)
    cell = torch.from_numpy(g.point_cell.astype(np.int64))
    keep = cell >= 0
    ref = (
        torch.zeros(g.ny * g.nx, 16).index_add_(0, cell[keep], flat[keep]).T.reshape(16, g.ny, g.nx)
    )
    np.testing.assert_allclose(
        bev_pool(depth, context, g, backend="numba"), ref.numpy(), rtol=1e-4, atol=1e-4
    )


def test_numba_many_bands_matches_oracle() -> None:
    # 37 x 23 = 851 cells: the CPU kernel's 256-cell bands, the last one partial
    rng = np.random.default_rng(5)
    pts = rng.uniform(-10, 10, (3, 6, 5, 7, 3))
    rng_, cell = (-9.25, -5.75, -2.0, 9.25, 5.75, 2.0), (0.5, 0.5, 4.0)
    g = precompute_bev_pool(pts, rng_, cell)
    assert (g.nx, g.ny) == (37, 23) and g.interval_cells.max() > 512
    depth = rng.random((3, 6, 5, 7))
    context = rng.standard_normal((3, 4, 5, 7))
    ref = bev_pool(depth, context, g, backend="numpy")
    out = bev_pool(depth, context, g, backend="numba")
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
    grad = rng.standard_normal(ref.shape)
    for a, b in zip(
        bev_pool_backward(grad, depth, context, g, backend="numba"),
        bev_pool_backward(grad, depth, context, g, backend="numpy"),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
