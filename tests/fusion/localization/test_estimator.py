"""The pose estimator on analytic drives (constant velocity, constant turn): convergence within
its covariance, gating, a GNSS outage, causality, bad input rejected and counted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from calibration import Transform, quaternion_from_yaw, yaw_from_quaternion
from calibration.geodesy import GeodeticOrigin, enu_to_geodetic
from fusion.localization import (
    GnssFixes,
    ImuSamples,
    LocalizationConfig,
    PoseEstimator,
    SpeedSamples,
    estimate_poses,
)
from fusion.localization.eskf import chi2_quantile

ORIGIN = GeodeticOrigin(1.2995, 103.7872, 15.0)  # Singapore one-north
G = 9.81


def drive(duration_s: float, speed: float, yaw_rate: float, yaw0: float = 0.3):
    """An analytic drive: time (s), ego position (T, 3), yaw (T,) at 100 Hz."""
    t = np.arange(0.0, duration_s, 0.01)
    yaw = yaw0 + yaw_rate * t
    if abs(yaw_rate) < 1e-9:
        x = speed * t * math.cos(yaw0)
        y = speed * t * math.sin(yaw0)
    else:
        r = speed / yaw_rate
        x = r * (np.sin(yaw) - math.sin(yaw0))
        y = -r * (np.cos(yaw) - math.cos(yaw0))
    return t, np.column_stack([x, y, np.zeros_like(t)]), yaw


def sensors(
    t,
    pos,
    yaw,
    speed,
    yaw_rate,
    *,
    gnss_sigma=1.5,
    gnss_hz=10,
    seed=0,
    antenna=(0.0, 0.0, 0.0),
    outage=None,
    fix_lag_s=0.0,
):
    """IMU (ego frame = IMU frame) with bias and noise, wheel speed, and GNSS fixes of the
    antenna (the first fix at the start point plus noise)."""
    rng = np.random.default_rng(seed)
    n = len(t)
    us = np.round(t * 1e6).astype(np.int64) + 1_000_000_000
    gyro = np.column_stack([np.zeros(n), np.zeros(n), np.full(n, yaw_rate)])
    gyro = gyro + np.array([3e-4, -2e-4, 4e-4]) + rng.normal(0, 0.002, (n, 3))
    accel = np.column_stack([np.zeros(n), np.full(n, speed * yaw_rate), np.full(n, G)])
    accel = accel + np.array([0.02, -0.01, 0.03]) + rng.normal(0, 0.05, (n, 3))
    imu = ImuSamples(us, gyro, accel)
    sp = SpeedSamples(us, np.full(n, speed) + rng.normal(0, 0.02, n))
    step = int(round(100 / gnss_hz))
    k = np.arange(0, n, step)
    if outage is not None:
        k = k[(t[k] < outage[0]) | (t[k] >= outage[1])]
    ant = np.asarray(antenna)
    ant_w = pos[k] + np.column_stack(
        [
            np.cos(yaw[k]) * ant[0] - np.sin(yaw[k]) * ant[1],
            np.sin(yaw[k]) * ant[0] + np.cos(yaw[k]) * ant[1],
            np.full(len(k), ant[2]),
        ]
    )
    noisy = ant_w + rng.normal(0, gnss_sigma, (len(k), 3)) * [1, 1, 1.5]
    lat, lon, alt = enu_to_geodetic(noisy, ORIGIN)
    cov = np.tile(np.diag([gnss_sigma**2, gnss_sigma**2, (1.5 * gnss_sigma) ** 2]), (len(k), 1, 1))
    lag_us = int(round(fix_lag_s * 1e6))
    gnss = GnssFixes(
        us[k] + lag_us,
        lat,
        lon,
        alt,
        cov,
        np.full(len(k), 2, np.int64),
        np.zeros(len(k), np.int64),
    )
    return imu, gnss, sp


def truth_at(poses, t, pos, yaw, first_fix_enu):
    """True ego position (in the ENU frame of the first fix) and yaw at the pose times."""
    ts = (poses.timestamps_us - 1_000_000_000) * 1e-6
    p = np.column_stack([np.interp(ts, t, pos[:, k]) for k in range(3)]) - first_fix_enu
    return p, np.interp(ts, t, yaw)


def first_fix_enu(gnss):
    from calibration.geodesy import geodetic_to_enu

    return geodetic_to_enu(gnss.lat_deg[0], gnss.lon_deg[0], gnss.alt_m[0], ORIGIN)


def heading_errors(poses, yaw_true):
    est = np.array([yaw_from_quaternion(q) for q in poses.rotations])
    return (est - yaw_true + np.pi) % (2 * np.pi) - np.pi


@pytest.mark.parametrize(("speed", "yaw_rate"), [(10.0, 0.0), (8.0, 0.12)])
def test_converges_within_covariance(speed, yaw_rate):
    t, pos, yaw = drive(40.0, speed, yaw_rate)
    imu, gnss, sp = sensors(t, pos, yaw, speed, yaw_rate, gnss_sigma=1.5)
    poses = estimate_poses(imu, gnss, sp, LocalizationConfig())
    assert len(poses) > 3000 and poses.start_us is not None
    p_true, yaw_true = truth_at(poses, t, pos, yaw, first_fix_enu(gnss))
    err = poses.translations - p_true
    late = slice(len(poses) // 2, None)  # converged half
    rms = float(np.sqrt((err[late, :2] ** 2).sum(1).mean()))
    assert rms < 0.6, rms
    # normalized estimation error squared (horizontal): consistent within its covariance
    cov = poses.covariances[late, :2, :2]
    nees = np.einsum("ni,nij,nj->n", err[late, :2], np.linalg.inv(cov), err[late, :2])
    assert float(nees.mean()) < 2 * 2.0, float(nees.mean())  # 2 dof: mean 2 when consistent
    dyaw = heading_errors(poses, yaw_true)[late]
    assert math.degrees(float(np.sqrt((dyaw**2).mean()))) < 0.5
    sig_yaw = np.sqrt(poses.covariances[late, 5, 5])
    assert float(np.mean((dyaw / sig_yaw) ** 2)) < 3.0


def test_rtk_is_centimetric():
    t, pos, yaw = drive(40.0, 8.0, 0.1)
    imu, gnss, sp = sensors(t, pos, yaw, 8.0, 0.1, gnss_sigma=0.02)
    poses = estimate_poses(imu, gnss, sp, LocalizationConfig(gnss_sigma=0.02))
    p_true, _ = truth_at(poses, t, pos, yaw, first_fix_enu(gnss))
    err = poses.translations - p_true
    late = slice(len(poses) // 2, None)
    assert float(np.sqrt((err[late, :2] ** 2).sum(1).mean())) < 0.05


def test_lever_arm_and_extrinsic_are_applied():
    """The antenna 1.5 m ahead and 1.8 m up, the IMU 1 m ahead of the ego origin: the ego
    origin is still found to centimetres (RTK); without the lever arm it is off by ~1.5 m."""
    t, pos, yaw = drive(40.0, 8.0, 0.1)
    antenna = (1.5, 0.0, 1.8)
    # the IMU sits 1 m ahead of the ego origin: its own motion adds w x r to the accel, which
    # at 0.1 rad/s is 0.01 m/s^2 (below the noise), and shifts nothing else
    imu, gnss, sp = sensors(t, pos, yaw, 8.0, 0.1, gnss_sigma=0.02, antenna=antenna)
    imu_to_ego = Transform.from_translation_quaternion(
        [1.0, 0.0, 0.0], [1, 0, 0, 0], src="imu", dst="ego"
    )
    ok = LocalizationConfig(gnss_sigma=0.02, antenna_in_ego=antenna, imu_to_ego=imu_to_ego)
    poses = estimate_poses(imu, gnss, sp, ok)
    p_true, _ = truth_at(poses, t, pos, yaw, first_fix_enu(gnss))
    late = slice(len(poses) // 2, None)
    err_ok = np.linalg.norm((poses.translations - p_true)[late, :2], axis=1).mean()
    blind = estimate_poses(imu, gnss, sp, LocalizationConfig(gnss_sigma=0.02))
    err_blind = np.linalg.norm((blind.translations - p_true[: len(blind)])[late, :2], axis=1)
    assert err_ok < 0.05, err_ok
    assert err_blind.mean() > 1.0


def test_time_offset_configured():
    """Fixes stamped 200 ms late: with the offset configured the error stays centimetric."""
    t, pos, yaw = drive(40.0, 10.0, 0.0)
    imu, gnss, sp = sensors(t, pos, yaw, 10.0, 0.0, gnss_sigma=0.02, fix_lag_s=0.2)
    late = slice(2000, None)

    def err(offset):
        poses = estimate_poses(
            imu, gnss, sp, LocalizationConfig(gnss_sigma=0.02, gnss_time_offset_s=offset)
        )
        p_true, _ = truth_at(poses, t, pos, yaw, first_fix_enu(gnss))
        return float(np.linalg.norm((poses.translations - p_true)[late, :2], axis=1).mean())

    assert err(0.2) < 0.05
    assert err(0.0) > 0.5  # 10 m/s x 0.2 s unaccounted for


def test_gating_rejects_outliers():
    t, pos, yaw = drive(40.0, 10.0, 0.05)
    imu, gnss, sp = sensors(t, pos, yaw, 10.0, 0.05, gnss_sigma=0.5)
    lat = gnss.lat_deg.copy()
    bad = np.arange(100, 400, 15)  # 20 fixes thrown 25 m north (multipath)
    lat[bad] += 25.0 / 111_000.0
    corrupted = GnssFixes(
        gnss.timestamps_us,
        lat,
        gnss.lon_deg,
        gnss.alt_m,
        gnss.covariance,
        gnss.covariance_type,
        gnss.status,
    )
    cfg = LocalizationConfig(gnss_sigma=0.5)
    clean = estimate_poses(imu, gnss, sp, cfg)
    poses = estimate_poses(imu, corrupted, sp, cfg)
    assert poses.counts["gnss_gated"] >= len(bad)
    assert poses.counts["gnss_gated"] <= len(bad) + 3  # and few good fixes are lost
    diff = np.abs(poses.translations - clean.translations).max()
    assert diff < 0.3, diff
    no_gate = LocalizationConfig(gnss_sigma=0.5, gate_probability=1.0)
    ungated = estimate_poses(imu, corrupted, sp, no_gate)
    assert np.abs(ungated.translations - clean.translations).max() > 1.0


def test_outage_drift_is_bounded_and_covariance_grows():
    t, pos, yaw = drive(45.0, 10.0, 0.08)
    imu, gnss, sp = sensors(t, pos, yaw, 10.0, 0.08, gnss_sigma=1.5, outage=(30.0, 40.0))
    poses = estimate_poses(imu, gnss, sp, LocalizationConfig())
    p_true, _ = truth_at(poses, t, pos, yaw, first_fix_enu(gnss))
    ts = (poses.timestamps_us - 1_000_000_000) * 1e-6
    err = np.linalg.norm((poses.translations - p_true)[:, :2], axis=1)
    during = (ts >= 30.0) & (ts < 40.0)
    assert err[during].max() < 1.0, err[during].max()
    sig = np.sqrt(poses.covariances[:, 0, 0] + poses.covariances[:, 1, 1])
    i0, i1 = np.flatnonzero(during)[[0, -1]]
    assert sig[i1] > 1.5 * sig[i0]  # the filter knows it is dead-reckoning


def test_causal_no_pose_uses_a_later_message():
    t, pos, yaw = drive(20.0, 9.0, 0.1)
    imu, gnss, sp = sensors(t, pos, yaw, 9.0, 0.1)
    full = estimate_poses(imu, gnss, sp)
    cut_us = int(imu.timestamps_us[1200])

    def head(s, n_fields):
        keep = s.timestamps_us <= cut_us
        return type(s)(*(getattr(s, f)[keep] for f in n_fields))

    part = estimate_poses(
        head(imu, ("timestamps_us", "gyro", "accel")),
        head(
            gnss,
            (
                "timestamps_us",
                "lat_deg",
                "lon_deg",
                "alt_m",
                "covariance",
                "covariance_type",
                "status",
            ),
        ),
        head(sp, ("timestamps_us", "speed")),
    )
    n = len(part)
    assert n > 500
    assert np.array_equal(part.timestamps_us, full.timestamps_us[:n])
    assert np.array_equal(part.translations, full.translations[:n])
    assert np.array_equal(part.covariances, full.covariances[:n])


def _started_estimator():
    t, pos, yaw = drive(10.0, 10.0, 0.0)
    imu, gnss, sp = sensors(t, pos, yaw, 10.0, 0.0, gnss_sigma=0.5)
    est = PoseEstimator(LocalizationConfig(gnss_sigma=0.5))
    j = 0
    for i in range(len(imu)):
        tu = int(imu.timestamps_us[i])
        while j < len(gnss) and gnss.timestamps_us[j] <= tu:
            est.add_fix(
                tu, gnss.lat_deg[j], gnss.lon_deg[j], gnss.alt_m[j], gnss.covariance[j], 2, 0
            )
            j += 1
        est.add_speed(tu, float(sp.speed[i]))
        est.add_imu(tu, imu.gyro[i], imu.accel[i])
    assert est.kf is not None
    return est, tu, gnss


def test_bad_input_is_rejected_counted_never_fused():
    est, tu, gnss = _started_estimator()
    before = est.poses()
    state = (est.kf.x.p.copy(), est.kf.P.copy())
    lat, lon, alt = float(gnss.lat_deg[-1]), float(gnss.lon_deg[-1]), float(gnss.alt_m[-1])
    good_cov = np.diag([0.25, 0.25, 0.5])
    est.add_fix(tu + 1, math.nan, lon, alt, good_cov, 2, 0)
    est.add_fix(tu + 2, lat, lon, alt, good_cov, 2, -1)  # no fix
    est.add_fix(tu + 3, lat, lon, alt, np.diag([0.25, -0.25, 0.5]), 2, 0)  # not positive
    est.add_fix(tu + 4, lat, lon, alt, np.full((3, 3), math.nan), 2, 0)
    est.add_fix(tu + 5, 0.0, 0.0, 0.0, good_cov, 2, 0)  # 11 000 km away
    est.add_fix(tu - 500_000, lat, lon, alt, good_cov, 2, 0)  # back in time
    est.add_imu(tu - 10_000, np.zeros(3), np.array([0, 0, G]))  # back in time
    est.add_imu(tu + 10_000, np.array([math.nan, 0, 0]), np.array([0, 0, G]))
    est.add_speed(tu + 10_000, math.nan)
    est.add_speed(tu - 1_000_000, 10.0)
    c = est.counts
    assert c["gnss_nonfinite"] == 1
    assert c["gnss_no_fix"] == 1
    assert c["gnss_bad_covariance"] == 2
    assert c["gnss_far"] == 1
    assert c["gnss_time_backwards"] == 1
    assert c["imu_time_backwards"] == 1 and c["imu_nonfinite"] == 1
    assert c["speed_nonfinite"] == 1 and c["speed_time_backwards"] == 1
    # nothing was fused: state, covariance and the emitted poses are unchanged
    assert np.array_equal(est.kf.x.p, state[0]) and np.array_equal(est.kf.P, state[1])
    assert len(est.poses()) == len(before)


def test_no_fix_at_all_gives_no_pose():
    t, pos, yaw = drive(5.0, 10.0, 0.0)
    imu, _, sp = sensors(t, pos, yaw, 10.0, 0.0)
    poses = estimate_poses(imu, GnssFixes.empty(), sp)
    assert len(poses) == 0 and poses.start_us is None and poses.origin is None


def test_first_pose_faces_the_true_heading():
    t, pos, yaw = drive(20.0, 10.0, 0.1, yaw0=2.5)
    imu, gnss, sp = sensors(t, pos, yaw, 10.0, 0.1, gnss_sigma=1.5)
    poses = estimate_poses(imu, gnss, sp)
    _, yaw_true = truth_at(poses, t, pos, yaw, first_fix_enu(gnss))
    d0 = heading_errors(poses, yaw_true)[0]
    assert abs(math.degrees(d0)) < 5.0
    assert abs(d0) < 3 * math.sqrt(poses.covariances[0, 5, 5])


def test_chi2_quantiles_match_tables():
    assert chi2_quantile(0.95, 1) == pytest.approx(3.841, abs=1e-3)
    assert chi2_quantile(0.99, 2) == pytest.approx(9.210, abs=1e-3)
    assert chi2_quantile(0.999, 3) == pytest.approx(16.266, abs=1e-3)


def test_pose_stream_is_the_gnss_imu_source():
    t, pos, yaw = drive(20.0, 10.0, 0.0)
    imu, gnss, sp = sensors(t, pos, yaw, 10.0, 0.0)
    stream = estimate_poses(imu, gnss, sp).pose_stream()
    assert stream.source == "gnss-imu"
    mid = int(stream.timestamps_us[len(stream) // 2]) + 5000
    q = stream.at(mid).quaternion
    assert abs(yaw_from_quaternion(q) - 0.3) < math.radians(2)
    assert quaternion_from_yaw(0.3).shape == (4,)


def test_time_offset_estimated_online():
    """Fixes stamped 150 ms late, the offset configured as 0 but estimated (a 16th error state).
    A latency is seen only when the velocity changes (at constant velocity it is a position
    offset, on a circle a heading offset): on a straight drive whose speed swings 5-11 m/s it
    converges to the true latency within its sigma, and the error becomes centimetric; held
    at 0 it stays tens of cm off."""
    rng = np.random.default_rng(3)
    t = np.arange(0.0, 60.0, 0.01)
    w = 2 * math.pi / 12.0
    v = 8.0 + 3.0 * np.sin(w * t)
    dist = 8.0 * t + 3.0 / w * (1 - np.cos(w * t))
    yaw0 = 0.3
    pos = np.column_stack([dist * math.cos(yaw0), dist * math.sin(yaw0), np.zeros_like(t)])
    n, us = len(t), np.round(t * 1e6).astype(np.int64) + 1_000_000_000
    gyro = np.array([3e-4, -2e-4, 4e-4]) + rng.normal(0, 0.002, (n, 3))
    accel = np.column_stack([3.0 * w * np.cos(w * t), np.zeros(n), np.full(n, G)])
    accel = accel + np.array([0.02, -0.01, 0.03]) + rng.normal(0, 0.05, (n, 3))
    imu = ImuSamples(us, gyro, accel)
    sp = SpeedSamples(us, v + rng.normal(0, 0.02, n))
    k = np.arange(0, n, 10)
    noisy = pos[k] + rng.normal(0, 0.02, (len(k), 3))
    lat, lon, alt = enu_to_geodetic(noisy, ORIGIN)
    cov = np.tile(np.diag([0.02**2, 0.02**2, 0.03**2]), (len(k), 1, 1))
    ones = np.ones(len(k), np.int64)
    gnss = GnssFixes(us[k] + 150_000, lat, lon, alt, cov, 2 * ones, 0 * ones)
    yaw = np.full(n, yaw0)
    late = slice(3000, None)

    def run(sigma):
        cfg = LocalizationConfig(gnss_sigma=0.02, gnss_time_offset_s=0.0, time_offset_sigma=sigma)
        poses = estimate_poses(imu, gnss, sp, cfg)
        p_true, _ = truth_at(poses, t, pos, yaw, first_fix_enu(gnss))
        err = np.linalg.norm((poses.translations - p_true)[late, :2], axis=1).mean()
        return poses, float(err)

    held, err_held = run(0.0)
    assert held.time_offset_s == (0.0, 0.0)
    assert err_held > 0.3  # 5-11 m/s x 0.15 s unaccounted for
    estimated, err_est = run(0.3)
    td, sigma = estimated.time_offset_s
    assert abs(td - 0.15) < 0.01 and abs(td - 0.15) < 4 * sigma + 1e-3, (td, sigma)
    assert err_est < 0.05, err_est
