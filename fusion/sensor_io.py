"""Strict readers for nuScenes sensor files: every problem raises `DataError` naming the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from fusion.errors import DataError

LIDAR_FIELDS = 5  # x y z intensity ring, float32 little-endian
RADAR_HEADER_LINES = 11


def resolve_inside(dataroot: str | Path, filename: str) -> Path:
    """`dataroot / filename`, refusing names that resolve outside the dataroot (`..`, absolute)."""
    root = Path(dataroot).resolve()
    path = (root / filename).resolve()
    if not path.is_relative_to(root):
        raise DataError("sample_data filename resolves outside the dataroot", filename)
    return path


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError("file is missing", path)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", path) from exc


def load_lidar_bin(path: str | Path) -> NDArray[np.float32]:
    """A `.pcd.bin` scan -> (N, 5) float32: x y z (m, sensor frame) intensity ring."""
    path = Path(path)
    return decode_lidar_bin(_read_bytes(path), path)


def decode_lidar_bin(raw: bytes, origin: str | Path) -> NDArray[np.float32]:
    """The bytes of a `.pcd.bin` scan -> (N, 5) float32: x y z (m, sensor frame) intensity ring.

    `origin` names the file (or log message) the bytes came from, for the error.
    """
    record = 4 * LIDAR_FIELDS
    if len(raw) == 0 or len(raw) % record:
        raise DataError(
            f"truncated or corrupt LIDAR file: {len(raw)} bytes is not a positive multiple "
            f"of {record} (5 float32 per point)",
            origin,
        )
    pts = np.frombuffer(raw, dtype="<f4").reshape(-1, LIDAR_FIELDS).astype(np.float32)
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise DataError(f"{int(bad.sum())} of {len(pts)} LIDAR points have NaN or Inf", origin)
    return pts


# nuScenes radar PCD fields and their numpy types (SIZE/TYPE of the header).
_PCD_TYPES = {
    ("F", 4): "<f4",
    ("I", 1): "i1",
    ("I", 2): "<i2",
    ("I", 4): "<i4",
    ("U", 1): "u1",
    ("U", 2): "<u2",
    ("U", 4): "<u4",
    ("F", 8): "<f8",
}


@dataclass(frozen=True)
class RadarFilter:
    """The devkit's default radar filters (`RadarPointCloud.default_filters`), configurable."""

    invalid_states: tuple[int, ...] = (0,)
    dynprop_states: tuple[int, ...] = tuple(range(7))
    ambig_states: tuple[int, ...] = (3,)

    @classmethod
    def preset(cls, name: Literal["default", "none"]) -> RadarFilter:
        match name:
            case "default":
                return cls()
            case "none":
                return cls(tuple(range(18)), tuple(range(8)), tuple(range(5)))


def load_radar_pcd(path: str | Path, filters: RadarFilter | None = None) -> NDArray[np.float32]:
    """A nuScenes binary radar `.pcd` -> (18, N) float32 as the devkit's `RadarPointCloud`
    (x y z dyn_prop id rcs vx vy vx_comp vy_comp is_quality_valid ambig_state x_rms y_rms
    invalid_state pdh0 vx_rms vy_rms), filtered like the devkit (default filters unless given)."""
    path = Path(path)
    return decode_radar_pcd(_read_bytes(path), path, filters or RadarFilter())


def decode_radar_pcd(
    raw: bytes, origin: str | Path, radar_filter: RadarFilter | None = None
) -> NDArray[np.float32]:
    """The bytes of a nuScenes binary radar `.pcd` -> (18, N) float32 in the devkit's row
    layout (see `load_radar_pcd`); filtered by `radar_filter`, unfiltered when it is None.

    `origin` names the file (or log message) the bytes came from, for the error.
    """
    header: dict[str, list[str]] = {}
    offset = 0
    for _ in range(RADAR_HEADER_LINES):
        end = raw.find(b"\n", offset)
        if end < 0:
            raise DataError("truncated radar PCD header", origin)
        line = raw[offset:end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if line.startswith("#"):
            continue
        key, *vals = line.split()
        header[key] = vals
    try:
        fields, sizes, types = header["FIELDS"], header["SIZE"], header["TYPE"]
        n = int(header["POINTS"][0])
        data = header["DATA"][0]
    except (KeyError, IndexError, ValueError) as exc:
        raise DataError(f"radar PCD header lacks {exc}", origin) from exc
    if data != "binary":
        raise DataError(f"radar PCD DATA must be binary, got {data!r}", origin)
    if not len(fields) == len(sizes) == len(types) == 18:
        raise DataError("radar PCD must have the 18 nuScenes radar fields", origin)
    try:
        dtype = np.dtype(
            [(f, _PCD_TYPES[(t, int(s))]) for f, s, t in zip(fields, sizes, types, strict=True)]
        )
    except KeyError as exc:
        raise DataError(f"unsupported PCD field type {exc}", origin) from exc
    body = raw[offset:]
    if len(body) < n * dtype.itemsize:
        raise DataError(
            f"truncated radar PCD: {n} points need {n * dtype.itemsize} bytes, got {len(body)}",
            origin,
        )
    rec = np.frombuffer(body[: n * dtype.itemsize], dtype=dtype)
    pts = np.stack([rec[f].astype(np.float32) for f in fields]).reshape(len(fields), n)
    if n and np.isnan(pts[:, 0]).any():  # the devkit's marker of an empty cloud
        return np.zeros((len(fields), 0), dtype=np.float32)
    if not np.isfinite(pts).all():
        raise DataError("radar points have NaN or Inf", origin)
    if radar_filter is None:
        return pts
    f = radar_filter
    keep = (
        np.isin(pts[fields.index("invalid_state")], f.invalid_states)
        & np.isin(pts[fields.index("dyn_prop")], f.dynprop_states)
        & np.isin(pts[fields.index("ambig_state")], f.ambig_states)
    )
    return pts[:, keep]


def load_image(path: str | Path) -> NDArray[np.uint8]:
    """A JPEG or PNG -> (H, W, 3) uint8 RGB (see `decode_jpeg`)."""
    path = Path(path)
    return decode_jpeg(_read_bytes(path), path)


def decode_jpeg(
    raw: bytes, origin: str | Path, expected_hw: tuple[int, int] | None = None
) -> NDArray[np.uint8]:
    """The bytes of a JPEG (or PNG) -> (H, W, 3) uint8 RGB. A truncated JPEG (no end-of-image
    marker) is an error: OpenCV would otherwise decode it silently with grey rows. When
    `expected_hw` is given, an image of another (height, width) is an error.

    `origin` names the file (or log message) the bytes came from, for the error.
    """
    if raw[:2] == b"\xff\xd8" and raw.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        raise DataError("truncated JPEG (no end-of-image marker)", origin)
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError("corrupt image: cannot be decoded", origin)
    if expected_hw is not None and img.shape[:2] != tuple(expected_hw):
        raise DataError(
            f"image is {img.shape[1]}x{img.shape[0]}, sample_data says "
            f"{expected_hw[1]}x{expected_hw[0]}",
            origin,
        )
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
