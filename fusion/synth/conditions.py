"""Weather and light: what day, night, rain and fog do to the cameras and the LIDAR."""

from __future__ import annotations

from dataclasses import dataclass

from fusion.config import CONDITIONS, Condition


@dataclass(frozen=True)
class Conditions:
    """Effects of one condition. Extinction coefficients in 1/m (visibility ~ 3 / beta)."""

    name: Condition
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
                name=name,
                sun=0.8,
                ambient=0.35,
                sky_horizon=(0.78, 0.86, 0.95),
                sky_zenith=(0.35, 0.55, 0.88),
                camera_fog_beta=0.0,
                fog_color=(0.8, 0.8, 0.8),
                contrast=1.0,
                rain_streaks=0,
                noise=0.01,
                headlights=False,
                wet=False,
                lidar_beta=0.0,
                lidar_dropout=0.0,
                lidar_spurious=0.0,
                lidar_intensity=1.0,
            )
        case "night":
            return Conditions(
                name=name,
                sun=0.0,
                ambient=0.035,
                sky_horizon=(0.05, 0.06, 0.1),
                sky_zenith=(0.01, 0.01, 0.03),
                camera_fog_beta=0.0,
                fog_color=(0.1, 0.1, 0.1),
                contrast=1.0,
                rain_streaks=0,
                noise=0.045,
                headlights=True,
                wet=False,
                lidar_beta=0.0,
                lidar_dropout=0.0,
                lidar_spurious=0.0,
                lidar_intensity=1.0,
            )
        case "rain":
            return Conditions(
                name=name,
                sun=0.15,
                ambient=0.4,
                sky_horizon=(0.6, 0.62, 0.65),
                sky_zenith=(0.45, 0.47, 0.5),
                camera_fog_beta=0.006,
                fog_color=(0.6, 0.62, 0.65),
                contrast=0.65,
                rain_streaks=260,
                noise=0.02,
                headlights=True,
                wet=True,
                lidar_beta=0.004,
                lidar_dropout=0.12,
                lidar_spurious=0.004,
                lidar_intensity=0.7,
            )
        case "fog":
            return Conditions(
                name=name,
                sun=0.1,
                ambient=0.5,
                sky_horizon=(0.78, 0.78, 0.8),
                sky_zenith=(0.72, 0.72, 0.75),
                camera_fog_beta=0.045,
                fog_color=(0.78, 0.78, 0.8),
                contrast=0.9,
                rain_streaks=0,
                noise=0.015,
                headlights=True,
                wet=False,
                lidar_beta=0.03,
                lidar_dropout=0.03,
                lidar_spurious=0.02,
                lidar_intensity=0.85,
            )
        case _:
            raise ValueError(f"unknown condition {name!r} ({', '.join(CONDITIONS)})")
