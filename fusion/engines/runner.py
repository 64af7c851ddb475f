"""One frame through the whole detector: pre-processing kernels, the engine's dense graphs,
the lift and scatter kernels between them, decode and NMS, with per-stage wall times.

Camera geometry (frustums binned by `kernels.precompute_bev_pool`) is cached by camera
calibration and image size, so a fixed rig computes it once.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusion.config import PipelineConfig
from fusion.dataset import (
    CameraInputs,
    camera_frustums,
    camera_geometry,
    camera_inputs,
    lidar_voxels,
    radar_points,
    radar_raster,
)
from fusion.engines.base import Backend, Engine
from fusion.frame import Detections, Frame
from fusion.model.decode import decode_detections
from fusion.model.detector import Detector, variant_modalities
from fusion.model.params import ModelParams
from kernels import bev_pool, scatter_bev


@dataclass(frozen=True)
class StageTimes:
    """Wall time of each stage for one frame, ms (0 for stages a variant does not run)."""

    images: float = 0.0  # resize, crop, normalize
    camera_geometry: float = 0.0  # frustums + precompute_bev_pool (0 on a cache hit)
    camera_net: float = 0.0
    bev_pool: float = 0.0
    voxelize: float = 0.0
    lidar_net: float = 0.0
    scatter: float = 0.0
    radar_raster: float = 0.0
    bev_net: float = 0.0
    decode: float = 0.0  # peaks, boxes, NMS

    @property
    def total(self) -> float:
        return float(sum(getattr(self, f.name) for f in fields(self)))

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(StageTimes))


class _Clock:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.times[stage] = self.times.get(stage, 0.0) + (now - self._t) * 1e3
        self._t = now


class Runner:
    """Detects objects in frames with one variant's `engine` (batch 1)."""

    def __init__(
        self,
        cfg: PipelineConfig,
        variant: str,
        engine: Engine,
        params: ModelParams | None = None,
        geometry_cache: int = 16,
    ) -> None:
        self.cfg = cfg
        self.variant = variant
        self.modalities = variant_modalities(variant)  # type: ignore[arg-type]
        self.engine = engine
        self.params = params or cfg.params
        self._geometry: OrderedDict[str, Any] = OrderedDict()
        self._geometry_cache = geometry_cache
        self.geometry_builds = 0  # how often the camera geometry was computed (not cached)

    def _camera_geometry(self, cams: CameraInputs) -> Any:
        h = hashlib.sha1()
        for cam, pose in zip(cams.cameras, cams.cam_to_lidar, strict=True):
            if cam is None or pose is None:
                h.update(b"-")
                continue
            # mm / sub-mrad rounding: ego motion below that changes no cell assignment that matters
            h.update(np.round(cam.intrinsics, 3).tobytes() + np.round(pose, 4).tobytes())
            h.update(f"{cam.width}x{cam.height}".encode())
        key = h.hexdigest()
        if key in self._geometry:
            self._geometry.move_to_end(key)
            return self._geometry[key]
        geometry = camera_geometry(camera_frustums(cams, self.cfg), self.cfg)
        self.geometry_builds += 1
        self._geometry[key] = geometry
        if len(self._geometry) > self._geometry_cache:
            self._geometry.popitem(last=False)
        return geometry

    def bev_maps(self, frame: Frame, clock: _Clock) -> list[NDArray[np.float32]]:
        """The BEV graph's inputs for `frame`, (1, C, ny, nx) each (LIDAR on the pillar grid),
        in modality order."""
        cfg = self.cfg
        nx, ny = cfg.bev.grid
        maps: list[NDArray[np.float32]] = []
        for modality in self.modalities:
            match modality:
                case "camera":
                    c = cfg.camera.channels_out
                    out = np.zeros((c, ny, nx), np.float32)
                    cams = camera_inputs(frame, cfg)
                    clock.lap("images")
                    if cams.present.any():
                        geometry = self._camera_geometry(cams)
                        clock.lap("camera_geometry")
                        depth, context = self.engine.camera(cams.images)
                        clock.lap("camera_net")
                        p = cams.present
                        out = np.asarray(
                            bev_pool(
                                np.ascontiguousarray(depth[p]),
                                np.ascontiguousarray(context[p]),
                                geometry,
                            ),
                            np.float32,
                        )
                        clock.lap("bev_pool")
                    maps.append(out[None])
                case "lidar":
                    c = cfg.model.lidar_channels
                    px, py, _ = cfg.point_cloud.grid_size  # scattered on the pillar grid
                    out = np.zeros((c, py, px), np.float32)
                    if frame.lidar is not None:
                        vox = lidar_voxels(frame.lidar.points, cfg)
                        clock.lap("voxelize")
                        if len(vox):
                            feats = self.engine.lidar(vox.features, vox.num_points, vox.coords)
                            clock.lap("lidar_net")
                            out = np.asarray(
                                scatter_bev(
                                    np.ascontiguousarray(feats, np.float32), vox.coords, (px, py)
                                ),
                                np.float32,
                            )
                            clock.lap("scatter")
                    maps.append(out[None])
                case "radar":
                    out = np.zeros((cfg.radar.raster_channels, ny, nx), np.float32)
                    if frame.radars:
                        out = radar_raster(radar_points(frame, cfg), cfg)
                        clock.lap("radar_raster")
                    maps.append(out[None])
        return maps

    def detect(self, frame: Frame) -> tuple[Detections, StageTimes]:
        """Detections in the LIDAR_TOP frame at the reference time, and the stage times."""
        clock = _Clock()
        maps = self.bev_maps(frame, clock)
        clock.lap("images")  # bookkeeping between stages is charged to the first stage
        heatmap, regression, attribute = self.engine.bev(*maps)
        clock.lap("bev_net")
        dets = decode_detections(heatmap[0], regression[0], attribute[0], self.cfg, self.params)
        clock.lap("decode")
        return dets, StageTimes(**clock.times)


def open_engine(
    backend: Backend, model: Detector, work_dir: str | Path, device: str = "cpu"
) -> Engine:
    """An engine of `backend` for `model`; ONNX graphs (and TensorRT plans) go to `work_dir`."""
    match backend:
        case "torch":
            from fusion.engines.torch_engine import TorchEngine

            return TorchEngine(model, device)
        case "onnxruntime":
            from fusion.engines.export import export_onnx
            from fusion.engines.onnxruntime_engine import OnnxRuntimeEngine

            folder = Path(work_dir) / "onnx" / model.variant
            export_onnx(model, folder)
            return OnnxRuntimeEngine(folder)
        case "tensorrt":
            from fusion.engines.export import export_onnx
            from fusion.engines.tensorrt_engine import TensorRTEngine

            folder = Path(work_dir) / "onnx" / model.variant
            export_onnx(model, folder)
            return TensorRTEngine(folder)
        case _:
            raise ValueError(f"unknown backend {backend!r}")
