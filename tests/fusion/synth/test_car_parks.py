"""Car parks in the synthetic world: rows of cars parked across the road's axis (half of the real
scene-0916's cars stand across the ego's axis; curbside parking lines every synthetic car up
with it), off the roads and apart from each other; without them the world is the one its random
generator gave before car parks."""

from __future__ import annotations

import math

import numpy as np

from fusion.synth.actors import actor_poses
from fusion.synth.world import LOT_IN, SIDEWALK_OUT, build_world


def _world(car_parks: float, seed: int = 7):
    return build_world(
        np.random.default_rng(seed),
        8.0,
        "day",
        car_parks=car_parks,
        lot_rng=np.random.default_rng(seed + 100),
    )


def _footprint(centre: np.ndarray, yaw: float, w: float, l: float) -> np.ndarray:
    d = np.array([math.cos(yaw), math.sin(yaw)])
    n = np.array([-d[1], d[0]])
    return np.array([centre + a * l / 2 * d + b * w / 2 * n for a in (-1, 1) for b in (-1, 1)])


def test_car_parks_hold_cars_across_the_road_behind_the_sidewalk() -> None:
    world = _world(1.0)
    lot = [a for a in world.actors if a.name.startswith("car-lot-")]
    assert len(lot) >= 20
    for car in lot:
        assert car.cls == "car" and car.parked
        centre, yaw = actor_poses(car, np.array([0.0]))
        s, lateral = world.road.nearest(centre[:, :2])
        _, road_heading = world.road.at(s)
        across = abs((yaw[0] - road_heading[0] + math.pi / 2) % math.pi - math.pi / 2)
        assert across > math.radians(75), math.degrees(across)  # across the road, not along
        # behind the sidewalk: the whole footprint clear of the road corridor
        corners = _footprint(centre[0, :2], float(yaw[0]), car.size_wlh[0], car.size_wlh[1])
        _, lat = world.road.nearest(corners)
        assert np.all(np.abs(lat) > SIDEWALK_OUT), lat
        assert abs(lateral[0]) >= LOT_IN
    # bays are apart: no two cars of a row overlap
    centres = np.array([actor_poses(c, np.array([0.0]))[0][0, :2] for c in lot])
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(len(lot)) * 1e9
    assert gaps.min() > 2.0  # the narrowest car is ~1.6 m wide, bays 2.7 m apart


def test_without_car_parks_the_world_is_the_one_before() -> None:
    """`car_parks=0` draws nothing from the car parks' generator and changes nothing else: the
    same actors, at the same places, as a world built without the argument."""
    before = build_world(np.random.default_rng(7), 8.0, "day")
    after = _world(0.0)
    assert [a.name for a in after.actors] == [a.name for a in before.actors]
    idx = np.array([0.0, 10.0])
    for a, b in zip(after.actors, before.actors, strict=True):
        np.testing.assert_array_equal(actor_poses(a, idx)[0], actor_poses(b, idx)[0])
        assert a.size_wlh == b.size_wlh
    np.testing.assert_array_equal(after.static.vertices, before.static.vertices)
