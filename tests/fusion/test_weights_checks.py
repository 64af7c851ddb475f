"""Weights metadata is checked before anything is allocated (issue 11): bad params JSON,
absurd sizes in the stored config and tensors that do not fit it are one error naming the
weights file, never a traceback or a terabyte allocation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from shared_data import FORMAT_1_LIDAR

from fusion.cli import main
from fusion.config import CONFIG_DIR
from fusion.errors import ConfigError, FusionError
from fusion.model.weights import FORMAT, FORMAT_1, MAX_PARAMETERS, load_detector

SHIPPED = FORMAT_1_LIDAR  # a real format-1 file: its metadata holds params JSON to break


def _shipped() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(SHIPPED), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())  # noqa: SIM118


def _write(tmp_path: Path, tensors: dict, meta: dict) -> Path:
    path = tmp_path / "lidar.safetensors"
    save_file(tensors, str(path), meta)
    return path


def _format_2(tmp_path: Path, config: str, tensors: dict | None = None) -> Path:
    shipped, _ = _shipped()
    meta = {"format": FORMAT, "variant": "lidar", "config": config}
    return _write(tmp_path, shipped if tensors is None else tensors, meta)


def _tiny(old: str, new: str) -> str:
    text = (CONFIG_DIR / "tiny.toml").read_text()
    assert old in text
    return text.replace(old, new)


def test_the_untouched_file_loads(tmp_path: Path) -> None:
    tensors, meta = _shipped()
    assert load_detector(_write(tmp_path, tensors, meta)).variant == "lidar"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ("{not json", "metadata 'params' is not JSON"),
        ("[1, 2]", "metadata 'params' is not a JSON object"),
        ('{"image_widths": [16, 32, 48, 64, 96]}', "missing key 'params.pillar_layers'"),
        ("PARAMS_WITH_EXTRA", "unknown key 'params.dropout'"),
        ("PARAMS_WITH_NEGATIVE", "key 'params.min_radius': must be in [0, 64], got -3"),
    ],
)
def test_bad_params_json_names_the_weights_file(tmp_path: Path, params: str, says: str) -> None:
    tensors, meta = _shipped()
    assert meta["format"] == FORMAT_1
    good = meta["params"]
    if params == "PARAMS_WITH_EXTRA":
        params = good[:-1] + ', "dropout": 0.5}'
    elif params == "PARAMS_WITH_NEGATIVE":
        params = good.replace('"min_radius": 2', '"min_radius": -3')
    path = _write(tmp_path, tensors, meta | {"params": params})
    with pytest.raises(ConfigError) as exc:
        load_detector(path)
    assert exc.value.path == str(path) and says in exc.value.reason


def test_format_1_without_params(tmp_path: Path) -> None:
    tensors, meta = _shipped()
    del meta["params"]
    path = _write(tmp_path, tensors, meta)
    with pytest.raises(ConfigError, match="no params") as exc:
        load_detector(path)
    assert exc.value.path == str(path)


def test_absurd_config_sizes_are_refused_before_allocating(tmp_path: Path) -> None:
    # bev_channels = 200000 asked for about 1.4 TB before the checks
    path = _format_2(tmp_path, _tiny("bev_channels = 64", "bev_channels = 200000"))
    t = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        load_detector(path)
    assert time.perf_counter() - t < 5.0
    assert exc.value.path == str(path)
    assert "key 'model.bev_channels': must be in [2, 4096], got 200000" in exc.value.reason


def test_sizes_in_range_but_too_many_parameters(tmp_path: Path) -> None:
    # each value passes its own bound; together they describe billions of parameters
    config = _tiny("bev_channels = 64", "bev_channels = 4096")
    config = config.replace("lidar_channels = 32", "lidar_channels = 4096")
    path = _format_2(tmp_path, config)
    with pytest.raises(FusionError, match=f"at most {MAX_PARAMETERS:,}") as exc:
        load_detector(path)
    assert exc.value.path == str(path)


def test_tensor_shapes_are_checked_against_the_config(tmp_path: Path) -> None:
    tensors, _ = _shipped()
    # the stored config says 48 BEV channels; the tensors were trained with 64
    path = _format_2(tmp_path, _tiny("bev_channels = 64", "bev_channels = 48"), tensors)
    with pytest.raises(FusionError, match=r"is \[64, .*the config makes it \[48,") as exc:
        load_detector(path)
    assert exc.value.path == str(path)


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_missing_or_unexpected_tensors(tmp_path: Path, change: str) -> None:
    tensors, _ = _shipped()
    if change == "missing":
        tensors.pop(sorted(tensors)[0])
    else:
        tensors["model.extra.weight"] = torch.zeros(3)
    path = _format_2(tmp_path, (CONFIG_DIR / "tiny.toml").read_text(), tensors)
    with pytest.raises(FusionError, match=f"{change} \\['") as exc:
        load_detector(path)
    assert exc.value.path == str(path)


@pytest.mark.parametrize(
    ("meta", "says"),
    [
        ({"format": "fusion-detector/9", "variant": "lidar"}, "not detector weights"),
        ({"format": FORMAT, "variant": "radar"}, "not detector weights"),
        ({"format": FORMAT, "variant": "lidar"}, "metadata has no config"),
        ({"format": FORMAT, "variant": "lidar", "config": "name = "}, "invalid TOML"),
    ],
)
def test_bad_metadata(tmp_path: Path, meta: dict, says: str) -> None:
    path = _write(tmp_path, {"model.x": torch.zeros(1)}, meta)
    with pytest.raises(FusionError, match=says) as exc:
        load_detector(path)
    assert exc.value.path == str(path)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    path.write_bytes(SHIPPED.read_bytes()[:5000])
    with pytest.raises(FusionError, match="not a safetensors file") as exc:
        load_detector(path)
    assert exc.value.path == str(path)


def test_eval_cli_prints_one_line_and_exits_2(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    path = _format_2(tmp_path, _tiny("bev_channels = 64", "bev_channels = 200000"))
    argv = ["eval", "--dataroot", str(tmp_path), "--version", "v1.0-mini", "--split", "x"]
    argv += ["--models", "lidar", "--checkpoint", f"lidar={path}", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"fusion eval: error: {path}: key 'model.bev")
