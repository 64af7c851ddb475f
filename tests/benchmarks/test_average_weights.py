"""benchmarks/accuracy/average_weights.py: the average of two weights files of one model is
their tensors' weighted mean, loads as a detector of that model and records its parts; sums
other than 1 and files of different models are refused with the file named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from bench_scripts import load_script
from safetensors import safe_open

from fusion.config import load_config
from fusion.model import build_detector, load_detector, save_detector


@pytest.fixture(scope="module")
def script():
    return load_script("accuracy/average_weights.py")


def _weights(tmp_path: Path, name: str, variant: str, seed: int) -> Path:
    cfg = load_config("tiny")
    torch.manual_seed(seed)
    model = build_detector(cfg, variant, cfg.params)
    for p in model.parameters():  # move off the initial values so the mean is not trivial
        p.data.add_(torch.randn_like(p))
    path = tmp_path / f"{name}.safetensors"
    save_detector(model, path)
    return path


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), "pt") as f:
        return {n: f.get_tensor(n) for n in f.keys()}  # noqa: SIM118


def test_the_average_is_the_weighted_mean_and_loads(script, tmp_path: Path) -> None:
    a, b = _weights(tmp_path, "a", "lidar", 0), _weights(tmp_path, "b", "lidar", 1)
    out = tmp_path / "avg.safetensors"
    assert script.main(["--out", str(out), "--weights", f"{a}=0.75", "--weights", f"{b}=0.25"]) == 0
    ta, tb, tm = _tensors(a), _tensors(b), _tensors(out)
    assert tm.keys() == ta.keys()
    floats = [n for n, t in ta.items() if t.is_floating_point()]
    assert floats
    for n in floats:
        torch.testing.assert_close(tm[n], 0.75 * ta[n] + 0.25 * tb[n])
    for n in set(ta) - set(floats):
        assert torch.equal(tm[n], ta[n])
    load_detector(out)  # the first file's config and variant
    with safe_open(str(out), "pt") as f:
        run = json.loads(f.metadata()["run"])
    assert [p["coefficient"] for p in run["average"]] == [0.75, 0.25]
    assert run["average"][0]["weights"].startswith("a.safetensors sha256:")


def test_bad_coefficients_and_other_models_are_refused(script, tmp_path: Path) -> None:
    a, b = _weights(tmp_path, "a", "lidar", 0), _weights(tmp_path, "b", "lidar", 1)
    cam = _weights(tmp_path, "cam", "camera", 0)
    out = str(tmp_path / "avg.safetensors")
    with pytest.raises(SystemExit, match="sum to 1.5"):
        script.main(["--out", out, "--weights", f"{a}=1", "--weights", f"{b}=0.5"])
    with pytest.raises(SystemExit, match="cam.safetensors"):
        script.main(["--out", out, "--weights", f"{a}=0.5", "--weights", f"{cam}=0.5"])
    with pytest.raises(SystemExit, match="PATH=COEFFICIENT"):
        script.main(["--out", out, "--weights", str(a)])
