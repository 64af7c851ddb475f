"""Keyframes-only dataroots (nuScenes' "keyframes only" download: the tables link every sweep,
only keyframe files exist): `fusion validate` gives one warning with the count, the reader fuses
the sweeps that exist and counts the absent ones, a missing keyframe or a corrupt sweep is
still an error."""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from shared_data import drop_sweep_files, generate_small

from fusion.cli import main
from fusion.config import LIDAR_CHANNEL, RADAR_CHANNELS
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.errors import DataError

VERSION = "v1.0-synth"


def _validate(root: Path) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(["validate", "--dataroot", str(root), "--version", VERSION])
    return rc, buf.getvalue()


@pytest.fixture(scope="module")
def full_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated dataroot with every sweep file (1 scene, 2 keyframes)."""
    return generate_small(tmp_path_factory.mktemp("kfonly") / "full", 17, "day")


@pytest.fixture(scope="module")
def kf_root(full_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The same dataroot with every sweep file deleted, and channel -> files deleted."""
    root = tmp_path_factory.mktemp("kfonly") / "keyframes"
    shutil.copytree(full_root, root)
    return root, drop_sweep_files(root)


def _reader(root: Path, **kw: object) -> NuScenesReader:
    return NuScenesReader(root, VERSION, ReaderOptions(load_images=False, **kw))  # type: ignore[arg-type]


# -- validate ------------------------------------------------------------------------------------


def test_validate_keyframes_only_is_one_warning(kf_root: tuple[Path, dict]) -> None:
    root, deleted = kf_root
    n = sum(deleted.values())
    radar = sum(k for ch, k in deleted.items() if ch.startswith("RADAR_"))
    assert n > 50 and deleted[LIDAR_CHANNEL] > 0 and radar > 0
    rc, out = _validate(root)
    assert rc == 0, out
    assert "OK: 0 error(s), 1 warning(s)" in out
    assert "WARNING [layout] 1 problem(s)" in out
    assert (
        f"keyframes-only layout: {n:,} sweep files absent "
        f"(LIDAR_TOP {deleted[LIDAR_CHANNEL]:,}, RADAR_* {radar:,})"
    ) in out
    assert "ERROR" not in out


def test_validate_partly_keyframes_only(full_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "partial"
    shutil.copytree(full_root, root)
    kept_total = sum(len(list(d.iterdir())) for d in (root / "sweeps").iterdir())
    deleted = drop_sweep_files(root, keep_every=3)
    n = sum(deleted.values())
    rc, out = _validate(root)
    assert rc == 0, out
    assert f"partly keyframes-only: {n:,} of {kept_total:,} sweep files absent" in out
    assert "OK: 0 error(s), 1 warning(s)" in out


def test_validate_full_dataroot_has_no_layout_warning(full_root: Path) -> None:
    rc, out = _validate(full_root)
    assert rc == 0 and "layout" not in out and "absent" not in out, out


def test_validate_missing_keyframe_is_still_an_error(
    kf_root: tuple[Path, dict], tmp_path: Path
) -> None:
    root = tmp_path / "kf"
    shutil.copytree(kf_root[0], root)
    victim = sorted((root / "samples" / LIDAR_CHANNEL).iterdir())[1]
    victim.unlink()
    rc, out = _validate(root)
    assert rc == 1, out
    assert "ERROR [files] 1 problem(s)" in out and f"{victim.name}: missing" in out
    assert "WARNING [layout]" in out  # the absent sweeps are still one warning


def test_validate_corrupt_sweep_is_an_error(full_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "corrupt"
    shutil.copytree(full_root, root)
    drop_sweep_files(root, keep_every=2)
    victim = sorted((root / "sweeps" / LIDAR_CHANNEL).iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-3])
    rc, out = _validate(root)
    assert rc == 1 and f"{victim.name}: truncated" in out, out


# -- the reader ----------------------------------------------------------------------------------


def test_reader_fuses_keyframes_alone_and_counts_absent(
    full_root: Path, kf_root: tuple[Path, dict]
) -> None:
    full, kf = _reader(full_root), _reader(kf_root[0])
    total = 0
    for tok in full.sample_tokens():
        a, b = full.frame(tok), kf.frame(tok)
        assert a.absent_sweeps == {}
        assert a.lidar is not None and b.lidar is not None
        # the chain the full dataroot fuses, less the keyframe, is what is absent
        assert b.lidar.num_sweeps == 1
        assert b.lidar.absent_sweeps == a.lidar.num_sweeps - 1 > 0
        # the keyframe scan is fused unchanged: the first rows of the full cloud
        assert b.lidar.keyframe_points == a.lidar.keyframe_points == len(b.lidar.points)
        np.testing.assert_array_equal(b.lidar.points, a.lidar.points[: a.lidar.keyframe_points])
        # where the absent sweeps were: the full cloud's lags, less the keyframe's
        lags = np.unique(a.lidar.points[:, 4])
        np.testing.assert_allclose(sorted(b.lidar.absent_dt), lags[1:], atol=1e-6)
        for ch in RADAR_CHANNELS:
            ra, rb = a.radars[ch], b.radars[ch]
            assert rb.num_sweeps == 1 and rb.absent_sweeps == ra.num_sweeps - 1
            # the current scan alone: the full cloud's rows of the newest scan (smallest dt)
            assert len(np.unique(rb.points[:, 6])) == 1
            np.testing.assert_array_equal(
                rb.points, ra.points[ra.points[:, 6] == ra.points[:, 6].min()]
            )
        assert b.absent_sweeps == {
            ch: n
            for ch, n in sorted(
                [(LIDAR_CHANNEL, b.lidar.absent_sweeps)]
                + [(ch, b.radars[ch].absent_sweeps) for ch in RADAR_CHANNELS]
            )
            if n
        }
        assert not b.missing
        total += sum(b.absent_sweeps.values())
    assert sum(kf.absent_sweeps.values()) == total > 0


def test_reader_fuses_the_sweeps_that_exist(full_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "partial"
    shutil.copytree(full_root, root)
    drop_sweep_files(root, keep_every=3)
    full, part = _reader(full_root), _reader(root)
    for tok in full.sample_tokens():
        a, b = full.frame(tok).lidar, part.frame(tok).lidar
        assert a is not None and b is not None
        lags_a, lags_b = np.unique(a.points[:, 4]), np.unique(b.points[:, 4])
        kept = set(lags_b.tolist())
        assert 1 < b.num_sweeps < a.num_sweeps  # some sweeps exist, some are absent
        assert b.num_sweeps + b.absent_sweeps == a.num_sweeps
        assert len(lags_b) == b.num_sweeps and kept < set(lags_a.tolist())
        # exactly the full cloud's points of the sweeps that exist, in the same order
        np.testing.assert_array_equal(b.points, a.points[np.isin(a.points[:, 4], lags_b)])


def test_reader_missing_keyframe_and_corrupt_sweep_are_errors(
    full_root: Path, kf_root: tuple[Path, dict], tmp_path: Path
) -> None:
    root = tmp_path / "kf"
    shutil.copytree(kf_root[0], root)
    victim = sorted((root / "samples" / LIDAR_CHANNEL).iterdir())[0]
    victim.unlink()
    with pytest.raises(DataError, match="file is missing"):
        _reader(root).frame(_reader(root).sample_tokens()[0])
    tolerant = _reader(root, tolerant=True)
    frame = tolerant.frame(tolerant.sample_tokens()[0])
    assert frame.lidar is None and "file is missing" in frame.missing[LIDAR_CHANNEL]

    corrupt = tmp_path / "corrupt"
    shutil.copytree(full_root, corrupt)
    sweep = sorted((corrupt / "sweeps" / LIDAR_CHANNEL).iterdir())[-1]  # before keyframe 2
    sweep.write_bytes(sweep.read_bytes()[:-3])
    reader = _reader(corrupt)
    with pytest.raises(DataError, match="truncated"):
        reader.frame(reader.sample_tokens()[-1])


def test_keep_sweeps_with_absent_sweeps_equals_reading_fewer(full_root: Path, tmp_path: Path):
    """eval cuts one read down to each model's sweeps: with absent sweeps the cut counts them
    where they were in the chain, as a reader set to fewer sweeps does."""
    from fusion.motion.sweeps import keep_sweeps

    root = tmp_path / "partial"
    shutil.copytree(full_root, root)
    drop_sweep_files(root, keep_every=3)
    many, few = _reader(root, lidar_sweeps=10, radar_sweeps=6), _reader(root, lidar_sweeps=4)
    for tok in many.sample_tokens():
        a = keep_sweeps(many.frame(tok), 4, 10)
        b = few.frame(tok)
        assert a is not None and a.lidar is not None and b.lidar is not None
        assert b.lidar.absent_sweeps > 0
        assert (a.lidar.num_sweeps, a.lidar.absent_dt) == (b.lidar.num_sweeps, b.lidar.absent_dt)
        np.testing.assert_array_equal(a.lidar.points, b.lidar.points)


# -- the commands --------------------------------------------------------------------------------


def _quiet(argv: list[str]) -> tuple[int, str]:
    """(exit code, stdout); stderr (progress bars) is dropped."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        rc = main(argv)
    return rc, buf.getvalue()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny untrained models: fusion reading 10 LIDAR and 3 radar sweeps, LIDAR reading 3."""
    import dataclasses
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))
    from model_fakes import tiny_config, tiny_params

    from fusion.model import build_detector, save_detector

    folder = tmp_path_factory.mktemp("weights")
    base = tiny_config(score_threshold=0.05)
    for i, (variant, sweeps) in enumerate((("fusion", 10), ("lidar", 3))):
        cfg = dataclasses.replace(
            base,
            point_cloud=dataclasses.replace(base.point_cloud, sweeps=sweeps),
            radar=dataclasses.replace(base.radar, sweeps=3),
        )
        torch.manual_seed(i)
        save_detector(
            build_detector(cfg, variant, tiny_params()), folder / f"{variant}.safetensors"
        )
    return folder


def _expected_absent(root: Path, lidar: int, radar: int, channels: tuple[str, ...]) -> dict:
    reader = _reader(root, lidar_sweeps=lidar, radar_sweeps=radar)
    out: dict[str, int] = {}
    for tok in reader.sample_tokens():
        for ch, n in reader.frame(tok).absent_sweeps.items():
            if ch in channels:
                out[ch] = out.get(ch, 0) + n
    return dict(sorted(out.items()))


def test_eval_counts_absent_sweeps_per_model(
    kf_root: tuple[Path, dict], weights: Path, tmp_path: Path
) -> None:
    root = kf_root[0]
    out = tmp_path / "eval"
    argv = [
        "eval", "--dataroot", str(root), "--version", VERSION, "--split", "synth_all",
        "--models", "fusion,lidar", "--weights", str(weights), "--out", str(out),
        "--pictures", "1", "--no-progress",
    ]  # fmt: skip
    rc, text = _quiet(argv)
    assert rc == 0, text
    summary = __import__("json").loads((out / "summary.json").read_text())
    fusion = _expected_absent(root, 10, 3, (LIDAR_CHANNEL, *RADAR_CHANNELS))
    lidar = _expected_absent(root, 3, 3, (LIDAR_CHANNEL,))
    assert fusion[LIDAR_CHANNEL] > lidar[LIDAR_CHANNEL] > 0 and len(fusion) == 6
    assert summary["absent_sweeps"] == {
        "fusion": {"total": sum(fusion.values()), "by_channel": fusion},
        "lidar": {"total": sum(lidar.values()), "by_channel": lidar},
    }
    assert f"fusion: {sum(fusion.values()):,} sweeps absent" in text
    assert f"lidar: {sum(lidar.values()):,} sweeps absent" in text
    assert summary["samples"] == 2 and set(summary["models"]) == {"fusion", "lidar"}


def test_inspect_reports_absent_sweeps(kf_root: tuple[Path, dict]) -> None:
    import json

    root = kf_root[0]
    last = _reader(root).sample_tokens()[-1]
    base = ["inspect", "--dataroot", str(root), "--version", VERSION, "--sample", last]
    rc, text = _quiet([*base, "--sweeps", "10", "--json"])
    assert rc == 0, text
    info = json.loads(text)
    want = _reader(root, lidar_sweeps=10, radar_sweeps=1).frame(last).absent_sweeps
    assert want[LIDAR_CHANNEL] == 9
    assert info["absent_sweeps"] == {"total": 9, "by_channel": want}
    rc, text = _quiet([*base, "--sweeps", "10"])
    assert rc == 0 and "9 sweeps absent" in text and "LIDAR_TOP 9" in text, text
    rc, text = _quiet([*base, "--json"])  # one sweep read: none absent
    assert json.loads(text)["absent_sweeps"] == {"total": 0, "by_channel": {}}


def test_replay_and_convert_report_absent_sweeps(
    kf_root: tuple[Path, dict], weights: Path, tmp_path: Path
) -> None:
    import json

    from fusion.sources import open_source

    root, deleted = kf_root
    scene = _reader(root).scene_names[0]
    rc, text = _quiet(
        [
            "replay", "--dataroot", str(root),
            "--version", VERSION, "--scene", scene, "--model", "fusion",
            "--weights", str(weights), "--rate", "0", "--no-status",
            "--summary", str(tmp_path / "s.json"),
        ]
    )  # fmt: skip
    assert rc == 0, text
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["absent_sweeps"] == deleted  # one scene: every deleted file is its sweep
    assert summary["processed"] == 2 and summary["received"][LIDAR_CHANNEL] == 2
    assert f"{sum(deleted.values()):,} sweeps absent" in text

    out = tmp_path / "log.mcap"
    base = [
        "convert",
        "--dataroot",
        str(root),
        "--version",
        VERSION,
        "--scene",
        scene,
        "--to",
        "mcap",
    ]
    rc, text = _quiet([*base, "--out", str(out), "--json"])
    assert rc == 0, text
    done = json.loads(text)
    assert done["absent_sweeps"] == {"total": sum(deleted.values()), "by_channel": deleted}
    assert done["messages"]["by_channel"][LIDAR_CHANNEL] == 2  # keyframes only
    log = open_source(out)
    assert sum(m.channel == LIDAR_CHANNEL for m in log.messages()) == 2
    rc, text = _quiet([*base, "--out", str(out), "--overwrite"])
    assert rc == 0 and f"{sum(deleted.values()):,} sweeps absent" in text, text


def test_online_frames_of_a_keyframes_only_log_equal_offline(kf_root: tuple[Path, dict]) -> None:
    """Replay's synchronizer fuses no older keyframe as a sweep (they are 0.5 s apart, beyond
    10 sweeps' span): its frames hold the offline reader's points."""
    from fusion.config import load_config
    from fusion.sources import open_source
    from fusion.sync.online import OnlineSynchronizer, StreamOptions

    root = kf_root[0]
    reader = _reader(root, lidar_sweeps=10, radar_sweeps=3)
    source = open_source(root, version=VERSION, scene=reader.scene_names[0])
    cfg = load_config("tiny")
    opts = StreamOptions.from_config(cfg, lidar_sweeps=10, radar_sweeps=3, camera_channels=())
    sync = OnlineSynchronizer(opts, source.rig())
    frames = []
    for msg in source.messages():
        sync.push(msg, msg.decode())
        frames += [sync.build(t) for t in sync.ready()]
    frames += [sync.build(t) for t in sync.ready(flush=True)]
    assert len(frames) == 2
    for online in frames:
        assert online is not None and online.lidar is not None
        offline = reader.frame(online.sample_token)
        assert online.lidar.num_sweeps == offline.lidar.num_sweeps == 1
        np.testing.assert_allclose(online.lidar.points, offline.lidar.points, atol=1e-4)
        for ch, r in online.radars.items():
            assert r.num_sweeps == offline.radars[ch].num_sweeps == 1


# -- sweep dropout in training -------------------------------------------------------------------


def test_keyframe_only_equals_a_keyframes_only_read(
    full_root: Path, kf_root: tuple[Path, dict]
) -> None:
    """Training's sweep dropout gives, point for point, what a keyframes-only dataroot gives."""
    from fusion.motion.sweeps import keyframe_only

    full = _reader(full_root, lidar_sweeps=10, radar_sweeps=3)
    kf = _reader(kf_root[0], lidar_sweeps=10, radar_sweeps=3)
    for tok in full.sample_tokens():
        a, b = keyframe_only(full.frame(tok)), kf.frame(tok)
        assert full.frame(tok).lidar.num_sweeps > 1
        assert a.lidar.num_sweeps == b.lidar.num_sweeps == 1
        np.testing.assert_array_equal(a.lidar.points, b.lidar.points)
        for ch in RADAR_CHANNELS:
            assert a.radars[ch].num_sweeps == 1
            np.testing.assert_array_equal(a.radars[ch].points, b.radars[ch].points)


def test_sweep_dropout_in_training_samples(full_root: Path, kf_root: tuple[Path, dict]) -> None:
    """p = 1: every sample is the keyframes-only one; p = 0: the multi-sweep one; 0 < p < 1:
    some of each, repeatably (drawn from seed, epoch, index)."""
    from fusion.config import load_config
    from fusion.train.dataset import FrameDataset

    cfg = load_config("tiny_sweeps10")
    opts = ReaderOptions.from_config(cfg)
    full = NuScenesReader(full_root, VERSION, opts)
    kf = NuScenesReader(kf_root[0], VERSION, opts)
    tokens = full.sample_tokens()

    def inputs(source: NuScenesReader, p: float) -> list[tuple[np.ndarray, np.ndarray]]:
        ds = FrameDataset(
            source, tokens, cfg, "fusion", cfg.params, cfg.train.augment, 3, 0.0,
            sweep_dropout=p,
        )  # fmt: skip
        out = []
        for e in range(4):
            for i in range(len(tokens)):
                x = ds[(e, i)].inputs
                assert x.voxels is not None and x.radar_raster is not None
                out.append((x.voxels.features, x.radar_raster))
        return out

    def same(a: list, b: list) -> list[bool]:
        return [
            all(
                u.shape == v.shape and bool(np.array_equal(u, v)) for u, v in zip(x, y, strict=True)
            )
            for x, y in zip(a, b, strict=True)
        ]

    multi, single = inputs(full, 0.0), inputs(kf, 0.0)
    assert not any(same(multi, single))  # the sweeps make a difference
    assert all(same(inputs(full, 1.0), single))  # p = 1: the keyframes-only inputs
    half = inputs(full, 0.5)
    assert all(same(half, inputs(full, 0.5)))  # repeatable
    as_single, as_multi = same(half, single), same(half, multi)
    assert all(
        a != b for a, b in zip(as_single, as_multi, strict=True)
    )  # each sample is one of the two
    assert any(as_single) and any(as_multi)
