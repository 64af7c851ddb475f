"""The GPU path, as far as a CPU can test it: device selection, stage clocks, tensors kept
between the stages (torch tensors, and numba device arrays through the CUDA kernels under the
simulator), TensorRT plan cache keys and profiles, the INT8 calibration set and the export CLI.
What needs a GPU or TensorRT is at the end, skipped with the reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fakes import make_frame, tiny_config, tiny_params

from fusion.engines.base import fixed_camera_batch, pad_camera_batch, read_manifest
from fusion.engines.device import CudaEventClock, WallClock, resolve_device, stage_clock, to_host
from fusion.engines.export import example_inputs, export_onnx
from fusion.engines.int8 import calibration_set, collect, graph_inputs
from fusion.engines.runner import Runner
from fusion.engines.tensorrt_engine import calibration_digest, pillar_profile, plan_key
from fusion.engines.torch_engine import TorchEngine
from fusion.errors import FusionError
from fusion.model import build_detector, save_detector
from fusion.preprocess.inputs import drop_sensors

GPU = torch.cuda.is_available()
NO_GPU = "needs a CUDA GPU: none on this machine (CPU only)"


def _model(variant: str = "fusion"):
    torch.manual_seed(1)
    return build_detector(tiny_config(), variant, tiny_params()).eval()


def _cfg_all(model):
    """Every peak kept, so that detections compare elementwise."""
    return dataclasses.replace(
        model.cfg, model=dataclasses.replace(model.cfg.model, score_threshold=0.0)
    )


# -- device selection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "device", "gpu", "want"),
    [
        ("torch", "auto", False, "cpu"),
        ("torch", "auto", True, "cuda"),
        ("onnxruntime", "auto", True, "cuda"),
        ("tensorrt", "auto", True, "cuda"),
        ("torch", "cpu", True, "cpu"),
        ("torch", "CUDA:1", True, "cuda:1"),
        ("onnxruntime", "cuda", True, "cuda"),
    ],
)
def test_resolve_device(backend, device, gpu, want):
    assert resolve_device(backend, device, has_cuda=gpu) == want


@pytest.mark.parametrize(
    ("backend", "device", "gpu", "message"),
    [
        ("torch", "cuda", False, "no CUDA GPU"),
        ("tensorrt", "auto", False, "no CUDA GPU"),  # never a silent CPU run
        ("tensorrt", "cpu", True, "CUDA GPU only"),
        ("torch", "gpu", True, "unknown device"),
        ("torch", "cuda:x", True, "unknown device"),
    ],
)
def test_resolve_device_refuses(backend, device, gpu, message):
    with pytest.raises(FusionError, match=message):
        resolve_device(backend, device, has_cuda=gpu)


def test_resolve_device_probes_torch():
    assert resolve_device("torch", "auto") == ("cuda" if GPU else "cpu")


# -- clocks -------------------------------------------------------------------------------------


def test_wall_clock_accumulates_laps_by_stage():
    clock = stage_clock("cpu")
    assert isinstance(clock, WallClock)
    for stage in ("a", "b", "a"):
        _ = sum(range(20000))
        clock.lap(stage)
    assert set(clock.times) == {"a", "b"} and all(v > 0 for v in clock.times.values())


# -- tensors kept between the stages ------------------------------------------------------------


def test_tensor_outputs_give_the_numpy_path_detections():
    """The runner's device path (engine outputs kept as tensors, zero maps made where they
    live, kernels fed tensors, one copy of the head at the end), run with CPU tensors."""
    model = _model()
    cfg = _cfg_all(model)
    frame = make_frame(5)
    ref, _ = Runner(cfg, "fusion", TorchEngine(model)).detect(frame)
    eng = TorchEngine(model, outputs="tensor")
    runner = Runner(cfg, "fusion", eng)
    assert runner.on_device and isinstance(runner.clock(), WallClock)
    depth, _ = eng.camera(example_inputs(model)["camera"][0].numpy())
    assert isinstance(depth, torch.Tensor)
    inputs = runner.inputs(frame)  # point clouds moved before voxelize and rasterize
    assert isinstance(inputs.voxels.features, torch.Tensor)
    assert isinstance(inputs.radar_raster, torch.Tensor)
    got, times = runner.detect(frame)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.center, ref.center, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got.labels, ref.labels)
    assert times.bev_pool > 0 and times.scatter > 0


class _DeviceArrayEngine:
    """TorchEngine whose camera and lidar outputs are numba device arrays (the simulator's
    here): the runner must hand them to the kernels as they are, which then run the CUDA
    kernels (`backend="auto"` on device inputs), and their outputs on to the BEV graph."""

    name = "device-arrays"
    outputs = "tensor"
    device_name = "cpu"
    camera_batch = None

    def __init__(self, model) -> None:
        from numba import cuda

        self._cuda = cuda
        self._ref = TorchEngine(model)
        self.bev_inputs: list[type] = []

    def camera(self, images):
        return tuple(
            self._cuda.to_device(np.ascontiguousarray(a)) for a in self._ref.camera(images)
        )

    def lidar(self, voxels, num_points, coords):
        from kernels._backend import to_host as kernel_to_host

        self.lidar_inputs = [type(a) for a in (voxels, num_points, coords)]
        host = [kernel_to_host(a) for a in (voxels, num_points, coords)]
        return self._cuda.to_device(self._ref.lidar(*host))

    def bev(self, *maps):
        from kernels._backend import to_host as kernel_to_host

        self.bev_inputs = [type(m) for m in maps]
        return self._ref.bev(*[kernel_to_host(m) for m in maps])


def test_runner_runs_the_cuda_kernels_on_device_outputs():
    from numba import config

    if not config.ENABLE_CUDASIM and not GPU:
        pytest.skip("neither a GPU nor the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")
    from kernels._backend import is_numba_device_array

    model = _model()
    cfg = _cfg_all(model)
    frame = make_frame(5)
    ref, _ = Runner(cfg, "fusion", TorchEngine(model)).detect(frame)
    eng = _DeviceArrayEngine(model)
    runner = Runner(cfg, "fusion", eng)
    runner._upload = eng._cuda.to_device  # the point clouds as device arrays
    got, _ = runner.detect(frame)
    # voxelize ran on the device points (the pillar graph got device arrays), the camera and
    # lidar maps came out of bev_pool and scatter_bev on the device, and so did the raster
    assert all(is_numba_device_array(t) for t in eng.lidar_inputs)
    assert [is_numba_device_array(m) for m in _device_maps(eng, cfg, frame)] == [True, True]
    assert is_numba_device_array(runner.inputs(frame).radar_raster)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-4, atol=1e-5)


class _FixedBatchEngine:
    """TorchEngine whose camera graph takes exactly `camera_batch` images, as an exported graph
    does on every engine (ONNX Runtime on CPU or CUDA, TensorRT): it refuses any other count,
    as those do. Outputs as numpy arrays or as tensors (the GPU engines' device path)."""

    name = "fixed-batch"
    device_name = "cpu"

    def __init__(self, model, batch: int, outputs: str = "numpy") -> None:
        self._ref = TorchEngine(model, outputs=outputs)
        self.outputs = outputs
        self.camera_batch = batch
        self.seen: list[int] = []

    def camera(self, images):
        self.seen.append(len(images))
        if len(images) != self.camera_batch:
            raise RuntimeError(f"camera graph takes {self.camera_batch} images, got {len(images)}")
        return self._ref.camera(images)

    def lidar(self, *a):
        return self._ref.lidar(*a)

    def bev(self, *maps):
        return self._ref.bev(*maps)


@pytest.mark.parametrize("outputs", ["numpy", "tensor"])
def test_a_frame_missing_cameras_runs_on_every_engines_fixed_camera_batch(outputs):
    """A frame that lacks a camera (not yet in, undecodable) is padded by the runner to the
    exported graph's batch with zero images, whatever the engine; only the present cameras'
    outputs are lifted, so the detections are those of the engine that takes any count."""
    model = _model()
    cfg = _cfg_all(model)
    frame = drop_sensors(make_frame(5), ["CAM_BACK", "CAM_FRONT_LEFT"])
    ref, _ = Runner(cfg, "fusion", TorchEngine(model)).detect(frame)
    eng = _FixedBatchEngine(model, batch=len(cfg.camera.channels), outputs=outputs)
    got, _ = Runner(cfg, "fusion", eng).detect(frame)
    assert eng.seen == [len(cfg.camera.channels)]
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.center, ref.center, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(got.labels, ref.labels)


def test_pad_camera_batch_and_the_exported_batch(tmp_path: Path):
    images = np.ones((4, 3, 8, 16), np.float32)
    padded = pad_camera_batch(images, 6)
    assert padded.shape == (6, 3, 8, 16) and (padded[4:] == 0).all() and (padded[:4] == 1).all()
    assert pad_camera_batch(images, 4) is images and pad_camera_batch(images, None) is images
    with pytest.raises(FusionError, match="7 camera images, the exported camera graph takes 6"):
        pad_camera_batch(np.ones((7, 3, 8, 16), np.float32), 6)
    model = _model()
    export_onnx(model, tmp_path / "onnx")
    manifest = read_manifest(tmp_path / "onnx")
    assert (
        fixed_camera_batch(manifest) == manifest.camera_shape[0] == len(model.cfg.camera.channels)
    )
    lidar = _model("lidar")
    export_onnx(lidar, tmp_path / "lidar")
    assert fixed_camera_batch(read_manifest(tmp_path / "lidar")) is None


def _device_maps(eng, cfg, frame):
    runner = Runner(cfg, "fusion", eng)
    runner._upload = eng._cuda.to_device
    maps = runner.bev_maps(runner.inputs(frame), stage_clock("cpu"))
    return [m[0] if not isinstance(m, np.ndarray) else m for m in maps[:2]]


def test_to_host_copies_tensors_only():
    a = np.zeros(3, np.float32)
    assert to_host(a) is a
    assert isinstance(to_host(torch.zeros(3)), np.ndarray)


def test_cuda_graphs_need_a_cuda_device():
    with pytest.raises(ValueError, match="CUDA device"):
        TorchEngine(_model("lidar"), cuda_graphs=True)


# -- TensorRT plans (pure parts) ----------------------------------------------------------------


def test_plan_key_changes_with_everything_a_plan_depends_on():
    base = dict(
        onnx_bytes=b"graph",
        precision="fp16",
        trt_version="10.7",
        max_pillars=30000,
        device="sm_90",
        calibration="",
    )
    key = plan_key(**base)
    assert key == plan_key(**base) and len(key) == 16
    for field, other in (
        ("onnx_bytes", b"graph2"),
        ("precision", "fp32"),
        ("trt_version", "10.8"),
        ("max_pillars", 20000),
        ("device", "sm_80"),
    ):
        assert plan_key(**(base | {field: other})) != key, field
    int8 = base | {"precision": "int8", "calibration": "abc"}
    assert plan_key(**int8) not in (key, plan_key(**(int8 | {"calibration": "abd"})))
    with pytest.raises(ValueError, match="calibration"):
        plan_key(**(base | {"precision": "int8"}))
    with pytest.raises(ValueError, match="precision"):
        plan_key(**(base | {"precision": "int4"}))


def test_calibration_digest_sees_names_shapes_and_bytes():
    a = [{"images": np.zeros((2, 3), np.float32)}]
    d = calibration_digest(a)
    assert d == calibration_digest([{"images": np.zeros((2, 3), np.float32)}])
    assert d != calibration_digest([{"images": np.zeros((3, 2), np.float32)}])
    assert d != calibration_digest([{"x": np.zeros((2, 3), np.float32)}])
    assert d != calibration_digest([{"images": np.ones((2, 3), np.float32)}])
    assert d != calibration_digest(a * 2)


def test_pillar_profile():
    assert pillar_profile((16, 8, 5), 30000) == ((1, 8, 5), (15000, 8, 5), (30000, 8, 5))
    assert pillar_profile((-1,), 100) == ((1,), (50,), (100,))
    with pytest.raises(ValueError):
        pillar_profile((16, 8, 5), 1)


# -- the INT8 calibration set -------------------------------------------------------------------


def test_graph_inputs_have_the_exported_shapes(tmp_path: Path):
    model = _model()
    manifest = export_onnx(model, tmp_path)
    feeds = graph_inputs(model, make_frame(3))
    assert set(feeds) == set(manifest.graphs)
    assert feeds["camera"]["images"].shape == manifest.camera_shape
    assert tuple(feeds["bev"]) == manifest.bev_inputs
    assert [f.shape for f in feeds["bev"].values()] == list(manifest.bev_shapes)
    lidar = feeds["lidar"]
    assert lidar["voxels"].shape[0] == lidar["coords"].shape[0] > 0
    assert lidar["num_points"].dtype == np.int32 and lidar["coords"].dtype == np.int32
    batches = collect(model, [make_frame(1), make_frame(2)])
    assert {g: len(b) for g, b in batches.items()} == dict.fromkeys(manifest.graphs, 2)
    assert calibration_digest(batches["bev"]) != calibration_digest(batches["bev"][:1])


def test_calibration_set_from_a_dataroot(real_root: Path):
    model = _model("camera")
    batches = calibration_set(model, real_root, "v1.0-mini", frames=4)
    assert set(batches) == {"camera", "bev"} and len(batches["camera"]) == 1  # one keyframe
    images = batches["camera"][0]["images"]
    assert images.shape == (len(model.cfg.camera.channels), 3, *model.cfg.camera.image_hw)
    assert np.abs(images).sum() > 0


def test_export_tensorrt_flags_fail_clearly(tmp_path: Path, capsys):
    from fusion.cli import main

    save_detector(_model("lidar"), tmp_path / "lidar.safetensors")
    base = ["export", "--model", "lidar", "--weights", str(tmp_path), "--out", str(tmp_path / "x")]
    assert main([*base, "--int8"]) == 2
    assert "add --tensorrt" in capsys.readouterr().err
    assert main([*base, "--tensorrt", "--int8"]) == 2
    assert "--int8-dataroot" in capsys.readouterr().err
    assert main([*base, "--tensorrt", "--int8", "--int8-dataroot", str(tmp_path)]) == 2
    assert "--int8-version" in capsys.readouterr().err
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        assert main([*base, "--tensorrt"]) == 2
        assert "TensorRT is not installed" in capsys.readouterr().err
        assert (tmp_path / "x" / "lidar.onnx").is_file()  # the ONNX graphs are written first


# -- on a GPU -----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason=NO_GPU)
def test_cuda_engine_keeps_tensors_and_matches_cpu():
    model = _model()
    cfg = _cfg_all(model)
    frame = make_frame(5)
    ref, _ = Runner(cfg, "fusion", TorchEngine(model)).detect(frame)
    for graphs in (False, True):
        eng = TorchEngine(_model(), "cuda", cuda_graphs=graphs)
        depth, _ = eng.camera(example_inputs(model)["camera"][0].numpy())
        assert depth.is_cuda
        runner = Runner(cfg, "fusion", eng)
        assert isinstance(runner.clock(), CudaEventClock)
        for _ in range(2):  # the second call replays the captured graphs
            got, times = runner.detect(frame)
            np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-3, atol=1e-4)
        assert times.camera_net > 0 and times.bev_pool > 0


@pytest.mark.gpu
@pytest.mark.skipif(not GPU, reason=NO_GPU)
def test_onnxruntime_cuda_io_binding_matches_torch(tmp_path: Path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider here (onnxruntime-gpu not installed)")
    from fusion.engines.onnxruntime_engine import OnnxRuntimeEngine, providers_for

    model = _model()
    export_onnx(model, tmp_path)
    cfg = _cfg_all(model)
    frame = make_frame(5)
    ref, _ = Runner(cfg, "fusion", TorchEngine(model)).detect(frame)
    eng = OnnxRuntimeEngine(tmp_path, providers_for("cuda"))
    assert eng.outputs == "tensor"
    got, _ = Runner(cfg, "fusion", eng).detect(frame)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(not GPU, reason=NO_GPU)
def test_tensorrt_fp16_and_int8_plans_are_cached(tmp_path: Path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed here")
    from fusion.engines.tensorrt_engine import TensorRTEngine

    model = _model()
    export_onnx(model, tmp_path / "onnx")
    first = TensorRTEngine(tmp_path / "onnx", "fp16")
    assert all(first.built.values())
    again = TensorRTEngine(tmp_path / "onnx", "fp16")
    assert not any(again.built.values()) and again.plans == first.plans
    cfg = _cfg_all(model)
    frame = make_frame(5)
    ref, _ = Runner(cfg, "fusion", TorchEngine(model)).detect(frame)
    got, _ = Runner(cfg, "fusion", again).detect(frame)
    np.testing.assert_allclose(got.scores, ref.scores, rtol=2e-2, atol=2e-3)  # FP16
    calib = collect(model, [make_frame(i) for i in range(4)])
    int8 = TensorRTEngine(tmp_path / "onnx", "int8", calibration=calib)
    assert set(int8.plans.values()).isdisjoint(first.plans.values())
    got8, _ = Runner(cfg, "fusion", int8).detect(frame)
    assert got8.scores.shape == ref.scores.shape
