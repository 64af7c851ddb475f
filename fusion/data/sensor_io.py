"""Strict readers for nuScenes sensor files: every problem raises `DataError` naming the file.

Each file reader `load_*` reads the bytes and calls its bytes-level decoder `decode_*`, which log
sources (where the bytes come from a message, not a file) call directly. Every decoder either
returns a plausible array or raises `DataError(reason, origin)`: no other exception escapes,
and values outside physical bounds (below) reject the whole scan, since a point 1e27 m away
means the file is corrupt (misaligned or garbage floats), not that the world is large.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import simplejpeg
from numpy.typing import NDArray

from calibration import PinholeCamera
from fusion.config import MAX_IMAGE_SIDE
from fusion.errors import DataError
from fusion.frame import RADAR_FIELDS, RADAR_PCD_DTYPE

LIDAR_FIELDS = 5  # x y z intensity ring, float32 little-endian
RADAR_HEADER_LINES = 11

# Physical bounds of a nuScenes-format scan (README "Bad input"). The HDL-32E sees ~100 m and
# the ARS 408 ~250 m; the bounds are generous so a real scan never trips them.
LIDAR_MAX_COORD_M = 2000.0  # |x|, |y|, |z| in the sensor frame
LIDAR_MAX_INTENSITY = 255.0  # intensity is 0..255
LIDAR_BEAMS = 32  # ring is an integer 0..31
RADAR_MAX_COORD_M = 2000.0
RADAR_MAX_SPEED_MS = 200.0  # |vx|, |vy|, |vx_comp|, |vy_comp|
RADAR_RCS_DBSM = (-100.0, 100.0)


def resolve_inside(dataroot: str | Path, filename: object) -> Path:
    """`dataroot / filename`, refusing names that resolve outside the dataroot (`..`, absolute,
    a symlink pointing out) and names that are not a non-empty string."""
    if not isinstance(filename, str) or not filename or "\x00" in filename:
        raise DataError(f"sample_data filename must be a non-empty string, got {filename!r}")
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


def read_json(path: Path, what: str) -> Any:
    """A JSON file's content, or a DataError naming the file: `what` says what it holds
    ("splits file", "CAN bus messages") in the message."""
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise DataError(f"cannot read {what}: {exc.strerror}", path) from None
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise DataError(f"{what} is not valid JSON: {exc}", path) from None


def load_lidar_bin(path: str | Path) -> NDArray[np.float32]:
    """A `.pcd.bin` scan -> (N, 5) float32: x y z (m, sensor frame) intensity ring."""
    path = Path(path)
    return decode_lidar_bin(_read_bytes(path), path)


def decode_lidar_bin(raw: bytes, origin: str | Path) -> NDArray[np.float32]:
    """The bytes of a `.pcd.bin` scan -> (N, 5) float32: x y z (m, sensor frame) intensity ring,
    read-only (a view of `raw` on a little-endian machine).

    `origin` names the file (or log message) the bytes came from, for the error.
    """
    record = 4 * LIDAR_FIELDS
    if len(raw) == 0 or len(raw) % record:
        raise DataError(
            f"truncated or corrupt LIDAR file: {len(raw)} bytes is not a positive multiple "
            f"of {record} (5 float32 per point)",
            origin,
        )
    # a read-only view of the bytes (no copy: a fresh 0.7 MB array a scan costs page faults);
    # every consumer copies or merges (`kernels.merge_sweeps`) before changing points
    pts = np.frombuffer(raw, dtype="<f4").reshape(-1, LIDAR_FIELDS).astype(np.float32, copy=False)
    # Fast path for valid scans (~0.5 ms for 35k points, less than a per-point isfinite): the
    # flat min and max (NaN propagates, Inf shows; they bound x y z, since intensity and ring
    # lie well inside the coordinate bound), then the intensity and ring columns. The
    # per-point masks are built only to explain a rejection.
    intensity, ring = pts[:, 3], pts[:, 4]
    if (
        np.isfinite(lo := pts.min())
        and np.isfinite(hi := pts.max())
        and -LIDAR_MAX_COORD_M <= lo
        and hi <= LIDAR_MAX_COORD_M
        and intensity.min() >= 0
        and intensity.max() <= LIDAR_MAX_INTENSITY
        and ring.min() >= 0
        and ring.max() <= LIDAR_BEAMS - 1
        and not np.any(ring.astype(np.int8) != ring)
    ):
        return pts
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise DataError(f"{int(bad.sum())} of {len(pts)} LIDAR points have NaN or Inf", origin)
    _check_lidar_bounds(pts, origin)
    return pts


def _check_lidar_bounds(pts: NDArray[np.float32], origin: str | Path) -> None:
    """Reject a scan with any point outside the physical bounds, naming the first."""
    checks = (
        (
            np.abs(pts[:, :3]).max(axis=1) > LIDAR_MAX_COORD_M,
            f"|x|, |y| or |z| > {LIDAR_MAX_COORD_M:g} m",
        ),
        (
            (pts[:, 3] < 0) | (pts[:, 3] > LIDAR_MAX_INTENSITY),
            f"intensity outside 0..{LIDAR_MAX_INTENSITY:g}",
        ),
        (
            (pts[:, 4] < 0) | (pts[:, 4] > LIDAR_BEAMS - 1) | (pts[:, 4] != np.round(pts[:, 4])),
            f"ring not an integer 0..{LIDAR_BEAMS - 1}",
        ),
    )
    for bad, what in checks:
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"{int(bad.sum())} of {len(pts)} LIDAR points out of bounds ({what}); first: "
                f"point {i} = {pts[i].tolist()}",
                origin,
            )


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


def encode_radar_pcd(points: NDArray) -> bytes:
    """A structured (N,) array of `RADAR_PCD_DTYPE` -> nuScenes binary radar PCD bytes (header as
    nuScenes writes it, one trailing byte as the devkit's strict length check expects)."""
    fields = RADAR_PCD_DTYPE.fields or {}
    kinds = {"f": "F", "i": "I", "u": "U"}
    sizes = [str(fields[f][0].itemsize) for f in RADAR_FIELDS]
    types = [kinds[fields[f][0].kind] for f in RADAR_FIELDS]
    n = len(points)
    header = "\n".join(
        [
            "# .PCD v0.7 - Point Cloud Data file format",
            "VERSION 0.7",
            "FIELDS " + " ".join(RADAR_FIELDS),
            "SIZE " + " ".join(sizes),
            "TYPE " + " ".join(types),
            "COUNT " + " ".join(["1"] * len(RADAR_FIELDS)),
            f"WIDTH {n}",
            "HEIGHT 1",
            "VIEWPOINT 0 0 0 1 0 0 0",
            f"POINTS {n}",
            "DATA binary",
        ]
    )
    return (
        header.encode("ascii")
        + b"\n"
        + np.asarray(points).astype(RADAR_PCD_DTYPE).tobytes()
        + b"\n"
    )


_RADAR_KEYS = ("FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS", "DATA")
# field -> (low, high) inclusive: coordinates, speeds, RCS, and the enumerated states the devkit
# filters on (ARS 408 codes); a value outside means a corrupt file.
_RADAR_BOUNDS = {
    "x": (-RADAR_MAX_COORD_M, RADAR_MAX_COORD_M),
    "y": (-RADAR_MAX_COORD_M, RADAR_MAX_COORD_M),
    "z": (-RADAR_MAX_COORD_M, RADAR_MAX_COORD_M),
    "rcs": RADAR_RCS_DBSM,
    **{v: (-RADAR_MAX_SPEED_MS, RADAR_MAX_SPEED_MS) for v in ("vx", "vy", "vx_comp", "vy_comp")},
    "dyn_prop": (0, 7),
    "is_quality_valid": (0, 1),
    "ambig_state": (0, 4),
    "invalid_state": (0, 17),
    "pdh0": (0, 7),
}


def _radar_header(raw: bytes, origin: str | Path) -> tuple[dict[str, list[str]], int]:
    """Parse the 11-line ASCII header of a nuScenes radar PCD: (key -> values, body offset).
    Every deviation from the nuScenes layout is a DataError (not a ValueError later)."""
    header: dict[str, list[str]] = {}
    offset = 0
    for lineno in range(1, RADAR_HEADER_LINES + 1):
        end = raw.find(b"\n", offset)
        if end < 0:
            raise DataError(f"truncated radar PCD header (line {lineno} has no end)", origin)
        try:
            line = raw[offset:end].decode("ascii").strip()
        except UnicodeDecodeError:
            raise DataError(f"radar PCD header line {lineno} is not ASCII", origin) from None
        offset = end + 1
        if line.startswith("#"):
            continue
        if not line:
            raise DataError(f"radar PCD header line {lineno} is blank", origin)
        key, *vals = line.split()
        if key not in _RADAR_KEYS and key != "VERSION":
            raise DataError(f"radar PCD header line {lineno}: unknown key {key!r}", origin)
        if key in header:
            raise DataError(f"radar PCD header repeats {key}", origin)
        header[key] = vals
    lacking = [k for k in _RADAR_KEYS if k not in header]
    if lacking:
        raise DataError(f"radar PCD header lacks {', '.join(lacking)}", origin)
    if header["DATA"] != ["binary"]:
        raise DataError(f"radar PCD DATA must be binary, got {' '.join(header['DATA'])!r}", origin)
    if header["FIELDS"] != RADAR_FIELDS:
        raise DataError(
            f"radar PCD FIELDS must be the {len(RADAR_FIELDS)} nuScenes radar fields in order "
            f"({' '.join(RADAR_FIELDS)}), got {' '.join(header['FIELDS'])!r}",
            origin,
        )
    for key in ("SIZE", "TYPE", "COUNT"):
        if len(header[key]) != len(RADAR_FIELDS):
            raise DataError(f"radar PCD {key} must have {len(RADAR_FIELDS)} entries", origin)
    if any(c != "1" for c in header["COUNT"]):
        raise DataError("radar PCD COUNT must be 1 for every field", origin)
    for z, t in zip(header["SIZE"], header["TYPE"], strict=True):
        if not z.isdigit() or (t, int(z)) not in _PCD_TYPES:
            raise DataError(f"unsupported radar PCD field type {t} of size {z}", origin)
    counts = {}
    for key in ("WIDTH", "HEIGHT", "POINTS"):
        v = header[key]
        if len(v) != 1 or not v[0].isdigit():
            raise DataError(
                f"radar PCD {key} must be one integer >= 0, got {' '.join(v)!r}", origin
            )
        counts[key] = int(v[0])
    if counts["WIDTH"] * counts["HEIGHT"] != counts["POINTS"]:
        raise DataError(
            f"radar PCD WIDTH x HEIGHT ({counts['WIDTH']} x {counts['HEIGHT']}) != POINTS "
            f"({counts['POINTS']})",
            origin,
        )
    return header, offset


def _check_radar_bounds(pts: NDArray[np.float32], origin: str | Path) -> None:
    rows = pts[_BOUND_ROWS]
    bad = (rows < _BOUND_LO) | (rows > _BOUND_HI)
    if not bad.any():
        return
    for k, (name, (lo, hi)) in enumerate(_RADAR_BOUNDS.items()):
        if bad[k].any():
            row = rows[k]
            raise DataError(
                f"{int(bad[k].sum())} of {len(row)} radar points have {name} outside "
                f"[{lo:g}, {hi:g}] (first: {float(row[int(np.argmax(bad[k]))]):g})",
                origin,
            )


_BOUND_ROWS = [RADAR_FIELDS.index(name) for name in _RADAR_BOUNDS]
_BOUND_LO = np.array([[lo] for lo, _ in _RADAR_BOUNDS.values()], np.float32)
_BOUND_HI = np.array([[hi] for _, hi in _RADAR_BOUNDS.values()], np.float32)


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
    dtype, n, offset = _radar_layout(raw, origin)
    body = raw[offset:]
    if len(body) < n * dtype.itemsize:
        raise DataError(
            f"truncated radar PCD: {n} points need {n * dtype.itemsize} bytes, got {len(body)}",
            origin,
        )
    rec = np.frombuffer(raw, dtype=dtype, count=n, offset=offset)
    pts = np.empty((len(RADAR_FIELDS), n), np.float32)
    for k, f in enumerate(RADAR_FIELDS):
        pts[k] = rec[f]
    if n and np.isnan(pts[:, 0]).any():  # the devkit's marker (a NaN in the first point)
        return np.zeros((len(RADAR_FIELDS), 0), dtype=np.float32)
    if not np.isfinite(pts).all():
        raise DataError("radar points have NaN or Inf", origin)
    _check_radar_bounds(pts, origin)
    if radar_filter is None:
        return pts
    return pts[:, radar_keep(pts, radar_filter)]


# header bytes -> (record dtype, points, body offset): the scans of one radar repeat their
# header but for the point count, so most scans parse none (bounded; only valid headers)
_RADAR_LAYOUTS: dict[bytes, tuple[np.dtype, int, int]] = {}


def _radar_layout(raw: bytes, origin: str | Path) -> tuple[np.dtype, int, int]:
    """(record dtype, points, body offset) of a radar PCD's header (`_radar_header`)."""
    end = -1
    for _ in range(RADAR_HEADER_LINES):
        end = raw.find(b"\n", end + 1)
        if end < 0:
            break
    key = raw[: end + 1] if end >= 0 else None
    hit = _RADAR_LAYOUTS.get(key) if key is not None else None
    if hit is not None:
        return hit
    header, offset = _radar_header(raw, origin)
    layout = zip(header["FIELDS"], header["SIZE"], header["TYPE"], strict=True)
    dtype = np.dtype([(f, _PCD_TYPES[(t, int(z))]) for f, z, t in layout])
    out = (dtype, int(header["POINTS"][0]), offset)
    if len(_RADAR_LAYOUTS) >= 4096:
        _RADAR_LAYOUTS.clear()
    _RADAR_LAYOUTS[raw[:offset]] = out
    return out


def radar_keep(fields: NDArray[np.floating], radar_filter: RadarFilter) -> NDArray[np.bool_]:
    """Which points of an (18, N) radar array (devkit rows) pass `radar_filter`."""
    f = radar_filter
    return (
        np.isin(fields[RADAR_FIELDS.index("invalid_state")], f.invalid_states)
        & np.isin(fields[RADAR_FIELDS.index("dyn_prop")], f.dynprop_states)
        & np.isin(fields[RADAR_FIELDS.index("ambig_state")], f.ambig_states)
    )


def load_image(
    path: str | Path, expected_hw: tuple[int, int] | None = None, reduction: int = 1
) -> NDArray[np.uint8]:
    """A JPEG or PNG -> (H, W, 3) uint8 RGB (see `decode_jpeg`)."""
    path = Path(path)
    return decode_jpeg(_read_bytes(path), path, expected_hw, reduction)


def image_size(raw: bytes, origin: str | Path) -> tuple[int, int]:
    """(height, width) of a JPEG or PNG from its header alone: nothing is decoded."""
    if raw[:2] == b"\xff\xd8":
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(raw)
        except ValueError as exc:
            raise DataError(f"corrupt image: bad JPEG header ({exc})", origin) from None
        return int(height), int(width)
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR" and len(raw) >= 24:
        return int.from_bytes(raw[20:24], "big"), int.from_bytes(raw[16:20], "big")
    raise DataError(
        f"not a JPEG or PNG image ({len(raw)} bytes, starts {raw[:8]!r})"
        if raw
        else "image file is empty (0 bytes)",
        origin,
    )


def decode_jpeg(
    raw: bytes,
    origin: str | Path,
    expected_hw: tuple[int, int] | None = None,
    reduction: int = 1,
) -> NDArray[np.uint8]:
    """The bytes of a JPEG (or PNG) -> (H, W, 3) uint8 RGB.

    The size is read from the header first and checked against `expected_hw` (height, width:
    sample_data's) and `MAX_IMAGE_SIDE`, so a decompression bomb costs no allocation. JPEGs are
    decoded by libjpeg-turbo through simplejpeg in strict mode: corrupt or truncated data
    (libjpeg's "Corrupt JPEG data" / "Premature end" warnings, on which OpenCV silently returns
    grey rows) is an error. `origin` names the file (or log message) the bytes came from.
    `reduction` k in (1, 2, 4, 8) decodes a JPEG at 1/k with libjpeg's DCT scaling
    (ceil(H / k) x ceil(W / k), a fraction of the cost; PNGs ignore it and decode in full).
    """
    if reduction not in (1, 2, 4, 8):
        raise ValueError(f"reduction must be 1, 2, 4 or 8, not {reduction}")
    height, width = image_size(raw, origin)
    if not (0 < height <= MAX_IMAGE_SIDE and 0 < width <= MAX_IMAGE_SIDE):
        raise DataError(
            f"image header claims {width}x{height}: each side must be 1..{MAX_IMAGE_SIDE}", origin
        )
    if expected_hw is not None and (height, width) != tuple(expected_hw):
        raise DataError(
            f"image is {width}x{height}, sample_data says {expected_hw[1]}x{expected_hw[0]}",
            origin,
        )
    if raw[:2] == b"\xff\xd8":
        if raw.rstrip(b"\x00")[-2:] != b"\xff\xd9":
            raise DataError("truncated JPEG (no end-of-image marker)", origin)
        # min_height/min_width pick libjpeg's smallest scale still covering them: exactly 1/k
        out_h, out_w = -(-height // reduction), -(-width // reduction)
        try:
            img = simplejpeg.decode_jpeg(
                raw, colorspace="RGB", strict=True, min_height=out_h, min_width=out_w
            )
        except ValueError as exc:
            raise DataError(f"corrupt image: bad JPEG data ({exc})", origin) from None
    else:
        try:
            bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise DataError(f"corrupt image: {exc.msg}", origin) from None
        if bgr is None:
            raise DataError("corrupt image: cannot be decoded", origin)
        img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        out_h, out_w = height, width
    if img.shape[:2] != (out_h, out_w):
        scale = "" if (out_h, out_w) == (height, width) else f" at 1/{reduction} ({out_w}x{out_h})"
        raise DataError(
            f"image decodes to {img.shape[1]}x{img.shape[0]}, its header says {width}x{height}"
            + scale,
            origin,
        )
    return img


def encode_jpeg(image: NDArray[np.uint8], quality: int) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes at IJG `quality` (1-100), by OpenCV's libjpeg."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise DataError("cannot encode image as JPEG")
    return buf.tobytes()


# -- JPEG decoding at reduced DCT scale for a network input of a given size ------------------------


ImageDecode = Literal["full", "reduced"]


def jpeg_reduction(width: int, height: int, network_hw: tuple[int, int]) -> int:
    """The largest JPEG DCT reduction k in (8, 4, 2, 1) whose 1/k image still covers the
    network input (H, W) at no less than its resolution (what `fusion.preprocess.inputs.image_view`
    fits:
    the width, and the height after fitting the width), so that the remaining resize only
    shrinks."""
    h, w = network_hw
    for k in (8, 4, 2):
        rw, rh = -(-width // k), -(-height // k)  # libjpeg rounds up
        if rw >= w and rh * w / rw >= h:
            return k
    return 1


def reduced_camera(camera: PinholeCamera, k: int, image_hw: tuple[int, int]) -> PinholeCamera:
    """The camera model of `camera`'s image decoded at 1/k to `image_hw` (H, W): pixel (i, j)
    covers source pixels [k i, k i + k) x [k j, k j + k), so K's first two rows scale by 1/k
    (`PinholeCamera.scaled`'s convention, the one `warp_image` resizes with)."""
    kk = camera.intrinsics.copy()
    kk[:2] /= k
    return PinholeCamera(kk, int(image_hw[1]), int(image_hw[0]))


def decoded_camera(
    camera: PinholeCamera, network_hw: tuple[int, int], mode: ImageDecode = "reduced"
) -> tuple[int, PinholeCamera]:
    """(k, camera model of `camera`'s JPEG decoded at 1/k) for a network input of `network_hw`
    (H, W): k from `jpeg_reduction` with `reduced`, 1 (and `camera` itself) with `full`. The
    decoded image is ceil(H / k) x ceil(W / k) (`decode_jpeg`)."""
    k = jpeg_reduction(camera.width, camera.height, network_hw) if mode == "reduced" else 1
    if k == 1:
        return 1, camera
    return k, reduced_camera(camera, k, (-(-camera.height // k), -(-camera.width // k)))


def decode_camera_image(
    raw: bytes,
    camera: PinholeCamera,
    network_hw: tuple[int, int],
    mode: ImageDecode = "reduced",
    origin: str | Path = "",
) -> tuple[NDArray[np.uint8], PinholeCamera]:
    """JPEG bytes of an image taken by `camera` -> (h, w, 3) uint8 RGB and the camera model of
    the decoded image, for a network input of `network_hw` (H, W: `cfg.camera.image_hw`).
    `full` decodes every pixel (training: augmentation crops and rescales); `reduced` decodes
    at 1/k (`jpeg_reduction`, libjpeg's DCT scaling) with the camera from `reduced_camera`.
    Decoding and its checks (size against the camera model, corrupt or truncated data:
    `DataError` naming `origin`) are `decode_jpeg`'s."""
    k, small = decoded_camera(camera, network_hw, mode)
    image = decode_jpeg(raw, origin, (camera.height, camera.width), k)
    if image.shape[:2] == (camera.height, camera.width):  # full, or a PNG (decoded in full)
        return image, camera
    return image, small
