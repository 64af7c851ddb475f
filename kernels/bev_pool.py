"""Fused camera-to-BEV pooling (the lift-splat step of BEVFusion).

`precompute_bev_pool` runs once per calibration: it bins every frustum point (camera n, depth
bin d, feature pixel h, w) into its BEV cell and sorts the points by cell into intervals, as
BEVFusion's bev_pool does. `bev_pool` then computes

    out[c, iy, ix] = sum over frustum points (n, d, h, w) in column (ix, iy)
                     of depth[n, d, h, w] * context[n, c, h, w]

walking each interval once with a small accumulator (C values per cell, in bands of 256 cells
on the CPU, one value per GPU thread), so the depth x context outer product is never stored.
Points outside the range contribute nothing; so do NaN frustum points. Backends agree to float
rounding (allclose): the CPU kernel is vectorized with fastmath and the GPU fuses multiply-adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import cuda

from kernels import _backend, _cuda_segments
from kernels._backend import KernelBackend


@dataclass(frozen=True)
class BevPoolGeometry:
    """Frustum points binned to BEV cells, sorted by cell (host numpy arrays).

    point_cell: (Ncam*D*H*W,) int32 cell iy*nx + ix of each frustum point, -1 outside;
    sorted_points: (K,) int32 flat frustum indices of the K points inside, sorted by cell;
    sorted_pixels: (K,) int32 camera-pixel index n*H*W + h*W + w of those points;
    interval_starts, interval_cells: (I,) int32 start in sorted_points and cell of each run;
    interval_starts has a final sentinel K, so its length is I + 1.
    """

    num_cams: int
    depth_bins: int
    height: int
    width: int
    nx: int
    ny: int
    point_cell: np.ndarray
    sorted_points: np.ndarray
    sorted_pixels: np.ndarray
    interval_starts: np.ndarray
    interval_cells: np.ndarray

    @property
    def num_points_inside(self) -> int:
        return int(self.sorted_points.shape[0])


def precompute_bev_pool(frustum_points: Any, bev_range: Any, cell_size: Any) -> BevPoolGeometry:
    """Bin frustum points (Ncam, D, H, W, 3) in m (ego or LIDAR frame: that of the BEV grid).

    bev_range: (x0, y0, z0, x1, y1, z1) m; cell_size: (dx, dy, dz) m. The grid has
    round((x1 - x0) / dx) x round((y1 - y0) / dy) cells; z only gates (points outside
    [z0, z1) are dropped), all heights of one column pool together.
    """
    pts = _backend.to_host(frustum_points, np.float64)
    if pts.ndim != 5 or pts.shape[-1] != 3:
        raise ValueError(f"frustum_points must be (Ncam, D, H, W, 3), got {pts.shape}")
    rng = np.asarray(bev_range, np.float64).reshape(6)
    size = np.asarray(cell_size, np.float64).reshape(3)
    lo = rng[:3]
    shape = np.floor((rng[3:] - lo) / size + 0.5).astype(np.int64)
    if np.any(shape < 1):
        raise ValueError(f"empty BEV grid from bev_range {bev_range} and cell_size {cell_size}")
    ncam, d, h, w, _ = pts.shape
    cell = np.floor((pts.reshape(-1, 3) - lo) / size)
    inside = np.all((cell >= 0) & (cell < shape), axis=1)
    point_cell = np.full(cell.shape[0], -1, np.int32)
    ci = cell[inside].astype(np.int64)
    point_cell[inside] = (ci[:, 1] * shape[0] + ci[:, 0]).astype(np.int32)
    idx = np.flatnonzero(inside)
    order = np.argsort(point_cell[idx], kind="stable")
    sorted_points = idx[order].astype(np.int32)
    sorted_cells = point_cell[sorted_points]
    is_start = np.ones(len(sorted_cells), bool)
    is_start[1:] = sorted_cells[1:] != sorted_cells[:-1]
    starts = np.flatnonzero(is_start)
    return BevPoolGeometry(
        num_cams=ncam,
        depth_bins=d,
        height=h,
        width=w,
        nx=int(shape[0]),
        ny=int(shape[1]),
        point_cell=point_cell,
        sorted_points=sorted_points,
        sorted_pixels=((sorted_points // (d * h * w)) * (h * w) + sorted_points % (h * w)).astype(
            np.int32
        ),
        interval_starts=np.append(starts, len(sorted_cells)).astype(np.int32),
        interval_cells=sorted_cells[starts].astype(np.int32),
    )


def _check(depth: Any, context: Any, g: BevPoolGeometry) -> None:
    ds, cs = tuple(depth.shape), tuple(context.shape)
    if ds != (g.num_cams, g.depth_bins, g.height, g.width):
        raise ValueError(
            f"depth {ds} does not match the geometry "
            f"{(g.num_cams, g.depth_bins, g.height, g.width)}"
        )
    if len(cs) != 4 or (cs[0], cs[2], cs[3]) != (g.num_cams, g.height, g.width):
        raise ValueError(f"context {cs} must be (Ncam, C, H, W) matching the geometry")
    if depth.dtype != context.dtype:
        raise ValueError(f"depth and context dtypes differ: {depth.dtype} vs {context.dtype}")


# ---------------------------------------------------------------- numpy reference (the oracle)


def _split(flat: np.ndarray, g: BevPoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Camera*pixel index (n*HW + hw) of flat frustum indices."""
    hw = g.height * g.width
    n = flat // (g.depth_bins * hw)
    return n * hw + flat % hw, n


def _forward_numpy(depth: np.ndarray, context: np.ndarray, g: BevPoolGeometry) -> np.ndarray:
    c = context.shape[1]
    ctx = context.transpose(0, 2, 3, 1).reshape(-1, c)  # (Ncam*H*W, C)
    k = g.sorted_points
    pix, _ = _split(k.astype(np.int64), g)
    contrib = depth.reshape(-1)[k, None] * ctx[pix]
    flat = np.zeros((g.ny * g.nx, c), depth.dtype)
    np.add.at(flat, g.point_cell[k], contrib)
    return np.ascontiguousarray(flat.T).reshape(c, g.ny, g.nx)


def _backward_numpy(
    grad: np.ndarray, depth: np.ndarray, context: np.ndarray, g: BevPoolGeometry
) -> tuple[np.ndarray, np.ndarray]:
    c = context.shape[1]
    ctx = context.transpose(0, 2, 3, 1).reshape(-1, c)
    gflat = grad.reshape(c, -1).T  # (ny*nx, C)
    k = g.sorted_points
    pix, _ = _split(k.astype(np.int64), g)
    cells = g.point_cell[k]
    grad_depth = np.zeros(depth.size, depth.dtype)
    grad_depth[k] = np.einsum("kc,kc->k", gflat[cells], ctx[pix])
    gctx = np.zeros_like(ctx)
    np.add.at(gctx, pix, depth.reshape(-1)[k, None] * gflat[cells])
    gctx = gctx.reshape(g.num_cams, g.height, g.width, c).transpose(0, 3, 1, 2)
    return grad_depth.reshape(depth.shape), np.ascontiguousarray(gctx)


# ---------------------------------------------------------------- numba CPU


# Cells per band of the CPU forward: a band's accumulator (256 x C floats, 64 KB at C = 64)
# stays in L2, and each channel plane is then written as one contiguous run of 256 values.
# Writing a few scattered cells into all C planes at once (planes 64 KB apart) made every
# store miss: the planes alias to the same cache sets.
_BAND = 256


# Bands are independent, so they run on all cores (`prange`; NUMBA_NUM_THREADS caps it).
# fastmath lets LLVM vectorize the channel loop (reassociation only; the sums stay within
# allclose of the oracle).
@numba.njit(cache=True, fastmath=True, error_model="numpy", parallel=True)
def _forward_numba(
    depth: np.ndarray,
    ctx: np.ndarray,
    sorted_points: np.ndarray,
    sorted_pixels: np.ndarray,
    starts: np.ndarray,
    cells: np.ndarray,
    ny: int,
    nx: int,
) -> np.ndarray:
    """depth flat (Ncam*D*H*W,), ctx (Ncam*H*W, C) channel-last -> (C, ny, nx)."""
    c_count = ctx.shape[1]
    n_cells = ny * nx
    out = np.empty((c_count, n_cells), depth.dtype)
    n_bands = (n_cells + _BAND - 1) // _BAND
    # intervals ascend by cell: band b owns intervals edges[b] .. edges[b + 1]
    edges = np.searchsorted(cells, np.arange(n_bands + 1) * _BAND)
    for b in numba.prange(n_bands):
        lo = b * _BAND
        hi = min(lo + _BAND, n_cells)
        buf = np.zeros((_BAND, c_count), depth.dtype)
        for it in range(edges[b], edges[b + 1]):
            acc = buf[cells[it] - lo]
            for j in range(starts[it], starts[it + 1]):
                dv = depth[sorted_points[j]]
                pix = sorted_pixels[j]
                for c in range(c_count):
                    acc[c] += dv * ctx[pix, c]
        for c in range(c_count):
            plane = out[c]
            for k in range(hi - lo):
                plane[lo + k] = buf[k, c]
    return out.reshape(c_count, ny, nx)


@numba.njit(cache=True, fastmath=True, error_model="numpy", parallel=True)
def _backward_numba(
    gflat: np.ndarray,
    depth: np.ndarray,
    ctx: np.ndarray,
    point_cell: np.ndarray,
    d_bins: int,
    hw: int,
) -> tuple[np.ndarray, np.ndarray]:
    """gflat (ny*nx, C), depth flat, ctx (Ncam*H*W, C) -> grad depth flat, grad ctx like ctx."""
    c_count = ctx.shape[1]
    n_pix = ctx.shape[0]
    grad_depth = np.zeros(depth.shape[0], depth.dtype)
    grad_ctx = np.zeros((n_pix, c_count), depth.dtype)
    # one pixel per iteration: it owns its D depth entries and its context row (no races)
    for pix in numba.prange(n_pix):
        n = pix // hw
        q = pix - n * hw
        for d in range(d_bins):
            p = (n * d_bins + d) * hw + q
            cell = point_cell[p]
            if cell < 0:
                continue
            dv = depth[p]
            s = 0.0
            for c in range(c_count):
                gv = gflat[cell, c]
                s += gv * ctx[pix, c]
                grad_ctx[pix, c] += dv * gv
            grad_depth[p] = s
    return grad_depth, grad_ctx


# ---------------------------------------------------------------- numba CUDA


@cuda.jit(device=True)
def _unravel(t: int, b_count: int, hw: int, w: int) -> tuple[int, int, int, int]:
    """Flat index t of a C-contiguous (A, B, H, W) array -> (a, b, h, x); hw = H * W."""
    a = t // (b_count * hw)
    r = t - a * (b_count * hw)
    b = r // hw
    pix = r - b * hw
    h = pix // w
    return a, b, h, pix - h * w


@cuda.jit
def _forward_kernel(
    depth: Any,
    context: Any,
    sorted_points: Any,
    starts: Any,
    cell_interval: Any,
    d_bins: int,
    hw: int,
    zero: Any,
    out: Any,
) -> None:
    """One thread per (channel, cell): neighbouring threads write neighbouring cells, every
    output element is written once (no separate zero fill)."""
    t = cuda.grid(1)
    c_count = out.shape[0]
    nx = out.shape[2]
    n_cells = out.shape[1] * nx
    if t >= c_count * n_cells:
        return
    c = t // n_cells
    cell = t - c * n_cells
    w = context.shape[3]
    acc = zero[0]
    it = cell_interval[cell]
    if it >= 0:
        for j in range(starts[it], starts[it + 1]):
            n, d, h, x = _unravel(sorted_points[j], d_bins, hw, w)
            acc += depth[n, d, h, x] * context[n, c, h, x]
    iy = cell // nx
    out[c, iy, cell - iy * nx] = acc


@cuda.jit
def _grad_depth_kernel(
    grad: Any, context: Any, point_cell: Any, d_bins: int, nx: int, zero: Any, out: Any
) -> None:
    """One thread per frustum point: dot of its cell's gradient and its pixel's context."""
    p = cuda.grid(1)
    if p >= point_cell.shape[0]:
        return
    h_count = context.shape[2]
    w = context.shape[3]
    hw = h_count * w
    n, d, h, x = _unravel(p, d_bins, hw, w)
    cell = point_cell[p]
    s = zero[0]
    if cell >= 0:
        iy = cell // nx
        ix = cell - iy * nx
        for c in range(context.shape[1]):
            s += grad[c, iy, ix] * context[n, c, h, x]
    out[n, d, h, x] = s


@cuda.jit
def _grad_context_kernel(
    grad: Any, depth: Any, point_cell: Any, nx: int, zero: Any, out: Any
) -> None:
    """One thread per (camera, channel, pixel): sum over its depth bins."""
    t = cuda.grid(1)
    ncam = out.shape[0]
    c_count = out.shape[1]
    h_count = out.shape[2]
    w = out.shape[3]
    hw = h_count * w
    if t >= ncam * c_count * hw:
        return
    n, c, h, x = _unravel(t, c_count, hw, w)
    d_bins = depth.shape[1]
    s = zero[0]
    for d in range(d_bins):
        cell = point_cell[((n * d_bins + d) * h_count + h) * w + x]
        if cell >= 0:
            iy = cell // nx
            s += depth[n, d, h, x] * grad[c, iy, cell - iy * nx]
    out[n, c, h, x] = s


def _forward_cuda(depth: Any, context: Any, g: BevPoolGeometry) -> Any:
    d_depth = _backend.to_device(depth)
    d_ctx = _backend.to_device(context)
    c_count = d_ctx.shape[1]
    out = cuda.device_array((c_count, g.ny, g.nx), d_depth.dtype)
    n = out.size
    if n:
        dev = _device_geometry(g)
        _forward_kernel[_backend.blocks(n), _backend.THREADS_PER_BLOCK](
            d_depth,
            d_ctx,
            dev.sorted_points,
            dev.interval_starts,
            dev.cell_interval,
            g.depth_bins,
            g.height * g.width,
            _cuda_segments.zero_scalar(d_depth.dtype.str),
            out,
        )
    return out


def _backward_cuda(grad_out: Any, depth: Any, context: Any, g: BevPoolGeometry) -> tuple[Any, Any]:
    d_depth = _backend.to_device(depth)
    d_grad = _backend.to_device(grad_out, d_depth.dtype)
    d_ctx = _backend.to_device(context)
    dev = _device_geometry(g)
    zero = _cuda_segments.zero_scalar(d_depth.dtype.str)
    gd = cuda.device_array(d_depth.shape, d_depth.dtype)
    gc = cuda.device_array(d_ctx.shape, d_ctx.dtype)
    n = g.point_cell.shape[0]
    if n:
        _grad_depth_kernel[_backend.blocks(n), _backend.THREADS_PER_BLOCK](
            d_grad, d_ctx, dev.point_cell, g.depth_bins, g.nx, zero, gd
        )
    m = gc.size
    if m:
        _grad_context_kernel[_backend.blocks(m), _backend.THREADS_PER_BLOCK](
            d_grad, d_depth, dev.point_cell, g.nx, zero, gc
        )
    return gd, gc


@dataclass(frozen=True)
class _DeviceGeometry:
    point_cell: Any
    sorted_points: Any
    interval_starts: Any
    cell_interval: Any  # (ny*nx,) int32 interval of each cell, -1 where none


# Geometry is fixed per calibration: upload it once per geometry object, not per call
# (one GPU per process assumed, as torchrun/DDP runs).
_DEVICE_GEOMETRY: dict[int, tuple[BevPoolGeometry, _DeviceGeometry]] = {}


def _device_geometry(g: BevPoolGeometry) -> _DeviceGeometry:
    hit = _DEVICE_GEOMETRY.get(id(g))
    if hit is not None and hit[0] is g:
        return hit[1]
    cell_interval = np.full(g.ny * g.nx, -1, np.int32)
    cell_interval[g.interval_cells] = np.arange(len(g.interval_cells), dtype=np.int32)
    dev = _DeviceGeometry(
        cuda.to_device(g.point_cell),
        cuda.to_device(g.sorted_points),
        cuda.to_device(g.interval_starts),
        cuda.to_device(cell_interval),
    )
    if len(_DEVICE_GEOMETRY) >= 8:
        _DEVICE_GEOMETRY.clear()
    _DEVICE_GEOMETRY[id(g)] = (g, dev)
    return dev


def _ctx_last(context: np.ndarray) -> np.ndarray:
    c = context.shape[1]
    return np.ascontiguousarray(context.transpose(0, 2, 3, 1)).reshape(-1, c)


# ---------------------------------------------------------------- public


def bev_pool(
    depth: Any, context: Any, geometry: BevPoolGeometry, *, backend: KernelBackend = "auto"
) -> Any:
    """Pool depth (Ncam, D, H, W) x context (Ncam, C, H, W) into a BEV map (C, ny, nx).

    depth and context share a float dtype (float32 or float64), which the output keeps; the
    result is like `depth` (numpy, tensor on its device, or device array).
    """
    _check(depth, context, geometry)
    which = _backend.resolve(backend, depth, context)
    g = geometry
    match which:
        case "numpy":
            out = _forward_numpy(_backend.to_host(depth), _backend.to_host(context), g)
        case "numba":
            out = _forward_numba(
                np.ascontiguousarray(_backend.to_host(depth)).reshape(-1),
                _ctx_last(_backend.to_host(context)),
                g.sorted_points,
                g.sorted_pixels,
                g.interval_starts,
                g.interval_cells,
                g.ny,
                g.nx,
            )
        case "cuda":
            out = _forward_cuda(depth, context, g)
    return _backend.like(out, depth)


def bev_pool_backward(
    grad_out: Any,
    depth: Any,
    context: Any,
    geometry: BevPoolGeometry,
    *,
    backend: KernelBackend = "auto",
) -> tuple[Any, Any]:
    """Gradients (d depth, d context) of `bev_pool` for an upstream gradient (C, ny, nx)."""
    _check(depth, context, geometry)
    which = _backend.resolve(backend, grad_out, depth, context)
    g = geometry
    match which:
        case "numpy":
            gd, gc = _backward_numpy(
                _backend.to_host(grad_out), _backend.to_host(depth), _backend.to_host(context), g
            )
        case "numba":
            grad = _backend.to_host(grad_out)
            c = grad.shape[0]
            gflat = np.ascontiguousarray(grad.reshape(c, -1).T)
            gd, gc = _backward_numba(
                gflat,
                _backend.to_host(depth).reshape(-1),
                _ctx_last(_backend.to_host(context)),
                g.point_cell,
                g.depth_bins,
                g.height * g.width,
            )
            gd = gd.reshape(tuple(depth.shape))
            gc = np.ascontiguousarray(
                gc.reshape(g.num_cams, g.height, g.width, c).transpose(0, 3, 1, 2)
            )
        case "cuda":
            gd, gc = _backward_cuda(grad_out, depth, context, g)
    return _backend.like(gd, depth), _backend.like(gc, context)
