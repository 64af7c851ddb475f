"""Typed, frozen pipeline configs loaded from TOML presets in `configs/`, and the stack's
vocabulary (sensor channels, classes, attributes, conditions, point columns), defined once.

One loader (`load_config`, `loads_config` for text) maps a TOML table onto a dataclass tree
and rejects unknown keys, missing keys, wrong types and values out of range (each field's
rule, each section's `_relations`), naming the key and the file. Derived values are
properties. Every run writes the config it used next to its outputs (`save_config`).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from fusion.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _config_dir() -> Path:
    """The folder of the presets, the rig file and the topic map. They are edited in the
    top-level `configs/` of the source tree, which a source checkout (run in place, or installed
    editable) reads directly, so a checkout always reads its own files. pyproject maps that
    folder into the wheel as the package `fusion.configs`, which an installed wheel reads with
    importlib.resources."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "configs").is_dir():
        return checkout / "configs"
    packaged = importlib.resources.files("fusion.configs")
    if not isinstance(packaged, Path):  # a zipped install; the loaders read files by path
        raise ConfigError("fusion must be installed unzipped to read its configs", str(packaged))
    return packaged


CONFIG_DIR = _config_dir()

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

# The sensing modalities a detector variant fuses (fusion.model.detector.variant_modalities).
Modality = Literal["camera", "lidar", "radar"]

# Per-channel normalization of RGB images in [0, 1] for the camera network (ImageNet statistics).
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

# Point columns as the reader yields them (fusion.frame): LIDAR (N, 5), radar (N, 7).
LIDAR_POINT_COLUMNS: tuple[str, ...] = ("x", "y", "z", "intensity", "dt")
RADAR_POINT_COLUMNS: tuple[str, ...] = ("x", "y", "z", "rcs", "vx", "vy", "dt")

# Regression channels of the head, in order: offset x y (cells), z (m), log l w h (m),
# sin cos yaw, vx vy (m/s); all in the LIDAR_TOP frame.
REGRESSION_CHANNELS = 10


# -- value ranges --------------------------------------------------------------------------------
# Each field may carry a rule in its metadata (checked on every element of a tuple); each
# section may add `_relations`, checks across its fields. The upper bounds are far above any
# preset and refuse sizes that would allocate absurd amounts of memory.

MAX_CHANNELS = 4096
MAX_GRID_CELLS = 4096  # per axis, voxel and BEV grids
MAX_IMAGE_SIDE = 8192  # px; also the largest image header fusion.data.sensor_io decodes
MAX_SWEEPS = 100
MAX_DEPTH_BINS = 1024
IMAGE_FEATURE_STRIDES = (8, 16)  # the image backbone's feature levels (fusion.model.camera)


@dataclass(frozen=True)
class Rule:
    """A range a config value must lie in: `test(value)`, described as `text`."""

    test: Callable[[Any], bool]
    text: str


def _rule(test: Callable[[Any], bool], text: str) -> dict[str, Rule]:
    return {"rule": Rule(test, text)}


def _between(lo: float, hi: float) -> dict[str, Rule]:
    return _rule(lambda v: lo <= v <= hi, f"in [{lo:g}, {hi:g}]")


POSITIVE = _rule(lambda v: v > 0, "> 0")
NON_NEGATIVE = _rule(lambda v: v >= 0, ">= 0")
PROBABILITY = _between(0, 1)
CHANNELS = _between(1, MAX_CHANNELS)
SWEEPS = _between(1, MAX_SWEEPS)


def _range_errors(key: str, rng: Sequence[float]) -> Iterator[tuple[str, str]]:
    """(lo x, lo y, lo z, hi x, hi y, hi z) must have lo < hi on each axis."""
    for axis in range(3):
        if not rng[axis] < rng[axis + 3]:
            yield f"{key}[{axis}]", f"must be below {key}[{axis + 3}] ({rng[axis + 3]})"


def _grid_errors(
    key: str, rng: Sequence[float], size: Sequence[float], axes: int
) -> Iterator[tuple[str, str]]:
    """The cells of `size` must tile the range exactly, with at most MAX_GRID_CELLS each."""
    for axis in range(axes):
        extent = rng[axis + 3] - rng[axis]
        n = extent / size[axis]
        if extent > 0 and abs(n - round(n)) > 1e-6 * max(1.0, n):
            yield f"{key}[{axis}]", f"{size[axis]} does not divide the extent {extent:g} m"
        elif round(n) > MAX_GRID_CELLS:
            yield f"{key}[{axis}]", f"makes {round(n)} cells (at most {MAX_GRID_CELLS})"


@dataclass(frozen=True)
class PointCloudConfig:
    """LIDAR input and voxelization. Ranges in m in the LIDAR_TOP frame."""

    point_range: tuple[float, float, float, float, float, float]
    voxel_size: tuple[float, float, float] = field(metadata=POSITIVE)
    max_points_per_voxel: int = field(metadata=_between(1, 1024))
    max_voxels: int = field(metadata=_between(1, 1_000_000))
    sweeps: int = field(metadata=SWEEPS)
    features: int = field(
        default=len(LIDAR_POINT_COLUMNS),
        metadata=_rule(lambda v: v == len(LIDAR_POINT_COLUMNS), "5 (x y z intensity dt)"),
    )
    # Points in `ego_box` are removed from every cloud before voxelization, real and synthetic
    # alike (`fusion.preprocess.inputs.without_ego_returns`): the ego vehicle's own roof and bonnet
    # (~7,700 returns a scan on real nuScenes, none in the generator) and the firings without
    # a return, which both rigs store at the sensor origin. `none` keeps every point.
    ego_filter: Literal["box", "none"] = "box"
    # (x0, y0, z0, x1, y1, z1) m, LIDAR_TOP frame (x right, y forward): the nuScenes Renault
    # Zoe (4.1 x 1.7 m, LIDAR 0.94 m ahead of the rear axle, 1.84 m up) with ~0.1 m to spare
    ego_box: tuple[float, float, float, float, float, float] = (-1.0, -1.7, -2.2, 1.0, 2.6, 0.3)

    @property
    def grid_size(self) -> tuple[int, int, int]:
        """Voxel grid (nx, ny, nz)."""
        lo, hi = self.point_range[:3], self.point_range[3:]
        return tuple(  # type: ignore[return-value]
            int(round((h - l) / s)) for l, h, s in zip(lo, hi, self.voxel_size, strict=True)
        )

    def _relations(self) -> Iterator[tuple[str, str]]:
        yield from _range_errors("point_range", self.point_range)
        yield from _range_errors("ego_box", self.ego_box)
        yield from _grid_errors("voxel_size", self.point_range, self.voxel_size, 3)
        if self.grid_size[2] != 1:
            yield "voxel_size[2]", "must span point_range in z (pillars)"


@dataclass(frozen=True)
class BEVConfig:
    """The shared BEV grid all branches write to (m, LIDAR_TOP frame)."""

    bev_range: tuple[float, float, float, float, float, float]
    cell_size: tuple[float, float, float] = field(metadata=POSITIVE)

    @property
    def grid(self) -> tuple[int, int]:
        """(nx, ny) cells."""
        r, c = self.bev_range, self.cell_size
        return (int(round((r[3] - r[0]) / c[0])), int(round((r[4] - r[1]) / c[1])))

    def _relations(self) -> Iterator[tuple[str, str]]:
        yield from _range_errors("bev_range", self.bev_range)
        errors = list(_grid_errors("cell_size", self.bev_range, self.cell_size, 2))
        yield from errors
        if not errors and any(n % 4 for n in self.grid):
            yield "cell_size", f"makes a {self.grid} grid: the BEV backbone needs multiples of 4"


@dataclass(frozen=True)
class CameraConfig:
    """Camera branch: network input size, feature stride and LSS depth bins (m)."""

    channels: tuple[str, ...]
    image_hw: tuple[int, int] = field(metadata=_between(16, MAX_IMAGE_SIDE))  # (height, width)
    feature_stride: int = field(
        metadata=_rule(
            lambda v: v in IMAGE_FEATURE_STRIDES,
            " or ".join(map(str, IMAGE_FEATURE_STRIDES)) + " (the net's levels)",
        )
    )
    depth_min: float = field(metadata=POSITIVE)
    depth_max: float = field(metadata=POSITIVE)
    depth_step: float = field(metadata=POSITIVE)
    channels_out: int = field(metadata=CHANNELS)

    @property
    def feature_size(self) -> tuple[int, int]:
        """(height, width) of the feature maps."""
        return (
            self.image_hw[0] // self.feature_stride,
            self.image_hw[1] // self.feature_stride,
        )

    @property
    def depth_bins(self) -> int:
        return int(math.floor((self.depth_max - self.depth_min) / self.depth_step + 1e-9))

    def _relations(self) -> Iterator[tuple[str, str]]:
        yield from _channel_errors("channels", self.channels, CAMERA_CHANNELS)
        for i, side in enumerate(self.image_hw):
            if side % self.feature_stride:
                yield f"image_hw[{i}]", f"{side} is not a multiple of feature_stride"
        if not self.depth_max > self.depth_min:
            yield "depth_max", f"must be above depth_min ({self.depth_min})"
        elif not 1 <= self.depth_bins <= MAX_DEPTH_BINS:
            yield "depth_step", f"makes {self.depth_bins} depth bins (1 to {MAX_DEPTH_BINS})"


def _channel_errors(
    key: str, channels: Sequence[str], known: Sequence[str]
) -> Iterator[tuple[str, str]]:
    if not channels:
        yield key, "names no channel"
    for i, ch in enumerate(channels):
        if ch not in known:
            yield f"{key}[{i}]", f"unknown channel {ch!r} (known: {', '.join(known)})"
        elif ch in channels[:i]:
            yield f"{key}[{i}]", f"{ch!r} is listed twice"


@dataclass(frozen=True)
class RadarConfig:
    channels: tuple[str, ...]
    sweeps: int = field(metadata=SWEEPS)
    features: int = field(
        default=len(RADAR_POINT_COLUMNS),
        metadata=_rule(lambda v: v == len(RADAR_POINT_COLUMNS), "7 (x y z rcs vx vy dt)"),
    )
    filter: Literal["default", "none"] = "default"

    @property
    def raster_channels(self) -> int:
        """Channels of `kernels.rasterize_radar`'s raster: the per-cell mean of each point
        column, plus the point count."""
        return self.features + 1

    def _relations(self) -> Iterator[tuple[str, str]]:
        yield from _channel_errors("channels", self.channels, RADAR_CHANNELS)


@dataclass(frozen=True)
class SyncConfig:
    """How far (us) each sensor's message may be from the LIDAR_TOP keyframe time."""

    camera_tolerance_us: int = field(metadata=NON_NEGATIVE)
    radar_tolerance_us: int = field(metadata=NON_NEGATIVE)
    lidar_tolerance_us: int = field(metadata=NON_NEGATIVE)


@dataclass(frozen=True)
class ModelConfig:
    lidar_channels: int = field(metadata=CHANNELS)
    radar_channels: int = field(metadata=CHANNELS)
    bev_channels: int = field(metadata=_between(2, MAX_CHANNELS))  # the neck halves it
    head_channels: int = field(metadata=CHANNELS)
    max_detections: int = field(metadata=_between(1, 10_000))
    score_threshold: float = field(metadata=PROBABILITY)
    nms: Literal["circle", "rotated"]
    nms_radius: float = field(metadata=POSITIVE)
    nms_iou: float = field(metadata=PROBABILITY)


PointFeatures = Literal["raw", "scaled"]


@dataclass(frozen=True)
class ModelParams:
    """Network widths and loss settings (`[params]`); the sizes that must agree with the data
    (grid, depth bins, channels) are in the other sections."""

    image_widths: tuple[int, int, int, int, int] = field(metadata=CHANNELS)  # strides 2 .. 32
    pillar_layers: int = field(metadata=_between(1, 16))
    # How the pillar net sees its decorated point features: "raw" in m and s (x, y of +-51 m swamp
    # dt of 0-0.45 s: dt held 2e-5 of the first layer's variance; the weights shipped before issue
    # 12), "scaled" each divided by a fixed size so all are of order 1.
    point_features: PointFeatures
    # 3x3 convs after each strided conv of the backbone
    bev_blocks: tuple[int, int] = field(metadata=_between(0, 64))
    # Heatmap gaussians (CenterPoint): min IoU overlap that sets the radius, and its floor.
    gaussian_overlap: float = field(metadata=_rule(lambda v: 0 < v < 1, "in (0, 1)"))
    min_radius: int = field(metadata=_between(0, 64))
    # Loss weights.
    heatmap_weight: float = field(metadata=NON_NEGATIVE)
    regression_weight: float = field(metadata=NON_NEGATIVE)
    attribute_weight: float = field(metadata=NON_NEGATIVE)
    depth_weight: float = field(metadata=NON_NEGATIVE)
    # Circle-NMS radius per class (m, DETECTION_CLASSES order); `model.nms_radius` scales them.
    class_nms_radius: tuple[float, ...] = field(metadata=POSITIVE)
    # Per-channel weights of the regression loss (REGRESSION_CHANNELS order).
    code_weights: tuple[float, ...] = field(metadata=NON_NEGATIVE)

    def _relations(self) -> Iterator[tuple[str, str]]:
        if len(self.class_nms_radius) != len(DETECTION_CLASSES):
            yield "class_nms_radius", f"needs one value per class ({len(DETECTION_CLASSES)})"
        if len(self.code_weights) != REGRESSION_CHANNELS:
            yield "code_weights", f"needs one value per regression channel ({REGRESSION_CHANNELS})"


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of the training augmentation (`[train.augment]`; rad, scale factors,
    probabilities)."""

    # global yaw drawn from [-rotation, rotation]
    rotation: float = field(metadata=_between(0, math.pi))
    scale: tuple[float, float] = field(metadata=POSITIVE)
    flip: float = field(metadata=PROBABILITY)  # probability of each of the two BEV flips
    # relative jitter of the image scale
    image_resize: tuple[float, float] = field(metadata=_rule(lambda v: v > -1, "> -1"))
    image_crop: bool  # random horizontal crop offset instead of centred
    # share of a frame's LIDAR points kept, drawn from [lo, hi] per frame (random thinning:
    # real objects carry fewer points than synthetic ones); [1, 1] keeps all and draws nothing
    point_keep: tuple[float, float] = field(
        default=(1.0, 1.0), metadata=_rule(lambda v: 0 < v <= 1, "in (0, 1]")
    )

    def _relations(self) -> Iterator[tuple[str, str]]:
        for key in ("scale", "image_resize", "point_keep"):
            lo, hi = getattr(self, key)
            if not lo <= hi:
                yield f"{key}[0]", f"must not be above {key}[1] ({hi})"


@dataclass(frozen=True)
class BranchLR:
    """Learning-rate multipliers per branch (`[train.branch_lr]`, x `train.lr`; 0 freezes)."""

    camera: float = field(metadata=NON_NEGATIVE)
    lidar: float = field(metadata=NON_NEGATIVE)
    radar: float = field(metadata=NON_NEGATIVE)
    dense: float = field(metadata=NON_NEGATIVE)  # fuser, BEV backbone and head


@dataclass(frozen=True)
class GtSampling:
    """Ground-truth sampling (`[train.gt_sampling]`, `fusion.train.gt_sampling`): annotated
    objects cut out of a database of LIDAR scans (each box and the points inside it) and pasted
    into training frames where they collide with nothing, so that a small real set shows its
    objects in many places. Off (probability 0) unless a preset turns it on."""

    probability: float = field(default=0.0, metadata=PROBABILITY)  # a frame gets pasted objects
    # objects drawn per class and frame, in DETECTION_CLASSES order (fewer where they collide)
    max_per_class: tuple[int, ...] = field(
        default=(0,) * len(DETECTION_CLASSES), metadata=_between(0, 100)
    )
    min_points: int = field(default=5, metadata=_between(1, 100_000))  # to enter the database
    # each pasted object turned about the sensor's z axis by a random angle: same range, same
    # side facing the sensor, a new place
    rotate: bool = True

    def _relations(self) -> Iterator[tuple[str, str]]:
        if len(self.max_per_class) != len(DETECTION_CLASSES):
            yield "max_per_class", f"needs one value per class ({len(DETECTION_CLASSES)})"


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = field(metadata=_between(1, 4096))
    epochs: int = field(metadata=_between(1, 100_000))
    lr: float = field(metadata=POSITIVE)
    weight_decay: float = field(metadata=NON_NEGATIVE)
    grad_clip: float = field(metadata=POSITIVE)
    # below 1: dropout never removes all three sensor groups, and redraws until it does not
    modality_dropout: float = field(metadata=_rule(lambda v: 0 <= v < 1, "in [0, 1)"))
    seed: int = field(metadata=NON_NEGATIVE)  # numpy seeds are non-negative
    warmup_steps: int = field(metadata=NON_NEGATIVE)  # linear warm-up, then cosine decay
    branch_lr: BranchLR
    augment: AugmentParams
    # probability that a training frame keeps only its keyframe scans (LIDAR keyframe, each
    # radar's current scan; `fusion.motion.sweeps.keyframe_only`): a keyframes-only dataroot's
    # input,
    # so multi-sweep models also work where the sweep files are absent
    sweep_dropout: float = field(default=0.0, metadata=PROBABILITY)
    gt_sampling: GtSampling = field(default_factory=GtSampling)


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

    def _relations(self) -> Iterator[tuple[str, str]]:
        pc, bev = self.point_cloud, self.bev
        px, py, _ = pc.grid_size
        bx, by = bev.grid
        ratio = px // bx if bx else 0
        same = all(
            math.isclose(pc.point_range[i], bev.bev_range[i], abs_tol=1e-6) for i in (0, 1, 3, 4)
        )
        if not same:
            yield "point_cloud.point_range", "must cover the same x/y range as bev.bev_range"
        elif ratio < 1 or px != bx * ratio or py != by * ratio or ratio & (ratio - 1):
            yield (
                "point_cloud.voxel_size",
                f"makes a {px}x{py} pillar grid: it must be the BEV grid {bx}x{by} or a "
                "power of 2 finer",
            )


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
        if not math.isfinite(value):
            raise bad("a finite number")
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
    obj = cls(**kwargs)
    _check_section(obj, prefix, file)
    return obj


def _check_section(obj: Any, prefix: str, file: str | None) -> None:
    """The range rules of `obj`'s own fields, then its `_relations` (sections inside it are
    checked on their own)."""
    for f in dataclasses.fields(obj):
        rule = f.metadata.get("rule")
        if rule is None:
            continue
        value = getattr(obj, f.name)
        items = enumerate(value) if isinstance(value, tuple) else [(None, value)]
        for i, v in items:
            if not rule.test(v):
                key = prefix + f.name + ("" if i is None else f"[{i}]")
                raise ConfigError(f"key {key!r}: must be {rule.text}, got {v!r}", file)
    relations = getattr(obj, "_relations", None)
    for key, reason in relations() if relations else ():
        raise ConfigError(f"key {prefix + key!r}: {reason}", file)


def check_config(cfg: Any, source: str | Path | None = None, prefix: str = "") -> None:
    """Range-check a config built in code (e.g. `dataclasses.replace` of a loaded one) as the
    loader checks a file: every section, inner ones first."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            check_config(value, source, prefix + f.name + ".")
    _check_section(cfg, prefix, None if source is None else str(source))


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
