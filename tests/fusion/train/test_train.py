"""`fusion train` end to end on the real keyframe: steps, checkpoints, resume, the loss plot,
and two-process DistributedDataParallel training with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from model_fakes import tiny_config

from fusion.config import save_config

ROOT = Path(__file__).resolve().parents[3]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _train_cmd(
    real_root: Path, cfg_path: Path, out: Path, *extra: str, model: str = "fusion"
) -> list[str]:
    return [
        "-m", "fusion.cli", "train", "--config", str(cfg_path), "--dataroot", str(real_root),
        "--version", "v1.0-mini", "--split", "mini_train", "--model", model, "--out", str(out),
        "--epochs", "3", "--batch-size", "1", "--workers", "0", "--no-progress", *extra,
    ]  # fmt: skip


def _losses(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]


@pytest.fixture()
def cfg_path(tmp_path: Path) -> Path:
    return save_config(tiny_config(), tmp_path / "tiny_test.toml")


def test_train_stop_and_resume(real_root: Path, cfg_path: Path, tmp_path: Path, capsys):
    from fusion.cli import main
    from fusion.model import load_detector

    out = tmp_path / "run"
    cmd = _train_cmd(real_root, cfg_path, out)[2:]  # in-process: the CLI's argv
    assert main([*cmd, "--lr-scale", "bogus=2"]) == 2
    assert main([*cmd, "--max-steps", "2", "--lr-scale", "camera=0.5"]) == 0
    assert [r["step"] for r in _losses(out)] == [1, 2]
    assert (out / "checkpoints" / "last.safetensors").is_file()
    assert (out / "config.toml").is_file() and (out / "loss.png").is_file()
    assert load_detector(out / "fusion.safetensors").variant == "fusion"
    from safetensors import safe_open

    with safe_open(str(out / "checkpoints" / "last.safetensors"), "pt") as f:
        groups = {g["name"]: g for g in json.loads(f.metadata()["param_groups"])}
    assert groups["camera"]["base_lr"] == groups["dense"]["base_lr"] * 0.5

    assert main(cmd) == 2  # a second run into the same folder must say --resume
    assert "--resume" in capsys.readouterr().err

    assert main([*cmd, "--resume"]) == 0
    rows = _losses(out)
    assert [r["step"] for r in rows] == [1, 2, 3]  # 3 epochs of the one sample, none repeated
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert all(r["total"] > 0 for r in rows)


def test_init_across_models_and_init_branch_are_recorded(
    real_root: Path, cfg_path: Path, tmp_path: Path, capsys
):
    """The camera model starts from the fusion model (--init), and a fusion model takes that
    camera model's branch (--init-branch); each run's metadata names what it started from."""
    import hashlib

    from fusion.cli import main
    from fusion.model.weights import read_metadata

    fusion = tmp_path / "fusion"
    assert main([*_train_cmd(real_root, cfg_path, fusion, "--max-steps", "1")[2:]]) == 0
    fusion_w = fusion / "fusion.safetensors"
    camera = tmp_path / "camera"
    cmd = _train_cmd(real_root, cfg_path, camera, "--max-steps", "1", "--init", str(fusion_w))
    assert main(cmd[2:] + ["--model", "camera"]) == 0
    camera_w = camera / "camera.safetensors"
    sha = hashlib.sha256(fusion_w.read_bytes()).hexdigest()
    assert json.loads(read_metadata(camera_w)["run"])["init"] == f"fusion.safetensors sha256:{sha}"
    again = tmp_path / "fusion2"
    cmd = _train_cmd(
        real_root, cfg_path, again, "--max-steps", "1", "--init", str(fusion_w),
        "--init-branch", f"camera={camera_w}",
    )  # fmt: skip
    assert main(cmd[2:]) == 0
    run = json.loads(read_metadata(again / "fusion.safetensors")["run"])
    sha = hashlib.sha256(camera_w.read_bytes()).hexdigest()
    assert run["init_branches"] == {"camera": f"camera.safetensors sha256:{sha}"}
    bad = _train_cmd(real_root, cfg_path, tmp_path / "bad", "--init-branch", "camera")
    assert main(bad[2:]) == 2  # no weights named: one clean error
    assert "--init-branch wants SENSOR=WEIGHTS" in capsys.readouterr().err


def test_mix_of_dataroots_repeats_and_is_recorded(
    real_root: Path, cfg_path: Path, tmp_path: Path, capsys
):
    """`--repeat` and `--mix`: the real keyframe twice and the two real keyframes of scene-0916
    once make one epoch of 4 samples (batch 1: 4 steps), read in a loader worker process, and
    the run's metadata names each part with its sample count and repeat."""
    from shared_data import REAL_KEYFRAMES

    from fusion.cli import main
    from fusion.model.weights import read_metadata

    out = tmp_path / "mix"
    mix = f"{REAL_KEYFRAMES},v1.0-mini,mini_val"
    cmd = _train_cmd(real_root, cfg_path, out, "--repeat", "2", "--mix", mix, "--epochs", "1")
    cmd[cmd.index("--workers") + 1] = "1"  # a spawned worker: forked ones deadlock in Numba
    assert main([*cmd[2:], "--model", "lidar"]) == 0
    assert [r["step"] for r in _losses(out)] == [1, 2, 3, 4]
    run = json.loads(read_metadata(out / "lidar.safetensors")["run"])
    assert run["data"] == [
        {"data": f"{real_root} v1.0-mini mini_train", "samples": 1, "repeat": 2},
        {"data": f"{REAL_KEYFRAMES} v1.0-mini mini_val", "samples": 2, "repeat": 1},
    ]
    for bad in (f"{REAL_KEYFRAMES},v1.0-mini", f"{REAL_KEYFRAMES},v1.0-mini,mini_val,0"):
        assert main([*cmd[2:], "--mix", bad]) == 2
        assert "--mix" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_ddp_with_gloo(real_root: Path, cfg_path: Path, tmp_path: Path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *_train_cmd(real_root, cfg_path, out, "--max-steps", "2", model="lidar")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _losses(out)
    assert [r["step"] for r in rows] == [1, 2]  # rank 0 logs each global step once
    from safetensors import safe_open

    with safe_open(str(out / "checkpoints" / "last.safetensors"), "pt") as f:
        run = json.loads(f.metadata()["run"])
    assert run["world_size"] == 2


@pytest.mark.slow
def test_sigterm_checkpoints_the_completed_steps(real_root: Path, cfg_path: Path, tmp_path: Path):
    import signal
    import time

    from safetensors import safe_open

    out = tmp_path / "killed"
    cmd = [sys.executable, *_train_cmd(real_root, cfg_path, out, "--checkpoint-every", "1000")]
    cmd[cmd.index("--epochs") + 1] = "1000"
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    log = out / "losses.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and (not log.is_file() or len(_losses(out)) < 2):
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    done = _losses(out)[-1]["step"]
    with safe_open(str(out / "checkpoints" / "last.safetensors"), "pt") as f:
        position = json.loads(f.metadata()["position"])
    assert position["step"] == done and position["epoch"] == done  # one sample per epoch
    assert position["elapsed_s"] > 0


@pytest.mark.parametrize(("model", "cameras"), [("lidar", 0), ("fusion", 6), ("camera", 6)])
def test_only_a_model_with_cameras_reads_images(
    real_root: Path, tmp_path: Path, model: str, cameras: int
) -> None:
    from fusion.train.loop import TrainOptions, _training_data

    opts = TrainOptions(
        config=tiny_config(), dataroot=real_root, version="v1.0-mini", split="mini_train",
        variant=model, out=tmp_path, epochs=1, batch_size=1, seed=0,
    )  # fmt: skip
    source, tokens, _ = _training_data(opts)
    assert len(source.frame(tokens[0]).cameras) == cameras


def test_a_stop_request_is_taken_after_a_whole_step_while_the_steps_run():
    """SIGTERM's handler (`request_stop`) raises at once outside the steps; inside them it only
    marks the stop, which the loop takes after the step (an exception raised inside a numba
    kernel would surface as a SystemError, and nothing would be checkpointed)."""
    from fusion.train import loop

    with pytest.raises(KeyboardInterrupt):
        loop.request_stop()
    loop._STEPPING.set()
    try:
        loop.request_stop()  # no exception: deferred
        assert loop._STOP.is_set()
    finally:
        loop._STEPPING.clear()
        loop._STOP.clear()
