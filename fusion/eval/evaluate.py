"""`fusion eval`: run detectors over a split and score them with the nuScenes devkit.

The metrics are the devkit's own (`nuscenes.eval.detection.evaluate.DetectionEval` with the
`detection_cvpr_2019` config); nothing here recomputes mAP or NDS. Detections come out of the
detector in the LIDAR_TOP frame at the reference time and are written to the results JSON in
the global frame through the frame's reference pose.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusion.config import CONDITIONS, DETECTION_CLASSES
from fusion.data.reader import NuScenesReader, ReaderOptions, sync_warning
from fusion.data.rig_file import localization_from_rig
from fusion.distributed import Shard, gather_to_main, local_rank
from fusion.engines.runner import Runner, StageTimes, open_engine
from fusion.errors import FusionError
from fusion.frame import Detections, Frame
from fusion.localization.pose_source import POSE_SOURCE_TEXT, PoseChoice
from fusion.model.detector import Detector
from fusion.model.weights import load_detector
from fusion.motion.poses import NoEgoPose
from fusion.motion.sweeps import absent_sweeps_read, keep_sweeps
from fusion.outputs.plots import plot_bev_samples, plot_class_aps, render_camera_detections
from fusion.postprocess.decode import with_postprocess
from fusion.postprocess.results import TP_ERRORS, ModelMetrics, detections_to_results, results_meta
from fusion.preprocess.inputs import CameraMotion, check_drop, drop_sensors
from fusion.stats import LatencyRecorder

if TYPE_CHECKING:
    from fusion.data.reader import ReaderOptions


def scene_condition(scene: dict[str, Any]) -> str:
    """A scene's condition: the `condition` field our generator writes into the scene record.
    Real nuScenes and datasets generated before that field only say it in the description's
    prose ("Night, rain, ..."): there the first of night, rain, fog it names, else `day`."""
    if scene.get("condition") in CONDITIONS:
        return scene["condition"]
    text = scene["description"].lower()
    named = (c for c in CONDITIONS if c != "day" and re.search(rf"\b{c}", text))
    return next(named, "day")


def _placeholder_box(frame: Frame) -> dict[str, Any]:
    """The devkit cannot score a submission without any box ("Invalid box type: None"). One car
    at the ego position with score 0 is the lowest-ranked prediction there can be and a false
    positive (no annotation sits on the sensor): with it the devkit scores the empty submission
    as what it is (AP 0, TP errors 1)."""
    t = frame.reference.sensor_to_global.translation
    return {
        "sample_token": frame.sample_token,
        "translation": [float(v) for v in t],
        "size": [1.0, 1.0, 1.0],
        "rotation": [1.0, 0.0, 0.0, 0.0],
        "velocity": [0.0, 0.0],
        "detection_name": "car",
        "detection_score": 0.0,
        "attribute_name": "",
    }


def metrics_from(summary: Any, empty: bool) -> ModelMetrics:
    """The devkit's `DetectionMetrics` as our `ModelMetrics`."""
    s = summary.serialize()
    return ModelMetrics(
        mean_ap=float(s["mean_ap"]),
        nd_score=float(s["nd_score"]),
        label_aps={k: float(v) for k, v in s["mean_dist_aps"].items()},
        tp_errors={k: float(s["tp_errors"][k]) for k in TP_ERRORS},
        empty=empty,
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The devkit prints a lot, and draws tqdm bars on stderr even when not verbose (its
    `load_gt`): those were the stray `0%|` lines after eval. Errors still raise."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def safe_name(text: str, limit: int = 64) -> str:
    """A dataset string (a sample token) as one file-name component: letters, digits, `_ - .`
    kept, anything else (`/`, `..`, NUL) replaced by `_`, never empty, never hidden."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))[:limit].lstrip(".")
    return name or "_"


def inside(out: Path, path: Path) -> Path:
    """`path`, checked to resolve inside the `--out` folder (every eval write goes through)."""
    root = out.resolve()
    if not path.resolve().is_relative_to(root):
        raise FusionError(f"refusing to write outside --out ({root})", path)
    return path


def devkit_evaluate(nusc: Any, split: str, results_path: Path, out_dir: Path) -> Any:
    """A `DetectionEval` for a results file, quiet."""
    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval

    with _quiet():
        return DetectionEval(
            nusc,
            config_factory("detection_cvpr_2019"),
            str(results_path),
            split,
            str(out_dir),
            verbose=False,
        )


def evaluate_subset(evaluator: Any, sample_tokens: Sequence[str]) -> Any:
    """Run the devkit's `evaluate` on a subset of the samples (boxes already filtered)."""
    from nuscenes.eval.common.data_classes import EvalBoxes

    sub = copy.copy(evaluator)
    keep = set(sample_tokens)
    for attr in ("gt_boxes", "pred_boxes"):
        src = getattr(evaluator, attr)
        boxes = EvalBoxes()
        for tok in src.sample_tokens:
            if tok in keep:
                boxes.add_boxes(tok, src[tok])
        setattr(sub, attr, boxes)
    sub.sample_tokens = [t for t in evaluator.sample_tokens if t in keep]
    with _quiet():
        metrics, _ = sub.evaluate()
    return metrics


EVAL_WARMUP = 2  # frames left out of the latency figures (fewer when the split is that small)


@dataclass
class _ModelRun:
    name: str
    model: Detector
    runner: Runner
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    times: list[StageTimes] = field(default_factory=list)
    detections: dict[str, Detections] = field(default_factory=dict)  # for the BEV pictures
    # channel -> sweeps the model's frames lacked because their files are absent
    absent_sweeps: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalReport:
    split: str
    samples: int
    dropped: tuple[str, ...]
    backend: str
    metrics: dict[str, ModelMetrics]
    latency_ms: dict[str, dict[str, float]]  # model -> stage -> mean ms
    conditions: dict[str, dict[str, ModelMetrics]]  # condition -> model -> metrics
    # model -> channel -> sweeps its frames lacked, their files absent (keyframes-only layout)
    absent_sweeps: dict[str, dict[str, int]] = field(default_factory=dict)
    # channel -> keyframes left out of their frames, beyond the [sync] tolerance (a warning)
    out_of_sync: dict[str, int] = field(default_factory=dict)
    # the pose source used and what it could not serve (`_pose_summary`)
    poses: dict[str, Any] = field(default_factory=dict)
    # model -> the decode's score threshold and box cap it ran with
    postprocess: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "samples": self.samples,
            "dropped": list(self.dropped),
            "backend": self.backend,
            "absent_sweeps": {
                m: {"total": sum(c.values()), "by_channel": c}
                for m, c in self.absent_sweeps.items()
            },
            "models": {m: v.as_json() for m, v in self.metrics.items()},
            "latency_ms": self.latency_ms,
            "conditions": {
                c: {m: v.as_json() for m, v in d.items()} for c, d in self.conditions.items()
            },
            "out_of_sync": self.out_of_sync,
            "poses": self.poses,
            "postprocess": self.postprocess,
        }


# -- sweeps per model ---------------------------------------------------------------------------


class _SweepFrames:
    """Frames of one sample for each model's sweep counts, from one read where possible."""

    def __init__(self, reader: Any, drop: tuple[str, ...]) -> None:
        self.reader = reader
        self.drop = drop
        self._readers: dict[tuple[int, int], Any] = {}

    def read(self, token: str) -> Frame:
        """The frame with every sweep any model reads (sensors in `drop` removed)."""
        return drop_sensors(self.reader.frame(token), self.drop)

    def for_model(self, frame: Frame, cfg: Any) -> Frame:
        lidar, radar = cfg.point_cloud.sweeps, cfg.radar.sweeps
        cut = keep_sweeps(frame, lidar, radar)
        if cut is not None:
            return cut
        if (lidar, radar) not in self._readers:  # shares the devkit tables, reads fewer sweeps
            other = copy.copy(self.reader)
            other.options = replace(self.reader.options, lidar_sweeps=lidar, radar_sweeps=radar)
            self._readers[(lidar, radar)] = other
        return drop_sensors(self._readers[(lidar, radar)].frame(frame.sample_token), self.drop)


def _reader_options(runs: Sequence[_ModelRun]) -> ReaderOptions:
    """One reader for every model: the most sweeps any model reads (each model's frame is cut
    down with `keep_sweeps`); the radar filter must agree."""

    options = [ReaderOptions.from_config(r.model.cfg) for r in runs]
    if len({o.radar_filter for o in options}) != 1:
        raise FusionError(
            "the models were trained with different radar filters; evaluate them separately"
        )
    return ReaderOptions(
        lidar_sweeps=max(o.lidar_sweeps for o in options),
        radar_sweeps=max(o.radar_sweeps for o in options),
        radar_filter=options[0].radar_filter,
    )


# -- the eval loop ------------------------------------------------------------------------------


def evaluate(
    dataroot: Path,
    version: str,
    split: str,
    models: dict[str, Path],
    out: Path,
    drop: Sequence[str] = (),
    backend: str = "torch",
    device: str = "cpu",
    pictures: int = 3,
    progress: bool = True,
    shard: Shard | None = None,
    camera_motion: CameraMotion = "ignore",
    decode: str = "full",
    poses: PoseChoice = "auto",
    rig: Path | None = None,
    subsets: dict[str, Sequence[str]] | None = None,
    gnss_latency_sigma_s: float = 0.0,
    score_threshold: float | None = None,
    max_detections: int | None = None,
) -> EvalReport | None:
    """Run every model over the split, score each with the devkit, write results and plots.

    With `shard` (see `init_shard`, under torchrun) each rank detects on its block of the
    samples and rank 0 gathers the results, scores them once and returns the report; the
    other ranks return None. The results and metrics equal a single process's.

    `poses`: the reader's pose source (`fusion.localization.pose_source`); with `gnss-imu` the
    estimator's calibration and the map's geodetic origin come from `rig`'s `[gnss]` (default
    the generator's rig). A keyframe without an ego pose (before the estimator's start) is
    not detected: it is scored with no detections and counted, and the metrics over the
    keyframes with a pose are given beside (`poses` of the report). `subsets`: name -> sample
    tokens also scored on their own (in `poses["subsets"]`). `gnss_latency_sigma_s` > 0: the
    estimator estimates the GNSS fix latency online from the rig's, with that prior sigma.
    `score_threshold`, `max_detections`: the decode's, in place of each weights file's
    (`with_postprocess`); the report gives what each model ran with (`postprocess`)."""

    shard = shard or Shard()
    drop = check_drop(drop)
    if device.startswith("cuda") and shard.world > 1 and ":" not in device:
        device = f"cuda:{local_rank()}"
    out.mkdir(parents=True, exist_ok=True)
    runs: list[_ModelRun] = []
    for name, path in models.items():
        model = load_detector(path)
        if model.variant != name:
            raise FusionError(f"weights are for the {model.variant!r} model, not {name!r}", path)
        engine_dir = inside(out, out / "engines" / (f"rank{shard.rank}" if shard.world > 1 else ""))
        engine = open_engine(backend, model, engine_dir, device)  # type: ignore[arg-type]
        cfg = with_postprocess(model.cfg, score_threshold, max_detections)
        runner = Runner(cfg, model.variant, engine, model.params, camera_motion=camera_motion)
        runs.append(_ModelRun(name, model, runner))
    options = replace(_reader_options(runs), image_decode=decode, poses=poses)  # type: ignore[arg-type]
    if rig is not None or gnss_latency_sigma_s > 0:
        config, origin = localization_from_rig(rig)
        config = replace(config, time_offset_sigma=gnss_latency_sigma_s)
        options = replace(options, localization=config, map_origin=origin)
    reader = NuScenesReader(dataroot, version, options)
    tokens = reader.sample_tokens(split)
    if not tokens:
        raise FusionError(f"split {split!r} has no samples", dataroot)
    first = set(tokens[:pictures])

    mine = shard.of(tokens)
    iterator: Any = mine
    if progress:
        from tqdm import tqdm

        iterator = tqdm(mine, desc="eval", dynamic_ncols=True, position=shard.rank)
    conditions: dict[str, str] = {}
    frames = _SweepFrames(reader, drop)
    late: dict[str, int] = {}  # keyframes beyond the sync tolerance, counted on the first read
    unposed: dict[str, int] = {}  # sensors left out for want of an ego pose, on the first read
    no_pose: list[str] = []  # keyframes without an ego pose: no frame, no detections
    for tok in iterator:
        before = dict(reader.out_of_sync)
        before_pose = dict(reader.no_pose)
        scene = reader.nusc.get("scene", reader.nusc.get("sample", tok)["scene_token"])
        conditions[tok] = scene_condition(scene)
        try:
            frame = frames.read(tok)
        except NoEgoPose:
            no_pose.append(tok)
            for r in runs:
                r.results[tok] = []
            continue
        for ch, n in reader.out_of_sync.items():
            if n > before.get(ch, 0):
                late[ch] = late.get(ch, 0) + n - before.get(ch, 0)
        for ch, n in reader.no_pose.items():
            if n > before_pose.get(ch, 0):
                unposed[ch] = unposed.get(ch, 0) + n - before_pose.get(ch, 0)
        for r in runs:
            model_frame = frames.for_model(frame, r.model.cfg)
            for ch, n in absent_sweeps_read(model_frame, r.model.modalities).items():
                r.absent_sweeps[ch] = r.absent_sweeps.get(ch, 0) + n
            dets, times = r.runner.detect(model_frame)
            r.results[tok] = detections_to_results(dets, frame)
            r.times.append(times)
            if tok in first:
                r.detections[tok] = dets

    estimator = {
        scene: est.counts | {"start_us": est.start_us, "time_offset_s": est.time_offset_s}
        for scene, est in reader.estimates.items()
        if est is not None and not isinstance(est, Exception)
    }
    mine_out = (
        conditions,
        {r.name: (r.results, r.times, r.detections, r.absent_sweeps) for r in runs},
        late,
        (no_pose, unposed, estimator),
    )
    gathered = gather_to_main(shard, mine_out)
    if not shard.is_main:
        return None
    by_token: dict[str, list[str]] = {}
    out_of_sync: dict[str, int] = {}
    no_pose, unposed, estimator = [], {}, {}
    for part_conditions, _, part_late, (part_none, part_unposed, part_est) in gathered:
        conditions.update(part_conditions)
        for ch, n in part_late.items():
            out_of_sync[ch] = out_of_sync.get(ch, 0) + n
        no_pose += part_none
        for ch, n in part_unposed.items():
            unposed[ch] = unposed.get(ch, 0) + n
        estimator.update(part_est)
    for tok in tokens:  # every condition's samples in split order, as one process lists them
        by_token.setdefault(conditions[tok], []).append(tok)
    for r in runs:
        parts = [per_model[r.name] for _, per_model, *_ in gathered]
        merged = {k: v for results, *_ in parts for k, v in results.items()}
        r.results = {tok: merged[tok] for tok in tokens}
        r.times = [t for _, times, *_ in parts for t in times]
        r.detections = {k: v for _, _, dets, _ in parts for k, v in dets.items()}
        absent: dict[str, int] = {}
        for *_, part_absent in parts:
            for ch, n in part_absent.items():
                absent[ch] = absent.get(ch, 0) + n
        r.absent_sweeps = dict(sorted(absent.items()))
    posed = [t for t in tokens if t not in set(no_pose)]
    if not posed:
        raise FusionError(
            f"no keyframe of split {split!r} has an ego pose from {reader.pose_source}", dataroot
        )
    named = dict(subsets or {})
    if no_pose:
        named["with_pose"] = posed
    report = _score(frames, split, tokens, runs, by_token, backend, out, pictures, posed, named)
    pose_summary = {
        "source": reader.pose_source,
        "text": POSE_SOURCE_TEXT.get(reader.pose_source, reader.pose_source),
        **_estimator_summary(reader, rig, estimator),
        "samples_without_pose": len(no_pose),
        "tokens_without_pose": [t for t in tokens if t in set(no_pose)],
        "sensors_without_pose": dict(sorted(unposed.items())),
        **report.poses,
    }
    return replace(report, out_of_sync=dict(sorted(out_of_sync.items())), poses=pose_summary)


def _estimator_summary(reader: Any, rig: Path | None, estimator: dict) -> dict[str, Any]:
    """Where the estimator's calibration and the map frame came from, and what it rejected."""
    if reader.pose_source == "log":
        return {}
    o = reader.options
    rejected: dict[str, int] = {}
    for counts in estimator.values():
        for k, v in counts.items():
            if k not in ("start_us", "time_offset_s") and v:
                rejected[k] = rejected.get(k, 0) + v
    return {
        "calibration": f"rig {rig} [gnss]" if rig else "the default rig's [gnss]",
        "antenna_in_ego_m": list(o.localization.antenna_in_ego),
        "gnss_time_offset_s": o.localization.gnss_time_offset_s,
        "gnss_latency_estimated": o.localization.time_offset_sigma > 0,
        "map_origin": [o.map_origin.lat_deg, o.map_origin.lon_deg, o.map_origin.alt_m],
        "estimator_counts": dict(sorted(rejected.items())),
        "estimator_start_us": {s: c["start_us"] for s, c in sorted(estimator.items())},
        # the GNSS fix latency at each scene's end, and its sigma (0: held as configured)
        "time_offset_s": {s: c["time_offset_s"] for s, c in sorted(estimator.items())},
    }


def _score(
    frames: _SweepFrames,
    split: str,
    tokens: Sequence[str],
    runs: Sequence[_ModelRun],
    conditions: dict[str, list[str]],
    backend: str,
    out: Path,
    pictures: int,
    posed: Sequence[str],
    subsets: dict[str, Sequence[str]],
) -> EvalReport:
    """Devkit scores of the gathered results, per model, per condition and per named subset of
    the samples, and the plots (of the samples with an ego pose, `posed`)."""
    reader, drop = frames.reader, frames.drop
    metrics: dict[str, ModelMetrics] = {}
    by_condition: dict[str, dict[str, ModelMetrics]] = {c: {} for c in sorted(conditions)}
    latency: dict[str, dict[str, float]] = {}
    by_subset: dict[str, dict[str, Any]] = {name: {} for name in subsets}
    for r in runs:
        model_dir = inside(out, out / safe_name(r.name))
        model_dir.mkdir(parents=True, exist_ok=True)
        empty = not any(r.results.values())
        results = dict(r.results)
        if empty:
            first = drop_sensors(reader.frame(posed[0]), drop)
            results[posed[0]] = [_placeholder_box(first)]
        no_cameras = "cameras" in drop or all(c in drop for c in r.model.cfg.camera.channels)
        no_radars = "radars" in drop or all(c in drop for c in r.model.cfg.radar.channels)
        gone = {"camera": no_cameras, "lidar": "LIDAR_TOP" in drop, "radar": no_radars}
        meta = results_meta(r.model.modalities, [m for m, g in gone.items() if g])
        results_path = inside(out, model_dir / "results_nusc.json")
        results_path.write_text(json.dumps({"meta": meta, "results": results}))
        evaluator = devkit_evaluate(reader.nusc, split, results_path, model_dir)
        with _quiet():
            summary, _ = evaluator.evaluate()
        metrics[r.name] = metrics_from(summary, empty)
        inside(out, model_dir / "metrics_summary.json").write_text(
            json.dumps(summary.serialize(), indent=2)
        )
        if len(conditions) > 1:
            for cond, toks in conditions.items():
                by_condition[cond][r.name] = metrics_from(evaluate_subset(evaluator, toks), empty)
        for name, toks in subsets.items():
            by_subset[name][r.name] = metrics_from(
                evaluate_subset(evaluator, toks), empty
            ).as_json() | {"samples": len(toks)}
        # the first frames compile Numba's kernels and build the geometry cache: left out
        rec = LatencyRecorder(warmup=min(EVAL_WARMUP, len(r.times) - 1))
        for t in r.times:
            rec.add(t.as_dict())
        latency[r.name] = rec.means(StageTimes.names())
    if len(conditions) <= 1:
        by_condition = {c: dict(metrics) for c in conditions}

    plot_class_aps(metrics, inside(out, out / "plots" / "class_ap.png"))
    cfg = runs[0].model.cfg
    for tok in [t for t in tokens[:pictures] if t in set(posed)]:
        # re-read on rank 0: frames stay where they were read, only detections are gathered
        frame = frames.for_model(frames.read(tok), cfg)
        dets = {r.name: r.detections[tok] for r in runs if tok in r.detections}
        # the name comes from the dataset: sanitized, then checked to land inside --out
        picture = inside(out, out / "plots" / f"bev_{safe_name(tok)}.png")
        plot_bev_samples(frame, dets, cfg, picture)
        for name, d in dets.items():  # the same boxes seen by the six cameras
            cams = inside(out, out / "plots" / f"cameras_{safe_name(name)}_{safe_name(tok)}.png")
            render_camera_detections(frame, d, name, cams)
    absent = {r.name: r.absent_sweeps for r in runs}
    return EvalReport(
        split,
        len(tokens),
        tuple(drop),
        backend,
        metrics,
        latency,
        by_condition,
        absent,
        poses={"subsets": by_subset} if by_subset else {},
        postprocess={
            r.name: {
                "score_threshold": r.runner.cfg.model.score_threshold,
                "max_detections": r.runner.cfg.model.max_detections,
            }
            for r in runs
        },
    )


def format_table(report: EvalReport) -> str:
    """Side-by-side text table of the metrics and the mean latency per stage."""
    names = list(report.metrics)
    w = max(12, *(len(n) + 2 for n in names))
    lines = [
        f"split {report.split}, {report.samples} samples, backend {report.backend}"
        + (f", dropped {', '.join(report.dropped)}" if report.dropped else "")
    ]
    post = {(p["score_threshold"], p["max_detections"]) for p in report.postprocess.values()}
    if len(post) == 1:
        ((threshold, cap),) = post
        lines.append(f"boxes: score > {threshold:g}, at most {cap} a sample")
    else:
        for name, p in report.postprocess.items():
            lines.append(
                f"{name} boxes: score > {p['score_threshold']:g}, "
                f"at most {p['max_detections']} a sample"
            )
    for name, absent in report.absent_sweeps.items():
        if absent:  # a keyframes-only dataroot: say what the model went without
            per = ", ".join(f"{ch} {n:,}" for ch, n in absent.items())
            lines.append(
                f"{name}: {sum(absent.values()):,} sweeps absent (files not on disk, "
                f"keyframes-only layout; fused without them): {per}"
            )
    head = f"{'metric':<24}" + "".join(f"{n:>{w}}" for n in names)
    lines += [head, "-" * len(head)]

    def row(label: str, values: list[float]) -> None:
        lines.append(f"{label:<24}" + "".join(f"{v:>{w}.4f}" for v in values))

    row("mAP", [report.metrics[n].mean_ap for n in names])
    row("NDS", [report.metrics[n].nd_score for n in names])
    for key, label in zip(TP_ERRORS, ("mATE", "mASE", "mAOE", "mAVE", "mAAE"), strict=True):
        row(label, [report.metrics[n].tp_errors[key] for n in names])
    for cls in DETECTION_CLASSES:
        row(f"AP {cls}", [report.metrics[n].label_aps[cls] for n in names])
    if len(report.conditions) > 1:
        for cond, per_model in report.conditions.items():
            row(f"mAP [{cond}]", [per_model[n].mean_ap for n in names])
            row(f"NDS [{cond}]", [per_model[n].nd_score for n in names])
    lines += [
        "",
        f"mean latency per stage (ms, first {EVAL_WARMUP} frames excluded)",
        head.replace("metric", "stage "),
        "-" * len(head),
    ]
    for stage in (*StageTimes.names(), "total"):
        row(stage, [report.latency_ms[n][stage] for n in names])
    p = report.poses
    if p:
        lines += ["", f"ego poses: {p['text']}"]
        if "calibration" in p:
            lines.append(
                f"  calibration: {p['calibration']} (antenna {p['antenna_in_ego_m']} m in ego, "
                f"fix latency {p['gnss_time_offset_s']:g} s"
                f"{', estimated online' if p['gnss_latency_estimated'] else ', configured'}); "
                f"map origin {p['map_origin']}"
            )
            if p["gnss_latency_estimated"]:
                per = ", ".join(
                    f"{s} {v[0]:.3f} +- {v[1]:.3f} s" for s, v in p["time_offset_s"].items() if v
                )
                lines.append(f"  latency estimated: {per}")
            if p["estimator_counts"]:
                per = ", ".join(f"{k} {v}" for k, v in p["estimator_counts"].items())
                lines.append(f"  estimator: {per}")
        if p["samples_without_pose"]:
            lines.append(
                f"  {p['samples_without_pose']} of {report.samples} keyframes without an ego pose "
                "(before the estimator's start): not detected, scored with no detections"
            )
        if p["sensors_without_pose"]:
            per = ", ".join(f"{ch} {n}" for ch, n in p["sensors_without_pose"].items())
            lines.append(f"  sweeps and sensors left out for want of an ego pose: {per}")
        for name, per_model in p.get("subsets", {}).items():
            for model, m in per_model.items():
                lines.append(
                    f"  [{name}: {m['samples']} samples] {model}: mAP {m['mean_ap']:.4f} "
                    f"NDS {m['nd_score']:.4f}"
                )
    if report.out_of_sync:
        lines += ["", sync_warning(report.out_of_sync)]
    return "\n".join(lines)
