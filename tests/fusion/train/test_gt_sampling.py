"""Ground-truth sampling (`fusion.train.gt_sampling`) on the real scene-0916 keyframes of
tests/data: what is cut, where it is pasted, and what the training sample then holds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from shared_data import REAL_KEYFRAMES, REAL_ROOT, REAL_VERSION

from fusion.config import DETECTION_CLASSES, LIDAR_CHANNEL, GtSampling, check_config, load_config
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.errors import ConfigError
from fusion.frame import Frame
from fusion.train.dataset import FrameDataset, training_sample
from fusion.train.gt_sampling import (
    EGO_CLEARANCE_M,
    ObjectDatabase,
    build_database,
    cut_objects,
    paste_objects,
)
from kernels.points_in_boxes import count_points_in_boxes, points_in_boxes

CFG = load_config("real_sweeps10")
ALL_CLASSES = GtSampling(probability=1.0, max_per_class=(4,) * len(DETECTION_CLASSES))


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    reader = NuScenesReader(
        REAL_KEYFRAMES, REAL_VERSION, ReaderOptions.from_config(CFG, load_images=False), CFG
    )
    return [reader.frame(t) for t in reader.sample_tokens("mini_val")]


@pytest.fixture(scope="module")
def database(frames: list[Frame]) -> ObjectDatabase:
    return build_database(frames, min_points=5, data=["two keyframes"])


@pytest.fixture(scope="module")
def target() -> Frame:
    """The unseen keyframe of scene-0553: pasted into, not cut from."""
    reader = NuScenesReader(
        REAL_ROOT, REAL_VERSION, ReaderOptions.from_config(CFG, load_images=False), CFG
    )
    return reader.frame(reader.sample_tokens("mini_train")[0])


def test_cut_objects_hold_their_points_and_nothing_else(frames: list[Frame]) -> None:
    frame = frames[0]
    objects = cut_objects(frame, min_points=5)
    assert objects and all(len(o.points) >= 5 for o in objects)
    # each box that qualifies is cut, each with the scan's points inside it, none outside
    scan = frame.lidar.points[: frame.lidar.keyframe_points]
    counts = count_points_in_boxes(scan, frame.boxes.as_array(), backend="numpy")
    expected = {
        frame.boxes.tokens[i]
        for i, name in enumerate(frame.boxes.detection_names)
        if name is not None and counts[i] >= 5
    }
    assert {o.token for o in objects} == expected
    for o in objects:
        assert (points_in_boxes(o.points, o.box[None], backend="numpy") == 0).all()
        i = frame.boxes.tokens.index(o.token)
        assert len(o.points) == counts[i]  # a point in two boxes is in both objects
        assert o.detection_name == frame.boxes.detection_names[i]
    # a higher floor keeps fewer
    assert len(cut_objects(frame, min_points=50)) < len(objects)


def test_database_counts_by_class(database: ObjectDatabase) -> None:
    counts = database.counts()
    assert set(counts) <= set(DETECTION_CLASSES)
    assert counts["car"] > 10 and counts["pedestrian"] > 0
    assert database.describe() == {"data": ["two keyframes"], "objects": counts}


def _footprints_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.hypot(a[0] - b[0], a[1] - b[1]) < 0.5 * (np.hypot(*a[3:5]) + np.hypot(*b[3:5])))


@pytest.mark.parametrize("seed", range(4))
def test_pasted_objects_land_free_and_whole(
    database: ObjectDatabase, target: Frame, seed: int
) -> None:
    out = paste_objects(target, database, ALL_CLASSES, CFG, np.random.default_rng(seed))
    n_old = len(target.boxes)
    assert out.boxes.tokens[:n_old] == target.boxes.tokens
    pasted = out.boxes.as_array()[n_old:]
    assert len(pasted) > 0
    old = target.boxes.as_array()
    x0, y0, _, x1, y1, _ = CFG.point_cloud.point_range
    for i, box in enumerate(pasted):
        assert not any(_footprints_overlap(box, b) for b in old)
        assert not any(_footprints_overlap(box, b) for b in pasted[i + 1 :])
        assert x0 < box[0] < x1 and y0 < box[1] < y1
        assert np.hypot(box[0], box[1]) > EGO_CLEARANCE_M
    # the new scan: the pasted points first, as keyframe points (dt 0), then what was kept
    lidar = out.lidar
    assert (lidar.points[: lidar.keyframe_points, 4] == 0).all()
    inside = points_in_boxes(lidar.points, pasted, backend="numpy")
    counts = np.bincount(inside[inside >= 0], minlength=len(pasted))
    # every point inside a pasted box is the object's own: the frame's there were removed
    assert counts.tolist() == out.boxes.num_lidar_pts[n_old:].tolist()
    assert (out.boxes.num_radar_pts[n_old:] == 0).all()
    removed = points_in_boxes(target.lidar.points, pasted, backend="numpy") >= 0
    assert len(lidar.points) == len(target.lidar.points) - removed.sum() + counts.sum()
    # the global pose of a pasted box is its LIDAR pose through the reference's
    ref = out.reference
    m = ref.ego_to_global.matrix @ ref.sensor_to_ego.matrix
    centers = pasted[:, :3] @ m[:3, :3].T + m[:3, 3]
    np.testing.assert_allclose(out.boxes.center_global[n_old:], centers)
    assert all(t.startswith("pasted:") for t in out.boxes.tokens[n_old:])


def test_without_rotation_an_object_keeps_its_box(database: ObjectDatabase) -> None:
    params = dataclasses.replace(ALL_CLASSES, rotate=False)
    empty = dataclasses.replace(_frame_without_boxes(database), boxes=None)
    out = paste_objects(empty, database, params, CFG, np.random.default_rng(0))
    by_token = {o.token: o for objs in database.objects.values() for o in objs}
    assert len(out.boxes) > 0
    for token, box in zip(out.boxes.tokens, out.boxes.as_array(), strict=True):
        np.testing.assert_allclose(box, by_token[token.removeprefix("pasted:")].box)


def _frame_without_boxes(database: ObjectDatabase) -> Frame:
    reader = NuScenesReader(
        REAL_ROOT, REAL_VERSION, ReaderOptions.from_config(CFG, load_images=False), CFG
    )
    return reader.frame(reader.sample_tokens("mini_train")[0])


def test_turned_objects_keep_their_range_and_face(database: ObjectDatabase, target: Frame) -> None:
    out = paste_objects(target, database, ALL_CLASSES, CFG, np.random.default_rng(3))
    by_token = {o.token: o for objs in database.objects.values() for o in objs}
    n_old = len(target.boxes)
    for token, box in zip(out.boxes.tokens[n_old:], out.boxes.as_array()[n_old:], strict=True):
        src = by_token[token.removeprefix("pasted:")]
        assert np.hypot(*box[:2]) == pytest.approx(np.hypot(*src.box[:2]))
        assert box[2] == src.box[2] and (box[3:6] == src.box[3:6]).all()
        # bearing minus heading (the side the sensor sees) is unchanged
        seen = np.arctan2(box[1], box[0]) - box[6]
        seen_src = np.arctan2(src.box[1], src.box[0]) - src.box[6]
        assert np.cos(seen - seen_src) == pytest.approx(1.0)


def _pasted(sample_boxes: int, frame: Frame) -> int:
    return sample_boxes - sum(
        1
        for i, n in enumerate(frame.boxes.detection_names)
        if n is not None and frame.boxes.num_lidar_pts[i] + frame.boxes.num_radar_pts[i] > 0
    )


def _cfg(params: GtSampling):
    cfg = dataclasses.replace(CFG, train=dataclasses.replace(CFG.train, gt_sampling=params))
    check_config(cfg)
    return cfg


def test_training_sample_pastes_only_where_the_lidar_is_read(
    database: ObjectDatabase, target: Frame
) -> None:
    cfg = _cfg(ALL_CLASSES)
    target = dataclasses.replace(target, cameras={})  # no images needed

    def centers(variant: str, seed: int, dropout: float = 0.0) -> int:
        s = training_sample(
            target, cfg, variant, cfg.params, np.random.default_rng(seed),
            modality_dropout=dropout, database=database,
        )  # fmt: skip
        return int(s.targets.mask.sum())

    plain = training_sample(target, cfg, "lidar", cfg.params)  # no rng: nothing pasted
    base = int(plain.targets.mask.sum())
    assert centers("lidar", 0) > base
    assert centers("camera", 0) == base  # the cameras would not see a pasted object
    # a frame whose LIDAR modality dropout removed gets nothing pasted
    seen_drop = False
    for seed in range(40):
        rng = np.random.default_rng(seed)
        from fusion.train.dataset import _draw_dropout

        drop = _draw_dropout(rng, 0.5)
        if LIDAR_CHANNEL in drop:
            seen_drop = True
            assert centers("fusion", seed, dropout=0.5) == base
    assert seen_drop
    # probability 0: no paste, and the random draws of a run without sampling are unchanged
    off = _cfg(dataclasses.replace(ALL_CLASSES, probability=0.0))
    a = training_sample(
        target, off, "lidar", off.params, np.random.default_rng(5), database=database
    )
    b = training_sample(target, off, "lidar", off.params, np.random.default_rng(5))
    assert np.array_equal(a.targets.heatmap, b.targets.heatmap)
    assert int(a.targets.mask.sum()) == base


def test_dataset_draws_the_same_paste_for_the_same_index(database: ObjectDatabase) -> None:
    cfg = _cfg(ALL_CLASSES)

    class Source:
        def frame(self, token: str) -> Frame:
            return dataclasses.replace(_frame_without_boxes(database), cameras={})

    ds = FrameDataset(Source(), ["a", "b"], cfg, "lidar", cfg.params, seed=1, database=database)
    first, again, other = ds[(0, 1)], ds[(0, 1)], ds[(1, 1)]
    assert np.array_equal(first.inputs.voxels.features, again.inputs.voxels.features)
    assert np.array_equal(first.targets.heatmap, again.targets.heatmap)
    assert not np.array_equal(first.targets.heatmap, other.targets.heatmap)


def test_config_checks_the_class_counts() -> None:
    with pytest.raises(ConfigError, match="max_per_class"):
        _cfg(dataclasses.replace(ALL_CLASSES, max_per_class=(1, 2)))
    with pytest.raises(ConfigError, match="probability"):
        _cfg(dataclasses.replace(ALL_CLASSES, probability=1.5))


def test_training_run_records_its_database(tmp_path, capsys) -> None:
    """`fusion train` with sampling on cuts the --gt-database (here the two scene-0916
    keyframes) and names it with its object counts in the weights' run record."""
    from model_fakes import tiny_config

    from fusion.cli import main
    from fusion.config import save_config
    from fusion.model.weights import read_metadata

    cfg = tiny_config()
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, gt_sampling=ALL_CLASSES))
    cfg_path = save_config(cfg, tmp_path / "gt.toml")
    out = tmp_path / "run"
    argv = [
        "train", "--config", str(cfg_path), "--dataroot", str(REAL_ROOT), "--version",
        REAL_VERSION, "--split", "mini_train", "--model", "lidar", "--out", str(out),
        "--epochs", "1", "--batch-size", "1", "--workers", "0", "--no-progress",
        "--gt-database", f"{REAL_KEYFRAMES},{REAL_VERSION},mini_val",
    ]  # fmt: skip
    assert main(argv) == 0
    run = json.loads(read_metadata(out / "lidar.safetensors")["run"])
    assert run["gt_database"]["data"] == [f"{REAL_KEYFRAMES} {REAL_VERSION} mini_val"]
    assert run["gt_database"]["objects"]["car"] > 10
    capsys.readouterr()
    assert main([*argv[:-1], f"{REAL_KEYFRAMES},{REAL_VERSION}"]) == 2
    assert "--gt-database wants DATAROOT,VERSION,SPLIT" in capsys.readouterr().err
    # a database named for a config that samples nothing is one clear error, not ignored
    off = save_config(tiny_config(), tmp_path / "off.toml")
    argv[argv.index("--config") + 1] = str(off)
    argv[argv.index("--out") + 1] = str(tmp_path / "off")
    assert main(argv) == 2
    assert "[train.gt_sampling] is off" in capsys.readouterr().err
