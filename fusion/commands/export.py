"""`fusion export`: write the dense network as ONNX graphs (`fusion.engines.export`), and with
`--tensorrt` build TensorRT plans from them (INT8 calibrated on `--calibration` frames)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.engines.export import OPSET, export_onnx
from fusion.engines.int8 import calibration_set
from fusion.engines.tensorrt_engine import TensorRTEngine
from fusion.errors import FusionError
from fusion.model.detector import VARIANTS
from fusion.model.weights import add_weights_arguments, load_detector, resolve_weights


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=VARIANTS)
    parser.add_argument("--out", required=True, type=Path, help="folder for the .onnx graphs")
    add_weights_arguments(parser)
    parser.add_argument("--opset", type=int, default=OPSET)
    add_json_arguments(parser, "the files written")
    trt = parser.add_argument_group("TensorRT (an NVIDIA GPU and the tensorrt package)")
    trt.add_argument(
        "--tensorrt",
        action="store_true",
        help="also build TensorRT plans from the graphs (cached by content hash in OUT/tensorrt)",
    )
    trt.add_argument("--precision", choices=("fp32", "fp16"), default="fp16")
    trt.add_argument(
        "--int8", action="store_true", help="INT8 (FP16 fallback), calibrated on --int8-dataroot"
    )
    trt.add_argument("--int8-dataroot", type=Path, help="dataroot of the INT8 calibration frames")
    trt.add_argument("--int8-version", help="its version (required with --int8-dataroot)")
    trt.add_argument("--int8-split", help="its split (default: every sample)")
    trt.add_argument("--int8-frames", type=int, default=64, help="calibration frames")
    trt.add_argument("--max-pillars", type=int, default=30000, help="the lidar graph's profile")


def run(args: argparse.Namespace) -> int:
    if args.int8 and not args.tensorrt:
        raise FusionError("--int8 builds a TensorRT plan: add --tensorrt")
    if args.int8 and args.int8_dataroot is None:
        raise FusionError("--int8 needs --int8-dataroot DATAROOT (the calibration frames)")
    if args.int8_dataroot is not None and not args.int8_version:
        raise FusionError("--int8-dataroot needs --int8-version (e.g. v1.0-trainval)")
    path = resolve_weights([args.model], args.weights, args.checkpoint)[args.model]
    model = load_detector(path)
    if model.variant != args.model:
        raise FusionError(f"weights are for the {model.variant!r} model, not {args.model!r}", path)
    manifest = export_onnx(model, args.out, args.opset)
    plans: dict[str, str] = {}
    built: dict[str, bool] = {}
    result: dict[str, object] = {
        "model": args.model,
        "weights": str(path),
        "onnx": [str(args.out / (g + ".onnx")) for g in manifest.graphs],
    }
    if args.tensorrt:
        calibration = None
        if args.int8:
            calibration = calibration_set(
                model,
                args.int8_dataroot,
                args.int8_version,
                args.int8_frames,
                args.int8_split,
            )
        engine = TensorRTEngine(
            args.out,
            "int8" if args.int8 else args.precision,
            max_pillars=args.max_pillars,
            calibration=calibration,
        )
        plans = {g: str(plan) for g, plan in engine.plans.items()}
        built = {g: bool(engine.built[g]) for g in plans}
        result["tensorrt"] = {g: {"plan": plans[g], "built": built[g]} for g in plans}
    if not emit_json(args, result):
        for g in manifest.graphs:
            print(f"wrote {args.out / (g + '.onnx')}")
        for g, plan in plans.items():
            print(f"{'built' if built[g] else 'cached'} {plan}")
    return 0
