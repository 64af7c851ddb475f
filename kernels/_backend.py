"""Kernel backend choice and array conversion shared by the kernels.

Inputs may be numpy arrays, torch tensors (CPU or CUDA) or any object exposing
`__cuda_array_interface__` (numba device arrays, CuPy). torch is never imported here: a tensor
is recognised through `sys.modules`, so the kernels run on a machine without torch.
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

KernelBackend = Literal["auto", "numpy", "numba", "cuda"]
Resolved = Literal["numpy", "numba", "cuda"]


def _simulated() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


# CUDA launch shape shared by the 1-D kernels; the simulator runs one Python thread per CUDA
# thread, so small blocks keep its tests fast.
THREADS_PER_BLOCK = 32 if _simulated() else 256


def is_torch(x: Any) -> bool:
    """True for a torch.Tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_numba_device_array(x: Any) -> bool:
    """True for a numba device array (also the simulator's, which has no CUDA interface)."""
    if isinstance(x, np.ndarray) or "numba.cuda" not in sys.modules:
        return False
    from numba import cuda

    return bool(cuda.devicearray.is_cuda_ndarray(x))


def on_device(x: Any) -> bool:
    """True when `x` lives in GPU memory (exposes `__cuda_array_interface__`)."""
    if isinstance(x, np.ndarray):
        return False
    if is_torch(x):
        return bool(x.is_cuda)
    return hasattr(x, "__cuda_array_interface__") or is_numba_device_array(x)


def cuda_available() -> bool:
    """True when numba sees a CUDA GPU, or runs its simulator (NUMBA_ENABLE_CUDASIM=1)."""
    from numba import cuda

    return bool(cuda.is_available())


def resolve(backend: KernelBackend, *arrays: Any) -> Resolved:
    """Turn `backend` into the one that runs.

    "auto" is "cuda" when any input is on the GPU and numba.cuda works, else "numba".
    An explicit "cuda" without a usable GPU raises RuntimeError.
    """
    match backend:
        case "auto":
            if any(on_device(a) for a in arrays) and cuda_available():
                return "cuda"
            return "numba"
        case "numpy" | "numba":
            return backend
        case "cuda":
            if not cuda_available():
                raise RuntimeError("backend='cuda' but numba.cuda finds no GPU")
            return "cuda"
        case _:
            raise ValueError(f"unknown backend {backend!r}; use auto, numpy, numba or cuda")


def to_host(x: Any, dtype: np.dtype | type | None = None) -> np.ndarray:
    """A C-contiguous numpy view or copy of `x` (copied from the GPU when it lives there)."""
    if is_torch(x):
        x = x.detach()
        arr = x.cpu().numpy() if x.is_cuda else x.numpy()
    elif is_numba_device_array(x):
        arr = x.copy_to_host()
    elif not isinstance(x, np.ndarray) and hasattr(x, "__cuda_array_interface__"):
        from numba import cuda

        arr = cuda.as_cuda_array(x).copy_to_host()
    else:
        arr = np.asarray(x)
    return np.ascontiguousarray(arr, dtype=dtype)


def to_device(x: Any, dtype: np.dtype | type | None = None) -> Any:
    """A numba device array of `x`: zero-copy for GPU inputs of the right dtype, else copied."""
    from numba import cuda

    if is_numba_device_array(x):
        if dtype is None or x.dtype == np.dtype(dtype):
            return x
        return cuda.to_device(x.copy_to_host().astype(dtype))
    if on_device(x):
        if is_torch(x):
            x = x.detach()
            if dtype is not None and x.dtype != _torch_dtype(dtype):
                x = x.to(_torch_dtype(dtype))
            x = x.contiguous()
        arr = cuda.as_cuda_array(x)
        if dtype is None or arr.dtype == np.dtype(dtype):
            return arr
        return cuda.to_device(arr.copy_to_host().astype(dtype))
    return cuda.to_device(to_host(x, dtype))


def _torch_dtype(dtype: np.dtype | type) -> Any:
    import torch

    return {
        np.dtype(np.float32): torch.float32,
        np.dtype(np.float64): torch.float64,
        np.dtype(np.int32): torch.int32,
        np.dtype(np.int64): torch.int64,
    }[np.dtype(dtype)]


def like(out: Any, ref: Any) -> Any:
    """Return `out` in the kind of `ref`: a torch tensor on its device, a device array, or numpy.

    A GPU result for a GPU input stays on the GPU (zero-copy into torch); a GPU result for a
    host input is copied back.
    """
    out_on_gpu = is_numba_device_array(out) or (
        not isinstance(out, np.ndarray) and hasattr(out, "__cuda_array_interface__")
    )
    if is_torch(ref):
        import torch

        if out_on_gpu and not ref.is_cuda:
            out = out.copy_to_host()
        return torch.as_tensor(out, device=ref.device)
    if on_device(ref):
        return out if out_on_gpu else _upload(out)
    return out.copy_to_host() if out_on_gpu else out


def _upload(arr: np.ndarray) -> Any:
    from numba import cuda

    return cuda.to_device(arr)


def blocks(n: int) -> int:
    """Number of CUDA blocks covering `n` threads (at least one)."""
    return max(1, (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK)
