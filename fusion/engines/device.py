"""Where an engine runs, and how its stages are timed there.

`resolve_device` turns a requested device (`auto`, `cpu`, `cuda`, `cuda:N`) into the one that
runs for a backend; an explicit CUDA device without a GPU is an error, never a silent CPU run.
`stage_clock` gives the clock of the runner's stage laps: wall time on the CPU; on a CUDA device
CUDA events recorded on the current stream at each lap, so a stage's time is the time the GPU
(and the host work between the laps) took, not the time to enqueue asynchronous kernels.

Nothing here imports torch at import time: a CPU-only install without the GPU stack imports it.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Literal, Protocol

from fusion.errors import FusionError

Device = str  # "cpu", "cuda", "cuda:N"
Outputs = Literal["numpy", "tensor"]


def cuda_available() -> bool:
    """True when torch sees a CUDA GPU (False without torch)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(backend: str, device: str = "auto", *, has_cuda: bool | None = None) -> Device:
    """The device `backend` runs on for a request of `device`.

    - `auto`: `cuda` when a GPU is there (TensorRT: always `cuda`), else `cpu`;
    - `cpu`: the CPU (TensorRT cannot: FusionError);
    - `cuda` / `cuda:N`: that GPU, FusionError when there is none.
    `has_cuda` overrides the probe (tests)."""
    gpu = cuda_available() if has_cuda is None else has_cuda
    d = device.strip().lower()
    if d == "auto":
        if backend == "tensorrt" or gpu:
            d = "cuda"
        else:
            return "cpu"
    if d == "cpu":
        if backend == "tensorrt":
            raise FusionError("the tensorrt backend runs on a CUDA GPU only (--device cuda)")
        return "cpu"
    if d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit()):
        if not gpu:
            raise FusionError(f"--device {device}: no CUDA GPU is visible to torch")
        return d
    raise FusionError(f"unknown device {device!r} (auto, cpu, cuda or cuda:N)")


def resolve_backend(
    backend: str, *, has_cuda: bool | None = None, installed: set[str] | None = None
) -> str:
    """The engine a request of `backend` runs: `auto` is the fastest one installed for the
    machine (TensorRT on an NVIDIA GPU when the `tensorrt` package is there, else ONNX Runtime,
    else torch); any other name is itself. `has_cuda` and `installed` (importable packages)
    override the probes (tests)."""
    if backend != "auto":
        return backend
    import importlib.util

    def have(pkg: str) -> bool:
        if installed is not None:
            return pkg in installed
        return importlib.util.find_spec(pkg) is not None

    gpu = cuda_available() if has_cuda is None else has_cuda
    if gpu and have("tensorrt"):
        return "tensorrt"
    if have("onnxruntime"):
        return "onnxruntime"
    return "torch"


class StageClock(Protocol):
    def lap(self, stage: str) -> None: ...

    @property
    def times(self) -> dict[str, float]: ...


class WallClock:
    """Stage laps in host wall time (ms), accumulated by stage name."""

    def __init__(self) -> None:
        self._times: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self._times[stage] = self._times.get(stage, 0.0) + (now - self._t) * 1e3
        self._t = now

    @property
    def times(self) -> dict[str, float]:
        return self._times


class CudaEventClock:
    """Stage laps as CUDA events on the current stream; `times` synchronizes once at the end
    and returns the elapsed time between consecutive events (ms), accumulated by stage."""

    def __init__(self, device: Device = "cuda") -> None:
        import torch

        self._torch = torch
        self._device = torch.device(device)
        self._marks: list[tuple[str, Any]] = []
        self._start = self._event()
        self._done: dict[str, float] | None = None

    def _event(self) -> Any:
        ev = self._torch.cuda.Event(enable_timing=True)
        ev.record(self._torch.cuda.current_stream(self._device))
        return ev

    def lap(self, stage: str) -> None:
        self._marks.append((stage, self._event()))
        self._done = None

    @property
    def times(self) -> dict[str, float]:
        if self._done is None:
            out: dict[str, float] = {}
            if self._marks:
                self._marks[-1][1].synchronize()
            prev = self._start
            for stage, ev in self._marks:
                out[stage] = out.get(stage, 0.0) + float(prev.elapsed_time(ev))
                prev = ev
            self._done = out
        return self._done


def stage_clock(device: Device = "cpu") -> StageClock:
    """The clock for stages that run on `device` (see the module docstring)."""
    if device.startswith("cuda"):
        return CudaEventClock(device)
    return WallClock()


def to_host(x: Any) -> Any:
    """A numpy array of `x` (a torch tensor on any device, or numpy): the one copy off the
    device at the end of a frame."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return x
