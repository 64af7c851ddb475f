"""Model-only hyperparameters that the pipeline config does not carry (frozen defaults).

Sizes that must agree with the data (grid, depth bins, channels) come from
`fusion.config.PipelineConfig`; these are the knobs of the network and its losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How the pillar net sees its 10 decorated point features (see `fusion.model.lidar`):
# "raw" in m and s as they come (the weights shipped before issue 12), "scaled" divided by a
# fixed size each so every feature is O(1) (what `fusion train` uses now).
PointFeatures = Literal["raw", "scaled"]

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

# Regression channels of the head, in order: offset x y (cells), z (m), log l w h (m),
# sin cos yaw, vx vy (m/s); all in the LIDAR_TOP frame.
REGRESSION_CHANNELS = 10


@dataclass(frozen=True)
class ModelParams:
    """Network widths and loss settings (defaults sized for a 2-core CPU)."""

    image_widths: tuple[int, int, int, int, int] = (16, 32, 48, 64, 96)  # strides 2, 4, 8, 16, 32
    pillar_layers: int = 1
    # "raw" by default: weights whose params predate this field load unchanged. With raw
    # features x and y (+-51 m) swamp dt (0-0.45 s): dt held 2e-5 of the first layer's variance.
    point_features: PointFeatures = "raw"
    bev_blocks: tuple[int, int] = (2, 2)  # 3x3 convs after each strided conv of the backbone
    # Heatmap gaussians (CenterPoint): min IoU overlap that sets the radius, and its floor.
    gaussian_overlap: float = 0.1
    min_radius: int = 2
    # Loss weights.
    heatmap_weight: float = 1.0
    regression_weight: float = 0.25
    attribute_weight: float = 0.1
    depth_weight: float = 0.5
    # Circle-NMS radius per class (m, DETECTION_CLASSES order), CenterPoint's nuScenes values
    # (its squared-distance thresholds 4, 12, 10, 1, 0.85, 0.175 m^2); the config's
    # `model.nms_radius` scales them all.
    class_nms_radius: tuple[float, ...] = (2.0, 3.46, 3.46, 3.16, 3.16, 1.0, 0.92, 0.92, 0.42, 0.42)
    # Per-channel weights of the regression loss (offset, z, size, sin/cos, velocity).
    code_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)
