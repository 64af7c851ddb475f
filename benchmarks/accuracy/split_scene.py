"""Cut one real nuScenes scene in two at a keyframe, as a new dataroot, so that its first part can
train a model and its second part score it (a held-out set of real keyframes that the weights
never saw, though from the same scene: the same place, 6.5 s later).

    python benchmarks/accuracy/split_scene.py ../shared/data/nuscenes-real-scene-0916 \
        data/real-0916-ho --at 28

writes `data/real-0916-ho`: the scene's files copied (the reader refuses files that resolve
outside a dataroot), its tables with the scene cut into `<name>-a` (keyframes 0 .. at-1) and
`<name>-b` (at ..), and `<version>/splits.json` naming them `ho_train` and `ho_test`. Only the
scene and sample tables change: the sample chain is cut between the two parts, and the second
part's samples point to its own scene record. Annotations keep their instance tracks (and so
their velocities) across the cut.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def split_scene(src: Path, dst: Path, at: int, version: str = "v1.0-mini") -> tuple[int, int]:
    scenes = json.loads((src / version / "scene.json").read_text())
    if len(scenes) != 1:
        raise SystemExit(f"{src}: expected one scene, found {len(scenes)}")
    scene = scenes[0]
    samples = {s["token"]: s for s in json.loads((src / version / "sample.json").read_text())}
    order = []
    token = scene["first_sample_token"]
    while token:
        order.append(token)
        token = samples[token]["next"]
    if not 0 < at < len(order):
        raise SystemExit(f"--at must be in 1..{len(order) - 1}")
    first, second = order[:at], order[at:]
    if dst.exists():
        shutil.rmtree(dst)
    for folder in ("samples", "sweeps", "maps", version):
        if (src / folder).is_dir():
            shutil.copytree(src / folder, dst / folder)
    for path in dst.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)  # the shared copy is read-only
    samples[first[-1]]["next"] = ""
    samples[second[0]]["prev"] = ""
    part_a = dict(
        scene, name=scene["name"] + "-a", nbr_samples=len(first), last_sample_token=first[-1]
    )
    part_b = dict(
        scene,
        token="ho" + scene["token"][2:],
        name=scene["name"] + "-b",
        nbr_samples=len(second),
        first_sample_token=second[0],
    )
    for token in second:
        samples[token]["scene_token"] = part_b["token"]
    tables = dst / version
    (tables / "scene.json").write_text(json.dumps([part_a, part_b], indent=1))
    (tables / "sample.json").write_text(json.dumps(list(samples.values()), indent=1))
    splits = {"ho_train": [part_a["name"]], "ho_test": [part_b["name"]]}
    (tables / "splits.json").write_text(json.dumps(splits, indent=1))
    return len(first), len(second)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path, help="a dataroot of one scene")
    parser.add_argument("dst", type=Path, help="the new dataroot (replaced)")
    parser.add_argument("--at", type=int, required=True, help="first keyframe of the second part")
    parser.add_argument("--version", default="v1.0-mini")
    args = parser.parse_args()
    a, b = split_scene(args.src, args.dst, args.at, args.version)
    print(f"{args.dst}: ho_train {a} keyframes, ho_test {b}")


if __name__ == "__main__":
    main()
