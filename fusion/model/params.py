"""Model-only hyperparameters that the pipeline config does not carry (frozen defaults).

Sizes that must agree with the data (grid, depth bins, channels) come from
`fusion.config.PipelineConfig`; these are the knobs of the network and its losses.
"""

from __future__ import annotations

from dataclasses import dataclass

# The vocabulary is defined once in fusion.config; the model modules import it from here.
from fusion.config import ATTRIBUTE_NAMES, CLASS_ATTRIBUTE_PREFIX, REGRESSION_CHANNELS

__all__ = ["ATTRIBUTE_NAMES", "CLASS_ATTRIBUTE_PREFIX", "REGRESSION_CHANNELS", "ModelParams"]


@dataclass(frozen=True)
class ModelParams:
    """Network widths and loss settings (defaults sized for a 2-core CPU)."""

    image_widths: tuple[int, int, int, int, int] = (16, 32, 48, 64, 96)  # strides 2, 4, 8, 16, 32
    pillar_layers: int = 1
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
