"""Full-size CUDA checks on a real GPU (the simulator only runs tiny inputs): every CUDA kernel
against the numpy oracle on the real keyframe, and torch CUDA tensors in and out."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from shared_data import REAL_ROOT

import kernels as K

pytestmark = pytest.mark.gpu
bench = importlib.import_module("fusion.bench.kernels")


@pytest.fixture(scope="module", autouse=True)
def real_gpu() -> None:
    from numba import config, cuda

    if config.ENABLE_CUDASIM or not cuda.is_available():
        pytest.skip("needs a CUDA GPU (numba finds none, or runs its simulator)")


@pytest.mark.parametrize("mode", ["hard", "dynamic"])
def test_voxelize_real_and_ten_sweeps(real_scan, mode) -> None:
    for pts in (real_scan, bench.ten_sweeps(real_scan)):
        for size, p, mv in [((0.2, 0.2, 8.0), 20, 30000), ((0.1, 0.1, 0.2), 5, 60000)]:
            ref = K.voxelize(pts, size, bench.POINT_RANGE, p, mv, mode, backend="numpy")
            got = K.voxelize(pts, size, bench.POINT_RANGE, p, mv, mode, backend="cuda")
            np.testing.assert_array_equal(got.coords, ref.coords)
            if mode == "hard":
                np.testing.assert_array_equal(got.features, ref.features)
                np.testing.assert_array_equal(got.num_points, ref.num_points)
            else:
                np.testing.assert_array_equal(got.point_voxel, ref.point_voxel)


def test_scatter_and_radar(real_scan) -> None:
    v = K.voxelize(real_scan, (0.2, 0.2, 0.2), bench.POINT_RANGE, 20, 60000)
    feats = np.random.default_rng(0).standard_normal((len(v.coords), 16)).astype(np.float32)
    np.testing.assert_array_equal(
        K.scatter_bev(feats, v.coords, (512, 512), backend="cuda"),
        K.scatter_bev(feats, v.coords, (512, 512), backend="numpy"),
    )
    np.testing.assert_array_equal(
        K.rasterize_radar(real_scan, bench.BEV_RANGE, bench.BEV_CELL, backend="cuda"),
        K.rasterize_radar(real_scan, bench.BEV_RANGE, bench.BEV_CELL, backend="numpy"),
    )


def test_bev_pool_real_rig() -> None:
    g = K.precompute_bev_pool(
        bench.frustum_points(*bench.real_rig(REAL_ROOT)), bench.BEV_RANGE, bench.BEV_CELL
    )
    rng = np.random.default_rng(0)
    depth = rng.random((6, 48, 16, 44)).astype(np.float32)
    context = rng.standard_normal((6, 64, 16, 44)).astype(np.float32)
    ref = K.bev_pool(depth, context, g, backend="numpy")
    np.testing.assert_allclose(
        K.bev_pool(depth, context, g, backend="cuda"), ref, rtol=1e-4, atol=1e-4
    )
    grad = rng.standard_normal(ref.shape).astype(np.float32)
    for a, b in zip(
        K.bev_pool_backward(grad, depth, context, g, backend="cuda"),
        K.bev_pool_backward(grad, depth, context, g, backend="numpy"),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_points_in_boxes_and_nms(real_scan) -> None:
    rng = np.random.default_rng(0)
    boxes = np.c_[
        rng.uniform(-40, 40, (300, 2)),
        rng.uniform(-2, 1, 300),
        rng.uniform(1, 6, (300, 3)),
        rng.uniform(-3, 3, 300),
    ]
    xyz = real_scan[:, :3]
    np.testing.assert_array_equal(
        K.points_in_boxes(xyz, boxes, backend="cuda"),
        K.points_in_boxes(xyz, boxes, backend="numba"),
    )
    np.testing.assert_array_equal(
        K.count_points_in_boxes(xyz, boxes, backend="cuda"),
        K.count_points_in_boxes(xyz, boxes, backend="numba"),
    )
    scores = rng.random(300)
    np.testing.assert_array_equal(
        K.nms_bev(boxes, scores, 0.2, backend="cuda"),
        K.nms_bev(boxes, scores, 0.2, backend="numba"),
    )
    np.testing.assert_array_equal(
        K.circle_nms(boxes, scores, 2.0, backend="cuda"),
        K.circle_nms(boxes, scores, 2.0, backend="numba"),
    )


def test_torch_cuda_tensors_stay_on_gpu(real_scan) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    t = torch.from_numpy(real_scan).cuda()
    v = K.voxelize(t, (0.2, 0.2, 8.0), bench.POINT_RANGE, 20, 30000)
    assert v.features.is_cuda and v.coords.dtype == torch.int32
    ref = K.voxelize(real_scan, (0.2, 0.2, 8.0), bench.POINT_RANGE, 20, 30000, backend="numpy")
    np.testing.assert_array_equal(v.features.cpu().numpy(), ref.features)
    g = K.precompute_bev_pool(
        bench.frustum_points(*bench.real_rig(REAL_ROOT)), bench.BEV_RANGE, bench.BEV_CELL
    )
    depth = torch.rand(6, 48, 16, 44, device="cuda", requires_grad=True)
    context = torch.randn(6, 64, 16, 44, device="cuda", requires_grad=True)
    out = K.bev_pool_torch(depth, context, g)
    assert out.is_cuda
    out.square().sum().backward()
    d_cpu = depth.detach().cpu().requires_grad_()
    c_cpu = context.detach().cpu().requires_grad_()
    K.bev_pool_torch(d_cpu, c_cpu, g).square().sum().backward()
    torch.testing.assert_close(depth.grad.cpu(), d_cpu.grad, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(context.grad.cpu(), c_cpu.grad, rtol=1e-3, atol=1e-3)
