"""WGS84 <-> ENU against pymap3d (the library is the oracle), round trips, a known distance."""

from __future__ import annotations

import numpy as np
import pymap3d
import pytest

from calibration.geodesy import (
    GeodeticOrigin,
    enu_rotation,
    enu_to_enu,
    enu_to_geodetic,
    geodetic_to_enu,
)

ONE_NORTH = GeodeticOrigin(1.2995, 103.7872, 15.0)


def test_matches_the_library():
    rng = np.random.default_rng(0)
    lat = ONE_NORTH.lat_deg + rng.uniform(-0.01, 0.01, 50)
    lon = ONE_NORTH.lon_deg + rng.uniform(-0.01, 0.01, 50)
    alt = rng.uniform(0, 50, 50)
    enu = geodetic_to_enu(lat, lon, alt, ONE_NORTH)
    e, n, u = pymap3d.geodetic2enu(lat, lon, alt, 1.2995, 103.7872, 15.0)
    assert enu.shape == (50, 3)
    np.testing.assert_allclose(enu, np.column_stack([e, n, u]), atol=1e-9)


def test_round_trip_and_origin():
    rng = np.random.default_rng(1)
    pts = rng.uniform(-2000, 2000, (20, 3))
    lat, lon, alt = enu_to_geodetic(pts, ONE_NORTH)
    np.testing.assert_allclose(geodetic_to_enu(lat, lon, alt, ONE_NORTH), pts, atol=1e-6)
    np.testing.assert_allclose(geodetic_to_enu(1.2995, 103.7872, 15.0, ONE_NORTH), 0, atol=1e-9)


def test_axes_and_scale():
    """1e-3 deg of latitude is ~110.6 m north near the equator; of longitude ~111.3 m east."""
    north = geodetic_to_enu(1.2995 + 1e-3, 103.7872, 15.0, ONE_NORTH)
    east = geodetic_to_enu(1.2995, 103.7872 + 1e-3, 15.0, ONE_NORTH)
    assert north[1] == pytest.approx(110.6, abs=0.2) and abs(north[0]) < 1e-3
    assert east[0] == pytest.approx(111.3, abs=0.2) and abs(east[1]) < 1e-3


def test_bad_origin():
    with pytest.raises(ValueError):
        GeodeticOrigin(float("nan"), 0.0)
    with pytest.raises(ValueError):
        GeodeticOrigin(91.0, 0.0)


def test_enu_to_enu_between_origins():
    other = GeodeticOrigin(1.3005, 103.7890, 20.0)
    pts = np.array([[10.0, -20.0, 1.0], [500.0, 300.0, -2.0]])
    moved = enu_to_enu(pts, ONE_NORTH, other)
    lat, lon, alt = enu_to_geodetic(pts, ONE_NORTH)
    e, n, u = pymap3d.geodetic2enu(lat, lon, alt, 1.3005, 103.7890, 20.0)
    np.testing.assert_allclose(moved, np.column_stack([e, n, u]), atol=1e-9)
    np.testing.assert_allclose(enu_to_enu(moved, other, ONE_NORTH), pts, atol=1e-6)


def test_enu_rotation_turns_vectors_between_frames():
    """The rotation between two ENU frames maps differences of points as `enu_to_enu` maps the
    points; about 1.6e-4 rad per km between the origins."""
    far = GeodeticOrigin(1.3100, 103.8000, 10.0)  # ~1.8 km away
    rot = enu_rotation(ONE_NORTH, far)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    a, b = np.array([100.0, 50.0, 3.0]), np.array([110.0, 40.0, 2.0])
    moved = enu_to_enu(np.stack([a, b]), ONE_NORTH, far)
    np.testing.assert_allclose(moved[1] - moved[0], rot @ (b - a), atol=1e-6)
    angle = np.arccos((np.trace(rot) - 1) / 2)
    assert 1e-4 < angle < 5e-4
    np.testing.assert_allclose(enu_rotation(ONE_NORTH, ONE_NORTH), np.eye(3), atol=1e-12)
