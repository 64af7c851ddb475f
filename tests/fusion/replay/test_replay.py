"""`fusion replay`: the same detections from every log layout, eval's accuracy at --rate 0,
pacing at --rate 1, the accounting under faults and a busy detector, and bad input."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from replay_data import SCENE, VERSION, Collect, quiet

from fusion.engines.runner import Runner
from fusion.engines.torch_engine import TorchEngine
from fusion.model.weights import load_detector, packaged_weights
from fusion.replay.faults import FaultInjector, Faults
from fusion.replay.runner import LatestSlot, ReplayOptions, replay
from fusion.sources import open_source


def _runner(name: str) -> Runner:
    model = load_detector(packaged_weights(name))
    return Runner(model.cfg, model.variant, TorchEngine(model), model.params)


@pytest.fixture(scope="module")
def fusion_runner() -> Runner:
    return _runner("fusion")


@pytest.fixture(scope="module")
def lidar_runner() -> Runner:
    return _runner("lidar")


def _replay(path, runner, **options):
    sink = Collect()
    kw = (
        {"version": VERSION, "scene": SCENE}
        if Path(path).is_dir() and "ros2" not in str(path)
        else {}
    )
    summary = replay(open_source(path, **kw), runner, ReplayOptions(**options), [sink])
    return summary, sink


def _same_detections(a: dict, b: dict, min_score: float = 0.3, tol_m: float = 0.1) -> int:
    """Every box of `a` scored >= min_score has a box of the same class in `b` within tol_m;
    returns how many were checked."""
    assert sorted(a) == sorted(b)
    checked = 0
    for t, boxes in a.items():
        for box in boxes:
            if box["detection_score"] < min_score:
                continue
            c = np.array(box["translation"])
            d = [
                np.linalg.norm(np.array(o["translation"]) - c)
                for o in b[t]
                if o["detection_name"] == box["detection_name"]
            ]
            assert d and min(d) <= tol_m, (t, box["detection_name"], min(d, default=None))
            checked += 1
    return checked


def test_logs_made_by_convert_replay_to_the_dataroot_detections(
    replay_root, replay_logs, fusion_runner
):
    opts = {"rate": 0, "trigger": "lidar", "duration_s": 0.8}
    s_ref, ref = _replay(replay_root, fusion_runner, **opts)
    assert s_ref.processed == s_ref.triggers > 5
    boxes = ref.boxes()
    for kind, path in replay_logs.items():
        s, got = _replay(path, fusion_runner, **opts)
        assert s.triggers == s_ref.triggers, kind
        assert _same_detections(boxes, got.boxes()) > 20, kind
        assert _same_detections(got.boxes(), boxes) > 20, kind


def test_rate_0_is_deterministic_and_scores_as_eval(replay_root, fusion_runner, tmp_path):
    from fusion.data.reader import NuScenesReader
    from fusion.eval.evaluate import devkit_evaluate, evaluate
    from fusion.outputs.sinks import ResultsJson

    results = tmp_path / "replay_results.json"
    meta = dict.fromkeys(("use_camera", "use_lidar", "use_radar"), True)
    sinks = [Collect(), ResultsJson(results, meta | {"use_map": False, "use_external": False})]
    source = open_source(replay_root, version=VERSION, scene=SCENE)
    s1 = replay(source, fusion_runner, ReplayOptions(rate=0), sinks)
    assert s1.processed == s1.triggers == 4  # the keyframes
    _, again = _replay(replay_root, fusion_runner, rate=0)
    first, second = sinks[0].boxes(), again.boxes()
    assert first == second  # the same detections on every run

    report = evaluate(
        replay_root, VERSION, "synth_all", {"fusion": packaged_weights("fusion")},
        tmp_path / "eval", pictures=0, progress=False,
    )  # fmt: skip
    import contextlib
    import io

    reader = NuScenesReader(replay_root, VERSION)
    ev = devkit_evaluate(reader.nusc, "synth_all", results, tmp_path / "dk")
    with contextlib.redirect_stdout(io.StringIO()):
        summary, _ = ev.evaluate()
    assert report.metrics["fusion"].mean_ap > 0.3  # a real detector, not an empty comparison
    assert abs(summary.mean_ap - report.metrics["fusion"].mean_ap) <= 0.02


def test_rate_1_keeps_the_log_pace(replay_root, lidar_runner):
    s, sink = _replay(replay_root, lidar_runner, rate=1.0)
    assert s.processed + s.dropped == s.triggers == 4
    one_frame = max(i.times.total for i in sink.items) / 1000
    # the log's pace, plus at most one frame still in the detector when the log ends
    assert 0.95 * s.log_s <= s.wall_s <= 1.05 * s.log_s + one_frame, (s.wall_s, s.log_s)


@pytest.mark.parametrize("rate", [0.0, 2.0])
def test_accounting_holds_under_faults(replay_root, lidar_runner, rate):
    from fusion.replay.runner import ReplayRun

    faults = Faults(drop=0.1, corrupt=0.15, delay_ms=30, seed=3)
    opts = ReplayOptions(rate=rate, trigger="lidar", faults=faults)
    run = ReplayRun(
        open_source(replay_root, version=VERSION, scene=SCENE), lidar_runner, opts, [], None
    )
    # a dataroot is logged at sensor time; the faults delay a message up to 30 ms more
    assert run.sync.options.log_delay_us == 30_000
    s, _ = _replay(replay_root, lidar_runner, rate=rate, trigger="lidar", faults=faults)
    assert s.processed + s.dropped == s.triggers
    assert s.faults["corrupted"] > 10 and s.faults["dropped"] > 10
    # every corrupted message of a channel the model reads was rejected at decode (none fused),
    # counted per channel; the others (cameras and radars of a LIDAR model) are never decoded
    for _ in run.messages():  # the same seed: the same faults, counted per channel
        pass
    read = {"LIDAR_TOP", run.sync.options.pose_channel}
    expected = {ch: n for ch, n in sorted(run.faults.corrupted_by.items()) if ch in read}
    if not s.shed:  # (a producer behind the log sheds messages unread: rate 2 on a busy machine)
        assert s.rejected == expected
    assert all(s.rejected[ch] <= expected[ch] for ch in s.rejected)
    assert sum(s.rejected.values()) > 5
    total = sum(open_source(replay_root, version=VERSION, scene=SCENE).info()["channels"].values())
    # every message arrived: offered to the ingest pump, or shed as stale, or dropped by faults
    assert sum(s.received.values()) + sum(s.shed.values()) + s.faults["dropped"] == total
    if rate == 0:
        assert s.dropped == 0  # --rate 0 processes every trigger


class _SlowEngine:
    """Wraps an engine, sleeping in the BEV graph: a detector slower than the LIDAR rate."""

    def __init__(self, engine, seconds: float) -> None:
        self.engine, self.seconds, self.name = engine, seconds, "slow"
        self.camera_batch = engine.camera_batch

    def camera(self, images):
        return self.engine.camera(images)

    def lidar(self, *a):
        return self.engine.lidar(*a)

    def bev(self, *maps):
        time.sleep(self.seconds)
        return self.engine.bev(*maps)


def test_a_lidar_model_waits_for_no_camera(replay_root, lidar_runner):
    s, sink = _replay(replay_root, lidar_runner, rate=0)
    assert s.processed == 4 and all(not i.frame.cameras for i in sink.items)
    assert not s.missing  # cameras and radars are not the lidar model's sensors: not missing


def test_a_busy_detector_drops_the_older_trigger_and_counts_it(replay_root, lidar_runner):
    slow = Runner(lidar_runner.cfg, "lidar", _SlowEngine(lidar_runner.engine, 0.25))
    s, sink = _replay(replay_root, slow, rate=1.0, trigger="lidar", duration_s=1.5)
    assert s.dropped_by["busy"] > 5
    assert s.processed + s.dropped == s.triggers
    assert s.late == s.processed  # 250 ms per frame against a 50 ms budget
    # latest wins: processed triggers are in time order
    times = [i.frame.timestamp_us for i in sink.items]
    assert times == sorted(times)


def test_latest_slot_keeps_one_item():
    slot = LatestSlot()
    assert slot.put(1) is None
    assert slot.put(2) == 1  # replaced, returned for counting
    assert slot.get() == 2
    got = []
    t = threading.Thread(target=lambda: got.append(slot.get()))
    t.start()
    slot.close()
    t.join(2)
    assert got == [None]


def test_fault_injection_is_seeded():
    from fusion.sources.base import LogMessage

    msg = LogMessage("LIDAR_TOP", "lidar", 1, 1, bytes(200), lambda r, o: r, "x")
    runs = []
    for _ in range(2):
        inj = FaultInjector(Faults(drop=0.3, corrupt=0.3, delay_ms=10, seed=5))
        runs.append([(m.raw if m else None, d) for m, d in (inj.apply(msg) for _ in range(50))])
    assert runs[0] == runs[1]
    corrupted = [r for r, _ in runs[0] if r is not None and r != bytes(200)]
    assert corrupted and all(len(r) % 2 == 1 for r in corrupted)


def test_outputs(replay_root, lidar_runner, tmp_path):
    out = tmp_path / "out"
    rc, text, err = quiet(
        [
            "replay", "--dataroot", str(replay_root), "--version", VERSION, "--scene", SCENE,
            "--model", "fusion", "--rate", "0", "--no-status",
            "--detections", str(out / "d.jsonl"), "--results", str(out / "r.json"),
            "--mcap", str(out / "viz.mcap"), "--summary", str(out / "s.json"),
        ]
    )  # fmt: skip
    assert rc == 0, err
    assert "triggers 4" in text
    lines = [json.loads(x) for x in (out / "d.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and all(line["sample_token"] for line in lines)
    box = lines[0]["boxes"][0]
    assert set(box) == {
        "translation", "size", "rotation", "velocity", "detection_name", "detection_score",
    }  # fmt: skip
    summary = json.loads((out / "s.json").read_text())
    for key in (
        "received", "rejected", "triggers", "processed", "dropped", "late", "missing",
        "latency_ms", "stages_ms", "wall_s", "log_s", "rate", "peak_rss_mb",
    ):  # fmt: skip
        assert key in summary, key
    assert summary["processed"] + summary["dropped"] == summary["triggers"]
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "max"}
    results = json.loads((out / "r.json").read_text())
    assert len(results["results"]) == 4

    from mcap.reader import make_reader

    with (out / "viz.mcap").open("rb") as f:
        reader = make_reader(f)
        topics = {
            c.topic: reader.get_summary().schemas[c.schema_id].name
            for c in reader.get_summary().channels.values()
        }  # noqa: E501
    assert topics["/detections"] == "foxglove.SceneUpdate"
    assert topics["/lidar_top"] == "foxglove.PointCloud"
    assert topics["/tf"] == "foxglove.FrameTransform"
    assert topics["/cam_front/image_rect_compressed"] == "foxglove.CompressedImage"
    # encoded by fusion.sources.mcap's encoders, as `fusion convert` writes them
    from mcap_protobuf.decoder import DecoderFactory

    with (out / "viz.mcap").open("rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        msgs = {}
        for _, channel, _, msg in reader.iter_decoded_messages(
            topics=["/lidar_top", "/tf", "/cam_front/image_rect_compressed"]
        ):
            msgs.setdefault(channel.topic, msg)
    cloud = msgs["/lidar_top"]
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "intensity"]
    assert cloud.point_stride == 16 and len(cloud.data) % 16 == 0 and len(cloud.data) > 0
    tf = msgs["/tf"]
    assert (tf.parent_frame_id, tf.child_frame_id) == ("map", "base_link")
    assert abs(tf.rotation.w**2 + tf.rotation.x**2 + tf.rotation.y**2 + tf.rotation.z**2 - 1) < 1e-6
    assert msgs["/cam_front/image_rect_compressed"].data[:2] == b"\xff\xd8"  # a JPEG


def test_rerun_output(replay_root, tmp_path):
    pytest.importorskip("rerun", reason="rerun-sdk is in the optional viz extra")
    rrd = tmp_path / "replay.rrd"
    rc, _, err = quiet(
        [
            "replay", "--dataroot", str(replay_root), "--version", VERSION, "--scene", SCENE,
            "--model", "lidar", "--rate", "0", "--no-status", "--duration", "1",
            "--rerun", str(rrd),
        ]
    )  # fmt: skip
    assert rc == 0, err
    assert rrd.stat().st_size > 10_000


@pytest.mark.parametrize("case", ["missing", "garbage", "no_lidar", "bad_faults", "bad_rate"])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, replay_logs):
    args = ["--model", "lidar", "--rate", "0", "--no-status"]
    match case:
        case "missing":
            path = tmp_path / "nothing.mcap"
        case "garbage":
            path = tmp_path / "garbage.mcap"
            path.write_bytes(b"not a log at all" * 10)
        case "no_lidar":
            path = tmp_path / "no_lidar.mcap"
            _mcap_without_lidar(replay_logs["mcap"], path)
        case "bad_faults":
            path, args = replay_logs["mcap"], [*args, "--faults", "drop=2"]
        case "bad_rate":
            path, args = replay_logs["mcap"], [*args, "--rate", "-1"]
    rc, _, err = quiet(["replay", "--log", str(path), *args])
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fusion replay: error:"), err
    if case in ("missing", "garbage", "no_lidar"):
        assert str(path) in lines[0]


def _mcap_without_lidar(src: Path, dst: Path) -> None:
    """Copy an MCAP, leaving out the LIDAR topic (schemas and channels kept as written)."""
    from mcap.reader import make_reader
    from mcap.writer import Writer

    with src.open("rb") as f, dst.open("wb") as g:
        reader = make_reader(f)
        w = Writer(g)
        w.start()
        schemas, channels = {}, {}
        for schema, channel, message in reader.iter_messages():
            if channel.topic == "/lidar_top":
                continue
            if schema.id not in schemas:
                schemas[schema.id] = w.register_schema(schema.name, schema.encoding, schema.data)
            if channel.id not in channels:
                channels[channel.id] = w.register_channel(
                    channel.topic, channel.message_encoding, schemas[schema.id]
                )
            w.add_message(
                channels[channel.id], message.log_time, message.data, message.publish_time
            )
        w.finish()


def test_bench_replay_writes_table_json_and_plot(replay_root, tmp_path):
    out = tmp_path / "bench"
    rc, text, err = quiet(
        [
            "bench", "replay", "--dataroot", str(replay_root),
            "--version", VERSION, "--scene", SCENE,
            "--models", "lidar", "--rate", "0", "--json-out", str(out / "r.json"),
            "--markdown-out", str(out / "r.md"), "--plot", str(out / "r.png"),
            "--triggers", "keyframes", "--backend", "torch", "--queries", "3",
            "--work-dir", str(tmp_path / "work"),
        ]
    )  # fmt: skip
    assert rc == 0, err
    result = json.loads((out / "r.json").read_text())
    lidar = result["models"]["lidar"]
    s = lidar["replays"]["keyframes"]["summary"]
    assert s["processed"] + s["dropped"] == s["triggers"] == 4
    assert len(lidar["replays"]["keyframes"]["timeline"]) == s["processed"]
    assert lidar["bench_latency"]["queries"] == 3 and lidar["backend"] == "torch"
    assert lidar["bench_latency"]["end_to_end"]["p50_ms"] > 0
    b = lidar["bench_latency"]
    assert b["idle_queries"] == 3 and b["idle_gap_s"] > 0 and b["detector_after_idle"]["p50_ms"] > 0
    assert (out / "r.png").stat().st_size > 10_000
    md = (out / "r.md").read_text()
    assert "| lidar | torch | reduced | keyframes | 4 | 4 |" in md and "704x396" in md
    assert any(t["target"].startswith("replay e2e p50") for t in result["targets"])
    # the markdown is a function of the JSON alone
    rc, again, _ = quiet(["bench", "replay", "--from-json", str(out / "r.json")])
    assert rc == 0 and again.strip() == (out / "r.md").read_text().strip()
    assert lidar["radar_match"] == "nearest" and "radar causal" not in md


def test_bench_replay_passes_the_radar_match_on(replay_root, tmp_path):
    out = tmp_path / "bench"
    rc, _, err = quiet(
        [
            "bench", "replay", "--dataroot", str(replay_root),
            "--version", VERSION, "--scene", SCENE,
            "--models", "fusion", "--rate", "0", "--json-out", str(out / "r.json"),
            "--markdown-out", str(out / "r.md"), "--triggers", "keyframes",
            "--backend", "torch", "--queries", "1", "--work-dir", str(tmp_path / "work"),
            "--radar-match", "causal",
        ]
    )  # fmt: skip
    assert rc == 0, err
    fusion = json.loads((out / "r.json").read_text())["models"]["fusion"]
    assert fusion["radar_match"] == "causal"
    assert fusion["replays"]["keyframes"]["summary"]["radar_match"] == "causal"
    assert "| fusion | torch | reduced, radar causal | keyframes |" in (out / "r.md").read_text()
