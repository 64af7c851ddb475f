"""The model's names for its part of the pipeline config.

`ModelParams` (network widths and loss settings, the `[params]` table of a preset) and the
vocabulary the head and the targets share are defined once in `fusion.config`; the model
modules import them from here.
"""

from __future__ import annotations

from fusion.config import (
    ATTRIBUTE_NAMES,
    CLASS_ATTRIBUTE_PREFIX,
    REGRESSION_CHANNELS,
    ModelParams,
    PointFeatures,
)

__all__ = [
    "ATTRIBUTE_NAMES",
    "CLASS_ATTRIBUTE_PREFIX",
    "REGRESSION_CHANNELS",
    "ModelParams",
    "PointFeatures",
]
