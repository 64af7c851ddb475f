"""Detector weights as safetensors, with the config and variant in the file's metadata.

Only safetensors are read: no pickle anywhere (`torch.load` is never used). The metadata is
checked before anything is allocated: the config through the strict loader (types and ranges),
then every tensor's shape against a model built on the `meta` device (no memory), so a file
cannot make the loader allocate more than the config it names. Every tensor must be finite
(`check_finite`), in weights and in training checkpoints alike.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fusion.config import PipelineConfig, build_dataclass, dumps_toml, parse_toml
from fusion.errors import ConfigError, DataError, FusionError
from fusion.model.detector import VARIANTS, Detector, Variant

# 2: the config carries everything (model params, augmentation, learning rates, warm-up).
FORMAT = "fusion-detector/2"
# 1: the config without those, `camera.image_size` for `image_hw`, model params as JSON beside
# it (the shipped weights of 2026-11); read by `config_from_metadata`, never written.
FORMAT_1 = "fusion-detector/1"
MODEL_PREFIX = "model."
# Far above any preset (tiny: 1.3 M parameters): refuses a config that would allocate gigabytes.
MAX_PARAMETERS = 200_000_000

# What format-1 files left to code defaults, as they were when they were written.
_FORMAT_1_TRAIN = {
    "warmup_steps": 200,
    "branch_lr": {"camera": 1.0, "lidar": 1.0, "radar": 1.0, "dense": 1.0},
    "augment": {
        "rotation": 0.39269908169872414,  # pi / 8
        "scale": [0.95, 1.05],
        "flip": 0.5,
        "image_resize": [-0.06, 0.06],
        "image_crop": True,
    },
}


def detector_metadata(model: Detector) -> dict[str, str]:
    """What it takes to rebuild `model`: variant and pipeline config (TOML, with its params)."""
    return {
        "format": FORMAT,
        "variant": model.variant,
        "config": dumps_toml(model.cfg),
    }


def model_tensors(model: Detector) -> dict[str, torch.Tensor]:
    return {MODEL_PREFIX + k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_detector(
    model: Detector, path: str | Path, extra_metadata: dict[str, str] | None = None
) -> Path:
    """Write the weights (and only the weights) of `model` to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        model_tensors(model), str(path), {**detector_metadata(model), **(extra_metadata or {})}
    )
    return path


def _json_table(text: str, what: str, source: str | Path) -> dict[str, Any]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not JSON: {exc}", source) from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} is not a JSON object", source)
    return raw


def config_from_metadata(meta: dict[str, str], source: str | Path) -> PipelineConfig:
    """The pipeline config of a weights file's metadata, either format, through the strict
    loader (a format-1 file's params JSON becomes the `[params]` table)."""
    if "config" not in meta:
        raise ConfigError("metadata has no config", source)
    table = parse_toml(meta["config"], source)
    if meta.get("format") == FORMAT_1:
        if "params" not in meta:
            raise ConfigError("format-1 metadata has no params", source)
        table["params"] = _json_table(meta["params"], "metadata 'params'", source)
        if isinstance(table["params"], dict):  # written before the field: raw features
            table["params"].setdefault("point_features", "raw")
        train = table.get("train")
        if isinstance(train, dict):
            table["train"] = {**_FORMAT_1_TRAIN, **train}
        camera = table.get("camera")
        if isinstance(camera, dict) and "image_size" in camera:
            camera["image_hw"] = camera.pop("image_size")  # the same (H, W), renamed
    return build_dataclass(PipelineConfig, table, source)


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise FusionError("weights file not found", path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise FusionError(f"not a safetensors file: {exc}", path) from exc
    if meta.get("format") not in (FORMAT, FORMAT_1) or meta.get("variant") not in VARIANTS:
        raise FusionError(f"not detector weights (format {meta.get('format')!r})", path)
    return meta


def load_detector(path: str | Path, device: torch.device | str = "cpu") -> Detector:
    """Rebuild the detector stored at `path` (eval mode) on `device`."""
    meta = read_metadata(path)
    variant: Variant = meta["variant"]  # type: ignore[assignment]
    cfg = config_from_metadata(meta, path)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        _check_shapes(f, cfg, variant, path)
        state = {
            key[len(MODEL_PREFIX) :]: f.get_tensor(key)
            for key in f.keys()  # noqa: SIM118 (safe_open has no __iter__)
            if key.startswith(MODEL_PREFIX)
        }
    check_finite(state, path)
    model = Detector(cfg, variant)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise FusionError(f"weights do not fit the stored config: {exc}", path) from exc
    return model.to(device).eval()


def check_finite(tensors: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """A NaN or Inf in any floating-point tensor is a DataError naming the tensor and the file,
    before any inference (a model of NaNs runs and scores mAP 0 without a word)."""
    for name, t in tensors.items():
        if t.is_floating_point() or t.is_complex():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise DataError(f"tensor {name!r} has {bad} of {t.numel()} values NaN or Inf", path)


def _check_shapes(f: Any, cfg: PipelineConfig, variant: Variant, path: str | Path) -> None:
    """Every tensor of the file against the model `cfg` describes, built on the meta device
    (shapes only, no memory), before anything is allocated."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in Detector(cfg, variant).state_dict().items()}
    total = sum(math.prod(s) for s in expected.values())
    if total > MAX_PARAMETERS:
        raise FusionError(
            f"the stored config describes {total:,} parameters (at most {MAX_PARAMETERS:,})", path
        )
    stored = {}
    for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
        if key.startswith(MODEL_PREFIX):
            stored[key[len(MODEL_PREFIX) :]] = tuple(f.get_slice(key).get_shape())
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise FusionError(
            f"weights do not fit the stored config: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}",
            path,
        )
    for key, shape in expected.items():
        if stored[key] != shape:
            raise FusionError(
                f"weights do not fit the stored config: {key} is {list(stored[key])}, "
                f"the config makes it {list(shape)}",
                path,
            )


def packaged_weights(variant: str) -> Path:
    """Where the shipped weights of a variant live (`fusion/weights/<variant>.safetensors`)."""
    path = Path(__file__).resolve().parent.parent / "weights" / f"{variant}.safetensors"
    if not path.is_file():
        raise FusionError(f"no shipped weights for the {variant!r} model: pass --weights", path)
    return path


# -- the command line: which models, from which files ----------------------------------------


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """`--models`, `--weights` and `--checkpoint`, shared by every command that runs models."""
    parser.add_argument(
        "--models", default="fusion,camera,lidar", help="comma-separated: fusion,camera,lidar"
    )
    add_weights_arguments(parser)


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """`--weights DIR` and `--checkpoint MODEL=PATH`: where the models' weights come from
    (`resolve_weights`); also for the commands that take one `--model`."""
    parser.add_argument(
        "--weights", type=Path, help="folder with <model>.safetensors (default: shipped)"
    )
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="weights file of one model (repeatable)",
    )


def models_from_args(args: argparse.Namespace) -> dict[str, Path]:
    """Model name -> weights file, from the arguments of `add_model_arguments`."""
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    return resolve_weights(names, args.weights, args.checkpoint)


def resolve_weights(
    names: Sequence[str], weights_dir: Path | None, overrides: Sequence[str]
) -> dict[str, Path]:
    """Model name -> weights file: `--checkpoint NAME=PATH`, else `--weights DIR/NAME.safetensors`
    (or DIR/NAME/NAME.safetensors, the layout of `fusion train` runs), else the shipped weights."""
    explicit = {}
    for item in overrides:
        name, sep, path = item.partition("=")
        if not sep or name not in VARIANTS:
            raise FusionError(
                f"--checkpoint wants MODEL=PATH with MODEL in {', '.join(VARIANTS)}, got {item!r}"
            )
        explicit[name] = Path(path)
    out = {}
    for name in names:
        if name not in VARIANTS:
            raise FusionError(f"unknown model {name!r} (known: {', '.join(VARIANTS)})")
        if name in explicit:
            out[name] = explicit[name]
        elif weights_dir is not None:
            # a folder of weights, or a folder of `fusion train` runs named after the models
            out[name] = weights_dir / f"{name}.safetensors"
            run_dir = weights_dir / name / f"{name}.safetensors"
            if not out[name].is_file() and run_dir.is_file():
                out[name] = run_dir
        else:
            out[name] = packaged_weights(name)
        if not out[name].is_file():
            raise FusionError(f"weights of the {name!r} model not found", out[name])
    return out
