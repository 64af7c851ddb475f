"""KernelBackend parameter lists shared by the kernel tests."""

from __future__ import annotations

import pytest


def cuda_backend_param() -> object:
    """pytest param for "cuda", skipped with the reason when numba.cuda cannot run."""
    from numba import config, cuda

    ok = bool(cuda.is_available())
    reason = "no CUDA GPU and the numba CUDA simulator is off (set NUMBA_ENABLE_CUDASIM=1)"
    return pytest.param(
        "cuda",
        marks=[] if ok else [pytest.mark.skip(reason=reason)],
        id="cuda" + ("-sim" if config.ENABLE_CUDASIM else ""),
    )


# backends for small inputs (the CUDA simulator is slow) and for full-size ones
SMALL_BACKENDS = ["numpy", "numba", cuda_backend_param()]
CPU_BACKENDS = ["numba"]
