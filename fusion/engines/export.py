"""The dense network as static-shape ONNX graphs (`fusion export`, `fusion.commands.export`).

The split of NVIDIA's CUDA-BEVFusion: `camera.onnx` (image backbone + depth head),
`lidar.onnx` (pillar feature net; the one dynamic axis is the number of pillars) and
`bev.onnx` (radar BEV encoder, fuser, BEV backbone, head). The kernels (bev_pool, voxelize,
scatter, radar raster, NMS) run between and after the graphs. `manifest.json` says which
graphs exist and the BEV graph's input names; `config.toml` is the pipeline config.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from fusion.config import save_config
from fusion.engines.base import (
    BEV_OUTPUTS,
    CAMERA_INPUTS,
    CAMERA_OUTPUTS,
    LIDAR_INPUTS,
    LIDAR_OUTPUTS,
    MANIFEST,
    ExportManifest,
    bev_input_names,
)
from fusion.model.detector import Detector

OPSET = 17


class CameraGraph(nn.Module):
    def __init__(self, model: Detector) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.camera_net(images)


class LidarGraph(nn.Module):
    def __init__(self, model: Detector) -> None:
        super().__init__()
        self.model = model

    def forward(self, voxels: Tensor, num_points: Tensor, coords: Tensor) -> Tensor:
        return self.model.pillar_net(voxels, num_points, coords)


class BEVGraph(nn.Module):
    def __init__(self, model: Detector) -> None:
        super().__init__()
        self.model = model

    def forward(self, *maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.bev_net(*maps)


def weights_digest(model: Detector) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def example_inputs(model: Detector) -> dict[str, tuple[Tensor, ...]]:
    """Static example inputs for each graph of `model` (batch 1, the config's sizes)."""
    cfg = model.cfg
    nx, ny = cfg.bev.grid
    h, w = cfg.camera.image_hw
    out: dict[str, tuple[Tensor, ...]] = {}
    if "camera" in model.modalities:
        out["camera"] = (torch.randn(len(cfg.camera.channels), 3, h, w),)
    if "lidar" in model.modalities:
        p = cfg.point_cloud.max_points_per_voxel
        v = 16
        out["lidar"] = (
            torch.randn(v, p, cfg.point_cloud.features),
            torch.randint(1, p + 1, (v,), dtype=torch.int32),
            torch.randint(0, min(nx, ny), (v, 3), dtype=torch.int32),
        )
    out["bev"] = tuple(torch.randn(1, *model.bev_input_shape(m)) for m in model.modalities)
    return out


def _export(
    module: nn.Module,
    args: tuple[Tensor, ...],
    path: Path,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    dynamic: dict[str, dict[int, str]] | None,
    opset: int,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )


def export_onnx(model: Detector, out: str | Path, opset: int = OPSET) -> ExportManifest:
    """Write the graphs of `model` (moved to CPU, eval mode) into folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    examples = example_inputs(model)
    graphs = []
    with torch.no_grad():
        if "camera" in examples:
            _export(
                CameraGraph(model),
                examples["camera"],
                out / "camera.onnx",
                CAMERA_INPUTS,
                CAMERA_OUTPUTS,
                None,
                opset,
            )
            graphs.append("camera")
        if "lidar" in examples:
            dyn = {n: {0: "pillars"} for n in (*LIDAR_INPUTS, *LIDAR_OUTPUTS)}
            _export(
                LidarGraph(model),
                examples["lidar"],
                out / "lidar.onnx",
                LIDAR_INPUTS,
                LIDAR_OUTPUTS,
                dyn,
                opset,
            )
            graphs.append("lidar")
        bev_names = bev_input_names(model.modalities)
        _export(
            BEVGraph(model), examples["bev"], out / "bev.onnx", bev_names, BEV_OUTPUTS, None, opset
        )
        graphs.append("bev")
    manifest = ExportManifest(
        variant=model.variant,
        graphs=tuple(graphs),
        bev_inputs=bev_names,
        camera_shape=tuple(examples["camera"][0].shape) if "camera" in examples else (),
        bev_shapes=tuple(tuple(t.shape) for t in examples["bev"]),
        opset=opset,
        weights_sha256=weights_digest(model),
    )
    (out / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2))
    save_config(model.cfg, out / "config.toml")
    return manifest
