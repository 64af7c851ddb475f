"""A valid nuScenes radar PCD (bytes) for the property tests, written like the devkit's files."""

from __future__ import annotations

import numpy as np


def radar_bytes(n: int = 6) -> bytes:
    from fusion.data.sensor_io import encode_radar_pcd
    from fusion.frame import RADAR_PCD_DTYPE

    rec = np.zeros(n, dtype=RADAR_PCD_DTYPE)
    rec["x"] = np.linspace(5, 60, n)
    rec["rcs"] = 5.0
    rec["ambig_state"] = 3
    rec["x_rms"] = rec["y_rms"] = 3
    return encode_radar_pcd(rec)
