"""Correctly rounded arithmetic for the CUDA kernels.

NVVM contracts `a * b + c` into one fused multiply-add by default, which rounds once instead of
twice and so can flip a boundary test against the numpy oracle. The `_rn` intrinsics of
libdevice are never contracted. The CUDA simulator has no libdevice, and runs in Python where
nothing is contracted, so there plain operators are the same thing.
"""

from __future__ import annotations

from numba import config, cuda

if config.ENABLE_CUDASIM:

    @cuda.jit(device=True)
    def dmul(a: float, b: float) -> float:
        return a * b

    @cuda.jit(device=True)
    def dadd(a: float, b: float) -> float:
        return a + b

    @cuda.jit(device=True)
    def fmul(a: float, b: float) -> float:
        return a * b

    @cuda.jit(device=True)
    def fadd(a: float, b: float) -> float:
        return a + b

else:
    from numba.cuda import libdevice

    dmul = libdevice.dmul_rn
    dadd = libdevice.dadd_rn
    fmul = libdevice.fmul_rn
    fadd = libdevice.fadd_rn
