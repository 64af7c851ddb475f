"""A valid nuScenes radar PCD (bytes) for the property tests, written like the devkit's files."""

from __future__ import annotations

import numpy as np

SIZES = [4, 4, 4, 1, 2, 4, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, 1, 1]
TYPES = ["F", "F", "F", "I", "I", "F", "F", "F", "F", "F", "I", "I", "I", "I", "I", "I", "I", "I"]


def radar_bytes(n: int = 6) -> bytes:
    from fusion.sensor_io import RADAR_FIELDS

    layout = zip(RADAR_FIELDS, SIZES, TYPES, strict=True)
    dtype = np.dtype(
        [(f, {("F", 4): "<f4", ("I", 1): "i1", ("I", 2): "<i2"}[(t, z)]) for f, z, t in layout]
    )
    rec = np.zeros(n, dtype=dtype)
    rec["x"] = np.linspace(5, 60, n)
    rec["rcs"] = 5.0
    rec["ambig_state"] = 3
    rec["x_rms"] = rec["y_rms"] = 3
    header = "\n".join(
        [
            "# .PCD v0.7 - Point Cloud Data file format",
            "VERSION 0.7",
            "FIELDS " + " ".join(RADAR_FIELDS),
            "SIZE " + " ".join(map(str, SIZES)),
            "TYPE " + " ".join(TYPES),
            "COUNT " + " ".join(["1"] * 18),
            f"WIDTH {n}",
            "HEIGHT 1",
            "VIEWPOINT 0 0 0 1 0 0 0",
            f"POINTS {n}",
            "DATA binary",
        ]
    )
    return header.encode() + b"\n" + rec.tobytes() + b"\n"
