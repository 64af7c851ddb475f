"""ONNX export of the dense graphs, ONNX Runtime against torch, the runner end to end, and the
TensorRT engine where TensorRT exists."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fakes import make_frame, tiny_config, tiny_params

from calibration import PinholeCamera
from fusion.engines.base import read_manifest
from fusion.engines.export import example_inputs, export_onnx
from fusion.engines.onnxruntime_engine import OnnxRuntimeEngine
from fusion.engines.runner import Runner, StageTimes
from fusion.engines.torch_engine import TorchEngine
from fusion.model import build_detector, save_detector

REL = 1e-4


def _model(variant: str, feature_stride: int = 16):
    torch.manual_seed(1)
    cfg = tiny_config()
    cfg = dataclasses.replace(
        cfg, camera=dataclasses.replace(cfg.camera, feature_stride=feature_stride)
    )
    model = build_detector(cfg, variant, tiny_params()).eval()
    # non-trivial BN statistics, so that a wrongly folded norm would show
    g = torch.Generator().manual_seed(2)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


def _assert_rel(a: np.ndarray, b: np.ndarray) -> None:
    """Elementwise within REL of the reference's magnitude (max-normalized)."""
    assert a.shape == b.shape
    scale = max(float(np.abs(b).max()), 1e-6)
    assert float(np.abs(a - b).max()) <= REL * scale


@pytest.fixture(scope="module")
def fusion_export(tmp_path_factory):
    model = _model("fusion")
    folder = tmp_path_factory.mktemp("onnx_fusion")
    export_onnx(model, folder)
    return model, folder


def test_export_writes_static_camera_and_bev_graphs(fusion_export):
    import onnx

    model, folder = fusion_export
    manifest = read_manifest(folder)
    assert manifest.graphs == ("camera", "lidar", "bev")
    assert manifest.bev_inputs == ("camera_bev", "lidar_bev", "radar_bev")
    for graph in ("camera", "bev"):
        g = onnx.load(str(folder / f"{graph}.onnx")).graph
        for value in [*g.input, *g.output]:
            dims = value.type.tensor_type.shape.dim
            assert all(d.dim_value > 0 for d in dims), f"{graph}:{value.name} is not static"
    assert (folder / "config.toml").is_file()


def test_onnxruntime_matches_torch_on_every_graph(fusion_export):
    model, folder = fusion_export
    ort, ref = OnnxRuntimeEngine(folder), TorchEngine(model)
    ex = example_inputs(model)
    images = ex["camera"][0].numpy()
    for a, b in zip(ort.camera(images), ref.camera(images), strict=True):
        _assert_rel(a, b)
    rng = np.random.default_rng(0)
    for v in (16, 300):  # the pillar axis is dynamic
        vox = rng.normal(size=(v, 8, 5)).astype(np.float32)
        num = rng.integers(1, 9, v).astype(np.int32)
        coords = rng.integers(0, 32, (v, 3)).astype(np.int32)
        _assert_rel(ort.lidar(vox, num, coords), ref.lidar(vox, num, coords))
    maps = [t.numpy() for t in ex["bev"]]
    for a, b in zip(ort.bev(*maps), ref.bev(*maps), strict=True):
        _assert_rel(a, b)


@pytest.mark.parametrize("feature_stride", [16, 8])
def test_camera_only_export_has_no_lidar_graph(tmp_path: Path, feature_stride: int):
    model = _model("camera", feature_stride)
    manifest = export_onnx(model, tmp_path)
    assert manifest.graphs == ("camera", "bev") and manifest.bev_inputs == ("camera_bev",)
    ort, ref = OnnxRuntimeEngine(tmp_path), TorchEngine(model)
    maps = [t.numpy() for t in example_inputs(model)["bev"]]
    for a, b in zip(ort.bev(*maps), ref.bev(*maps), strict=True):
        _assert_rel(a, b)
    images = example_inputs(model)["camera"][0].numpy()
    outs = ort.camera(images)
    assert outs[0].shape[-2:] == model.cfg.camera.feature_size
    for a, b in zip(outs, ref.camera(images), strict=True):
        _assert_rel(a, b)


def test_runner_gives_the_same_detections_on_both_backends(fusion_export):
    model, folder = fusion_export
    cfg = dataclasses.replace(
        model.cfg, model=dataclasses.replace(model.cfg.model, score_threshold=0.0)
    )
    frame = make_frame(5)
    d_torch, t_torch = Runner(cfg, "fusion", TorchEngine(model)).detect(frame)
    d_ort, t_ort = Runner(cfg, "fusion", OnnxRuntimeEngine(folder)).detect(frame)
    assert len(d_torch) == cfg.model.max_detections
    order_t, order_o = np.argsort(-d_torch.scores), np.argsort(-d_ort.scores)
    np.testing.assert_allclose(d_torch.scores[order_t], d_ort.scores[order_o], rtol=1e-4, atol=1e-6)
    # every stage of the fusion model ran and was timed
    for name in StageTimes.names():
        # read and decode are filled by whoever reads the frame; a whole frame has no radar wait
        if name not in ("read", "decode", "radar_wait"):
            assert getattr(t_torch, name) > 0, name
    assert t_ort.total > 0


def test_runner_reuses_camera_geometry_for_a_fixed_rig(fusion_export):
    model, _ = fusion_export
    runner = Runner(model.cfg, "fusion", TorchEngine(model))
    frame = make_frame(6)
    a, _ = runner.detect(frame)
    b, _ = runner.detect(frame)
    assert runner.geometry_builds == 1
    np.testing.assert_array_equal(a.scores, b.scores)
    runner.detect(make_frame(7))  # same rig, another place: still cached
    assert runner.geometry_builds == 1
    cam = frame.cameras["CAM_FRONT"]
    k = cam.camera.intrinsics.copy()
    k[0, 0] *= 1.1
    moved = dataclasses.replace(cam, camera=PinholeCamera(k, cam.camera.width, cam.camera.height))
    runner.detect(dataclasses.replace(frame, cameras={**frame.cameras, "CAM_FRONT": moved}))
    assert runner.geometry_builds == 2


def test_fusion_export_cli(tmp_path: Path):
    model = _model("lidar")
    weights = save_detector(model, tmp_path / "lidar.safetensors")
    out = tmp_path / "export"
    cmd = [
        sys.executable,
        "-m",
        "fusion.cli",
        "export",
        "--model",
        "lidar",
        "--checkpoint",
        f"lidar={weights}",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.glob("*.onnx")) == ["bev.onnx", "lidar.onnx"]
    wrong = subprocess.run(
        [*cmd[:5], "camera", cmd[6], f"camera={weights}", *cmd[8:]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert wrong.returncode == 2 and "not 'camera'" in wrong.stderr


@pytest.mark.gpu
@pytest.mark.tensorrt
def test_tensorrt_matches_torch(fusion_export, tmp_path: Path):
    pytest.importorskip(
        "tensorrt", reason="TensorRT is not installable here (no NVIDIA GPU, no wheel)"
    )
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU; none here")
    from fusion.engines.tensorrt_engine import TensorRTEngine

    model, folder = fusion_export
    trt = TensorRTEngine(folder, precision="fp32", cache_dir=tmp_path)
    ref = TorchEngine(model)
    ex = example_inputs(model)
    images = ex["camera"][0].numpy()
    for a, b in zip(trt.camera(images), ref.camera(images), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    maps = [t.numpy() for t in ex["bev"]]
    for a, b in zip(trt.bev(*maps), ref.bev(*maps), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
