"""The wheel, as a new user gets it: built from a copy of the source tree, installed with
`--no-deps` into a fresh venv that sees the project's dependencies through a .pth file, then
`fusion eval` run on the real keyframe from another working directory. The presets, the rig file,
the topic map and the weights must all come from the installed package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from shared_data import REAL_ROOT, REAL_VERSION

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "fusion", "kernels", "calibration", "configs")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc")


def _run(argv: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, f"{argv[:3]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _source_packages() -> set[str]:
    return {
        str(init.parent.relative_to(ROOT)).replace(os.sep, ".")
        for top in ("fusion", "kernels", "calibration")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


@pytest.mark.slow
def test_wheel_installs_and_evaluates_from_elsewhere(tmp_path: Path):
    # the process env without the test run's PYTHONPATH, so nothing resolves to a source tree
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    src = tmp_path / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=IGNORE)
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, src], tmp_path, env)
    (wheel,) = dist.glob("fusion_stack-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    missing = _source_packages() - packaged
    assert not missing, f"packages missing from pyproject's [tool.setuptools] packages: {missing}"
    for name in sorted(p.name for p in (ROOT / "configs").glob("*.toml")):
        assert f"fusion/configs/{name}" in names
    for model in ("fusion", "camera", "lidar"):
        assert f"fusion/weights/{model}.safetensors" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
            env,
        ).strip()
    )
    # the project's dependencies: this interpreter's site-packages, after the venv's own (its
    # .pth files, e.g. an editable install of this tree, are not run from a .pth-added path)
    (site / "project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", wheel], tmp_path, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        [
            python,
            "-c",
            "import fusion.config as c, fusion.sources.layout as l, fusion.data.rig_file as r;"
            "print(c.__file__); print(c.load_config('tiny').camera.image_hw[1]);"
            "print(len(l.load_topic_map().sensors)); print(len(r.load_rig().cameras))",
        ],
        elsewhere,
        env,
    ).split()
    assert Path(where[0]).is_relative_to(site), f"fusion imported from {where[0]}, not the wheel"
    assert int(where[1]) > 0 and int(where[2]) == 12 and int(where[3]) == 6

    out = _run(
        [
            venv / "bin" / "fusion",
            "eval",
            "--dataroot",
            REAL_ROOT,
            "--version",
            REAL_VERSION,
            "--split",
            "mini_train",
            "--models",
            "fusion",
            "--out",
            "eval",
            "--pictures",
            "0",
            "--no-progress",
        ],
        elsewhere,
        env,
    )
    assert "mAP" in out and "NDS" in out, out
    map_row = next(line for line in out.splitlines() if line.startswith("mAP"))
    assert float(map_row.split()[-1]) >= 0.0
    assert (elsewhere / "eval" / "summary.json").is_file()
