"""Assemble the nuScenes tables of a generated dataroot from per-scene records.

Each finished scene leaves `<out>/.synth/<scene>.json` (written last, atomically): that is the
mark of a complete scene, skipped on rerun. `<out>/.synth/params.json` records the arguments
a dataroot was generated with, so a rerun with other arguments is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fusion.config import ATTRIBUTE_NAMES
from fusion.synth.actors import CLASS_INFO
from fusion.synth.scene import SCENE_TABLES, SceneRecords, token

STATE_DIR = ".synth"
# the full nuScenes category list: detection classes map onto a subset
CATEGORIES = (
    "human.pedestrian.adult",
    "human.pedestrian.child",
    "human.pedestrian.wheelchair",
    "human.pedestrian.stroller",
    "human.pedestrian.personal_mobility",
    "human.pedestrian.police_officer",
    "human.pedestrian.construction_worker",
    "animal",
    "vehicle.car",
    "vehicle.motorcycle",
    "vehicle.bicycle",
    "vehicle.bus.bendy",
    "vehicle.bus.rigid",
    "vehicle.truck",
    "vehicle.construction",
    "vehicle.emergency.ambulance",
    "vehicle.emergency.police",
    "vehicle.trailer",
    "movable_object.barrier",
    "movable_object.trafficcone",
    "movable_object.pushable_pullable",
    "movable_object.debris",
    "static_object.bicycle_rack",
)
VISIBILITY = (("1", "v0-40"), ("2", "v40-60"), ("3", "v60-80"), ("4", "v80-100"))


def static_tables(channels: list[tuple[str, str]]) -> dict[str, list[dict]]:
    """category, attribute, visibility and sensor tables. `channels`: (channel, modality)."""
    assert all(c in CATEGORIES for c, *_ in CLASS_INFO.values())
    return {
        "category": [
            {"token": token("category", n), "name": n, "description": n} for n in CATEGORIES
        ],
        "attribute": [
            {"token": token("attribute", n), "name": n, "description": n} for n in ATTRIBUTE_NAMES
        ],
        "visibility": [
            {
                "token": t,
                "level": lv,
                "description": f"visibility of whole object is between "
                f"{lv[1:].replace('-', ' and ')}%",
            }
            for t, lv in VISIBILITY
        ],
        "sensor": [
            {"token": token("sensor", ch), "channel": ch, "modality": mod} for ch, mod in channels
        ],
    }


def scene_state_path(out: Path, scene_name: str) -> Path:
    return out / STATE_DIR / f"{scene_name}.json"


def save_scene(out: Path, scene_name: str, records: SceneRecords) -> None:
    """Write the scene's records last and atomically: its presence marks a complete scene."""
    path = scene_state_path(out, scene_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(records.tables))
    os.replace(tmp, path)


def load_scene(out: Path, scene_name: str) -> SceneRecords | None:
    path = scene_state_path(out, scene_name)
    if not path.is_file():
        return None
    try:
        tables = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if not isinstance(tables, dict) or set(tables) != set(SCENE_TABLES):
        return None
    return SceneRecords(tables)


def write_tables(
    out: Path,
    version: str,
    statics: dict[str, list[dict]],
    scenes: list[tuple[str, SceneRecords]],
    val_fraction: float,
) -> None:
    """All 13 tables and `splits.json` under `<out>/<version>/`."""
    vdir = out / version
    vdir.mkdir(parents=True, exist_ok=True)
    tables = dict(statics)
    for name in SCENE_TABLES:
        tables[name] = [r for _, rec in scenes for r in rec.tables[name]]
    for name, records in tables.items():
        (vdir / f"{name}.json").write_text(json.dumps(records, indent=0))
    names = [n for n, _ in scenes]
    (vdir / "splits.json").write_text(json.dumps(splits(names, val_fraction), indent=1))


def splits(names: list[str], val_fraction: float) -> dict[str, list[str]]:
    """synth_val: every k-th scene so conditions spread over both splits (at least one scene;
    with a single scene it is both train and val); synth_train the rest; synth_all all."""
    n = len(names)
    if n == 1:
        return {"synth_train": list(names), "synth_val": list(names), "synth_all": list(names)}
    n_val = min(n - 1, max(1, round(n * val_fraction))) if val_fraction > 0 else 0
    val_idx = (
        {int(i) for i in [round((k + 0.5) * n / n_val - 0.5) for k in range(n_val)]}
        if n_val
        else set()
    )
    val = [names[i] for i in sorted(val_idx)]
    train = [x for x in names if x not in val]
    return {"synth_train": train, "synth_val": val, "synth_all": list(names)}
