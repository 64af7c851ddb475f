"""Config values are range-checked by the strict loader: each bad value is one ConfigError
naming the key and the file (issue 11)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from fusion.commands.train import with_lr_scales
from fusion.config import CONFIG_DIR, check_config, load_config
from fusion.errors import ConfigError


def _set(text: str, section: str, key: str, value: str) -> str:
    """`text` with `key = value` in `[section]` (the line must exist there)."""
    lines, current, done = text.splitlines(), "", False
    for i, line in enumerate(lines):
        head = re.match(r"\[([\w.]+)\]", line)
        if head:
            current = head.group(1)
        elif current == section and re.match(rf"{key}\s*=", line) and not done:
            lines[i], done = f"{key} = {value}", True
    assert done, (section, key)
    return "\n".join(lines) + "\n"


# (section, key, value, the key named in the error, what it says)
# fmt: off
CASES = [
    ("point_cloud", "voxel_size", "[0.0, 0.8, 8.0]", "point_cloud.voxel_size[0]", "> 0"),
    ("point_cloud", "voxel_size", "[0.7, 0.8, 8.0]", "point_cloud.voxel_size[0]", "divide"),
    ("point_cloud", "voxel_size", "[0.8, 0.8, 4.0]", "point_cloud.voxel_size[2]", "pillars"),
    ("point_cloud", "voxel_size", "[0.2666666666666667, 0.2666666666666667, 8.0]",
     "point_cloud.voxel_size", "power of 2"),
    ("point_cloud", "voxel_size", "[0.001, 0.001, 8.0]", "point_cloud.voxel_size[0]", "cells"),
    ("point_cloud", "point_range", "[51.2, -51.2, -5.0, -51.2, 51.2, 3.0]",
     "point_cloud.point_range[0]", "below"),
    ("point_cloud", "sweeps", "-4", "point_cloud.sweeps", "in [1, 100]"),
    ("point_cloud", "max_voxels", "0", "point_cloud.max_voxels", "in [1,"),
    ("point_cloud", "max_points_per_voxel", "100000", "point_cloud.max_points_per_voxel", "in"),
    ("bev", "cell_size", "[0.3, 0.8, 20.0]", "bev.cell_size[0]", "divide"),
    ("bev", "cell_size", "[0.8, 0.8, -1.0]", "bev.cell_size[2]", "> 0"),
    ("camera", "image_hw", "[130, 352]", "camera.image_hw[0]", "multiple of feature_stride"),
    ("camera", "image_hw", "[0, 352]", "camera.image_hw[0]", "in [16, 8192]"),
    ("camera", "feature_stride", "4", "camera.feature_stride", "8 or 16"),
    ("camera", "depth_max", "0.5", "camera.depth_max", "above depth_min"),
    ("camera", "depth_step", "0.001", "camera.depth_step", "depth bins"),
    ("camera", "channels", '["CAM_TOP"]', "camera.channels[0]", "unknown channel"),
    ("camera", "channels", '["CAM_FRONT", "CAM_FRONT"]', "camera.channels[1]", "twice"),
    ("camera", "channels", "[]", "camera.channels", "no channel"),
    ("radar", "channels", '["RADAR_TOP"]', "radar.channels[0]", "unknown channel"),
    ("radar", "sweeps", "0", "radar.sweeps", "in [1, 100]"),
    ("sync", "camera_tolerance_us", "-1", "sync.camera_tolerance_us", ">= 0"),
    ("model", "bev_channels", "200000", "model.bev_channels", "in [2, 4096]"),
    ("model", "lidar_channels", "0", "model.lidar_channels", "in [1, 4096]"),
    ("model", "max_detections", "0", "model.max_detections", "in [1, 10000]"),
    ("model", "score_threshold", "1.5", "model.score_threshold", "in [0, 1]"),
    ("model", "nms_radius", "0", "model.nms_radius", "> 0"),
    ("train", "lr", "nan", "train.lr", "finite"),
    ("train", "lr", "inf", "train.lr", "finite"),
    ("train", "lr", "0", "train.lr", "> 0"),
    ("train", "lr", "-1e-3", "train.lr", "> 0"),
    ("train", "batch_size", "0", "train.batch_size", "in [1, 4096]"),
    ("train", "epochs", "-1", "train.epochs", "in [1,"),
    ("train", "weight_decay", "-0.1", "train.weight_decay", ">= 0"),
    ("train", "grad_clip", "0", "train.grad_clip", "> 0"),
    ("train", "modality_dropout", "1.0", "train.modality_dropout", "in [0, 1)"),
    ("train", "seed", "-1", "train.seed", ">= 0"),
    ("train", "warmup_steps", "-5", "train.warmup_steps", ">= 0"),
    ("train.branch_lr", "camera", "-1.0", "train.branch_lr.camera", ">= 0"),
    ("train.augment", "scale", "[1.05, 0.95]", "train.augment.scale[0]", "not be above"),
    ("train.augment", "scale", "[0.0, 1.05]", "train.augment.scale[0]", "> 0"),
    ("train.augment", "flip", "1.5", "train.augment.flip", "in [0, 1]"),
    ("train.augment", "rotation", "-0.1", "train.augment.rotation", "in [0,"),
    ("train.augment", "image_resize", "[-1.5, 0.06]", "train.augment.image_resize[0]", "> -1"),
    ("params", "image_widths", "[16, 0, 48, 64, 96]", "params.image_widths[1]", "in [1, 4096]"),
    ("params", "pillar_layers", "0", "params.pillar_layers", "in [1, 16]"),
    ("params", "gaussian_overlap", "1.0", "params.gaussian_overlap", "in (0, 1)"),
    ("params", "class_nms_radius", "[1.0, 2.0]", "params.class_nms_radius", "one value per class"),
    ("params", "code_weights", "[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -0.2, 0.2]",
     "params.code_weights[8]", ">= 0"),
]
# fmt: on


@pytest.mark.parametrize(("section", "key", "value", "named", "says"), CASES)
def test_bad_value_names_key_and_file(
    tmp_path: Path, section: str, key: str, value: str, named: str, says: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_set((CONFIG_DIR / "tiny.toml").read_text(), section, key, value))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.path == str(path)
    assert f"key {named!r}" in exc.value.reason and says in exc.value.reason, exc.value.reason


@pytest.mark.parametrize("name", ["tiny", "nuscenes"])
def test_presets_pass(name: str) -> None:
    check_config(load_config(name))


def test_configs_built_in_code_are_checked_too() -> None:
    cfg = load_config("tiny")
    bad = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=float("nan")))
    with pytest.raises(ConfigError, match=r"key 'train\.lr': must be > 0, got nan"):
        check_config(bad, "code")
    with pytest.raises(ConfigError, match=r"--lr-scale: key 'train\.branch_lr\.lidar'"):
        with_lr_scales(cfg, ["lidar=-2"])
    with pytest.raises(ConfigError, match=r"train\.branch_lr\.radar"):
        with_lr_scales(cfg, ["radar=nan"])


def test_cli_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from fusion.cli import main

    path = tmp_path / "bad.toml"
    path.write_text(_set((CONFIG_DIR / "tiny.toml").read_text(), "point_cloud", "sweeps", "-4"))
    argv = ["train", "--config", str(path), "--dataroot", str(tmp_path), "--version", "v1.0-x"]
    argv += ["--split", "s", "--model", "lidar", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"fusion train: error: {path}: key 'point_cloud.sweeps': must be in [1, 100], got -4"
    ]
    assert not (tmp_path / "run").exists()
