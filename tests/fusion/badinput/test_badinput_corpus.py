"""The malformed-input corpus (issue 11): every case, at every entry point, ends in its stated
outcome: one DataError naming the file (CLI: one line, exit 2; validate: its report, exit 1),
or the sensor marked missing and counted; never a traceback, a hang or a write anywhere."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from corpus import CASE_IDS, CASES, Case, copy_base, deviations, run_case, silent

from fusion.config import MAX_IMAGE_SIDE
from fusion.errors import DataError


def _files(folder: Path) -> dict[str, int]:
    """Every path under `folder` with its mtime (ns): what an entry point may not change."""
    return {str(p): p.lstat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_case(case: Case, bases: dict[str, Path], baseline, tmp_path: Path) -> None:
    root = copy_base(bases[case.base], tmp_path / "root")
    case.mutate(root)
    before = _files(tmp_path)
    got = run_case(case, root, mutate=False)
    assert _files(tmp_path) == before, "an entry point wrote or changed a file"
    assert deviations(case, got, baseline[case.base]) == []
    assert silent(case, got, baseline[case.base]) == []  # every run says what it found
    if case.file is not None:  # the reason is stated, and the file named, at every entry point
        assert got["reader"].reason and case.file in (got["reader"].file or "")


@pytest.mark.parametrize("side", [32000, 65500])
def test_jpeg_bomb_is_rejected_from_its_header(side: int, bases: dict[str, Path], tmp_path) -> None:
    """The ~1 kB JPEG claiming side x side pixels: rejected before any decode (milliseconds)."""
    from corpus import jpeg_bomb, key_file

    from fusion.data.sensor_io import decode_jpeg
    from fusion.errors import DataError

    root = copy_base(bases["real"], tmp_path / "root")
    jpeg_bomb(side)(root)
    raw = key_file(root, "CAM_FRONT").read_bytes()
    assert len(raw) < 2000
    t0 = time.perf_counter()
    for _ in range(100):
        with pytest.raises(DataError, match=f"each side must be 1..{MAX_IMAGE_SIDE}"):
            decode_jpeg(raw, "bomb.jpg")
    assert (time.perf_counter() - t0) / 100 < 0.01  # a decode would take seconds and gigabytes


def test_self_loop_sweep_loads_each_file_once(bases: dict[str, Path], tmp_path: Path, monkeypatch):
    """A keyframe whose prev is itself: found when the tables load (tolerant mode too), before
    any file is read."""
    from corpus import edit_sd

    import fusion.data.reader as nus

    root = copy_base(bases["synth"], tmp_path / "root")
    edit_sd("LIDAR_TOP", lambda r, _: r.update(prev=r["token"]))(root)
    loads: list[Path] = []
    real_load = nus.load_lidar_bin
    monkeypatch.setattr(nus, "load_lidar_bin", lambda p: loads.append(p) or real_load(p))
    with pytest.raises(DataError, match="sample_data prev chain loops back") as err:
        nus.NuScenesReader(root, "v1.0-synth", nus.ReaderOptions(lidar_sweeps=10, tolerant=True))
    assert err.value.path is not None and err.value.path.endswith("sample_data.json")
    assert loads == []


def test_inspect_text_counts_a_keyframe_out_of_sync(bases: dict[str, Path], tmp_path: Path):
    """The text summary (not only --json) says how many keyframes were left out, and why."""
    import contextlib
    import io

    from corpus import DAY_US, edit_sd

    from fusion.cli import main

    root = copy_base(bases["real"], tmp_path / "root")
    edit_sd("CAM_FRONT", lambda r, _: r.update(timestamp=r["timestamp"] + 3 * DAY_US))(root)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["inspect", "--dataroot", str(root), "--version", "v1.0-mini"])
    text = out.getvalue()
    assert rc == 0
    assert (
        "WARNING: 1 keyframe(s) beyond the [sync] tolerance, left out of their frames: "
        "CAM_FRONT 1" in text
    )
    assert "CAM_FRONT" in text.split("WARNING")[0] and "out of sync" in text
