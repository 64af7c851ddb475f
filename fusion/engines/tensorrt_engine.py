"""TensorRT engine: plans built from the exported ONNX graphs, cached by content hash.

Needs an NVIDIA GPU, the `tensorrt` Python package (10.x) and torch with CUDA (its tensors
are the device buffers). Plans are rebuilt only when the ONNX bytes, the precision or the
TensorRT version change.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from fusion.engines.base import BEV_OUTPUTS, CAMERA_OUTPUTS, LIDAR_OUTPUTS
from fusion.engines.export import read_manifest
from fusion.errors import FusionError

Precision = Literal["fp32", "fp16"]


def _tensorrt() -> Any:
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise FusionError(
            "TensorRT is not installed (pip install tensorrt; it needs an NVIDIA GPU)"
        ) from exc
    return trt


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
    ) -> None:
        import torch

        trt = _tensorrt()
        if not torch.cuda.is_available():
            raise FusionError("the TensorRT engine needs a CUDA GPU")
        self._torch = torch
        self._trt = trt
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.precision = precision
        self.cache_dir = Path(cache_dir) if cache_dir else self.folder / "tensorrt"
        self.max_pillars = max_pillars
        self.workspace_bytes = workspace_bytes
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._engines: dict[str, Any] = {}
        self._contexts: dict[str, Any] = {}
        for graph in self.manifest.graphs:
            engine = self._runtime.deserialize_cuda_engine(self._plan(graph))
            if engine is None:
                raise FusionError("TensorRT could not load the plan", self._plan_path(graph))
            self._engines[graph] = engine
            self._contexts[graph] = engine.create_execution_context()

    def _plan_path(self, graph: str) -> Path:
        onnx_bytes = (self.folder / f"{graph}.onnx").read_bytes()
        key = hashlib.sha256(
            onnx_bytes + f"|{self.precision}|{self._trt.__version__}|{self.max_pillars}".encode()
        )
        return self.cache_dir / f"{graph}-{key.hexdigest()[:16]}.plan"

    def _plan(self, graph: str) -> bytes:
        path = self._plan_path(graph)
        if path.is_file():
            return path.read_bytes()
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        onnx_path = self.folder / f"{graph}.onnx"
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise FusionError(f"TensorRT cannot parse the graph: {errors}", onnx_path)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        if graph == "lidar":  # the one dynamic axis: the number of pillars
            profile = builder.create_optimization_profile()
            for i in range(network.num_inputs):
                t = network.get_input(i)
                rest = tuple(t.shape)[1:]
                profile.set_shape(
                    t.name, (1, *rest), (self.max_pillars // 2, *rest), (self.max_pillars, *rest)
                )
            config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise FusionError("TensorRT failed to build the engine", onnx_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes(plan))
        return bytes(plan)

    def _run(
        self, graph: str, inputs: dict[str, NDArray[np.generic]], output_names: tuple[str, ...]
    ) -> list[NDArray[np.float32]]:
        torch, trt = self._torch, self._trt
        engine, context = self._engines[graph], self._contexts[graph]
        dtypes = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32}
        keep = []
        outputs: dict[str, Any] = {}
        for name, array in inputs.items():
            t = torch.from_numpy(np.ascontiguousarray(array)).cuda()
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
        stream.synchronize()
        return [outputs[n].float().cpu().numpy() for n in output_names]

    def camera(
        self, images: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        depth, context = self._run("camera", {"images": images.astype(np.float32)}, CAMERA_OUTPUTS)
        return depth, context

    def lidar(
        self, voxels: NDArray[np.float32], num_points: NDArray[np.int32], coords: NDArray[np.int32]
    ) -> NDArray[np.float32]:
        (out,) = self._run(
            "lidar",
            {
                "voxels": voxels.astype(np.float32),
                "num_points": num_points.astype(np.int32),
                "coords": coords.astype(np.int32),
            },
            LIDAR_OUTPUTS,
        )
        return out

    def bev(
        self, *maps: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        feeds = {
            n: m.astype(np.float32) for n, m in zip(self.manifest.bev_inputs, maps, strict=True)
        }
        hm, reg, attr = self._run("bev", feeds, BEV_OUTPUTS)
        return hm, reg, attr
