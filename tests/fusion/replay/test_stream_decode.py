"""The streaming pipeline's fast camera path: camera messages of every log layout decoded at the
JPEG reduction the network input allows, with the scaled camera model in the frame; the full
decode stays the default; `wants` and `StreamOptions.for_log` (replay's choices)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from replay_data import SCENE, VERSION

from fusion.config import load_config
from fusion.data.sensor_io import decode_camera_image
from fusion.engines.runner import Runner
from fusion.engines.torch_engine import TorchEngine
from fusion.model.weights import load_detector, packaged_weights
from fusion.preprocess.inputs import camera_inputs, view_camera
from fusion.replay.runner import ReplayOptions, ReplayRun
from fusion.sources import open_source
from fusion.sync.online import OnlineSynchronizer, StreamOptions


def _open(path: Path):
    if path.is_dir() and (path / VERSION).is_dir():
        return open_source(path, version=VERSION, scene=SCENE)
    return open_source(path)


def _frames(source, options: StreamOptions) -> list:
    """Every trigger's frame at --rate 0 (replay's sequential loop), decoding what it wants."""
    sync = OnlineSynchronizer(options, source.rig())
    frames, now = [], 0
    for msg in source.messages():
        now = max(now, msg.log_time_us)
        built = [sync.build(t) for t in sync.ready(now)]
        if sync.wants(msg):
            sync.push(msg, sync.decode(msg))
        built += [sync.build(t) for t in sync.ready(now)]
        frames += [f for f in built if f is not None]
    frames += [f for f in (sync.build(t) for t in sync.ready(flush=True)) if f is not None]
    return frames


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny")  # 352 x 128 network input; the scene's cameras are 704 x 396


@pytest.mark.parametrize("kind", ["dataroot", "mcap", "ros2", "ros1"])
def test_reduced_decode_carries_the_scaled_camera(kind, cfg, replay_root, replay_logs):
    source = _open(replay_root if kind == "dataroot" else replay_logs[kind])
    info = source.info()
    full = _frames(source, StreamOptions.for_log(cfg, info))
    small = _frames(source, StreamOptions.for_log(cfg, info, camera_decode="reduced"))
    assert len(full) == len(small) >= 4
    rig = source.rig()
    for f, s in zip(full, small, strict=True):
        assert f.timestamp_us == s.timestamp_us
        assert set(f.cameras) == set(s.cameras) == set(cfg.camera.channels)
        for ch, cam in s.cameras.items():
            calib = rig[ch].camera
            # full decode: the calibration itself
            np.testing.assert_array_equal(f.cameras[ch].camera.intrinsics, calib.intrinsics)
            assert f.cameras[ch].image.shape == (calib.height, calib.width, 3)
            assert cam.image.shape == (198, 352, 3)  # 704 x 396 at 1/2
            assert (cam.camera.width, cam.camera.height) == (352, 198)
            np.testing.assert_allclose(cam.camera.intrinsics[:2], calib.intrinsics[:2] / 2)
        # the same network input either way: geometry equal, pixels within the stated tolerance
        a, b = camera_inputs(f, cfg), camera_inputs(s, cfg)
        for cf, cs in zip(a.cameras, b.cameras, strict=True):
            np.testing.assert_allclose(cs.intrinsics, cf.intrinsics, atol=1e-9)
        assert np.abs(a.images - b.images).mean() < 0.05  # normalized units (~2.5 levels)


def test_reduced_decode_is_the_pipeline_decode(cfg, replay_root):
    """The synchronizer's reduced decode is `decode_camera_image`'s, pixel for pixel."""
    source = _open(replay_root)
    options = StreamOptions.for_log(cfg, source.info(), camera_decode="reduced")
    sync = OnlineSynchronizer(options, source.rig())
    checked = 0
    for msg in source.messages():
        if msg.kind != "camera":
            continue
        cam = source.rig()[msg.channel].camera
        ref, ref_cam = decode_camera_image(msg.raw, cam, cfg.camera.image_hw, "reduced")
        np.testing.assert_array_equal(sync.decode(msg).image, ref)
        assert sync._decoded[msg.channel][1].intrinsics.tolist() == ref_cam.intrinsics.tolist()
        assert view_camera(ref_cam, _view(ref, cfg), cfg).width == cfg.camera.image_hw[1]
        checked += 1
    assert checked >= 6


def _view(image, cfg):
    from fusion.preprocess.inputs import image_view

    return image_view(image.shape[1], image.shape[0], cfg)


def test_full_decode_is_the_default(cfg, replay_root):
    source = _open(replay_root)
    options = StreamOptions.for_log(cfg, source.info())
    assert options.camera_decode == "full"
    sync = OnlineSynchronizer(options, source.rig())
    msg = next(m for m in source.messages() if m.kind == "camera")
    np.testing.assert_array_equal(sync.decode(msg).image, msg.decode().image)
    with pytest.raises(ValueError, match="image_hw"):
        StreamOptions(("CAM_FRONT",), (), 1, 1, 1, 1, camera_decode="reduced")


def test_wants_only_what_the_model_reads(cfg, replay_root):
    source = _open(replay_root)
    info = source.info()
    camera_only = StreamOptions.for_log(cfg, info, radar_channels=(), lidar_sweeps=1)
    sync = OnlineSynchronizer(camera_only, source.rig())
    wanted = {(m.kind, m.is_keyframe) for m in source.messages() if sync.wants(m)}
    assert ("radar", False) not in wanted and ("radar", True) not in wanted
    assert ("lidar", True) in wanted and ("lidar", False) not in wanted  # the trigger scans
    assert ("camera", True) in wanted and ("pose", False) in wanted
    assert not any(kind == "imu" for kind, _ in wanted)
    everything = OnlineSynchronizer(StreamOptions.for_log(cfg, info), source.rig())
    kinds = {m.kind for m in source.messages() if everything.wants(m)}
    assert kinds == {"lidar", "radar", "camera", "pose"}


@pytest.mark.parametrize("kind", ["dataroot", "mcap"])
def test_for_log_makes_the_choices_of_replay(kind, replay_root, replay_logs):
    source = _open(replay_root if kind == "dataroot" else replay_logs[kind])
    model = load_detector(packaged_weights("lidar"))
    runner = Runner(model.cfg, model.variant, TorchEngine(model), model.params)
    for trigger in ("keyframes", "lidar"):
        run = ReplayRun(source, runner, ReplayOptions(rate=0, trigger=trigger), (), None)
        expected = StreamOptions.for_log(
            model.cfg, source.info(), 50.0, trigger, ("lidar",), camera_decode="reduced"
        )  # replay's default decode
        assert expected == run.sync.options
        # the logging delay a causal match may rely on: known for a dataroot only
        assert run.sync.options.log_delay_us == (0 if kind == "dataroot" else None)
        # a LIDAR model waits for no camera or radar, and reads its config's sweeps
        assert run.sync.options.camera_channels == run.sync.options.radar_channels == ()
        assert run.sync.options.lidar_sweeps == model.cfg.point_cloud.sweeps == 10


def test_undecoded_cameras_are_decoded_only_when_a_frame_takes_them(cfg, replay_root):
    """12 Hz camera messages against 2 Hz keyframe triggers: only the chosen ones are decoded,
    the frames equal those of decoding everything, and a corrupt chosen one is missing."""
    import dataclasses

    from fusion.errors import DataError

    source = _open(replay_root)
    options = StreamOptions.for_log(cfg, source.info(), camera_decode="reduced")
    calls: list[str] = []

    def counting(msg):
        def dec(raw, origin, **kw):
            calls.append(origin)
            return msg.decoder(raw, origin, **kw)

        return dataclasses.replace(msg, decoder=dec)

    msgs = []
    for m in source.messages():
        if m.kind == "camera":  # the same image again between keyframes, as camera sweeps
            for dt in (0, 83_000, 166_000, 250_000, 333_000, 416_000):
                msgs.append(
                    dataclasses.replace(
                        m, timestamp_us=m.timestamp_us + dt, log_time_us=m.log_time_us + dt,
                        origin=f"{m.origin}@{dt}", is_keyframe=dt == 0,
                    )
                )  # fmt: skip
        else:
            msgs.append(m)
    msgs.sort(key=lambda m: m.log_time_us)

    def frames(lazy: bool, corrupt: str | None = None):
        sync = OnlineSynchronizer(options, source.rig())
        out, now = [], 0
        for m in msgs:
            if m.kind == "camera":
                m = counting(m)
                if corrupt and m.origin == corrupt:
                    m = m.with_raw(m.raw[:100])
            now = max(now, m.log_time_us)
            out += [f for f in (sync.build(t) for t in sync.ready(now)) if f]
            if sync.wants(m):
                if lazy:
                    sync.push_undecoded(m)
                else:
                    sync.push(m, sync.decode(m))
            out += [f for f in (sync.build(t) for t in sync.ready(now)) if f]
        out += [f for f in (sync.build(t) for t in sync.ready(flush=True)) if f]
        return out, sync

    calls.clear()
    eager, _ = frames(False)
    n_eager = len(calls)
    calls.clear()
    lazy, sync = frames(True)
    assert len(eager) == len(lazy) >= 4
    assert n_eager == sum(m.kind == "camera" for m in msgs)
    assert len(calls) == sum(len(f.cameras) for f in lazy) < n_eager / 5
    assert sync.counters.build_decode_ms > 0 and sync.counters.undecodable == {}
    for a, b in zip(eager, lazy, strict=True):
        assert set(a.cameras) == set(b.cameras)
        for ch in a.cameras:
            assert a.cameras[ch].filename == b.cameras[ch].filename
            np.testing.assert_array_equal(a.cameras[ch].image, b.cameras[ch].image)
    victim = lazy[1].cameras["CAM_FRONT"].filename
    broken, sync = frames(True, corrupt=victim)
    assert sync.counters.undecodable == {"CAM_FRONT": 1}
    assert broken[1].missing["CAM_FRONT"].startswith("undecodable:")
    with pytest.raises(DataError):  # decoding it eagerly fails at once
        frames(False, corrupt=victim)


def test_images_decode_while_the_lidar_sweeps_are_built(cfg, replay_root, monkeypatch):
    """A frame's undecoded images go to the decode pool before its LIDAR sweeps are
    compensated, so the two overlap: inside `lidar_sweeps`, the images' decoding has begun.
    (Images decoded at the build: the early decode of keyframe images is off here.)"""
    import dataclasses
    import threading

    import fusion.sync.online as online

    source = _open(replay_root)
    options = StreamOptions.for_log(
        cfg, source.info(), camera_decode="reduced", early_image_decode=False
    )
    started = threading.Event()
    overlapped: list[bool] = []
    compensate = online.lidar_sweeps

    def sweeps(*args, **kwargs):
        overlapped.append(started.wait(timeout=10.0))
        return compensate(*args, **kwargs)

    monkeypatch.setattr(online, "lidar_sweeps", sweeps)

    def signalling(msg):
        def dec(raw, origin, **kw):
            started.set()
            return msg.decoder(raw, origin, **kw)

        return dataclasses.replace(msg, decoder=dec)

    sync = OnlineSynchronizer(options, source.rig())
    frames, now = [], 0
    for m in source.messages():
        now = max(now, m.log_time_us)
        for t in sync.ready(now):
            started.clear()
            frames.append(sync.build(t))
        if sync.wants(m):
            if m.kind == "camera":
                sync.push_undecoded(signalling(m))
            else:
                sync.push(m, sync.decode(m))
    for t in sync.ready(flush=True):
        started.clear()
        frames.append(sync.build(t))
    built = [f for f in frames if f is not None]
    assert built and all(len(f.cameras) == len(cfg.camera.channels) for f in built)
    assert overlapped and all(overlapped)


def test_keyframe_images_start_decoding_as_they_arrive(cfg, replay_root):
    """A keyframe's images (marked with its sample token) start decoding on the pool when they
    are pushed, before their trigger is built; the frames equal those decoded at the build,
    each image is decoded once, and a corrupt one is missing in its frame and counted once."""
    import dataclasses
    import threading

    source = _open(replay_root)
    msgs = list(source.messages())
    lock = threading.Lock()

    def run(early: bool, corrupt: str | None = None):
        options = StreamOptions.for_log(
            cfg, source.info(), camera_decode="reduced", early_image_decode=early
        )
        sync = OnlineSynchronizer(options, source.rig())
        calls: list[str] = []
        at_build: list[int] = []  # per frame, how many of its images were decoded by then

        def counting(msg):
            def dec(raw, origin, **kw):
                with lock:
                    calls.append(origin)
                return msg.decoder(raw, origin, **kw)

            return dataclasses.replace(msg, decoder=dec)

        frames, now = [], 0

        def build(t):
            if early:
                for h in sync._cameras.values():  # the trigger's images: decoding or decoded
                    for held in h:
                        if held.msg.sample_token == t.held.msg.sample_token:
                            if held.decoding is not None:
                                held.decoding.exception()  # waits; a corrupt one fails later
                            at_build.append(held.msg.origin in calls)
            frames.append(sync.build(t))

        for m in msgs:
            now = max(now, m.log_time_us)
            for t in sync.ready(now):
                build(t)
            if sync.wants(m):
                if m.kind == "camera":
                    m = counting(m)
                    if corrupt and m.origin == corrupt:
                        m = m.with_raw(m.raw[:100])
                    sync.push_undecoded(m)
                else:
                    sync.push(m, sync.decode(m))
        for t in sync.ready(flush=True):
            build(t)
        return [f for f in frames if f is not None], sync, calls, at_build

    late, late_sync, late_calls, _ = run(False)
    early, sync, calls, at_build = run(True)
    assert len(early) == len(late) >= 2 and late_sync.counters.decoded_early == 0
    taken = sum(len(f.cameras) for f in early)
    assert taken > 0 and sorted(calls) == sorted(late_calls) and len(set(calls)) == len(calls)
    assert sync.counters.decoded_early == taken and sync.counters.early_decode_cpu_ms > 0
    assert at_build and all(at_build)  # every image was decoded before its frame's build
    for a, b in zip(late, early, strict=True):
        assert set(a.cameras) == set(b.cameras)
        for ch in a.cameras:
            np.testing.assert_array_equal(a.cameras[ch].image, b.cameras[ch].image)
    victim = early[0].cameras["CAM_FRONT"].filename
    broken, sync, calls, _ = run(True, corrupt=victim)
    assert sync.counters.undecodable == {"CAM_FRONT": 1} and calls.count(victim) == 1
    assert broken[0].missing["CAM_FRONT"].startswith("undecodable:")
