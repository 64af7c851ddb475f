"""Deterministic GPU building blocks: an exclusive scan and an order-keeping group-by-key.

Atomics decide *where* a point lands but not in which order, so the kernels that must match
the numpy oracle bit for bit (voxelize, scatter_bev) group items by key and then rank each item
among its group by index: the result is the stable order a CPU loop would give.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import config, cuda, int64

from kernels._backend import THREADS_PER_BLOCK, blocks

# One block scans the whole array; the simulator runs a Python thread per CUDA thread.
SCAN_THREADS = 32 if config.ENABLE_CUDASIM else 1024


@cuda.jit
def _scan_kernel(values: Any, out: Any, total: Any) -> None:
    """Exclusive prefix sum of values (n,) into out (n,) int64; total[0] = sum. One block."""
    n = values.shape[0]
    tid = cuda.threadIdx.x
    chunk = (n + SCAN_THREADS - 1) // SCAN_THREADS
    start = tid * chunk
    end = start + chunk if start + chunk < n else n  # builtin min fails to compile for CUDA
    s = int64(0)
    for i in range(start, end):
        s += values[i]
    partial = cuda.shared.array(SCAN_THREADS, int64)
    partial[tid] = s
    cuda.syncthreads()
    offset = 1
    while offset < SCAN_THREADS:
        v = int64(0)
        if tid >= offset:
            v = partial[tid - offset]
        cuda.syncthreads()
        partial[tid] += v
        cuda.syncthreads()
        offset *= 2
    run = partial[tid] - s
    for i in range(start, end):
        out[i] = run
        run += values[i]
    if tid == SCAN_THREADS - 1:
        total[0] = partial[tid]


def exclusive_scan(values: Any) -> tuple[Any, Any]:
    """(exclusive prefix sums (n,) int64, total (1,) int64), both on the device."""
    n = values.shape[0]
    out = cuda.device_array(n, np.int64)
    total = cuda.to_device(np.zeros(1, np.int64))
    if n:
        _scan_kernel[1, SCAN_THREADS](values, out, total)
    return out, total


@cuda.jit
def fill_kernel(arr: Any, value: Any) -> None:
    """arr[:] = value for a 1-D device array."""
    i = cuda.grid(1)
    if i < arr.shape[0]:
        arr[i] = value


def full(n: int, value: int, dtype: Any) -> Any:
    """A device array of n copies of value, filled on the device."""
    arr = cuda.device_array(n, dtype)
    if n:
        fill_kernel[blocks(n), THREADS_PER_BLOCK](arr, value)
    return arr


@functools.lru_cache(maxsize=8)
def zero_scalar(dtype: str) -> Any:
    """A one-element device array holding 0 of `dtype`: reading it types an accumulator like
    the data, so float32 sums round as the oracle's (a literal 0.0 would widen to float64).
    Cached per process, so it assumes one GPU per process (as torchrun/DDP runs)."""
    return cuda.to_device(np.zeros(1, np.dtype(dtype)))


def zeros(shape: tuple[int, ...], dtype: Any) -> Any:
    """A zero-filled device array, filled on the device (no host-to-device copy)."""
    arr = cuda.device_array(shape, dtype)
    if arr.size:
        flat = arr.reshape(arr.size)
        fill_kernel[blocks(arr.size), THREADS_PER_BLOCK](flat, 0)
    return arr


@cuda.jit
def _count_kernel(keys: Any, counts: Any, arrival: Any) -> None:
    i = cuda.grid(1)
    if i < keys.shape[0]:
        k = keys[i]
        if k >= 0:
            arrival[i] = cuda.atomic.add(counts, k, 1)


@cuda.jit
def _place_kernel(keys: Any, offsets: Any, arrival: Any, unsorted: Any) -> None:
    i = cuda.grid(1)
    if i < keys.shape[0]:
        k = keys[i]
        if k >= 0:
            unsorted[offsets[k] + arrival[i]] = i


@cuda.jit
def _rank_kernel(
    keys: Any, offsets: Any, counts: Any, unsorted: Any, rank: Any, members: Any
) -> None:
    i = cuda.grid(1)
    if i < keys.shape[0]:
        k = keys[i]
        if k < 0:
            rank[i] = -1
            return
        base = offsets[k]
        r = 0
        for j in range(base, base + counts[k]):
            if unsorted[j] < i:
                r += 1
        rank[i] = r
        members[base + r] = i


@dataclass(frozen=True)
class Segments:
    """Items grouped by key on the device.

    counts (K,) int32; offsets (K,) int64 start of each key's group in members;
    members (n,) int32 item indices, by key then by index (first sum(counts) entries used);
    rank (n,) int32 position of each item in its group (-1 for key < 0).
    """

    counts: Any
    offsets: Any
    members: Any
    rank: Any


def group_by_key(keys: Any, num_keys: int) -> Segments:
    """Group items i (keys (n,) int, -1 = none) by key, keeping index order within a group."""
    n = keys.shape[0]
    counts = full(num_keys, 0, np.int32)
    arrival = cuda.device_array(n, np.int32)
    unsorted = cuda.device_array(n, np.int32)
    members = cuda.device_array(n, np.int32)
    rank = cuda.device_array(n, np.int32)
    if n:
        _count_kernel[blocks(n), THREADS_PER_BLOCK](keys, counts, arrival)
    offsets, _ = exclusive_scan(counts)
    if n:
        _place_kernel[blocks(n), THREADS_PER_BLOCK](keys, offsets, arrival, unsorted)
        _rank_kernel[blocks(n), THREADS_PER_BLOCK](keys, offsets, counts, unsorted, rank, members)
    return Segments(counts, offsets, members, rank)
