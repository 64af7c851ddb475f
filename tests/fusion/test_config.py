from pathlib import Path

import pytest

from fusion.config import (
    CONFIG_DIR,
    PipelineConfig,
    load_config,
    load_dataclass,
    save_config,
)
from fusion.errors import ConfigError


@pytest.mark.parametrize("name", ["nuscenes", "tiny"])
def test_presets_load_and_derive(name):
    cfg = load_config(name)
    assert isinstance(cfg, PipelineConfig)
    nx, ny = cfg.bev.grid
    assert (nx, ny) == (128, 128)
    gx, gy, gz = cfg.point_cloud.grid_size
    assert gz == 1 and gx * cfg.point_cloud.voxel_size[0] == pytest.approx(102.4)
    assert cfg.camera.depth_bins == {"nuscenes": 48, "tiny": 24}[name]


def test_nuscenes_feature_size():
    assert load_config("nuscenes").camera.feature_size == (16, 44)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.toml"
    p.write_text(text)
    return p


def _preset_text() -> str:
    return (CONFIG_DIR / "tiny.toml").read_text()


def test_unknown_key_names_key_and_file(tmp_path):
    p = _write(tmp_path, _preset_text().replace("[bev]\n", "[bev]\ncell_sise = 1.0\n"))
    with pytest.raises(ConfigError, match=r"bev\.cell_sise") as exc:
        load_dataclass(PipelineConfig, p)
    assert str(p) in str(exc.value)


def test_wrong_type_rejected(tmp_path):
    p = _write(tmp_path, _preset_text().replace("max_voxels = 12000", 'max_voxels = "many"'))
    with pytest.raises(ConfigError, match=r"point_cloud\.max_voxels.*integer"):
        load_dataclass(PipelineConfig, p)
    p = _write(tmp_path, _preset_text().replace('nms = "circle"', 'nms = "square"'))
    with pytest.raises(ConfigError, match=r"model\.nms.*one of"):
        load_dataclass(PipelineConfig, p)
    p = _write(
        tmp_path, _preset_text().replace("voxel_size = [0.8, 0.8, 8.0]", "voxel_size = [0.8, 0.8]")
    )
    with pytest.raises(ConfigError, match=r"voxel_size.*3 values"):
        load_dataclass(PipelineConfig, p)


def test_missing_key_and_bad_file(tmp_path):
    p = _write(tmp_path, _preset_text().replace("sweeps = 3\n", "", 1))
    with pytest.raises(ConfigError, match=r"missing key 'point_cloud\.sweeps'"):
        load_dataclass(PipelineConfig, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_dataclass(PipelineConfig, _write(tmp_path, "name = ["))


def test_save_roundtrip(tmp_path):
    cfg = load_config("nuscenes")
    out = save_config(cfg, tmp_path / "run" / "config.toml")
    assert load_config(out) == cfg


def test_frozen():
    cfg = load_config("tiny")
    with pytest.raises(AttributeError):
        cfg.bev.cell_size = (1.0, 1.0, 1.0)
