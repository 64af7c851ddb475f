"""`fusion bench real`: the shipped models on real nuScenes dataroots, scored by the devkit.

For each `--dataroot` (a real scene, a real keyframe) the split is the devkit's own that holds
its scenes (`mini_val` for scene-0916, `mini_train` for the keyframe of `tests/data`), and
`fusion.eval.evaluate.evaluate` runs every model and scores it (the devkit's mAP, NDS, TP errors and
per-class AP; nothing is recomputed here) and the reader counts the sweep files each model
would read that are absent (a keyframes-only download). Added per dataroot: the ground-truth
boxes per class that the devkit scores (after its range and points filter), the mean AP over
the classes that have any (the devkit's mAP counts an absent class as 0), and the sha256 of
every weights file scored. Pictures: per-class AP,
BEV views and the first model's boxes in the six cameras for the first `--pictures` keyframes.
Results go to `--json-out`, `--markdown-out` (generated from the JSON) and `--plots`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusion.commands.arguments import add_json_arguments, emit_json
from fusion.config import DETECTION_CLASSES
from fusion.data.reader import load_splits
from fusion.data.sensor_io import read_json
from fusion.errors import FusionError
from fusion.machine import machine_info
from fusion.threads import apply_threads

TP_LABELS = {
    "trans_err": "mATE",
    "scale_err": "mASE",
    "orient_err": "mAOE",
    "vel_err": "mAVE",
    "attr_err": "mAAE",
}
# the devkit's splits per version family: the first that holds every scene of a dataroot wins
SPLITS = {
    "v1.0-mini": ("mini_val", "mini_train"),
    "v1.0-trainval": ("val", "train"),
    "v1.0-test": ("test",),
}
PNG_WIDTH = 1100  # px: pictures are shrunk and palette-coded to keep the committed PNGs small
CAMERAS_PNG_WIDTH = 720
PNG_COLORS = 64


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def scene_names(dataroot: Path, version: str) -> list[str]:
    table = dataroot / version / "scene.json"
    scenes = read_json(table, "scene table")
    if not isinstance(scenes, list) or not all(isinstance(s, dict) for s in scenes):
        raise FusionError("scene table must be a list of records", table)
    return sorted(str(s.get("name")) for s in scenes)


def split_scene_names(dataroot: Path, version: str, split: str) -> list[str]:
    """The dataroot's scenes in `split`: `<version>/splits.json`'s first, then the devkit's."""
    custom = dataroot / version / "splits.json"
    splits = load_splits(custom) if custom.is_file() else {}
    if split not in splits:
        from nuscenes.utils.splits import create_splits_scenes

        splits = create_splits_scenes(verbose=False)
    wanted = set(splits.get(split, ()))
    return [name for name in scene_names(dataroot, version) if name in wanted]


def devkit_split(dataroot: Path, version: str) -> str:
    """The devkit's split (`nuscenes.utils.splits`) of `version` holding every scene."""
    from nuscenes.utils.splits import create_splits_scenes

    names = set(scene_names(dataroot, version))
    splits = create_splits_scenes(verbose=False)
    for split in SPLITS.get(version, ()):
        if names <= set(splits[split]):
            return split
    raise FusionError(
        f"no devkit split of {version} holds the scenes {', '.join(sorted(names))}: pass --split",
        dataroot,
    )


def devkit(dataroot: Path, version: str) -> Any:
    from nuscenes.nuscenes import NuScenes

    with contextlib.redirect_stdout(io.StringIO()):
        return NuScenes(version, str(dataroot), verbose=False)


def scored_gt_counts(nusc: Any, split: str) -> dict[str, int]:
    """Ground-truth boxes per class that the devkit scores: its `load_gt` and its range and
    points filter (`filter_eval_boxes`) under the `detection_cvpr_2019` config."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.common.loaders import (
        add_center_dist,
        filter_eval_boxes,
        get_samples_of_custom_split,
        load_gt,
        load_gt_of_sample_tokens,
    )
    from nuscenes.eval.detection.data_classes import DetectionBox
    from nuscenes.utils.splits import is_predefined_split

    cfg = config_factory("detection_cvpr_2019")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if is_predefined_split(split):
            gt = load_gt(nusc, split, DetectionBox, verbose=False)
        else:  # `<version>/splits.json`, as DetectionEval loads it
            tokens = get_samples_of_custom_split(split_name=split, nusc=nusc)
            gt = load_gt_of_sample_tokens(nusc, tokens, DetectionBox, verbose=False)
        gt = filter_eval_boxes(nusc, add_center_dist(nusc, gt), cfg.class_range, verbose=False)
    counts = dict.fromkeys(DETECTION_CLASSES, 0)
    for box in gt.all:
        counts[box.detection_name] += 1
    return counts


def shrink_png(src: Path, dst: Path, width: int = PNG_WIDTH) -> Path:
    """`src` scaled down to `width` px (never up) and palette-coded, as `dst`."""
    from PIL import Image

    img = Image.open(src).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
    dst.parent.mkdir(parents=True, exist_ok=True)
    img.quantize(PNG_COLORS, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
    return dst


def _trained_on(run: dict[str, Any]) -> str:
    """The training data of a run's metadata: `version split`, or each part of a `--mix`
    (version, split, samples x repeat)."""
    parts = run.get("data")
    if not parts:
        return f"{run.get('version', '?')} {run.get('split', '?')}"
    out = []
    for part in parts:
        _, version, split = str(part["data"]).rsplit(" ", 2)
        out.append(f"{version} {split} ({part['samples']} x {part['repeat']})")
    return " + ".join(out)


def _seen_note(weights: dict[str, Any], ds: dict[str, Any]) -> list[str]:
    """A warning line when a scored model was trained on this dataroot's split (its run's
    `--mix` record names the dataroot and split)."""
    seen = []
    for name, w in weights.items():
        for part in w.get("run", {}).get("data", []):
            root, version, split = str(part["data"]).rsplit(" ", 2)
            same = Path(root).resolve() == Path(ds["dataroot"]).resolve()
            if same and version == ds["version"] and split == ds["split"]:
                seen.append(name)
    if not seen:
        return []
    return [
        f"**Seen in training** by {', '.join(seen)}: these figures measure how well the weights "
        "fit data they were trained on, not how they generalise.",
        "",
    ]


def measure_dataroot(
    dataroot: Path,
    version: str,
    split: str | None,
    models: dict[str, Path],
    work: Path,
    plots: Path | None,
    pictures: int,
) -> dict[str, Any]:
    """Evaluate every model on one dataroot (`fusion.eval.evaluate.evaluate`) and add the ground
    truth per class, the mean AP over the present classes and the absent sweep files."""
    from fusion.eval.evaluate import evaluate, safe_name
    from fusion.model.weights import load_detector

    split = split or devkit_split(dataroot, version)
    scenes = split_scene_names(dataroot, version, split)
    label = safe_name("_".join(scenes))
    out = work / label
    report = evaluate(dataroot, version, split, models, out, pictures=pictures, progress=False)
    assert report is not None  # one process: rank 0
    nusc = devkit(dataroot, version)
    counts = scored_gt_counts(nusc, split)
    present = [c for c in DETECTION_CLASSES if counts[c] > 0]
    result: dict[str, Any] = {
        "dataroot": str(dataroot),
        "version": version,
        "split": split,
        "scenes": scenes,
        "samples": report.samples,
        "gt_boxes_scored": counts,
        "present_classes": present,
        "models": {},
        "pictures": [],
    }
    for name, metrics in report.metrics.items():
        model = load_detector(models[name])
        m = metrics.as_json()
        m["mean_ap_present"] = (
            sum(metrics.label_aps[c] for c in present) / len(present) if present else 0.0
        )
        # sweeps of the point clouds the model reads (0: it reads none of that sensor)
        lidar = model.cfg.point_cloud.sweeps if "lidar" in model.modalities else 0
        radar = model.cfg.radar.sweeps if "radar" in model.modalities else 0
        m["sweeps"] = {"lidar": lidar, "radar": radar}
        # the reader's count (`EvalReport.absent_sweeps`): sweeps the model reads whose files
        # are absent, as a keyframes-only download has them
        absent = report.absent_sweeps.get(name, {})
        m["absent_sweeps"] = {
            "lidar": sum(n for ch, n in absent.items() if ch == "LIDAR_TOP"),
            "radar": sum(n for ch, n in absent.items() if ch.startswith("RADAR")),
            "by_channel": dict(absent),
        }
        result["models"][name] = m
    if plots is not None:
        first = next(iter(models))
        made = [("class_ap", out / "plots" / "class_ap.png")]
        for png in sorted((out / "plots").glob("bev_*.png")):
            tok = png.stem.removeprefix("bev_")
            made.append((f"bev_{tok[:8]}", png))
            made.append(
                (f"cameras_{first}_{tok[:8]}", out / "plots" / f"cameras_{first}_{tok}.png")
            )
        for kind, png in made:
            if png.is_file():
                width = CAMERAS_PNG_WIDTH if kind.startswith("cameras") else PNG_WIDTH
                dst = shrink_png(png, plots / f"{label}_{kind}.png", width)
                result["pictures"].append({"kind": kind.split("_")[0], "file": dst.name})
    return result


def measure(
    dataroots: list[Path],
    version: str,
    split: str | None | Sequence[str],
    models: dict[str, Path],
    plots: Path | None,
    pictures: int,
    work: Path | None = None,
) -> dict[str, Any]:
    from fusion.model.weights import load_detector

    weights = {}
    for name, path in models.items():
        pc = load_detector(path).cfg.point_cloud
        weights[name] = {
            "file": str(path),
            "sha256": sha256(path),
            "run": _run_meta(path),
            "ego_filter": pc.ego_filter if pc.ego_filter == "none" else list(pc.ego_box),
        }
    with tempfile.TemporaryDirectory(prefix="bench_real_") as tmp:
        base = work or Path(tmp)
        datasets = [
            measure_dataroot(d, version, s, models, base, plots, pictures)
            for d, s in zip(dataroots, per_dataroot(split, len(dataroots)), strict=True)
        ]
    return {"weights": weights, "datasets": datasets}


def per_dataroot(split: str | None | Sequence[str], count: int) -> list[str | None]:
    """The split of each of `count` dataroots: none (each its devkit split), one for all, or
    one each."""
    if split is None or isinstance(split, str):
        return [split] * count
    if len(split) in (0, 1):
        return [split[0] if split else None] * count
    if len(split) != count:
        raise FusionError(
            f"--split: give one for all dataroots or one per --dataroot ({count}), not {len(split)}"
        )
    return list(split)


def _run_meta(path: Path) -> dict[str, Any]:
    """What the weights say about their training run (split, steps, init)."""
    from fusion.model.weights import read_metadata

    try:
        return json.loads(read_metadata(path).get("run", "{}"))
    except json.JSONDecodeError:
        return {}


# -- markdown from the JSON ---------------------------------------------------------------------


def _f(v: float) -> str:
    return f"{v:.3f}"


def to_markdown(result: dict[str, Any]) -> str:
    env = result["env"]
    models = list(result["weights"])
    lines = [
        "# Real nuScenes: the shipped models",
        "",
        "Regenerate (one command; the markdown is generated from `real.json`):",
        "",
        f"    {result['command']}",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores; {env['date']}. Metrics are the nuScenes "
        "devkit's (`detection_cvpr_2019`), through `fusion eval`.",
        "",
        "## Weights scored",
        "",
        "| model | sha256 | trained on | steps (last run) | started from "
        "| ego filter box (m, LIDAR_TOP) |",
        "|---|---|---|---:|---|---|",
    ]
    for name, w in result["weights"].items():
        run = w.get("run", {})
        ego = w.get("ego_filter", "?")
        lines.append(
            f"| {name} | `{w['sha256'][:16]}` | {_trained_on(run)} | {run.get('steps', '?')} | "
            f"{str(run.get('init', '')).split(' ')[0] or '-'} | "
            f"{' '.join(f'{v:g}' for v in ego) if isinstance(ego, list) else ego} |"
        )
    lines += [
        "",
        "How to read it: the devkit's mAP averages 10 classes and counts a class without ground "
        "truth as AP 0, so on a scene with 6 classes it cannot pass 0.6; the mean over the "
        "present classes is given beside it. `absent sweep files skipped`: sweeps the model "
        "reads whose files a keyframes-only download lacks (the frame fuses those that exist). "
        "The devkit's split is named per dataroot: a scene of `mini_val` or `val` is nuScenes "
        "validation data, so weights trained on it must not be reported on nuScenes val.",
    ]
    for ds in result["datasets"]:
        present = ds["present_classes"]
        gt_text = ", ".join(f"{c} {ds['gt_boxes_scored'][c]}" for c in present)
        lines += [
            "",
            f"## {', '.join(ds['scenes'])}: devkit split `{ds['split']}`, {ds['samples']} "
            f"keyframe{'s' if ds['samples'] != 1 else ''}",
            "",
            f"Dataroot `{ds['dataroot']}` ({ds['version']}). Classes with ground truth scored "
            f"by the devkit: {gt_text}; "
            f"the other {len(DETECTION_CLASSES) - len(present)} count as AP 0 in the devkit's mAP.",
            "",
            *_seen_note(result["weights"], ds),
            "| metric | " + " | ".join(models) + " |",
            "|---|" + "---:|" * len(models),
        ]
        rows: list[tuple[str, list[str]]] = [
            ("**mAP** (devkit, 10 classes)", [_f(ds["models"][m]["mean_ap"]) for m in models]),
            (
                f"**mean AP over the {len(present)} present classes**",
                [_f(ds["models"][m]["mean_ap_present"]) for m in models],
            ),
            ("NDS", [_f(ds["models"][m]["nd_score"]) for m in models]),
        ]
        for key, label in TP_LABELS.items():
            rows.append((label, [_f(ds["models"][m]["tp_errors"][key]) for m in models]))
        for c in DETECTION_CLASSES:
            tag = f" ({ds['gt_boxes_scored'][c]} GT)" if c in present else " (no GT)"
            rows.append((f"AP {c}{tag}", [_f(ds["models"][m]["label_aps"][c]) for m in models]))
        rows.append(
            (
                "sweeps read (LIDAR / radar)",
                [
                    f"{ds['models'][m]['sweeps']['lidar']} / {ds['models'][m]['sweeps']['radar']}"
                    for m in models
                ],
            )
        )
        rows.append(
            (
                "absent sweep files skipped (LIDAR / radar)",
                [
                    f"{ds['models'][m]['absent_sweeps']['lidar']} / "
                    f"{ds['models'][m]['absent_sweeps']['radar']}"
                    for m in models
                ],
            )
        )
        lines += [f"| {label} | " + " | ".join(vals) + " |" for label, vals in rows]
        if ds["pictures"]:
            lines.append("")
        for pic in ds["pictures"]:
            caption = {
                "class": "AP per class",
                "bev": "BEV, LIDAR_TOP frame: ground truth (green) against each model "
                "(score >= 0.3)",
                "cameras": f"the {models[0]} model's boxes (score >= 0.3) and the ground truth "
                "(green) in the six cameras",
            }[pic["kind"]]
            lines += [f"![{caption}]({result.get('plots_rel', '.')}/{pic['file']})", ""]
    notes = result.get("notes")
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines).rstrip() + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fusion.model.weights import add_model_arguments

    parser.add_argument(
        "--dataroot",
        type=Path,
        action="append",
        default=[],
        help="a real nuScenes dataroot (repeatable: the scene, the keyframe)",
    )
    parser.add_argument(
        "--version", help="of every --dataroot, e.g. v1.0-mini (required with --dataroot)"
    )
    parser.add_argument(
        "--split",
        action="append",
        default=[],
        help="once for every --dataroot, or once per --dataroot in their order; default: the "
        "devkit's split that holds the scenes",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--pictures", type=int, default=1, help="BEV and camera pictures of the first N keyframes"
    )
    parser.add_argument("--work", type=Path, help="keep fusion eval's outputs here")
    parser.add_argument(
        "--from-json", type=Path, help="regenerate the markdown from a results JSON, run nothing"
    )
    parser.add_argument("--note", action="append", default=[], help="a line for the notes")
    add_json_arguments(parser, "the results")
    parser.add_argument("--markdown-out", type=Path, help="results markdown")
    parser.add_argument("--plots", type=Path, help="folder of the PNGs")


def run(args: argparse.Namespace) -> int:
    import os

    from fusion.model.weights import models_from_args

    if args.from_json:
        result = json.loads(args.from_json.read_text())
    else:
        if not args.dataroot:
            raise FusionError("give at least one --dataroot (or --from-json RESULTS)")
        if not args.version:
            raise FusionError("--dataroot needs --version (e.g. v1.0-mini)")
        apply_threads()
        models = models_from_args(args)
        if args.plots is not None:
            shutil.rmtree(args.plots, ignore_errors=True)  # no picture of an earlier run stays
        result = {
            "command": "fusion bench real " + " ".join(sys.argv[3:]),
            "env": machine_info(),
            **measure(
                args.dataroot,
                args.version,
                args.split,
                models,
                args.plots,
                args.pictures,
                args.work,
            ),
            "notes": args.note,
        }
    if args.plots is not None and args.markdown_out is not None:
        result["plots_rel"] = os.path.relpath(args.plots, args.markdown_out.parent)
    text = to_markdown(result)
    if not emit_json(args, result):
        print(text)
    if args.markdown_out:
        args.markdown_out.parent.mkdir(parents=True, exist_ok=True)
        args.markdown_out.write_text(text)
    return 0
