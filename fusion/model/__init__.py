"""The BEVFusion-style detector: camera, LIDAR and radar branches, fuser, BEV backbone,
CenterPoint head, decode; variants `fusion`, `camera` and `lidar`."""

from fusion.model.detector import (
    VARIANTS,
    Detector,
    DetectorOutput,
    Variant,
    build_detector,
    variant_modalities,
)
from fusion.model.head import HeadMaps
from fusion.model.params import ModelParams
from fusion.model.weights import load_detector, save_detector

__all__ = [
    "VARIANTS",
    "Detector",
    "DetectorOutput",
    "HeadMaps",
    "ModelParams",
    "Variant",
    "build_detector",
    "load_detector",
    "save_detector",
    "variant_modalities",
]
