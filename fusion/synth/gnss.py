"""GNSS fixes of one scene from the true trajectory, as `sensor_msgs/NavSatFix`-shaped records.

The map's global frame is the ENU frame of a real place (the rig's origin latitude, longitude
and altitude); each fix is the antenna's true position, `time_offset_s` before its stamp, plus
the receiver mode's noise, with dropouts (status -1, no position) and multipath outliers.
Written as `can_bus/<scene>_gnss.json` beside the other CAN bus messages.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from calibration.geodesy import GeodeticOrigin, enu_to_geodetic
from fusion.data.rig_file import GnssSpec
from fusion.synth.trajectory import EgoTrack

GnssMode = Literal["std", "rtk", "none"]
GNSS_MODES: tuple[GnssMode, ...] = ("std", "rtk", "none")
# sensor_msgs/NavSatStatus: -1 no fix, 0 fix, 2 GBAS-augmented (RTK)
_STATUS = {"std": 0, "rtk": 2}
COVARIANCE_DIAGONAL_KNOWN = 2


def map_origin(spec: GnssSpec) -> GeodeticOrigin:
    return spec.map_origin


def gnss_messages(
    track: EgoTrack,
    t0_us: int,
    start_s: float,
    end_s: float,
    spec: GnssSpec,
    mode: GnssMode,
    rng: np.random.Generator,
) -> list[dict]:
    """Fixes from `start_s` to `end_s` (s on the world clock; utime = t0_us + 1e6 * s) at the
    receiver's rate; [] for mode "none"."""
    if mode == "none":
        return []
    noise = spec.noise(mode)
    step_us = int(round(1e6 / spec.rate_hz))
    first = int(math.ceil((t0_us + start_s * 1e6) / step_us)) * step_us
    utime = np.arange(first, t0_us + end_s * 1e6 + 1, step_us, dtype=np.int64)
    t_meas = (utime - t0_us) / 1e6 - spec.time_offset_s
    xy, yaw = track.state(t_meas)
    ax, ay, az = spec.translation
    c, s = np.cos(yaw), np.sin(yaw)
    truth = np.column_stack([xy[:, 0] + c * ax - s * ay, xy[:, 1] + s * ax + c * ay])
    n = len(utime)
    enu = np.column_stack([truth, np.full(n, az)])
    enu += rng.normal(0, 1, (n, 3)) * [noise.sigma_h, noise.sigma_h, noise.sigma_v]
    outlier = rng.random(n) < noise.outlier_rate
    angle = rng.uniform(0, 2 * np.pi, n)
    size = noise.outlier_m * rng.uniform(0.5, 1.0, n)
    enu[outlier, 0] += (size * np.cos(angle))[outlier]
    enu[outlier, 1] += (size * np.sin(angle))[outlier]
    lost = rng.random(n) < noise.dropout
    lat, lon, alt = enu_to_geodetic(enu, map_origin(spec))
    cov = [noise.sigma_h**2, 0.0, 0.0, 0.0, noise.sigma_h**2, 0.0, 0.0, 0.0, noise.sigma_v**2]
    return [
        {
            "utime": int(utime[i]),
            "latitude": 0.0 if lost[i] else float(lat[i]),
            "longitude": 0.0 if lost[i] else float(lon[i]),
            "altitude": 0.0 if lost[i] else float(alt[i]),
            "position_covariance": cov,
            "position_covariance_type": COVARIANCE_DIAGONAL_KNOWN,
            "status": -1 if lost[i] else _STATUS[mode],
        }
        for i in range(n)
    ]
