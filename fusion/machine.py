"""What a benchmark ran on: CPU, cores, load, GPU, thread pools and package versions, and the
process's resident memory (now, and its peak since a reset).

Nothing here imports torch or onnxruntime: their thread counts are read only when the caller
already loaded them, so `fusion bench kernels` stays free of torch.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

DEFAULT_DISTS = ("numpy", "numba", "llvmlite", "torch", "onnxruntime", "nuscenes-devkit")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def versions(dists: tuple[str, ...] = DEFAULT_DISTS) -> dict[str, str]:
    """python and each distribution's installed version ("not installed" when absent)."""
    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (other processes on the same cores)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def gpu_name() -> str:
    """The first CUDA device's name per Numba, "none" without a usable GPU (or in the
    simulator)."""
    try:
        from numba import config, cuda

        if config.ENABLE_CUDASIM or not cuda.is_available():
            return "none"
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001  (any driver failure means: no usable GPU)
        return "none"


def thread_pools() -> dict[str, Any]:
    """Threads of each pool as configured now: numba, and torch when already imported."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = "not started"
    out: dict[str, Any] = {"numba": numba.get_num_threads(), "numba_layer": layer}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        out["torch"] = torch.get_num_threads()
        out["torch_interop"] = torch.get_num_interop_threads()
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            out[var] = os.environ[var]
    return out


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """VmHWM (peak resident set since the last reset), MB; ru_maxrss where /proc is absent."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    """VmRSS now, MB (0 where /proc is absent)."""
    return _status_mb("VmRSS") or 0.0


def machine_info(dists: tuple[str, ...] = DEFAULT_DISTS) -> dict[str, Any]:
    """Date (UTC), CPU, cores, GPU, load average, thread pools and versions."""
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "gpu": gpu_name(),
        "platform": platform.platform(),
        "load_average_1_5_15": load_average(),
        "threads": thread_pools(),
        "versions": versions(dists),
    }


def env_line(env: dict[str, Any]) -> str:
    """One line for a report: CPU, cores, threads, load, versions (and whatever else `env`
    carries as scalars, e.g. precision or execution provider)."""
    threads = ", ".join(f"{k} {v}" for k, v in env.get("threads", {}).items())
    vers = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    extra = ", ".join(
        f"{k} {v}"
        for k, v in env.items()
        if k not in ("threads", "versions", "cpu", "cores", "load_average_1_5_15", "date")
        and isinstance(v, str | int | float)
    )
    parts = [
        f"{env.get('cpu', '?')}, {env.get('cores', '?')} cores",
        f"load {env.get('load_average_1_5_15')}",
        f"threads: {threads}",
    ]
    if extra:
        parts.append(extra)
    parts.append(vers)
    return "; ".join(parts)
