"""KernelBackend resolution and array conversion."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kernels import _backend, count_points_in_boxes


def test_resolve() -> None:
    x = np.zeros(3)
    assert _backend.resolve("auto", x) == "numba"
    assert _backend.resolve("numpy", x) == "numpy"
    with pytest.raises(ValueError):
        _backend.resolve("opencl", x)  # type: ignore[arg-type]
    if not _backend.cuda_available():
        with pytest.raises(RuntimeError):
            _backend.resolve("cuda", x)


def test_torch_cpu_tensors_in_and_out() -> None:
    torch = pytest.importorskip("torch")
    pts = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    boxes = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    out = count_points_in_boxes(pts, boxes)
    assert isinstance(out, torch.Tensor) and out.tolist() == [1]
    assert _backend.resolve("auto", pts) == "numba"


def test_import_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; import kernels; print(kernels.voxelize.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_device_array_in_device_array_out() -> None:
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU and the numba CUDA simulator is off")
    pts = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.2, 0.1, 0.0]], np.float32)
    boxes = np.array([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.3]])
    d_pts = cuda.to_device(pts)
    assert _backend.resolve("auto", d_pts) == "cuda"
    out = count_points_in_boxes(d_pts, boxes)  # "auto" runs CUDA for a device array
    assert hasattr(out, "copy_to_host") and out.copy_to_host().tolist() == [2]
    # a CPU backend asked for explicitly copies the device input to the host
    assert count_points_in_boxes(d_pts, boxes, backend="numba").tolist() == [2]


def test_cuda_backend_with_cpu_tensors_returns_cpu_tensors() -> None:
    torch = pytest.importorskip("torch")
    if not _backend.cuda_available():
        pytest.skip("no CUDA GPU and the numba CUDA simulator is off")
    pts = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    boxes = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    out = count_points_in_boxes(pts, boxes, backend="cuda")
    assert isinstance(out, torch.Tensor) and out.device.type == "cpu" and out.tolist() == [1]
