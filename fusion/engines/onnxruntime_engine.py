"""ONNX Runtime engine over the graphs `fusion export` writes.

Sessions are tuned for batch-1 latency next to the Numba kernels (see `fusion.threads`):
intra-op threads from the process's thread settings, one inter-op thread, sequential
execution, and no busy-waiting of idle threads between runs (ONNX Runtime's default spins,
which takes the cores from the kernels that run between the graphs). Graphs are optimized at
ORT_ENABLE_ALL once; the optimized model is saved under the export folder, keyed by the source
graph's bytes, the ONNX Runtime version, the providers and the CPU, and loaded as is later.

On a GPU (`providers_for("cuda")`: the CUDA execution provider, CPU fallback) the engine runs
with IO binding and keeps tensors on the device (`outputs="tensor"`): CUDA torch tensors are
bound as inputs without a copy, outputs are written into CUDA torch tensors it allocates, so the
kernels between the graphs read them in place (as with `TorchEngine` on CUDA).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusion.engines.base import ExportManifest, fixed_camera_batch, read_manifest
from fusion.errors import FusionError
from fusion.machine import cpu_model
from fusion.threads import ThreadSettings, current_threads

OPTIMIZED_DIR = "ort-optimized"
Provider = str | tuple[str, dict[str, Any]]


def providers_for(device: str) -> list[Provider]:
    """ONNX Runtime providers for a resolved device (`cpu`, `cuda`, `cuda:N`)."""
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        index = int(device[5:]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    raise FusionError(f"unknown device {device!r} for onnxruntime")


def provider_names(providers: list[Provider]) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in providers]


def optimized_path(folder: Path, graph: str, providers: list[str]) -> Path:
    """Where the optimized `graph` of an export folder is cached: the key changes with the
    source graph, ONNX Runtime, the providers and the CPU (ORT_ENABLE_ALL's layouts are
    specific to them)."""
    import onnxruntime as ort

    h = hashlib.sha256((folder / f"{graph}.onnx").read_bytes())
    h.update(f"|{ort.__version__}|{','.join(providers)}|{cpu_model()}".encode())
    return folder / OPTIMIZED_DIR / f"{graph}-{h.hexdigest()[:16]}.onnx"


def session_options(threads: ThreadSettings) -> Any:
    """`onnxruntime.SessionOptions` for batch-1 latency with `threads`."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads.ort_intra
    opts.inter_op_num_threads = threads.ort_inter
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    spin = "1" if threads.ort_spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return opts


class OnnxRuntimeEngine:
    """Runs camera.onnx, lidar.onnx and bev.onnx of an export folder (CPU provider unless
    `providers` says otherwise); `threads` defaults to `fusion.threads.current_threads()`."""

    name = "onnxruntime"

    def __init__(
        self,
        folder: str | Path,
        providers: list[Provider] | None = None,
        threads: ThreadSettings | None = None,
        cache_optimized: bool = True,
    ) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        self.manifest: ExportManifest = read_manifest(self.folder)
        self.threads = threads or current_threads()
        given = providers or ["CPUExecutionProvider"]
        self.providers = provider_names(given)
        cuda = next(
            (p for p in given if not isinstance(p, str) and p[0] == "CUDAExecutionProvider"), None
        )
        if cuda is None and "CUDAExecutionProvider" in self.providers:
            cuda = ("CUDAExecutionProvider", {})
        self.device_id = int(cuda[1].get("device_id", 0)) if cuda is not None else None
        # on a GPU: IO binding, tensors kept on the device
        self.outputs = "tensor" if self.device_id is not None else "numpy"
        self.device_name = f"cuda:{self.device_id}" if self.device_id is not None else "cpu"
        if (
            self.device_id is not None
            and "CUDAExecutionProvider" not in ort.get_available_providers()
        ):
            raise FusionError(
                "onnxruntime has no CUDAExecutionProvider here (pip install onnxruntime-gpu)"
            )
        self.camera_batch = fixed_camera_batch(self.manifest)
        self.sessions: dict[str, Any] = {}
        self.loaded_optimized: dict[str, bool] = {}  # graph -> read from the cache
        for graph in self.manifest.graphs:
            path = self.folder / f"{graph}.onnx"
            if not path.is_file():
                raise FusionError("exported graph is missing", path)
            opts = session_options(self.threads)
            source = path
            cached = optimized_path(self.folder, graph, self.providers) if cache_optimized else None
            if cached is not None and cached.is_file():
                # already optimized for this machine: optimizing again would only cost time
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                source = cached
            else:
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    opts.optimized_model_filepath = str(cached)
            self.loaded_optimized[graph] = source != path
            try:
                self.sessions[graph] = ort.InferenceSession(str(source), opts, providers=given)
            except Exception as exc:  # noqa: BLE001  (ORT raises its own untyped errors)
                raise FusionError(f"ONNX Runtime cannot load the graph ({exc})", source) from exc

    def settings(self) -> dict[str, Any]:
        """The session settings, for a benchmark's environment line."""
        return {
            "providers": self.providers,
            "intra_op_threads": self.threads.ort_intra,
            "inter_op_threads": self.threads.ort_inter,
            "spinning": self.threads.ort_spinning,
            "execution_mode": "sequential",
            "optimization": "ORT_ENABLE_ALL, saved",
        }

    def _session(self, graph: str):  # noqa: ANN202
        if graph not in self.sessions:
            raise FusionError(
                f"the {self.manifest.variant} export has no {graph} graph", self.folder
            )
        return self.sessions[graph]

    def _run_bound(self, graph: str, feeds: dict[str, Any]) -> list[Any]:
        """One run with IO binding on the CUDA device: inputs bound where they are (CUDA torch
        tensors in place, numpy arrays copied by ORT), outputs into CUDA torch tensors (the
        pillar axis of the lidar graph sized from its inputs)."""
        import torch

        sess = self._session(graph)
        binding = sess.io_binding()
        dev = torch.device(f"cuda:{self.device_id}")
        keep = []  # bound tensors stay alive until the run is done
        first_axis = 0
        for name, x in feeds.items():
            dtype = np.int32 if name in ("num_points", "coords") else np.float32
            if isinstance(x, torch.Tensor):
                tdtype = torch.int32 if dtype is np.int32 else torch.float32
                t = x.to(device=dev, dtype=tdtype).contiguous()
                keep.append(t)
                binding.bind_input(
                    name, "cuda", self.device_id, dtype, tuple(t.shape), t.data_ptr()
                )
                first_axis = int(t.shape[0])
            else:
                a = np.ascontiguousarray(x, dtype)
                binding.bind_cpu_input(name, a)
                first_axis = int(a.shape[0])
        outs = []
        for o in sess.get_outputs():
            shape = tuple(d if isinstance(d, int) else first_axis for d in o.shape)
            t = torch.empty(shape, dtype=torch.float32, device=dev)
            binding.bind_output(o.name, "cuda", self.device_id, np.float32, shape, t.data_ptr())
            outs.append(t)
        # ORT's CUDA provider runs on its own stream: the inputs torch wrote must be complete
        torch.cuda.current_stream(dev).synchronize()
        sess.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return outs

    def camera(
        self, images: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if self.outputs == "tensor":
            depth, context = self._run_bound("camera", {"images": images})
            return depth, context
        depth, context = self._session("camera").run(
            None, {"images": np.ascontiguousarray(images, np.float32)}
        )
        return depth, context

    def lidar(
        self, voxels: NDArray[np.float32], num_points: NDArray[np.int32], coords: NDArray[np.int32]
    ) -> NDArray[np.float32]:
        if self.outputs == "tensor":
            feeds = {"voxels": voxels, "num_points": num_points, "coords": coords}
            (out,) = self._run_bound("lidar", feeds)
            return out
        (out,) = self._session("lidar").run(
            None,
            {
                "voxels": np.ascontiguousarray(voxels, np.float32),
                "num_points": np.ascontiguousarray(num_points, np.int32),
                "coords": np.ascontiguousarray(coords, np.int32),
            },
        )
        return out

    def bev(
        self, *maps: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        names = self.manifest.bev_inputs
        if self.outputs == "tensor":
            hm, reg, attr = self._run_bound("bev", dict(zip(names, maps, strict=True)))
            return hm, reg, attr
        feeds = {n: np.ascontiguousarray(m, np.float32) for n, m in zip(names, maps, strict=True)}
        hm, reg, attr = self._session("bev").run(None, feeds)
        return hm, reg, attr
