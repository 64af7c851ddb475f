"""One place that sizes the three thread pools of a detector process: Numba's (the kernels),
torch's (the torch engine) and ONNX Runtime's (its engine).

The stages of a frame run one after another (kernel, graph, kernel, ...), so the pools never
need the cores at the same time; they fight only when one pool's idle threads busy-wait while
the next stage runs. ONNX Runtime's intra-op threads spin after every `run()` by default and
took the cores from the Numba kernels and decode that follow (bev_pool 0.75 -> 31 ms, decode
11 -> 133 ms on the 2-core machine: `benchmarks/latency.md`). So: every pool gets every core,
torch's inter-op pool one thread (batch-1 graphs have no inter-op parallelism worth a pool),
ONNX Runtime one inter-op thread, sequential execution and no spinning.

`apply_threads` is called by `fusion bench latency`, `fusion eval` and `fusion replay` before
their engines are built; engines built afterwards read `current_threads()`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ThreadSettings:
    """Threads per pool (each >= 1) and whether ONNX Runtime's idle threads busy-wait."""

    numba: int
    torch: int
    torch_interop: int = 1
    ort_intra: int = 1
    ort_inter: int = 1
    ort_spinning: bool = False

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(cores: int | None = None) -> ThreadSettings:
    """Every pool on every usable core, ONNX Runtime without spinning (see the module doc)."""
    n = max(1, cores or usable_cores())
    return ThreadSettings(numba=n, torch=n, torch_interop=1, ort_intra=n, ort_spinning=False)


_applied: list[ThreadSettings] = []


def apply_threads(settings: ThreadSettings | None = None) -> ThreadSettings:
    """Size Numba's and torch's pools now and remember the ONNX Runtime settings for the
    sessions built later; returns what was applied (`default_threads()` when None).

    Numba cannot exceed the pool it started with (NUMBA_NUM_THREADS, all cores by default) and
    torch's inter-op pool can be sized only before its first use: both are clamped or left as
    they are, and the returned settings say what holds.
    """
    import numba

    s = settings or default_threads()
    numba_n = max(1, min(s.numba, numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(numba_n)
    torch_n, interop = s.torch, s.torch_interop
    torch = sys.modules.get("torch")
    if torch is None:
        import torch
    torch.set_num_threads(max(1, s.torch))
    torch_n = torch.get_num_threads()
    if torch.get_num_interop_threads() != s.torch_interop:
        try:
            torch.set_num_interop_threads(max(1, s.torch_interop))
        except RuntimeError:  # already used: it keeps its size
            pass
    interop = torch.get_num_interop_threads()
    applied = ThreadSettings(
        numba=numba_n,
        torch=torch_n,
        torch_interop=interop,
        ort_intra=max(1, s.ort_intra),
        ort_inter=max(1, s.ort_inter),
        ort_spinning=s.ort_spinning,
    )
    _applied[:] = [applied]
    return applied


def current_threads() -> ThreadSettings:
    """The settings last applied, else the defaults (not applied: ONNX Runtime reads these)."""
    return _applied[0] if _applied else default_threads()
