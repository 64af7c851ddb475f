"""Weather and light: what day, night, rain and fog do to the cameras and the LIDAR."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Conditions:
    """Effects of one condition. Extinction coefficients in 1/m (visibility ~ 3 / beta)."""

    name: str
    sun: float  # direct light strength 0..1
    ambient: float  # sky light 0..1
    sky_horizon: tuple[float, float, float]
    sky_zenith: tuple[float, float, float]
    camera_fog_beta: float  # camera attenuation toward `fog_color` with distance
    fog_color: tuple[float, float, float]
    contrast: float  # 1: none lost; rain washes images out
    rain_streaks: int  # streaks per 1600x900 image
    noise: float  # sensor noise sigma (0..1 scale)
    headlights: bool  # ego headlights, lamps and lights of other vehicles shine
    wet: bool  # darker, shinier road
    lidar_beta: float  # LIDAR two-way attenuation
    lidar_dropout: float  # extra random loss of returns
    lidar_spurious: float  # share of rays returning from drops/fog close to the sensor
    lidar_intensity: float  # scale of return intensity


def conditions(name: str) -> Conditions:
    match name:
        case "day":
            return Conditions(
                name,
                0.8,
                0.35,
                (0.78, 0.86, 0.95),
                (0.35, 0.55, 0.88),
                0.0,
                (0.8, 0.8, 0.8),
                1.0,
                0,
                0.01,
                False,
                False,
                0.0,
                0.0,
                0.0,
                1.0,
            )
        case "night":
            return Conditions(
                name,
                0.0,
                0.035,
                (0.05, 0.06, 0.1),
                (0.01, 0.01, 0.03),
                0.0,
                (0.1, 0.1, 0.1),
                1.0,
                0,
                0.045,
                True,
                False,
                0.0,
                0.0,
                0.0,
                1.0,
            )
        case "rain":
            return Conditions(
                name,
                0.15,
                0.4,
                (0.6, 0.62, 0.65),
                (0.45, 0.47, 0.5),
                0.006,
                (0.6, 0.62, 0.65),
                0.65,
                260,
                0.02,
                True,
                True,
                0.004,
                0.12,
                0.004,
                0.7,
            )
        case "fog":
            return Conditions(
                name,
                0.1,
                0.5,
                (0.78, 0.78, 0.8),
                (0.72, 0.72, 0.75),
                0.045,
                (0.78, 0.78, 0.8),
                0.9,
                0,
                0.015,
                True,
                False,
                0.03,
                0.03,
                0.02,
                0.85,
            )
        case _:
            raise ValueError(f"unknown condition {name!r} (day, night, rain, fog)")
