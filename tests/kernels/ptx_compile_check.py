"""Compile every CUDA kernel to PTX without a GPU (run by test_kernel_ptx.py in a subprocess).

Needs libNVVM (CUDA_HOME pointing at a CUDA toolkit or at the `nvidia-cuda-nvcc-cu12` wheel's
nvidia/cuda_nvcc folder) and the simulator off. Device functions are compiled for the current
device's compute capability, so one is faked (8.0). Prints one line per kernel; exit status 1
if any fails to compile.
"""

from __future__ import annotations

import importlib
import sys

import numba.cuda.dispatcher as dispatcher
from numba import cuda
from numba import types as t


class _Device:
    compute_capability = (8, 0)


def _arr(dtype: object, ndim: int) -> object:
    return t.Array(dtype, ndim, "C")


def cases() -> list[tuple[object, tuple[object, ...]]]:
    v = importlib.import_module("kernels.voxelize")
    s = importlib.import_module("kernels._cuda_segments")
    sc = importlib.import_module("kernels.scatter")
    bp = importlib.import_module("kernels.bev_pool")
    r = importlib.import_module("kernels.radar")
    p = importlib.import_module("kernels.points_in_boxes")
    n = importlib.import_module("kernels.nms")
    f32, f64, i32, i64, u1 = t.float32, t.float64, t.int32, t.int64, t.uint8
    a = _arr
    return [
        (
            v._cells_cuda,
            (a(f32, 2), a(f32, 1), a(f32, 1), a(i64, 1), a(f32, 1), a(i64, 1), a(i64, 1)),
        ),
        (v._insert_cuda, (a(i64, 1), a(i64, 1), a(i32, 1), i64, a(i64, 1))),
        (v._heads_cuda, (a(i64, 1), a(i32, 1), a(i32, 1))),
        (
            v._voxel_ids_cuda,
            (a(i64, 1), a(i64, 1), a(i32, 1), a(i64, 1), a(i64, 1), i64, a(i32, 1), a(i32, 2)),
        ),
        (v._fill_cuda, (a(f32, 2), a(i32, 1), a(i32, 1), a(f32, 3))),
        (v._num_points_cuda, (a(i32, 1), i64, a(i32, 1))),
        (s._scan_kernel, (a(i32, 1), a(i64, 1), a(i64, 1))),
        (s.fill_kernel, (a(i64, 1), i64)),
        (s._count_kernel, (a(i32, 1), a(i32, 1), a(i32, 1))),
        (s._place_kernel, (a(i64, 1), a(i64, 1), a(i32, 1), a(i32, 1))),
        (s._rank_kernel, (a(i64, 1), a(i64, 1), a(i32, 1), a(i32, 1), a(i32, 1), a(i32, 1))),
        (sc._column_keys_cuda, (a(i32, 2), i64, i64, a(i64, 1))),
        (sc._sum_columns_cuda, (a(f32, 2), a(i32, 1), a(i64, 1), a(i32, 1), a(f32, 1), a(f32, 3))),
        (
            bp._forward_kernel,
            (a(f32, 4), a(f32, 4), a(i32, 1), a(i32, 1), a(i32, 1), i64, i64, a(f32, 1), a(f32, 3)),
        ),
        (bp._grad_depth_kernel, (a(f32, 3), a(f32, 4), a(i32, 1), i64, i64, a(f32, 1), a(f32, 4))),
        (bp._grad_context_kernel, (a(f32, 3), a(f32, 4), a(i32, 1), i64, a(f32, 1), a(f32, 4))),
        (r._cells_cuda, (a(f32, 2), a(f32, 1), a(f32, 1), a(i64, 1), a(i64, 1))),
        (r._mean_cuda, (a(f32, 2), a(i32, 1), a(i64, 1), a(i32, 1), a(f32, 3))),
        (p._first_box_cuda, (a(f32, 2), a(f64, 2), a(i32, 1))),
        (p._count_cuda, (a(f32, 2), a(f64, 2), a(i32, 1))),
        (n._iou_mask_cuda, (a(f64, 2), a(i64, 1), f64, a(u1, 2))),
        (n._circle_mask_cuda, (a(f64, 2), a(i64, 1), f64, a(u1, 2))),
    ]


def main() -> int:
    dispatcher.get_current_device = _Device  # device functions ask for the current device's cc
    failed = 0
    for kernel, sig in cases():
        name = f"{kernel.py_func.__module__}.{kernel.py_func.__name__}"
        try:
            ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
        except Exception as exc:  # noqa: BLE001  (report every kernel, then fail)
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
            continue
        # the exact-match kernels must not contain contracted multiply-adds
        fused = "fma.rn.f64" in ptx and kernel.py_func.__name__ in (
            "_first_box_cuda",
            "_count_cuda",
        )
        if fused:
            failed += 1
        print(f"{'FAIL' if fused else 'ok'} {name} ({len(ptx)} chars of PTX)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
