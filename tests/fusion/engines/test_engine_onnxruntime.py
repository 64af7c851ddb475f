"""ONNX Runtime tuning: session settings from fusion.threads, the optimized graph saved once
and reused, and parity with torch on the reused graph."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from model_fakes import make_frame, tiny_config, tiny_params

from fusion import threads
from fusion.engines.export import example_inputs, export_onnx
from fusion.engines.onnxruntime_engine import OnnxRuntimeEngine, optimized_path, session_options
from fusion.engines.runner import Runner
from fusion.engines.torch_engine import TorchEngine
from fusion.model import build_detector
from fusion.preprocess.inputs import drop_sensors
from fusion.threads import ThreadSettings, apply_threads, current_threads, default_threads

REL = 1e-4  # the backends' stated tolerance (max-normalized), as test_engine_backends


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(3)
    model = build_detector(tiny_config(), "fusion", tiny_params()).eval()
    folder = tmp_path_factory.mktemp("onnx")
    export_onnx(model, folder)
    return model, folder


def _close(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert float(np.abs(a - b).max()) <= REL * max(float(np.abs(b).max()), 1e-6)


def test_session_options_follow_the_thread_settings():
    s = ThreadSettings(numba=2, torch=2, ort_intra=3, ort_inter=1, ort_spinning=False)
    opts = session_options(s)
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    spin = session_options(dataclasses.replace(s, ort_spinning=True))
    assert spin.get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_optimized_graph_is_saved_then_reused_with_the_same_outputs(export):
    model, folder = export
    first = OnnxRuntimeEngine(folder)
    for graph in ("camera", "lidar", "bev"):
        assert optimized_path(folder, graph, first.providers).is_file(), graph
    assert not any(first.loaded_optimized.values())
    again = OnnxRuntimeEngine(folder)
    assert all(again.loaded_optimized.values())
    ref = TorchEngine(model)
    ex = example_inputs(model)
    images = ex["camera"][0].numpy()
    for engine in (first, again):
        for a, b in zip(engine.camera(images), ref.camera(images), strict=True):
            _close(a, b)
        maps = [t.numpy() for t in ex["bev"]]
        for a, b in zip(engine.bev(*maps), ref.bev(*maps), strict=True):
            _close(a, b)
        rng = np.random.default_rng(1)
        for v in (7, 500):  # the dynamic pillar axis, through the reused graph too
            vox = rng.normal(size=(v, 8, 5)).astype(np.float32)
            num = rng.integers(1, 9, v).astype(np.int32)
            coords = rng.integers(0, 32, (v, 3)).astype(np.int32)
            _close(engine.lidar(vox, num, coords), ref.lidar(vox, num, coords))


def test_a_new_export_changes_the_cache_key(export, tmp_path):
    model, folder = export
    key = optimized_path(folder, "bev", ["CPUExecutionProvider"])
    torch.manual_seed(4)
    other = build_detector(tiny_config(), "fusion", tiny_params()).eval()
    export_onnx(other, tmp_path)
    assert optimized_path(tmp_path, "bev", ["CPUExecutionProvider"]).name != key.name
    export_onnx(model, tmp_path)  # the same weights again: the same key (deterministic export)
    assert optimized_path(tmp_path, "bev", ["CPUExecutionProvider"]).name == key.name


def test_apply_threads_sizes_the_pools_and_engines_read_it():
    import numba

    before = (torch.get_num_threads(), numba.get_num_threads())
    try:
        applied = apply_threads(ThreadSettings(numba=1, torch=1, ort_intra=1))
        assert (torch.get_num_threads(), numba.get_num_threads()) == (1, 1)
        assert applied.numba == 1 and applied.torch == 1
        assert current_threads() == applied
        huge = apply_threads(dataclasses.replace(default_threads(), numba=10_000))
        assert huge.numba == numba.config.NUMBA_NUM_THREADS  # clamped to Numba's pool
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
        threads._applied.clear()  # later tests see the defaults again


def test_a_frame_missing_cameras_runs_on_the_fixed_camera_batch(export):
    """The camera graph is exported for the rig's cameras (`camera_batch`); a frame with fewer
    (one not yet in, or undecodable) is padded by the runner and gives the detections of the
    torch engine, which takes any count."""
    model, folder = export
    engine = OnnxRuntimeEngine(folder)
    images = example_inputs(model)["camera"][0].numpy()
    assert engine.camera_batch == len(images)
    cfg = dataclasses.replace(
        model.cfg, model=dataclasses.replace(model.cfg.model, score_threshold=0.0)
    )
    frame = drop_sensors(make_frame(3), ["CAM_FRONT_RIGHT"])
    ref, _ = Runner(cfg, model.variant, TorchEngine(model)).detect(frame)
    got, _ = Runner(cfg, model.variant, engine).detect(frame)
    _close(got.scores, ref.scores)
    _close(got.center, ref.center)
