"""TensorRT engine: plans built from the exported ONNX graphs, cached by content hash.

Needs an NVIDIA GPU, the `tensorrt` Python package (10.x) and torch with CUDA (its tensors
are the device buffers). Plans are rebuilt only when what they are built from changes
(`plan_key`: the ONNX bytes, the precision, the TensorRT version, the pillar profile, the GPU's
compute capability and, for INT8, the calibration set's digest).

Precision: `fp32`, `fp16` (FP16 kernels where TensorRT finds them faster) or `int8` (INT8 with
FP16 fallback, scales from an entropy calibration over `calibration` batches: the graph inputs
of real frames, `fusion.engines.int8`). TensorRT 10 deprecates implicit quantization by
calibrator in favour of Q/DQ graphs; the calibrator path is still supported there and is what
needs no change to the exported graphs.

Like `TorchEngine` on a CUDA device, outputs stay on the device by default (`outputs="tensor"`):
inputs may be CUDA tensors (bound without a copy) or numpy arrays (uploaded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fusion.engines.base import (
    BEV_OUTPUTS,
    CAMERA_OUTPUTS,
    LIDAR_OUTPUTS,
    fixed_camera_batch,
    read_manifest,
)
from fusion.engines.device import Outputs
from fusion.errors import FusionError

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
Batches = Mapping[str, Sequence[Mapping[str, np.ndarray]]]  # graph -> [{input name: array}]


def _tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise FusionError(
            "TensorRT is not installed (pip install tensorrt; it needs an NVIDIA GPU)"
        ) from exc
    return trt


def calibration_digest(batches: Sequence[Mapping[str, np.ndarray]]) -> str:
    """A digest of one graph's calibration batches (names, shapes, dtypes and bytes)."""
    h = hashlib.sha256()
    for batch in batches:
        for name in sorted(batch):
            a = np.ascontiguousarray(batch[name])
            h.update(f"{name}|{a.shape}|{a.dtype.str}|".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def plan_key(
    onnx_bytes: bytes,
    precision: Precision,
    trt_version: str,
    max_pillars: int,
    device: str = "",
    calibration: str = "",
) -> str:
    """The content hash a plan is cached under: what changes the plan changes the key.
    `device` names the GPU's compute capability (a plan is specific to it); `calibration`
    is `calibration_digest` of an INT8 build's batches ("" otherwise)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "int8" and not calibration:
        raise ValueError("an INT8 plan needs its calibration digest")
    h = hashlib.sha256(onnx_bytes)
    h.update(f"|{precision}|{trt_version}|{max_pillars}|{device}|{calibration}".encode())
    return h.hexdigest()[:16]


def pillar_profile(
    shape: tuple[int, ...], max_pillars: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes of a lidar-graph input whose first axis is the pillars."""
    if max_pillars < 2:
        raise ValueError("max_pillars must be >= 2")
    rest = tuple(shape)[1:]
    return (1, *rest), (max_pillars // 2, *rest), (max_pillars, *rest)


def _calibrator(trt: Any, batches: Sequence[Mapping[str, np.ndarray]], cache: Path) -> Any:
    """An IInt8EntropyCalibrator2 feeding `batches` (one frame each) from device memory."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self._batches = list(batches)
            self._i = 0
            self._keep: list[torch.Tensor] = []

        def get_batch_size(self) -> int:
            return 1  # explicit-batch graphs: the batch axis is in the shapes

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._i >= len(self._batches):
                return None
            batch = self._batches[self._i]
            self._i += 1
            self._keep = [torch.from_numpy(np.ascontiguousarray(batch[n])).cuda() for n in names]
            return [t.data_ptr() for t in self._keep]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(bytes(data))

    return EntropyCalibrator()


class TensorRTEngine:
    """Runs the graphs of an export folder with TensorRT on the current CUDA device."""

    name = "tensorrt"

    def __init__(
        self,
        folder: str | Path,
        precision: Precision = "fp16",
        cache_dir: str | Path | None = None,
        max_pillars: int = 30000,
        workspace_bytes: int = 2 << 30,
        calibration: Batches | None = None,
        outputs: Outputs = "tensor",
    ) -> None:
        import torch

        trt = _tensorrt()
        if not torch.cuda.is_available():
            raise FusionError("the TensorRT engine needs a CUDA GPU")
        if precision not in PRECISIONS:
            raise FusionError(f"unknown TensorRT precision {precision!r} ({', '.join(PRECISIONS)})")
        self._torch = torch
        self._trt = trt
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.camera_batch = fixed_camera_batch(self.manifest)
        self.precision: Precision = precision
        self.cache_dir = Path(cache_dir) if cache_dir else self.folder / "tensorrt"
        self.max_pillars = max_pillars
        self.workspace_bytes = workspace_bytes
        self.outputs: Outputs = outputs
        self.device_name = f"cuda:{torch.cuda.current_device()}"
        major, minor = torch.cuda.get_device_capability()
        self._device_key = f"sm_{major}{minor}"
        self.calibration = calibration or {}
        if precision == "int8":
            missing = [g for g in self.manifest.graphs if not self.calibration.get(g)]
            if missing:
                raise FusionError(
                    f"INT8 needs calibration batches for the graphs {missing}"
                    " (fusion export --tensorrt --int8 --int8-dataroot DATAROOT --int8-version V)",
                    self.folder,
                )
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engines: dict[str, Any] = {}
        self._contexts: dict[str, Any] = {}
        self.plans: dict[str, Path] = {}
        self.built: dict[str, bool] = {}  # graph -> built now (False: read from the cache)
        for graph in self.manifest.graphs:
            engine = self._runtime.deserialize_cuda_engine(self._plan(graph))
            if engine is None:
                raise FusionError("TensorRT could not load the plan", self._plan_path(graph))
            self._engines[graph] = engine
            self._contexts[graph] = engine.create_execution_context()

    def settings(self) -> dict[str, Any]:
        return {
            "providers": [f"TensorRT {self._trt.__version__} {self.precision}"],
            "plans": {g: p.name for g, p in self.plans.items()},
            "built_now": self.built,
        }

    def _plan_path(self, graph: str) -> Path:
        onnx_bytes = (self.folder / f"{graph}.onnx").read_bytes()
        digest = calibration_digest(self.calibration[graph]) if self.precision == "int8" else ""
        key = plan_key(
            onnx_bytes,
            self.precision,
            self._trt.__version__,
            self.max_pillars,
            self._device_key,
            digest,
        )
        return self.cache_dir / f"{graph}-{self.precision}-{key}.plan"

    def _plan(self, graph: str) -> bytes:
        path = self._plan_path(graph)
        self.plans[graph] = path
        if path.is_file():
            self.built[graph] = False
            return path.read_bytes()
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # explicit batch (the only mode of TensorRT 10)
        parser = trt.OnnxParser(network, self._logger)
        onnx_path = self.folder / f"{graph}.onnx"
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise FusionError(f"TensorRT cannot parse the graph: {errors}", onnx_path)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        if self.precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        profile = None
        if graph == "lidar":  # the one dynamic axis: the number of pillars
            profile = builder.create_optimization_profile()
            for i in range(network.num_inputs):
                t = network.get_input(i)
                profile.set_shape(t.name, *pillar_profile(tuple(t.shape), self.max_pillars))
            config.add_optimization_profile(profile)
        if self.precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            cache = self.cache_dir / f"{graph}-{path.stem.rsplit('-', 1)[-1]}.calib"
            config.int8_calibrator = _calibrator(trt, self.calibration[graph], cache)
            if profile is not None:
                config.set_calibration_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise FusionError("TensorRT failed to build the engine", onnx_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(plan))
        self.built[graph] = True
        return bytes(plan)

    def _device(self, x: Any, dtype: Any) -> Any:
        torch = self._torch
        if isinstance(x, torch.Tensor):
            return x.to(device="cuda", dtype=dtype).contiguous()
        return torch.from_numpy(np.ascontiguousarray(x)).to(device="cuda", dtype=dtype)

    def _run(self, graph: str, inputs: dict[str, Any], output_names: tuple[str, ...]) -> list[Any]:
        torch, trt = self._torch, self._trt
        engine, context = self._engines[graph], self._contexts[graph]
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        keep = []
        outputs: dict[str, Any] = {}
        for name, array in inputs.items():
            t = self._device(array, dtypes[engine.get_tensor_dtype(name)])
            keep.append(t)
            context.set_input_shape(name, tuple(t.shape))
            context.set_tensor_address(name, t.data_ptr())
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                shape = tuple(context.get_tensor_shape(name))
                out = torch.empty(shape, dtype=dtypes[engine.get_tensor_dtype(name)], device="cuda")
                context.set_tensor_address(name, out.data_ptr())
                outputs[name] = out
        stream = torch.cuda.current_stream()
        if not context.execute_async_v3(stream.cuda_stream):
            raise FusionError(f"TensorRT failed to run the {graph} graph")
        if self.outputs == "tensor":  # stream-ordered: the next stage runs after this one
            return [outputs[n].float() for n in output_names]
        stream.synchronize()
        return [outputs[n].float().cpu().numpy() for n in output_names]

    def camera(self, images: Any) -> tuple[Any, Any]:
        depth, context = self._run("camera", {"images": images}, CAMERA_OUTPUTS)
        return depth, context

    def lidar(self, voxels: Any, num_points: Any, coords: Any) -> Any:
        feeds = {"voxels": voxels, "num_points": num_points, "coords": coords}
        (out,) = self._run("lidar", feeds, LIDAR_OUTPUTS)
        return out

    def bev(self, *maps: Any) -> tuple[Any, Any, Any]:
        feeds = dict(zip(self.manifest.bev_inputs, maps, strict=True))
        hm, reg, attr = self._run("bev", feeds, BEV_OUTPUTS)
        return hm, reg, attr
