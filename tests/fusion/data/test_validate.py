"""`fusion validate`: passes on the real keyframe and on generated data, fails with a readable
report on broken data."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
from shared_data import REAL_ROOT, generate_small

from fusion.cli import main

REAL = REAL_ROOT


def _validate(root: Path, version: str) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(["validate", "--dataroot", str(root), "--version", version])
    return rc, buf.getvalue()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_small(tmp_path_factory.mktemp("validate") / "synth", 11, "fog")


@pytest.fixture()
def real_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "real"
    shutil.copytree(REAL, dst)
    return dst


def test_passes_on_the_real_keyframe() -> None:
    rc, out = _validate(REAL, "v1.0-mini")
    assert rc == 0, out
    assert "OK: 0 error(s)" in out
    assert "can_bus/ absent" in out  # noted, not an error


def test_passes_on_generated_data(generated: Path) -> None:
    rc, out = _validate(generated, "v1.0-synth")
    assert rc == 0, out
    assert "rate LIDAR_TOP" in out and "20.00 Hz" in out


def test_fails_on_a_deleted_file(real_copy: Path) -> None:
    victim = next((real_copy / "samples" / "CAM_FRONT").iterdir())
    victim.unlink()
    rc, out = _validate(real_copy, "v1.0-mini")
    assert rc == 1
    assert "ERROR [files]" in out and victim.name in out and "missing" in out


def test_fails_on_a_broken_foreign_key(real_copy: Path) -> None:
    path = real_copy / "v1.0-mini" / "sample_annotation.json"
    anns = json.loads(path.read_text())
    anns[3]["instance_token"] = "0" * 32
    path.write_text(json.dumps(anns))
    rc, out = _validate(real_copy, "v1.0-mini")
    assert rc == 1
    assert "ERROR [foreign keys]" in out and "instance_token '" + "0" * 32 in out


def test_fails_on_a_truncated_pointcloud(generated: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(generated, root)
    lidar = sorted((root / "samples" / "LIDAR_TOP").iterdir())[0]
    lidar.write_bytes(lidar.read_bytes()[:-7])
    radar = sorted((root / "samples" / "RADAR_FRONT").iterdir())[0]
    radar.write_bytes(radar.read_bytes()[:-50])
    rc, out = _validate(root, "v1.0-synth")
    assert rc == 1
    assert lidar.name in out and "truncated" in out
    assert radar.name in out


def test_fails_on_a_missing_table_and_non_monotonic_time(
    real_copy: Path, generated: Path, tmp_path: Path
) -> None:
    (real_copy / "v1.0-mini" / "visibility.json").unlink()
    rc, out = _validate(real_copy, "v1.0-mini")
    assert rc == 1 and "visibility.json: missing" in out

    root = tmp_path / "copy"
    shutil.copytree(generated, root)
    path = root / "v1.0-synth" / "sample_data.json"
    recs = json.loads(path.read_text())
    lidar = sorted((r for r in recs if "LIDAR_TOP" in r["filename"]), key=lambda r: r["timestamp"])
    lidar[5]["timestamp"] = lidar[4]["timestamp"]
    path.write_text(json.dumps(recs))
    rc, out = _validate(root, "v1.0-synth")
    assert rc == 1 and "ERROR [time]" in out and "LIDAR_TOP" in out


def test_unreadable_dataroot_is_a_clear_error(tmp_path: Path) -> None:
    rc, out = _validate(tmp_path / "nope", "v1.0-mini")
    assert rc == 2 and "does not exist" in out


def test_validate_json_holds_every_problem(tmp_path, capsys):
    from shared_data import REAL_KEYFRAMES

    from fusion.cli import main

    out = tmp_path / "report.json"
    argv = ["validate", "--dataroot", str(REAL_KEYFRAMES), "--version", "v1.0-mini"]
    assert main([*argv, "--json", "--json-out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["ok"] and printed["errors"] == 0 and printed["warnings"] == 1
    (message,) = printed["warning_checks"]["layout"]
    assert "keyframes-only layout: 134 sweep files absent" in message
