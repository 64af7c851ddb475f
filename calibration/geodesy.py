"""WGS84 geodetic coordinates <-> a local East-North-Up (ENU) frame, through pymap3d.

Latitude and longitude in degrees, altitude in m above the WGS84 ellipsoid, ENU in m. The
ellipsoid is pymap3d's WGS84; nothing here re-derives it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymap3d
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class GeodeticOrigin:
    """The origin of a local ENU frame: latitude, longitude (deg), altitude (m, WGS84)."""

    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0

    def __post_init__(self) -> None:
        vals = (self.lat_deg, self.lon_deg, self.alt_m)
        if not all(np.isfinite(v) for v in vals):
            raise ValueError(f"geodetic origin must be finite, got {vals}")
        if not -90.0 <= self.lat_deg <= 90.0 or not -180.0 <= self.lon_deg <= 360.0:
            raise ValueError(f"geodetic origin out of range: {self.lat_deg}, {self.lon_deg} deg")


def geodetic_to_enu(
    lat_deg: ArrayLike, lon_deg: ArrayLike, alt_m: ArrayLike, origin: GeodeticOrigin
) -> NDArray[np.float64]:
    """Geodetic points (N,) each -> ENU (N, 3) m in the frame of `origin` (a scalar gives (3,))."""
    e, n, u = pymap3d.geodetic2enu(
        np.asarray(lat_deg, np.float64),
        np.asarray(lon_deg, np.float64),
        np.asarray(alt_m, np.float64),
        origin.lat_deg,
        origin.lon_deg,
        origin.alt_m,
    )
    return np.stack([np.asarray(e), np.asarray(n), np.asarray(u)], axis=-1).astype(np.float64)


def enu_to_geodetic(
    enu: ArrayLike, origin: GeodeticOrigin
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """ENU points (N, 3) or (3,) m -> latitude, longitude (deg) and altitude (m), each (N,)."""
    p = np.asarray(enu, np.float64)
    lat, lon, alt = pymap3d.enu2geodetic(
        p[..., 0], p[..., 1], p[..., 2], origin.lat_deg, origin.lon_deg, origin.alt_m
    )
    return np.asarray(lat, np.float64), np.asarray(lon, np.float64), np.asarray(alt, np.float64)


def enu_to_enu(enu: ArrayLike, src: GeodeticOrigin, dst: GeodeticOrigin) -> NDArray[np.float64]:
    """ENU points (N, 3) m in the frame of `src` -> the ENU frame of `dst` (through WGS84)."""
    lat, lon, alt = enu_to_geodetic(enu, src)
    return geodetic_to_enu(lat, lon, alt, dst)


def enu_rotation(src: GeodeticOrigin, dst: GeodeticOrigin) -> NDArray[np.float64]:
    """The rotation (3, 3) taking vectors of the ENU frame of `src` to the ENU frame of `dst`
    (through ECEF: the two frames' axes differ by the angle between their verticals, about
    1.6e-4 rad per km apart)."""
    axes = np.eye(3)
    u, v, w = pymap3d.enu2uvw(axes[0], axes[1], axes[2], src.lat_deg, src.lon_deg)
    e, n, up = pymap3d.uvw2enu(u, v, w, dst.lat_deg, dst.lon_deg)
    return np.array([e, n, up], dtype=np.float64)
