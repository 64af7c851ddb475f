"""The generated dataroot: the devkit loads it, ground truth agrees with the devkit's own
geometry, sensors keep the rig's timing, and the CAN bus agrees with ego_pose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nuscenes.can_bus.can_bus_api import NuScenesCanBus
from nuscenes.utils.data_classes import LidarPointCloud, RadarPointCloud
from nuscenes.utils.geometry_utils import points_in_box, view_points
from pyquaternion import Quaternion
from shared_data import REAL_ROOT

from calibration.geodesy import geodetic_to_enu
from fusion.config import ATTRIBUTE_NAMES, CAMERA_CHANNELS, DETECTION_CLASSES, RADAR_CHANNELS
from fusion.data.canbus import load_scene_inputs
from fusion.data.rig_file import load_rig
from fusion.synth.gnss import map_origin
from tests.fusion.synth.conftest import VERSION, generate

REAL = REAL_ROOT
CATEGORY_TO_CLASS = {
    "vehicle.car": "car",
    "vehicle.truck": "truck",
    "vehicle.bus.rigid": "bus",
    "vehicle.trailer": "trailer",
    "vehicle.construction": "construction_vehicle",
    "human.pedestrian.adult": "pedestrian",
    "vehicle.motorcycle": "motorcycle",
    "vehicle.bicycle": "bicycle",
    "movable_object.trafficcone": "traffic_cone",
    "movable_object.barrier": "barrier",
}


def _category(nusc, ann: dict) -> str:  # noqa: ANN001
    return nusc.get("category", nusc.get("instance", ann["instance_token"])["category_token"])[
        "name"
    ]


def test_devkit_loads_every_sensor(nusc, synth_root: Path) -> None:  # noqa: ANN001
    assert len(nusc.scene) == 2
    channels = {"LIDAR_TOP", *CAMERA_CHANNELS, *RADAR_CHANNELS}
    for sample in nusc.sample:
        assert set(sample["data"]) == channels
        assert sample["anns"]
        lidar = LidarPointCloud.from_file(nusc.get_sample_data_path(sample["data"]["LIDAR_TOP"]))
        assert lidar.points.shape[1] == 32 * 1084  # every firing of the HDL-32E, as nuScenes
        assert set(np.unique(lidar.points[3]).astype(int)) <= set(range(256))
        for ch in RADAR_CHANNELS:
            radar = RadarPointCloud.from_file(nusc.get_sample_data_path(sample["data"][ch]))
            assert radar.points.shape[0] == 18
    ring = np.fromfile(
        nusc.get_sample_data_path(nusc.sample[0]["data"]["LIDAR_TOP"]), "<f4"
    ).reshape(-1, 5)[:, 4]
    assert ring.min() == 0 and ring.max() == 31
    splits = json.loads((synth_root / VERSION / "splits.json").read_text())
    assert set(splits) == {"synth_train", "synth_val", "synth_all"}
    assert sorted(splits["synth_train"] + splits["synth_val"]) == sorted(splits["synth_all"])
    assert all(name.startswith("scene-") and len(name) == 10 for name in splits["synth_all"])


def test_num_lidar_pts_equals_devkit_points_in_box(nusc) -> None:  # noqa: ANN001
    checked = 0
    for sample in nusc.sample:
        path, boxes, _ = nusc.get_sample_data(sample["data"]["LIDAR_TOP"])
        pc = LidarPointCloud.from_file(path)
        for box in boxes:
            ann = nusc.get("sample_annotation", box.token)
            assert ann["num_lidar_pts"] == int(points_in_box(box, pc.points[:3]).sum()), box.token
            checked += 1
    assert checked > 50
    assert sum(a["num_lidar_pts"] > 0 for a in nusc.sample_annotation) > 20


def test_num_radar_pts_equals_devkit_count(nusc) -> None:  # noqa: ANN001
    for sample in nusc.sample:
        counts = {t: 0 for t in sample["anns"]}
        for ch in RADAR_CHANNELS:
            path, boxes, _ = nusc.get_sample_data(sample["data"][ch])
            pc = RadarPointCloud.from_file(path)  # the devkit's default filters
            for box in boxes:
                counts[box.token] += int(points_in_box(box, pc.points[:3]).sum())
        for tok, n in counts.items():
            assert nusc.get("sample_annotation", tok)["num_radar_pts"] == n
    assert sum(a["num_radar_pts"] > 0 for a in nusc.sample_annotation) > 5


def test_lidar_points_in_a_box_project_inside_its_outline(nusc) -> None:  # noqa: ANN001
    checked = 0
    for sample in nusc.sample[:3]:
        lidar_sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        pc = LidarPointCloud.from_file(nusc.get_sample_data_path(lidar_sd["token"]))
        _, lidar_boxes, _ = nusc.get_sample_data(lidar_sd["token"])
        cs_l = nusc.get("calibrated_sensor", lidar_sd["calibrated_sensor_token"])
        ep_l = nusc.get("ego_pose", lidar_sd["ego_pose_token"])
        for box in lidar_boxes:
            ann = nusc.get("sample_annotation", box.token)
            if ann["num_lidar_pts"] < 30:
                continue
            inside = pc.points[:3, points_in_box(box, pc.points[:3])]
            # LIDAR frame -> global at the LIDAR time
            g = (
                Quaternion(ep_l["rotation"]).rotation_matrix
                @ (
                    Quaternion(cs_l["rotation"]).rotation_matrix @ inside
                    + np.array(cs_l["translation"])[:, None]
                )
                + np.array(ep_l["translation"])[:, None]
            )
            for ch in CAMERA_CHANNELS:
                cam_sd = nusc.get("sample_data", sample["data"][ch])
                _, cam_boxes, k = nusc.get_sample_data(
                    cam_sd["token"], box_vis_level=0, selected_anntokens=[box.token]
                )
                if not cam_boxes:
                    continue
                cs = nusc.get("calibrated_sensor", cam_sd["calibrated_sensor_token"])
                ep = nusc.get("ego_pose", cam_sd["ego_pose_token"])
                p = Quaternion(ep["rotation"]).rotation_matrix.T @ (
                    g - np.array(ep["translation"])[:, None]
                )
                p = Quaternion(cs["rotation"]).rotation_matrix.T @ (
                    p - np.array(cs["translation"])[:, None]
                )
                front = p[2] > 0.5
                if front.sum() < 10:
                    continue
                uv = view_points(p[:, front], k, normalize=True)[:2]
                corners = view_points(cam_boxes[0].corners(), k, normalize=True)[:2]
                lo, hi = corners.min(1), corners.max(1)
                pad = (
                    0.05 * (hi - lo) + 2.0
                )  # moving actors shift a little between LIDAR and camera times
                ok = np.all((uv >= (lo - pad)[:, None]) & (uv <= (hi + pad)[:, None]), axis=0)
                assert ok.mean() > 0.97, (box.token, ch, ok.mean())
                checked += 1
    assert checked >= 5


def test_radar_velocities_agree_with_actor_velocities(nusc) -> None:  # noqa: ANN001
    errors = []
    for sample in nusc.sample:
        for ch in RADAR_CHANNELS:
            sd = nusc.get("sample_data", sample["data"][ch])
            path, boxes, _ = nusc.get_sample_data(sd["token"])
            pc = RadarPointCloud.from_file(path)
            cs = nusc.get("calibrated_sensor", sd["calibrated_sensor_token"])
            ep = nusc.get("ego_pose", sd["ego_pose_token"])
            rot = (
                Quaternion(ep["rotation"]).rotation_matrix
                @ Quaternion(cs["rotation"]).rotation_matrix
            )
            for box in boxes:
                vel = nusc.box_velocity(box.token)
                if not np.all(np.isfinite(vel)) or np.linalg.norm(vel[:2]) < 1.0:
                    continue
                sel = points_in_box(box, pc.points[:3])
                for i in np.flatnonzero(sel):
                    pos = rot @ pc.points[:3, i]
                    radial = pos[:2] / np.linalg.norm(pos[:2])
                    v_comp = (rot @ np.array([pc.points[8, i], pc.points[9, i], 0.0]))[:2]
                    expected = (vel[:2] @ radial) * radial
                    errors.append(np.linalg.norm(v_comp - expected))
    assert len(errors) >= 3
    assert np.median(errors) < 0.4, errors


def test_gnss_fixes_and_wheel_speeds_follow_the_truth(nusc, synth_root: Path) -> None:  # noqa: ANN001
    """Standard GNSS (the default): 10 Hz fixes at the map origin's real latitude, ~1.5 m off
    the true antenna; 100 Hz wheel speeds whose rear mean is the logged speed."""
    rig = load_rig()
    poses = sorted(nusc.ego_pose, key=lambda r: r["timestamp"])
    pt = np.array([r["timestamp"] for r in poses])
    pxy = np.array([r["translation"][:2] for r in poses])
    can = NuScenesCanBus(dataroot=str(synth_root))
    for scene in nusc.scene:
        imu, speed, gnss = load_scene_inputs(synth_root, scene["name"])
        assert len(imu) and len(speed) and len(gnss)
        assert np.all(np.diff(gnss.timestamps_us) == 100_000)
        assert abs(gnss.lat_deg[gnss.status >= 0] - 1.2995).max() < 0.01  # Singapore one-north
        good = gnss.status >= 0
        enu = geodetic_to_enu(
            gnss.lat_deg[good], gnss.lon_deg[good], gnss.alt_m[good], map_origin(rig.gnss)
        )
        t_meas = gnss.timestamps_us[good] - int(rig.gnss.time_offset_s * 1e6)
        truth = np.column_stack([np.interp(t_meas, pt, pxy[:, k]) for k in range(2)])
        err = np.linalg.norm(enu[:, :2] - truth, axis=1)
        assert 0.5 < np.median(err) < 3.0, np.median(err)  # 1.5 m per axis: median ~1.8 m
        assert abs(np.median(enu[:, 2]) - rig.gnss.translation[2]) < 3.0
        vel = can.get_messages(scene["name"], "pose")
        v = np.interp(speed.timestamps_us, [m["utime"] for m in vel], [m["vel"][0] for m in vel])
        assert np.median(np.abs(speed.speed - v)) < 0.05


def test_can_bus_poses_agree_with_ego_pose(nusc, synth_root: Path) -> None:  # noqa: ANN001
    can = NuScenesCanBus(dataroot=str(synth_root))
    for scene in nusc.scene:
        msgs = can.get_messages(scene["name"], "pose")
        ut = np.array([m["utime"] for m in msgs])
        pos = np.array([m["pos"] for m in msgs])
        assert np.all(np.diff(ut) == 20_000)  # 50 Hz
        imu = can.get_messages(scene["name"], "ms_imu")
        assert np.all(np.diff([m["utime"] for m in imu]) == 10_000)  # 100 Hz
        # the rig's IMU bias and noise: gravity plus bias on z, white noise of the set sigma
        imu_spec = load_rig().imu
        acc_z = np.array([m["linear_accel"][2] for m in imu])
        assert abs(acc_z.mean() - 9.81 - imu_spec.accel_bias[2]) < 0.02
        assert abs(acc_z.std() - imu_spec.accel_noise) < 0.02
        for msg in ("vehicle_monitor", "steeranglefeedback", "route"):
            assert can.get_messages(scene["name"], msg)
        assert isinstance(can.get_messages(scene["name"], "meta"), dict)
        sample = nusc.get("sample", scene["first_sample_token"])
        sd = nusc.get("sample_data", sample["data"]["LIDAR_TOP"])
        while sd["next"]:
            ep = nusc.get("ego_pose", sd["ego_pose_token"])
            x = np.interp(ep["timestamp"], ut, pos[:, 0])
            y = np.interp(ep["timestamp"], ut, pos[:, 1])
            assert np.hypot(x - ep["translation"][0], y - ep["translation"][1]) < 0.05
            sd = nusc.get("sample_data", sd["next"])
        # the logged speed matches the ego_pose displacement
        speed = np.interp(ut, ut, [m["vel"][0] for m in msgs])
        disp = np.hypot(*np.diff(pos[:, :2], axis=0).T) / 0.02
        assert np.median(np.abs(disp - speed[:-1])) < 0.1


def _stream(nusc, scene: dict, channel: str) -> list[dict]:  # noqa: ANN001
    sample = nusc.get("sample", scene["first_sample_token"])
    sd = nusc.get("sample_data", sample["data"][channel])
    while sd["prev"]:
        sd = nusc.get("sample_data", sd["prev"])
    out = [sd]
    while sd["next"]:
        sd = nusc.get("sample_data", sd["next"])
        out.append(sd)
    return out


def test_sensor_rates_match_the_rig(nusc) -> None:  # noqa: ANN001
    rig = load_rig()
    for scene in nusc.scene:
        lidar = np.diff([s["timestamp"] for s in _stream(nusc, scene, "LIDAR_TOP")])
        assert np.allclose(lidar, 1e6 / rig.lidar.rate_hz)
        for spec in rig.radars:
            dt = np.diff([s["timestamp"] for s in _stream(nusc, scene, spec.channel)])
            assert np.allclose(dt, 1e6 / spec.rate_hz, atol=1)
        for spec in rig.cameras:
            ts = np.array([s["timestamp"] for s in _stream(nusc, scene, spec.channel)])
            assert abs(1e6 * (len(ts) - 1) / (ts[-1] - ts[0]) - spec.rate_hz) < 0.5
        keys = np.diff([nusc.get("sample", t)["timestamp"] for t in _sample_tokens(nusc, scene)])
        assert np.allclose(keys, 500_000)


def _sample_tokens(nusc, scene: dict) -> list[str]:  # noqa: ANN001
    out, tok = [], scene["first_sample_token"]
    while tok:
        out.append(tok)
        tok = nusc.get("sample", tok)["next"]
    return out


def test_cameras_fire_like_the_real_rig(nusc) -> None:  # noqa: ANN001
    """Camera keyframes trail the LIDAR keyframe as in the real nuScenes keyframe (within 3 ms)."""
    real = {}
    sd = json.loads((REAL / "v1.0-mini" / "sample_data.json").read_text())
    lidar_ts = next(r["timestamp"] for r in sd if "LIDAR_TOP" in r["filename"])
    for r in sd:
        ch = r["filename"].split("/")[1]
        real[ch] = r["timestamp"] - lidar_ts
    for sample in nusc.sample:
        for ch in CAMERA_CHANNELS:
            offset = nusc.get("sample_data", sample["data"][ch])["timestamp"] - sample["timestamp"]
            assert abs(offset - real[ch]) < 3000, (ch, offset, real[ch])


def test_every_class_near_the_ego_with_valid_attributes(nusc) -> None:  # noqa: ANN001
    valid = {
        "car": "vehicle",
        "truck": "vehicle",
        "bus": "vehicle",
        "trailer": "vehicle",
        "construction_vehicle": "vehicle",
        "pedestrian": "pedestrian",
        "motorcycle": "cycle",
        "bicycle": "cycle",
        "traffic_cone": None,
        "barrier": None,
    }
    for scene in nusc.scene:
        seen = set()
        for tok in _sample_tokens(nusc, scene):
            sample = nusc.get("sample", tok)
            ep = nusc.get(
                "ego_pose", nusc.get("sample_data", sample["data"]["LIDAR_TOP"])["ego_pose_token"]
            )
            for ann_tok in sample["anns"]:
                ann = nusc.get("sample_annotation", ann_tok)
                cls = CATEGORY_TO_CLASS[_category(nusc, ann)]
                d = np.hypot(
                    ann["translation"][0] - ep["translation"][0],
                    ann["translation"][1] - ep["translation"][1],
                )
                assert d <= 60.0 + 1e-6
                if d <= 50.0:
                    seen.add(cls)
                attrs = [nusc.get("attribute", a)["name"] for a in ann["attribute_tokens"]]
                if valid[cls] is None:
                    assert attrs == []
                else:
                    assert len(attrs) == 1 and attrs[0].startswith(valid[cls])
                assert ann["visibility_token"] in {"1", "2", "3", "4"}
        assert seen == set(DETECTION_CLASSES), set(DETECTION_CLASSES) - seen
    vis = {a["visibility_token"] for a in nusc.sample_annotation}
    assert {"1", "4"} <= vis


def test_scene_records_carry_their_condition(nusc) -> None:  # noqa: ANN001
    from fusion.eval.evaluate import scene_condition

    # --conditions day,night: scene i gets condition i mod 2, as data in the scene record
    assert [s["condition"] for s in nusc.scene] == ["day", "night"]
    assert [scene_condition(s) for s in nusc.scene] == ["day", "night"]
    assert [a["name"] for a in nusc.attribute] == list(ATTRIBUTE_NAMES)


def test_our_reader_reads_a_generated_frame(synth_root: Path, nusc) -> None:  # noqa: ANN001
    from fusion.data.reader import NuScenesReader

    reader = NuScenesReader(synth_root, VERSION)
    token = nusc.scene[0]["last_sample_token"]
    frame = reader.frame(token)
    assert frame.lidar is not None and frame.lidar.points.shape[1] == 5
    assert frame.lidar.num_sweeps > 1
    assert set(frame.cameras) == set(CAMERA_CHANNELS)
    assert frame.cameras["CAM_FRONT"].image.shape == (126, 224, 3)
    assert set(frame.radars) == set(RADAR_CHANNELS)
    assert frame.boxes is not None and len(frame.boxes) == len(nusc.get("sample", token)["anns"])
    assert frame.ego_motion is not None and frame.ego_motion.source == "can_bus"
    assert reader.split_scenes("synth_all") == sorted(s["name"] for s in nusc.scene)


def test_rerun_skips_complete_scenes_and_refuses_other_arguments(synth_root: Path) -> None:
    rc, out = generate(synth_root)
    assert rc == 0 and "2 already complete" in out
    import argparse

    from fusion.commands import generate as command
    from fusion.errors import FusionError

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--out", str(synth_root), "--seed", "8", "--scenes", "1"])
    with pytest.raises(FusionError, match="other arguments"):
        command.run(args)


def test_refuses_a_foreign_directory_and_bad_arguments(tmp_path: Path) -> None:
    import argparse

    from fusion.commands import generate as command
    from fusion.errors import FusionError

    (tmp_path / "notes.txt").write_text("mine")
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    with pytest.raises(FusionError, match="not empty"):
        command.run(parser.parse_args(["--out", str(tmp_path)]))
    for bad in (["--image-size", "big"], ["--conditions", "snow"], ["--scenes", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["--out", str(tmp_path / "x"), *bad])


def test_validate_passes_on_generated_data(synth_root: Path) -> None:
    from fusion.data.validate import validate

    report = validate(synth_root, VERSION, deep_images=True)
    assert report.n_errors == 0, report.render()
    assert report.n_warnings == 0, report.render()


def test_same_seed_same_output(tmp_path: Path) -> None:
    import hashlib

    from shared_data import generate_small

    def make(out: Path, seed: str) -> dict[str, str]:
        generate_small(out, int(seed), "rain")
        return {
            str(p.relative_to(out)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*"))
            if p.is_file() and ".synth" not in p.parts
        }

    a = make(tmp_path / "a", "3")
    b = make(tmp_path / "b", "3")
    c = make(tmp_path / "c", "4")
    assert a == b
    # another seed: another world
    lidar_a = {v for k, v in a.items() if k.endswith(".pcd.bin")}
    lidar_c = {v for k, v in c.items() if k.endswith(".pcd.bin")}
    assert lidar_a and not lidar_a & lidar_c
    assert a["v1.0-synth/sample_annotation.json"] != c["v1.0-synth/sample_annotation.json"]


def test_devkit_detection_eval_scores_ground_truth_as_perfect(
    nusc, synth_root: Path, tmp_path: Path
) -> None:  # noqa: ANN001,E501
    """The devkit's own evaluation runs on the custom split; ground truth submitted as
    detections scores AP ~1 for every class with evaluable ground truth (in its class range,
    with points)."""
    import contextlib
    import io

    from nuscenes.eval.common.config import config_factory
    from nuscenes.eval.detection.evaluate import DetectionEval
    from nuscenes.utils.splits import get_scenes_of_split

    val = set(get_scenes_of_split("synth_val", nusc))
    results = {}
    for sample in nusc.sample:
        if nusc.get("scene", sample["scene_token"])["name"] not in val:
            continue
        boxes = []
        for tok in sample["anns"]:
            ann = nusc.get("sample_annotation", tok)
            if ann["num_lidar_pts"] + ann["num_radar_pts"] == 0:
                continue
            attrs = [nusc.get("attribute", a)["name"] for a in ann["attribute_tokens"]]
            boxes.append(
                {
                    "sample_token": sample["token"],
                    "translation": ann["translation"],
                    "size": ann["size"],
                    "rotation": ann["rotation"],
                    "velocity": list(nusc.box_velocity(tok)[:2]),
                    "detection_name": CATEGORY_TO_CLASS[_category(nusc, ann)],
                    "detection_score": 0.9,
                    "attribute_name": attrs[0] if attrs else "",
                }
            )
        results[sample["token"]] = boxes
    meta = {
        "use_camera": True,
        "use_lidar": True,
        "use_radar": True,
        "use_map": False,
        "use_external": False,
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"meta": meta, "results": results}))
    with contextlib.redirect_stdout(io.StringIO()):
        ev = DetectionEval(
            nusc,
            config_factory("detection_cvpr_2019"),
            str(path),
            "synth_val",
            str(tmp_path / "eval"),
            verbose=False,
        )
        metrics, _ = ev.evaluate()
    scores = metrics.serialize()
    present = {c for c, ap in scores["mean_dist_aps"].items() if ap > 0}
    assert len(present) >= 6, scores["mean_dist_aps"]
    for cls in present:
        assert scores["mean_dist_aps"][cls] > 0.95, (cls, scores["mean_dist_aps"][cls])


def test_contact_sheet_has_a_row_per_scene(synth_root: Path, tmp_path: Path) -> None:
    import cv2

    from fusion.outputs.plots import contact_sheet

    out = contact_sheet(synth_root, VERSION, tmp_path / "sheet.png", cam_width=96)
    sheet = cv2.imread(str(out))
    cam_h = round(96 * 9 / 16)
    # two scenes; each row: 3 x 2 camera tiles, then a square BEV of the grid's height
    assert sheet.shape == (2 * 2 * cam_h, 3 * 96 + 2 * cam_h, 3)


def test_camera_jpegs_use_the_quantisation_tables_of_real_nuscenes(synth_root: Path) -> None:
    """The generator encodes at nuScenes' own JPEG quality (80): the same quantisation tables
    as the real keyframe's images, so images cost what real ones cost to store and decode."""
    from PIL import Image

    def tables(path: Path) -> dict[int, list[int]]:
        with Image.open(path) as im:
            return {k: list(v) for k, v in im.quantization.items()}

    real = {str(tables(p)) for p in (REAL / "samples").rglob("*.jpg")}
    assert len(real) == 1  # every real camera: one pair of tables
    synth = sorted((synth_root / "samples" / "CAM_FRONT").glob("*.jpg"))
    assert synth
    assert str(tables(synth[0])) in real


def test_jpeg_quality_option_changes_the_encoding() -> None:
    import io

    from PIL import Image

    from fusion.data.sensor_io import encode_jpeg
    from fusion.synth.cameras import NUSCENES_JPEG_QUALITY

    img = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    lo, hi = encode_jpeg(img, NUSCENES_JPEG_QUALITY), encode_jpeg(img, 95)
    assert NUSCENES_JPEG_QUALITY == 80 and len(lo) < len(hi)
    with Image.open(io.BytesIO(lo)) as a, Image.open(io.BytesIO(hi)) as b:
        assert a.quantization[0][0] > b.quantization[0][0]
    with pytest.raises(ValueError, match="1..100"):
        encode_jpeg(img, 0)
