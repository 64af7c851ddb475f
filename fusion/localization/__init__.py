"""Ego poses estimated causally from GNSS, IMU and wheel speed (an error-state EKF), for logs
that carry no localization of their own."""

from fusion.localization.estimator import (
    POSE_SOURCE,
    EstimatedPoses,
    LocalizationConfig,
    PoseEstimator,
    estimate_poses,
)
from fusion.localization.measurements import GnssFixes, ImuSamples, SpeedSamples

__all__ = [
    "POSE_SOURCE",
    "EstimatedPoses",
    "GnssFixes",
    "ImuSamples",
    "LocalizationConfig",
    "PoseEstimator",
    "SpeedSamples",
    "estimate_poses",
]
