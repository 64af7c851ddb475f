"""The INT8 calibration set: each graph's inputs on real frames, as inference computes them.

`graph_inputs` runs one frame through the pre-processing and the earlier graphs (with the
reference torch engine on the CPU) and returns what each exported graph is fed: `camera`
{images}, `lidar` {voxels, num_points, coords}, `bev` {<modality>_bev ...}. `calibration_set`
does that for `frames` keyframes spread over a dataroot, decoded as inference decodes them
(reduced-scale JPEGs). The devkit is imported only when a dataroot is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.engines.base import CAMERA_INPUTS, LIDAR_INPUTS, bev_input_names
from fusion.engines.device import stage_clock
from fusion.engines.runner import Runner
from fusion.engines.tensorrt_engine import Batches
from fusion.engines.torch_engine import TorchEngine
from fusion.errors import FusionError
from fusion.frame import Frame
from fusion.model.detector import Detector


def graph_inputs(model: Detector, frame: Frame) -> dict[str, dict[str, np.ndarray]]:
    """The inputs of each graph of `model` for one frame (batch 1, the exported shapes)."""

    runner = Runner(model.cfg, model.variant, TorchEngine(model), model.params)
    inputs = runner.inputs(frame)
    out: dict[str, dict[str, np.ndarray]] = {}
    if "camera" in model.modalities:
        # the camera graph is static over every configured camera (absent ones are zeros)
        out["camera"] = {CAMERA_INPUTS[0]: np.ascontiguousarray(inputs.images)}
    if "lidar" in model.modalities and inputs.voxels is not None and len(inputs.voxels):
        v = inputs.voxels
        arrays = (v.features, v.num_points.astype(np.int32), v.coords.astype(np.int32))
        out["lidar"] = dict(zip(LIDAR_INPUTS, arrays, strict=True))
    maps = runner.bev_maps(inputs, stage_clock("cpu"))
    names = bev_input_names(model.modalities)
    out["bev"] = {n: np.ascontiguousarray(m, np.float32) for n, m in zip(names, maps, strict=True)}
    return out


def collect(model: Detector, frames: Iterable[Frame]) -> Batches:
    """Per graph, one batch per frame (`graph_inputs`)."""
    batches: dict[str, list[dict[str, np.ndarray]]] = {}
    for frame in frames:
        for graph, feeds in graph_inputs(model, frame).items():
            batches.setdefault(graph, []).append(feeds)
    return batches


def calibration_set(
    model: Detector,
    dataroot: str | Path,
    version: str,
    frames: int = 64,
    split: str | None = None,
) -> Batches:
    """`frames` keyframes spread evenly over `dataroot` (or its `split`), through `collect`."""

    if frames < 1:
        raise FusionError("--int8-frames must be >= 1")
    opts = ReaderOptions.from_config(model.cfg, image_decode="reduced")
    reader = NuScenesReader(dataroot, version, options=opts)
    tokens = reader.sample_tokens(split)
    if not tokens:
        raise FusionError("no samples to calibrate on", dataroot)
    picks = np.unique(np.linspace(0, len(tokens) - 1, min(frames, len(tokens))).round().astype(int))
    return collect(model, (reader.frame(tokens[i]) for i in picks))
