"""One frame through the whole detector: the pre-processing stages of `fusion.preprocess.inputs`
(the same functions training runs), the engine's dense graphs, the lift and scatter kernels
between them, decode and NMS, with per-stage wall times.

Camera geometry (frustums binned by `kernels.precompute_bev_pool`) is cached by calibration
and image view (`fusion.preprocess.inputs.CameraGeometryCache`), so a fixed rig computes it once.

An engine whose `outputs` is `"tensor"` (torch or TensorRT on a CUDA device) returns device
tensors: the runner then keeps the graphs' outputs, the kernels between them (`bev_pool`,
`scatter_bev` dispatch to CUDA for device inputs) and the BEV graph's inputs on the device, and
copies only the head's maps to the host for decoding; stage times come from CUDA events
(`fusion.engines.device.stage_clock`). The point clouds are uploaded before
`voxelize` and the radar raster, which then run as CUDA kernels; the images are normalized on
the host and uploaded by the camera graph. What crosses PCIe per frame: the sensor data in,
the head's maps out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusion.config import PipelineConfig
from fusion.engines.base import Engine, EngineBackend, pad_camera_batch
from fusion.engines.device import StageClock, resolve_device, stage_clock, to_host
from fusion.engines.export import export_onnx
from fusion.engines.onnxruntime_engine import OnnxRuntimeEngine, providers_for
from fusion.engines.tensorrt_engine import TensorRTEngine
from fusion.engines.torch_engine import TorchEngine
from fusion.frame import Detections, Frame
from fusion.model.detector import Detector, Variant, variant_modalities
from fusion.model.params import ModelParams
from fusion.postprocess.decode import decode_detections
from fusion.preprocess.inputs import (
    CameraGeometryCache,
    CameraMotion,
    SampleInputs,
    frame_radar_raster,
    sample_inputs,
)
from kernels import bev_pool, scatter_bev


@dataclass(frozen=True)
class StageTimes:
    """Wall time of each stage of one frame, ms: the fields, in order, are the stages
    (`STAGES`). 0 for stages a variant does not run; `read` and `decode` are filled by whoever
    built the frame."""

    read: float = 0.0  # sensor files or log messages read
    decode: float = 0.0  # JPEG, point clouds and poses decoded into a Frame
    images: float = 0.0  # resize, crop, normalize
    camera_geometry: float = 0.0  # frustums + precompute_bev_pool (0 on a cache hit)
    camera_net: float = 0.0
    bev_pool: float = 0.0
    voxelize: float = 0.0
    lidar_net: float = 0.0
    scatter: float = 0.0
    radar_wait: float = 0.0  # a frame started before its radar scans came (replay) waits here
    radar_raster: float = 0.0
    bev_net: float = 0.0
    postprocess: float = 0.0  # peaks, boxes, NMS

    @property
    def total(self) -> float:
        return float(sum(getattr(self, f.name) for f in fields(self)))

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(StageTimes))

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


# Every stage of one frame, in order: the one list of them.
STAGES: tuple[str, ...] = StageTimes.names()


@dataclass(frozen=True, eq=False)
class HeadOutput:
    """The BEV graph's outputs for one frame, (1, K, ny, nx), (1, 10, ny, nx), (1, 8, ny, nx)."""

    heatmap: NDArray[np.float32]
    regression: NDArray[np.float32]
    attribute: NDArray[np.float32]


class Runner:
    """Detects objects in frames with one variant's `engine` (batch 1).

    `camera_motion`: "ignore" (default) computes camera geometry once per rig; "compensate"
    places each camera at its own time's ego pose, recomputing the geometry every frame on a
    moving car (see `fusion.preprocess.inputs`)."""

    def __init__(
        self,
        cfg: PipelineConfig,
        variant: Variant,
        engine: Engine,
        params: ModelParams | None = None,
        geometry_cache: int = 8,
        camera_motion: CameraMotion = "ignore",
    ) -> None:
        self.cfg = cfg
        self.variant = variant
        self.modalities = variant_modalities(variant)
        self.engine = engine
        self.params = params or cfg.params
        self.geometry = CameraGeometryCache(cfg, camera_motion, geometry_cache)
        # device tensors between the stages (see the module docstring)
        self.on_device = getattr(engine, "outputs", "numpy") == "tensor"
        self.device = str(getattr(engine, "device_name", "cpu"))

    def _zeros(self, shape: tuple[int, ...]) -> Any:
        """A zero map where the engine's tensors live."""
        if self.on_device:
            import torch

            return torch.zeros(shape, dtype=torch.float32, device=self.device)
        return np.zeros(shape, np.float32)

    def _kernel_out(self, x: Any) -> Any:
        """A kernel's output: kept as it is (a tensor on the engine's device), or float32 numpy."""
        return x if self.on_device else np.asarray(x, np.float32)

    def clock(self) -> StageClock:
        return stage_clock(self.device if self.on_device else "cpu")

    @property
    def geometry_builds(self) -> int:
        """How often the camera geometry was computed (not cached)."""
        return self.geometry.builds

    def inputs(self, frame: Frame, clock: StageClock | None = None) -> SampleInputs:
        """The pre-processing stages, as training runs them (without augmentation)."""
        lap = clock.lap if clock is not None else (lambda stage: None)
        inputs, _ = sample_inputs(
            frame,
            self.cfg,
            self.modalities,
            geometry_cache=self.geometry,
            lap=lap,
            points_to=self._upload if self.on_device else None,
        )
        return inputs

    def _upload(self, points: NDArray[np.float32]) -> Any:
        """Point clouds to the engine's device: voxelize and the radar raster then run there."""
        import torch

        return torch.from_numpy(points).to(self.device)

    def bev_maps(self, inputs: SampleInputs, clock: StageClock) -> list[Any]:
        """The BEV graph's inputs, (1, C, ny, nx) each (LIDAR on the pillar grid), in modality
        order; a sensor absent from the inputs gives a zero map, as in training."""
        cfg = self.cfg
        nx, ny = cfg.bev.grid
        maps: list[NDArray[np.float32]] = []
        for modality in self.modalities:
            match modality:
                case "camera":
                    out = self._zeros((cfg.camera.channels_out, ny, nx))
                    p = inputs.camera_present
                    if p.any() and inputs.camera_geometry is not None:
                        # a frame missing cameras (not yet in, undecodable) runs on the
                        # graph's fixed batch: zero images fill it, their outputs are left out
                        n = int(p.sum())
                        images = pad_camera_batch(inputs.images[p], self.engine.camera_batch)
                        depth, context = self.engine.camera(np.ascontiguousarray(images))
                        depth, context = depth[:n], context[:n]
                        clock.lap("camera_net")
                        if not self.on_device:
                            depth, context = (
                                np.ascontiguousarray(depth),
                                np.ascontiguousarray(context),
                            )
                        out = self._kernel_out(bev_pool(depth, context, inputs.camera_geometry))
                        clock.lap("bev_pool")
                    maps.append(out[None])
                case "lidar":
                    px, py, _ = cfg.point_cloud.grid_size  # scattered on the pillar grid
                    out = self._zeros((cfg.model.lidar_channels, py, px))
                    vox = inputs.voxels
                    if vox is not None and len(vox):
                        feats = self.engine.lidar(vox.features, vox.num_points, vox.coords)
                        clock.lap("lidar_net")
                        if not self.on_device:
                            feats = np.ascontiguousarray(feats, np.float32)
                        out = self._kernel_out(scatter_bev(feats, vox.coords, (px, py)))
                        clock.lap("scatter")
                    maps.append(out[None])
                case "radar":
                    maps.append(self._radar_map(inputs.radar_raster))
        return maps

    def _radar_map(self, raster: Any) -> Any:
        """The BEV graph's radar input (1, C, ny, nx) from a frame's raster (None: zeros)."""
        if raster is None:
            nx, ny = self.cfg.bev.grid
            raster = np.zeros((self.cfg.radar.raster_channels, ny, nx), np.float32)
        if self.on_device and not isinstance(raster, np.ndarray):
            return raster[None]  # rasterized on the device
        return np.ascontiguousarray(raster, np.float32)[None]

    def head(self, frame: Frame, clock: StageClock | None = None) -> HeadOutput:
        """Pre-processing, the dense graphs and the kernels between them: the head's maps
        (on the host: the one copy off the device)."""
        clock = clock or self.clock()
        maps = self.bev_maps(self.inputs(frame, clock), clock)
        return self._bev(maps, clock)

    def _bev(self, maps: list[Any], clock: StageClock) -> HeadOutput:
        clock.lap("images")  # bookkeeping between stages is charged to the first stage
        heatmap, regression, attribute = self.engine.bev(*maps)
        heatmap, regression, attribute = to_host(heatmap), to_host(regression), to_host(attribute)
        clock.lap("bev_net")
        return HeadOutput(heatmap, regression, attribute)

    def _decode(self, out: HeadOutput, clock: StageClock) -> tuple[Detections, StageTimes]:
        dets = decode_detections(
            out.heatmap[0], out.regression[0], out.attribute[0], self.cfg, self.params
        )
        clock.lap("postprocess")
        return dets, StageTimes(**clock.times)

    def detect(self, frame: Frame) -> tuple[Detections, StageTimes]:
        """Detections in the LIDAR_TOP frame at the reference time, and the stage times."""
        clock = self.clock()
        return self._decode(self.head(frame, clock), clock)

    def detect_started(
        self, frame: Frame, radars: Callable[[], Frame | None]
    ) -> tuple[Frame, Detections, StageTimes] | None:
        """`detect` of a frame started before its radar scans were final (replay's early
        start, `fusion.sync.ingest.RadarCompletion.wait`): the camera and LIDAR stages run on
        `frame` first, then `radars()` gives the whole frame (blocking until it is known; the
        wait is the stage `radar_wait`), whose radar raster joins the BEV graph. The whole
        frame, its detections (those `detect` gives it) and the stage times; None when
        `radars()` gives None (its trigger was dropped)."""
        if "radar" not in self.modalities:
            whole = radars()
            return None if whole is None else (whole, *self.detect(whole))
        clock = self.clock()
        maps = self.bev_maps(self.inputs(frame, clock), clock)
        whole = radars()
        clock.lap("radar_wait")
        if whole is None:
            return None
        points_to = self._upload if self.on_device else None
        raster = frame_radar_raster(whole, self.cfg, points_to=points_to)
        clock.lap("radar_raster")
        maps[self.modalities.index("radar")] = self._radar_map(raster)
        return whole, *self._decode(self._bev(maps, clock), clock)


def open_engine(
    backend: EngineBackend,
    model: Detector,
    work_dir: str | Path,
    device: str = "cpu",
    *,
    precision: str = "fp16",
    cuda_graphs: bool = False,
) -> Engine:
    """An engine of `backend` for `model` on `device` (`fusion.engines.device.resolve_device`:
    auto, cpu, cuda, cuda:N); ONNX graphs (and TensorRT plans) go to `work_dir`. On a CUDA
    device the torch and TensorRT engines keep their tensors there; `cuda_graphs` replays the
    torch engine's static graphs; `precision` is TensorRT's (fp32, fp16; int8 needs a
    calibration set: `fusion export --tensorrt --int8`)."""

    dev = resolve_device(backend, device)
    match backend:
        case "torch":
            return TorchEngine(model, dev, cuda_graphs=cuda_graphs)
        case "onnxruntime":
            folder = Path(work_dir) / "onnx" / model.variant
            export_onnx(model, folder)
            return OnnxRuntimeEngine(folder, providers_for(dev))
        case "tensorrt":
            folder = Path(work_dir) / "onnx" / model.variant
            export_onnx(model, folder)
            return TensorRTEngine(folder, precision)  # type: ignore[arg-type]
        case _:
            raise ValueError(f"unknown backend {backend!r}")
