"""Multi-sweep LIDAR and radar motion compensation against the devkit's `from_file_multisweep`.

The real keyframe has no sweeps and no radar, so each test adds them to a copy of its tables:
earlier sweeps with their own (moved) ego poses, and a front radar.
"""

import json

import numpy as np
from shared_data import REAL_SAMPLE, REAL_VERSION

from calibration import Transform, quaternion_from_yaw
from fusion.data.reader import NuScenesReader, ReaderOptions
from tests.fusion.data.test_sensor_io import radar_rows, write_radar_pcd


def _load(root, table):
    return json.loads((root / REAL_VERSION / f"{table}.json").read_text())


def _save(root, table, rows):
    (root / REAL_VERSION / f"{table}.json").write_text(json.dumps(rows))


def _moved_pose(pose, dt_s, k):
    """The ego k steps earlier: 10 m/s along its heading and 0.05 rad/s of yaw."""
    ego = Transform.from_translation_quaternion(
        pose["translation"], pose["rotation"], src="ego", dst="global"
    )
    back = Transform.from_translation_quaternion(
        [-10.0 * dt_s * k, 0.2 * k, 0.01 * k],
        quaternion_from_yaw(-0.05 * dt_s * k),
        src="ego",
        dst="ego",
    )
    moved = ego @ back
    return moved.translation.tolist(), moved.quaternion.tolist()


def add_sweeps(root, channel, n, period_us, make_file):
    """Chain n earlier non-key sample_data (under sweeps/) before `channel`'s keyframe."""
    sds, poses = _load(root, "sample_data"), _load(root, "ego_pose")
    key = next(r for r in sds if f"__{channel}__" in r["filename"] and r["is_key_frame"])
    key_pose = next(p for p in poses if p["token"] == key["ego_pose_token"])
    newer = key
    for k in range(1, n + 1):
        ts = key["timestamp"] - k * period_us
        t, q = _moved_pose(key_pose, period_us * 1e-6, k)
        pose_tok = f"pose-{channel}-{k}"
        poses.append({"token": pose_tok, "timestamp": ts, "translation": t, "rotation": q})
        ext = key["filename"].split(".", 1)[1]
        fname = f"sweeps/{channel}/log__{channel}__{ts}.{ext}"
        (root / fname).parent.mkdir(parents=True, exist_ok=True)
        make_file(root / fname, k)
        rec = {
            **key,
            "token": f"sd-{channel}-{k}",
            "timestamp": ts,
            "ego_pose_token": pose_tok,
            "filename": fname,
            "is_key_frame": False,
            "next": newer["token"],
            "prev": "",
        }
        newer["prev"] = rec["token"]
        sds.append(rec)
        newer = rec
    _save(root, "sample_data", sds)
    _save(root, "ego_pose", poses)


def add_radar(root, channel="RADAR_FRONT"):
    """A front radar keyframe 20 ms before the LIDAR keyframe."""
    sds, poses = _load(root, "sample_data"), _load(root, "ego_pose")
    sensors, calib, samples = (
        _load(root, "sensor"),
        _load(root, "calibrated_sensor"),
        _load(root, "sample"),
    )
    lidar = next(r for r in sds if "__LIDAR_TOP__" in r["filename"])
    lidar_pose = next(p for p in poses if p["token"] == lidar["ego_pose_token"])
    sensors.append({"token": "sensor-radar", "channel": channel, "modality": "radar"})
    calib.append(
        {
            "token": "calib-radar",
            "sensor_token": "sensor-radar",
            "translation": [3.41, 0.0, 0.5],
            "rotation": quaternion_from_yaw(0.02).tolist(),
            "camera_intrinsic": [],
        }
    )
    ts = lidar["timestamp"] - 20_000
    t, q = _moved_pose(lidar_pose, 0.02, 1)
    poses.append({"token": "pose-radar", "timestamp": ts, "translation": t, "rotation": q})
    fname = f"samples/{channel}/log__{channel}__{ts}.pcd"
    (root / fname).parent.mkdir(parents=True, exist_ok=True)
    write_radar_pcd(root / fname, radar_rows(60, seed=3))
    sds.append(
        {
            **lidar,
            "token": "sd-radar",
            "timestamp": ts,
            "ego_pose_token": "pose-radar",
            "calibrated_sensor_token": "calib-radar",
            "filename": fname,
            "prev": "",
            "next": "",
        }
    )
    for name, rows in [
        ("sensor", sensors),
        ("calibrated_sensor", calib),
        ("ego_pose", poses),
        ("sample_data", sds),
        ("sample", samples),
    ]:
        _save(root, name, rows)


def test_lidar_sweeps_match_devkit_multisweep(real_copy):
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.data_classes import LidarPointCloud

    key_file = next((real_copy / "samples" / "LIDAR_TOP").iterdir())
    rng = np.random.default_rng(0)

    def scan(path, k):
        pts = np.fromfile(key_file, np.float32).reshape(-1, 5)[rng.permutation(34688)[:5000]]
        pts.tofile(path)

    add_sweeps(real_copy, "LIDAR_TOP", 3, 50_000, scan)
    reader = NuScenesReader(
        real_copy, REAL_VERSION, ReaderOptions(lidar_sweeps=4, load_images=False)
    )
    lidar = reader.frame(REAL_SAMPLE).lidar
    assert lidar.num_sweeps == 4 and lidar.keyframe_points == 34688
    nusc = NuScenes(REAL_VERSION, str(real_copy), verbose=False)
    sample = nusc.get("sample", REAL_SAMPLE)
    pc, times = LidarPointCloud.from_file_multisweep(
        nusc, sample, "LIDAR_TOP", "LIDAR_TOP", nsweeps=4
    )
    # the devkit also drops the keyframe's close points; we keep the keyframe scan whole
    key = lidar.points[:34688]
    key_close = (np.abs(key[:, 0]) < 1) & (np.abs(key[:, 1]) < 1)
    assert key_close.sum() > 0
    ours = np.vstack([key[~key_close], lidar.points[34688:]])
    assert ours.shape[0] == pc.points.shape[1] < 34688 + 3 * 5000
    np.testing.assert_allclose(ours[:, :3], pc.points[:3].T, atol=2e-4)
    np.testing.assert_allclose(ours[:, 3], pc.points[3])
    np.testing.assert_allclose(ours[:, 4], times[0], atol=1e-6)
    np.testing.assert_allclose(np.unique(lidar.points[:, 4]), [0.0, 0.05, 0.1, 0.15], atol=1e-7)
    # compensation is real: the oldest sweep moved ~1.5 m
    oldest = np.fromfile(
        real_copy / nusc.get("sample_data", "sd-LIDAR_TOP-3")["filename"], np.float32
    )
    oldest = oldest.reshape(-1, 5)
    oldest = oldest[~((np.abs(oldest[:, 0]) < 1) & (np.abs(oldest[:, 1]) < 1))]
    moved = np.linalg.norm(lidar.points[-len(oldest) :, :3] - oldest[:, :3], axis=1)
    assert moved.min() > 1.0


def test_radar_sweeps_positions_and_velocities(real_copy):
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.data_classes import RadarPointCloud

    add_radar(real_copy)
    add_sweeps(
        real_copy,
        "RADAR_FRONT",
        2,
        77_000,
        lambda p, k: write_radar_pcd(p, radar_rows(30, seed=10 + k)),
    )
    reader = NuScenesReader(
        real_copy, REAL_VERSION, ReaderOptions(radar_sweeps=3, load_images=False)
    )
    # the sample's data index is built by the devkit from keyframe sample_data
    frame = reader.frame(REAL_SAMPLE)
    radar = frame.radars["RADAR_FRONT"]
    assert radar.num_sweeps == 3 and radar.points.shape[1] == 7
    assert frame.offsets_us["RADAR_FRONT"] == -20_000
    nusc = NuScenes(REAL_VERSION, str(real_copy), verbose=False)
    pc, times = RadarPointCloud.from_file_multisweep(
        nusc, nusc.get("sample", REAL_SAMPLE), "RADAR_FRONT", "LIDAR_TOP", nsweeps=3
    )
    assert radar.points.shape[0] == pc.points.shape[1] > 0
    np.testing.assert_allclose(radar.points[:, :3], pc.points[:3].T, atol=2e-4)
    np.testing.assert_allclose(radar.points[:, 3], pc.points[5], atol=1e-5)  # rcs
    np.testing.assert_allclose(radar.points[:, 6], times[0], atol=1e-6)
    # velocities: the compensated (vx_comp, vy_comp) rotated from each radar frame into LIDAR_TOP
    lidar_pose = frame.reference
    to_lidar = frame.sensor_to_lidar("RADAR_FRONT")
    v = np.column_stack([pc.points[8], pc.points[9], np.zeros(pc.points.shape[1])])
    n0 = int((times[0] == times[0][0]).sum())
    np.testing.assert_allclose(
        radar.points[:n0, 4:6], (v[:n0] @ to_lidar.rotation.T)[:, :2], atol=1e-4
    )
    assert lidar_pose.channel == "LIDAR_TOP"


def test_sweep_chain_shorter_than_asked(real_copy):
    reader = NuScenesReader(
        real_copy, REAL_VERSION, ReaderOptions(lidar_sweeps=10, load_images=False)
    )
    assert reader.frame(REAL_SAMPLE).lidar.num_sweeps == 1
