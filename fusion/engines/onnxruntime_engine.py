"""ONNX Runtime engine over the graphs `fusion export` writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fusion.engines.export import ExportManifest, read_manifest
from fusion.errors import FusionError


class OnnxRuntimeEngine:
    """Runs camera.onnx, lidar.onnx and bev.onnx of an export folder (CPU provider unless
    `providers` says otherwise)."""

    name = "onnxruntime"

    def __init__(
        self, folder: str | Path, providers: list[str] | None = None, threads: int = 0
    ) -> None:
        import onnxruntime as ort

        self.folder = Path(folder)
        self.manifest: ExportManifest = read_manifest(self.folder)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        providers = providers or ["CPUExecutionProvider"]
        self.sessions = {}
        for graph in self.manifest.graphs:
            path = self.folder / f"{graph}.onnx"
            if not path.is_file():
                raise FusionError("exported graph is missing", path)
            self.sessions[graph] = ort.InferenceSession(str(path), opts, providers=providers)

    def _session(self, graph: str):  # noqa: ANN202
        if graph not in self.sessions:
            raise FusionError(
                f"the {self.manifest.variant} export has no {graph} graph", self.folder
            )
        return self.sessions[graph]

    def camera(
        self, images: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        depth, context = self._session("camera").run(
            None, {"images": np.ascontiguousarray(images, np.float32)}
        )
        return depth, context

    def lidar(
        self, voxels: NDArray[np.float32], num_points: NDArray[np.int32], coords: NDArray[np.int32]
    ) -> NDArray[np.float32]:
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
        feeds = {n: np.ascontiguousarray(m, np.float32) for n, m in zip(names, maps, strict=True)}
        hm, reg, attr = self._session("bev").run(None, feeds)
        return hm, reg, attr
