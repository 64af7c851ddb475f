"""Write tests/data/nuscenes-real-keyframes: two consecutive real keyframes of nuScenes
scene-0916 (samples 7 and 8 of 41, the first pair with all six classes the scene has), cut out
of the whole scene in the layout of nuScenes' "keyframes only" download.

The tables keep every record that the two samples reference, sweeps included (their files stay
absent, as in the download); the prev/next chains of sample, sample_data and sample_annotation
are cut at the ends of the kept part, and scene and instance counts are recomputed, so that the
devkit and `fusion validate` load the cut-out as they load the whole scene.

    python tests/data/make_real_keyframes.py ../shared/data/nuscenes-real-scene-0916

Source data: nuScenes (CC BY-NC-SA 4.0), see tests/data/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

VERSION = "v1.0-mini"
FIRST, COUNT = 7, 2  # sample indices in time order
OUT = Path(__file__).resolve().parent / "nuscenes-real-keyframes"


def _load(root: Path, table: str) -> list[dict]:
    return json.loads((root / VERSION / f"{table}.json").read_text())


def _cut_chain(rows: list[dict]) -> None:
    """Blank `prev`/`next` that point outside `rows`."""
    kept = {r["token"] for r in rows}
    for r in rows:
        for key in ("prev", "next"):
            if r[key] and r[key] not in kept:
                r[key] = ""


def cut(src: Path, out: Path) -> dict[str, int]:
    samples = sorted(_load(src, "sample"), key=lambda r: r["timestamp"])[FIRST : FIRST + COUNT]
    sample_tokens = {s["token"] for s in samples}
    _cut_chain(samples)
    sample_data = [r for r in _load(src, "sample_data") if r["sample_token"] in sample_tokens]
    _cut_chain(sample_data)
    anns = [r for r in _load(src, "sample_annotation") if r["sample_token"] in sample_tokens]
    _cut_chain(anns)
    by_instance: dict[str, list[dict]] = {}
    for a in anns:
        by_instance.setdefault(a["instance_token"], []).append(a)
    instances = []
    for inst in _load(src, "instance"):
        chain = by_instance.get(inst["token"])
        if not chain:
            continue
        first = next(a for a in chain if not a["prev"])
        last = next(a for a in chain if not a["next"])
        inst |= {
            "nbr_annotations": len(chain),
            "first_annotation_token": first["token"],
            "last_annotation_token": last["token"],
        }
        instances.append(inst)
    (scene,) = _load(src, "scene")
    scene |= {
        "nbr_samples": len(samples),
        "first_sample_token": samples[0]["token"],
        "last_sample_token": samples[-1]["token"],
    }
    pose_tokens = {r["ego_pose_token"] for r in sample_data}
    calib_tokens = {r["calibrated_sensor_token"] for r in sample_data}
    tables = {
        "scene": [scene],
        "sample": samples,
        "sample_data": sample_data,
        "sample_annotation": anns,
        "instance": instances,
        "ego_pose": [r for r in _load(src, "ego_pose") if r["token"] in pose_tokens],
        "calibrated_sensor": [
            r for r in _load(src, "calibrated_sensor") if r["token"] in calib_tokens
        ],
    }
    for table in ("attribute", "category", "log", "map", "sensor", "visibility"):
        tables[table] = _load(src, table)
    if out.exists():
        shutil.rmtree(out)
    (out / VERSION).mkdir(parents=True)
    for name, rows in tables.items():
        (out / VERSION / f"{name}.json").write_text(json.dumps(rows, indent=0))
    copied = 0
    for r in sample_data:
        f = src / r["filename"]
        if r["is_key_frame"]:
            (out / r["filename"]).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out / r["filename"])
            copied += 1
    for m in tables["map"]:
        (out / m["filename"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / m["filename"], out / m["filename"])
    return {"samples": len(samples), "files": copied, "boxes": len(anns)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scene_root", type=Path, help="the whole scene-0916 dataroot")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    print(cut(args.scene_root, args.out))


if __name__ == "__main__":
    main()
