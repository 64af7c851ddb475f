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
from fusion.errors import DataError
from fusion.nuscenes import NuScenesReader, ReaderOptions

VERSION = "v1.0-synth"


def _validate(root: Path) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(["validate", str(root), "--version", VERSION])
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
