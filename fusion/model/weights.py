"""Detector weights as safetensors, with the config and variant in the file's metadata.

Only safetensors are read: no pickle anywhere (`torch.load` is never used).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from fusion.config import PipelineConfig, dumps_toml, load_dataclass
from fusion.errors import FusionError
from fusion.model.detector import VARIANTS, Detector, Variant
from fusion.model.params import ModelParams

FORMAT = "fusion-detector/1"
MODEL_PREFIX = "model."


def detector_metadata(model: Detector) -> dict[str, str]:
    """What it takes to rebuild `model`: variant, pipeline config (TOML), model params (JSON)."""
    return {
        "format": FORMAT,
        "variant": model.variant,
        "config": dumps_toml(model.cfg),
        "params": json.dumps(dataclasses.asdict(model.params)),
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


def config_from_toml(text: str) -> PipelineConfig:
    """Parse a pipeline config from TOML text with the strict loader."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "config.toml"
        p.write_text(text)
        return load_dataclass(PipelineConfig, p)


def params_from_json(text: str) -> ModelParams:
    raw = json.loads(text)
    return ModelParams(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        raise FusionError("weights file not found", path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise FusionError(f"not a safetensors file: {exc}", path) from exc
    if meta.get("format") != FORMAT or meta.get("variant") not in VARIANTS:
        raise FusionError(f"not detector weights (format {meta.get('format')!r})", path)
    return meta


def load_detector(path: str | Path, device: torch.device | str = "cpu") -> Detector:
    """Rebuild the detector stored at `path` (eval mode) on `device`."""
    meta = read_metadata(path)
    variant: Variant = meta["variant"]  # type: ignore[assignment]
    model = Detector(config_from_toml(meta["config"]), variant, params_from_json(meta["params"]))
    state = {}
    with safe_open(str(path), framework="pt", device="cpu") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open has no __iter__)
            if key.startswith(MODEL_PREFIX):
                state[key[len(MODEL_PREFIX) :]] = f.get_tensor(key)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise FusionError(f"weights do not fit the stored config: {exc}", path) from exc
    return model.to(device).eval()


def packaged_weights(variant: str) -> Path:
    """Where the shipped weights of a variant live (`fusion/weights/<variant>.safetensors`)."""
    path = Path(__file__).resolve().parent.parent / "weights" / f"{variant}.safetensors"
    if not path.is_file():
        raise FusionError(f"no shipped weights for the {variant!r} model: pass --weights", path)
    return path
