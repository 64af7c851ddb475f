"""Typed, frozen pipeline configs loaded from TOML presets in `configs/`.

One loader (`load_config`) maps a TOML table onto a dataclass tree and rejects unknown keys,
missing keys and wrong types, naming the key and the file. Derived values are properties.
Every run writes the config it used next to its outputs (`save_config`).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from fusion.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

CAMERA_CHANNELS: tuple[str, ...] = (
    "CAM_FRONT_LEFT",
    "CAM_FRONT",
    "CAM_FRONT_RIGHT",
    "CAM_BACK_LEFT",
    "CAM_BACK",
    "CAM_BACK_RIGHT",
)
RADAR_CHANNELS: tuple[str, ...] = (
    "RADAR_FRONT",
    "RADAR_FRONT_LEFT",
    "RADAR_FRONT_RIGHT",
    "RADAR_BACK_LEFT",
    "RADAR_BACK_RIGHT",
)
LIDAR_CHANNEL = "LIDAR_TOP"

DETECTION_CLASSES: tuple[str, ...] = (
    "car",
    "truck",
    "construction_vehicle",
    "bus",
    "trailer",
    "barrier",
    "motorcycle",
    "bicycle",
    "pedestrian",
    "traffic_cone",
)

# nuScenes attributes in the devkit's order (nuscenes.eval.detection.constants.ATTRIBUTE_NAMES).
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "pedestrian.moving",
    "pedestrian.sitting_lying_down",
    "pedestrian.standing",
    "cycle.with_rider",
    "cycle.without_rider",
    "vehicle.moving",
    "vehicle.parked",
    "vehicle.stopped",
)

# Which attributes the devkit accepts for each detection class ("" for none).
CLASS_ATTRIBUTE_PREFIX: dict[str, str] = {
    "car": "vehicle.",
    "truck": "vehicle.",
    "construction_vehicle": "vehicle.",
    "bus": "vehicle.",
    "trailer": "vehicle.",
    "barrier": "",
    "motorcycle": "cycle.",
    "bicycle": "cycle.",
    "pedestrian": "pedestrian.",
    "traffic_cone": "",
}

# Scene conditions of the synthetic generator; a scene's record carries its own as `condition`.
Condition = Literal["day", "night", "rain", "fog"]
CONDITIONS: tuple[Condition, ...] = typing.get_args(Condition)

# Point columns as the reader yields them (fusion.frame): LIDAR (N, 5), radar (N, 7).
LIDAR_POINT_COLUMNS: tuple[str, ...] = ("x", "y", "z", "intensity", "dt")
RADAR_POINT_COLUMNS: tuple[str, ...] = ("x", "y", "z", "rcs", "vx", "vy", "dt")

# Regression channels of the head, in order: offset x y (cells), z (m), log l w h (m),
# sin cos yaw, vx vy (m/s); all in the LIDAR_TOP frame.
REGRESSION_CHANNELS = 10


@dataclass(frozen=True)
class PointCloudConfig:
    """LIDAR input and voxelization. Ranges in m in the LIDAR_TOP frame."""

    point_range: tuple[float, float, float, float, float, float]
    voxel_size: tuple[float, float, float]
    max_points_per_voxel: int
    max_voxels: int
    sweeps: int
    features: int = len(LIDAR_POINT_COLUMNS)

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Voxel grid (nx, ny, nz)."""
        lo, hi = self.point_range[:3], self.point_range[3:]
        return tuple(  # type: ignore[return-value]
            int(round((h - l) / s)) for l, h, s in zip(lo, hi, self.voxel_size, strict=True)
        )


@dataclass(frozen=True)
class BEVConfig:
    """The shared BEV grid all branches write to (m, LIDAR_TOP frame)."""

    bev_range: tuple[float, float, float, float, float, float]
    cell_size: tuple[float, float, float]

    @property
    def grid(self) -> tuple[int, int]:
        """(nx, ny) cells."""
        r, c = self.bev_range, self.cell_size
        return (int(round((r[3] - r[0]) / c[0])), int(round((r[4] - r[1]) / c[1])))


@dataclass(frozen=True)
class CameraConfig:
    """Camera branch: network input size, feature stride and LSS depth bins (m)."""

    channels: tuple[str, ...]
    image_size: tuple[int, int]  # (height, width) fed to the network
    feature_stride: int
    depth_min: float
    depth_max: float
    depth_step: float
    channels_out: int

    @property
    def feature_size(self) -> tuple[int, int]:
        return (
            self.image_size[0] // self.feature_stride,
            self.image_size[1] // self.feature_stride,
        )

    @property
    def depth_bins(self) -> int:
        return int(math.floor((self.depth_max - self.depth_min) / self.depth_step + 1e-9))


@dataclass(frozen=True)
class RadarConfig:
    channels: tuple[str, ...]
    sweeps: int
    features: int = len(RADAR_POINT_COLUMNS)
    filter: Literal["default", "none"] = "default"

    @property
    def raster_channels(self) -> int:
        """Channels of `kernels.rasterize_radar`'s raster: the per-cell mean of each point
        column, plus the point count."""
        return self.features + 1


@dataclass(frozen=True)
class SyncConfig:
    """How far (us) each sensor's message may be from the LIDAR_TOP keyframe time."""

    camera_tolerance_us: int
    radar_tolerance_us: int
    lidar_tolerance_us: int


@dataclass(frozen=True)
class ModelConfig:
    lidar_channels: int
    radar_channels: int
    bev_channels: int
    head_channels: int
    max_detections: int
    score_threshold: float
    nms: Literal["circle", "rotated"]
    nms_radius: float
    nms_iou: float


@dataclass(frozen=True)
class ModelParams:
    """Network widths and loss settings (`[params]`); the sizes that must agree with the data
    (grid, depth bins, channels) are in the other sections."""

    image_widths: tuple[int, int, int, int, int]  # strides 2, 4, 8, 16, 32
    pillar_layers: int
    bev_blocks: tuple[int, int]  # 3x3 convs after each strided conv of the backbone
    # Heatmap gaussians (CenterPoint): min IoU overlap that sets the radius, and its floor.
    gaussian_overlap: float
    min_radius: int
    # Loss weights.
    heatmap_weight: float
    regression_weight: float
    attribute_weight: float
    depth_weight: float
    # Circle-NMS radius per class (m, DETECTION_CLASSES order); `model.nms_radius` scales them.
    class_nms_radius: tuple[float, ...]
    # Per-channel weights of the regression loss (REGRESSION_CHANNELS order).
    code_weights: tuple[float, ...]


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of the training augmentation (`[train.augment]`; rad, scale factors,
    probabilities)."""

    rotation: float  # global yaw drawn from [-rotation, rotation]
    scale: tuple[float, float]
    flip: float  # probability of each of the two BEV flips (x -> -x, y -> -y)
    image_resize: tuple[float, float]  # relative jitter of the image scale
    image_crop: bool  # random horizontal crop offset instead of centred


@dataclass(frozen=True)
class BranchLR:
    """Learning-rate multipliers per branch (`[train.branch_lr]`, x `train.lr`)."""

    camera: float
    lidar: float
    radar: float
    dense: float  # fuser, BEV backbone and head


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int
    epochs: int
    lr: float
    weight_decay: float
    grad_clip: float
    modality_dropout: float
    seed: int
    warmup_steps: int  # linear warm-up, then cosine decay
    branch_lr: BranchLR
    augment: AugmentParams


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    point_cloud: PointCloudConfig
    bev: BEVConfig
    camera: CameraConfig
    radar: RadarConfig
    sync: SyncConfig
    model: ModelConfig
    train: TrainConfig
    params: ModelParams


T = TypeVar("T")


def _coerce(value: Any, tp: Any, key: str, file: str) -> Any:
    """Check `value` against the type annotation `tp`; return it converted (lists -> tuples)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"key {key!r}: expected {expected}, got {value!r}", file)

    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad(f"a table [{key}]")
        return _build(tp, value, file, prefix=key + ".")
    if origin is Literal:
        if value not in args:
            raise bad("one of " + ", ".join(repr(a) for a in args))
        return value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            try:
                return _coerce(value, a, key, file)
            except ConfigError:
                pass
        raise bad(str(tp))
    if origin is tuple:
        if not isinstance(value, list):
            raise bad("an array")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", file) for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad(f"an array of {len(args)} values")
        return tuple(
            _coerce(v, a, f"{key}[{i}]", file)
            for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise TypeError(f"config type {tp} of {key!r} is not supported by the loader")


def _build(cls: type[T], table: dict[str, Any], file: str, prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown key {prefix + unknown[0]!r} (known: {', '.join(sorted(fields))})", file
        )
    kwargs = {}
    for name, f in fields.items():
        if name in table:
            kwargs[name] = _coerce(table[name], hints[name], prefix + name, file)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key {prefix + name!r}", file)
    return cls(**kwargs)


def parse_toml(text: str, source: str | Path) -> dict[str, Any]:
    """TOML text -> table; `source` names where the text came from in errors (a file, or the
    weights file whose metadata held it)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source) from exc


def loads_dataclass(cls: type[T], text: str, source: str | Path) -> T:
    """Parse TOML text into the frozen dataclass `cls`, strictly."""
    return build_dataclass(cls, parse_toml(text, source), source)


def build_dataclass(cls: type[T], table: dict[str, Any], source: str | Path) -> T:
    """A parsed table (TOML or JSON) -> the frozen dataclass `cls`, strictly."""
    return _build(cls, table, str(source))


def load_dataclass(cls: type[T], path: str | Path) -> T:
    """Load any TOML file into the frozen dataclass `cls`, strictly."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("config file not found", path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", path) from exc
    return loads_dataclass(cls, text, path)


def resolve_preset(name_or_path: str | Path) -> Path:
    """`tiny` -> configs/tiny.toml; anything with a suffix or a slash is taken as a path."""
    p = Path(name_or_path)
    if p.suffix or len(p.parts) > 1:
        return p
    return CONFIG_DIR / f"{p}.toml"


def load_config(name_or_path: str | Path = "tiny") -> PipelineConfig:
    """Load a pipeline preset (`nuscenes`, `tiny`) or a TOML file path."""
    return load_dataclass(PipelineConfig, resolve_preset(name_or_path))


def loads_config(text: str, source: str | Path) -> PipelineConfig:
    """A pipeline config from TOML text (e.g. weights metadata), strictly."""
    return loads_dataclass(PipelineConfig, text, source)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass tree -> plain dict of TOML-able values (tuples as lists)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v

    return conv(cfg)


def dumps_toml(cfg: Any) -> str:
    """Write a dataclass tree as TOML (tables, arrays, scalars; enough for our configs)."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        return repr(v)

    lines: list[str] = []

    def emit(table: dict[str, Any], name: str) -> None:
        subs = {k: v for k, v in table.items() if isinstance(v, dict)}
        plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if name and plain:
            lines.append(f"[{name}]")
        lines.extend(f"{k} = {scalar(v)}" for k, v in plain.items())
        if plain:
            lines.append("")
        for k, v in subs.items():
            emit(v, f"{name}.{k}" if name else k)

    emit(config_to_dict(cfg), "")
    return "\n".join(lines)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the config a run used next to its outputs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps_toml(cfg))
    return path
