"""`fusion export`: write the dense network as static-shape ONNX graphs.

The split of NVIDIA's CUDA-BEVFusion: `camera.onnx` (image backbone + depth head),
`lidar.onnx` (pillar feature net; the one dynamic axis is the number of pillars) and
`bev.onnx` (radar BEV encoder, fuser, BEV backbone, head). The kernels (bev_pool, voxelize,
scatter, radar raster, NMS) run between and after the graphs. `manifest.json` says which
graphs exist and the BEV graph's input names; `config.toml` is the pipeline config.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass
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
    bev_input_names,
)
from fusion.errors import FusionError
from fusion.model.detector import VARIANTS, Detector
from fusion.model.weights import load_detector, packaged_weights

MANIFEST = "manifest.json"
OPSET = 17


@dataclass(frozen=True)
class ExportManifest:
    variant: str
    graphs: tuple[str, ...]
    bev_inputs: tuple[str, ...]
    camera_shape: tuple[int, ...]  # images (Ncam, 3, H, W); () without a camera graph
    bev_shapes: tuple[tuple[int, ...], ...]
    opset: int
    weights_sha256: str


def read_manifest(folder: Path) -> ExportManifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FusionError(
            "not an export folder (no manifest.json): run `fusion export` first", path
        )
    raw = json.loads(path.read_text())
    return ExportManifest(
        variant=raw["variant"],
        graphs=tuple(raw["graphs"]),
        bev_inputs=tuple(raw["bev_inputs"]),
        camera_shape=tuple(raw["camera_shape"]),
        bev_shapes=tuple(tuple(s) for s in raw["bev_shapes"]),
        opset=int(raw["opset"]),
        weights_sha256=raw["weights_sha256"],
    )


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=VARIANTS)
    parser.add_argument("--out", required=True, type=Path, help="folder for the .onnx graphs")
    parser.add_argument(
        "--weights", type=Path, help="safetensors weights (default: the shipped ones)"
    )
    parser.add_argument("--opset", type=int, default=OPSET)
    trt = parser.add_argument_group("TensorRT (an NVIDIA GPU and the tensorrt package)")
    trt.add_argument(
        "--tensorrt",
        action="store_true",
        help="also build TensorRT plans from the graphs (cached by content hash in OUT/tensorrt)",
    )
    trt.add_argument("--precision", choices=("fp32", "fp16"), default="fp16")
    trt.add_argument(
        "--int8", action="store_true", help="INT8 (FP16 fallback), calibrated on --calibration"
    )
    trt.add_argument("--calibration", type=Path, help="dataroot of the INT8 calibration frames")
    trt.add_argument("--calibration-version", default="v1.0-trainval")
    trt.add_argument("--calibration-split", help="its split (default: every sample)")
    trt.add_argument("--calibration-frames", type=int, default=64)
    trt.add_argument("--max-pillars", type=int, default=30000, help="the lidar graph's profile")


def run(args: argparse.Namespace) -> int:
    if args.int8 and not args.tensorrt:
        raise FusionError("--int8 builds a TensorRT plan: add --tensorrt")
    if args.int8 and args.calibration is None:
        raise FusionError("--int8 needs --calibration DATAROOT (the calibration frames)")
    path = args.weights or packaged_weights(args.model)
    model = load_detector(path)
    if model.variant != args.model:
        raise FusionError(f"weights are for the {model.variant!r} model, not {args.model!r}", path)
    manifest = export_onnx(model, args.out, args.opset)
    for g in manifest.graphs:
        print(f"wrote {args.out / (g + '.onnx')}")
    if args.tensorrt:
        from fusion.engines.tensorrt_engine import TensorRTEngine

        calibration = None
        if args.int8:
            from fusion.engines.calibration import calibration_set

            calibration = calibration_set(
                model,
                args.calibration,
                args.calibration_version,
                args.calibration_frames,
                args.calibration_split,
            )
        engine = TensorRTEngine(
            args.out,
            "int8" if args.int8 else args.precision,
            max_pillars=args.max_pillars,
            calibration=calibration,
        )
        for g, plan in engine.plans.items():
            print(f"{'built' if engine.built[g] else 'cached'} {plan}")
    return 0
