"""The malformed-input corpus (issue 11): each case corrupts a copy of a valid dataroot (the real
keyframe, or a small synthetic scene with radar, sweeps and CAN bus) and states the exact outcome
at each entry point: the reader (strict and tolerant), `fusion inspect --json`, `fusion validate`.

`run_case` runs every entry point of a case in-process, under a time limit, and returns what
happened; the tests assert it against the case, and `tally.py` counts it for the README.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusion.cli import main
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.errors import DataError

REAL_VERSION, SYNTH_VERSION = "v1.0-mini", "v1.0-synth"
SWEEPS = 10  # LIDAR sweeps read by the reader and by inspect
RADAR_SWEEPS = 6
TIME_LIMIT_S = 60  # per entry point: a hang fails the case instead of the run
DAY_US = 86_400 * 1_000_000

Mutate = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    """One malformed input and its expected outcome at every entry point.

    file/reason: the DataError's file (a substring of `err.path`) and reason (a regex), raised by
    the strict reader; None for a case the reader accepts. tolerant: the channels tolerant mode
    marks missing, or "raise" when it raises the same error (the fault is not one sensor's).
    strict_missing: channels missing even in strict mode (beyond the sync tolerance).
    inspect: "error" (exit 2 naming the file) or "ok" (exit 0). validate: the check group of
    its ERROR (exit 1), or None (exit 0). outcome: how the README's figure counts it.
    """

    id: str
    category: str
    base: str  # "real" or "synth"
    mutate: Mutate
    file: str | None
    reason: str | None
    tolerant: frozenset[str] | str = "raise"
    strict_missing: frozenset[str] = frozenset()
    inspect: str = "error"
    validate: str | None = "files"
    entry: str = "frame"  # "frame": reader.frame on every sample; "split": reader.sample_tokens
    outcome: str = "clean"  # clean error / tolerated (missing, counted) / harmless (listed)
    validate_warning: str | None = None


# -- table and file helpers ---------------------------------------------------------------------


def version(root: Path) -> str:
    return REAL_VERSION if (root / REAL_VERSION).is_dir() else SYNTH_VERSION


def load(root: Path, table: str) -> list[dict]:
    return json.loads((root / version(root) / f"{table}.json").read_text())


def save(root: Path, table: str, recs: object) -> None:
    (root / version(root) / f"{table}.json").write_text(json.dumps(recs))


def first_sample(root: Path) -> dict:
    scenes = load(root, "scene")
    return next(s for s in load(root, "sample") if s["token"] == scenes[0]["first_sample_token"])


def keyframe(recs: list[dict], root: Path, channel: str) -> dict:
    """The first sample's keyframe sample_data record of `channel` (in `recs`)."""
    tok = first_sample(root)["token"]
    return next(
        r
        for r in recs
        if r["sample_token"] == tok and r["is_key_frame"] and f"__{channel}__" in r["filename"]
    )


def key_file(root: Path, channel: str) -> Path:
    return root / keyframe(load(root, "sample_data"), root, channel)["filename"]


def edit_sd(channel: str, fn: Callable[[dict, list[dict]], None]) -> Mutate:
    """Edit the first sample's keyframe sample_data record of `channel`."""

    def mutate(root: Path) -> None:
        recs = load(root, "sample_data")
        fn(keyframe(recs, root, channel), recs)
        save(root, "sample_data", recs)

    return mutate


def edit_record(table: str, pick: Callable[[Path, list[dict]], dict], fn: Callable[[dict], None]):
    def mutate(root: Path) -> None:
        recs = load(root, table)
        fn(pick(root, recs))
        save(root, table, recs)

    return mutate


def calib_of(channel: str) -> Callable[[Path, list[dict]], dict]:
    def pick(root: Path, recs: list[dict]) -> dict:
        tok = keyframe(load(root, "sample_data"), root, channel)["calibrated_sensor_token"]
        return next(r for r in recs if r["token"] == tok)

    return pick


def ego_pose_of(channel: str) -> Callable[[Path, list[dict]], dict]:
    def pick(root: Path, recs: list[dict]) -> dict:
        tok = keyframe(load(root, "sample_data"), root, channel)["ego_pose_token"]
        return next(r for r in recs if r["token"] == tok)

    return pick


def first_annotation(root: Path, recs: list[dict]) -> dict:
    tok = first_sample(root)["token"]
    return next(r for r in recs if r["sample_token"] == tok)


def on_file(channel: str, fn: Callable[[Path], None]) -> Mutate:
    return lambda root: fn(key_file(root, channel))


def lidar_points(fn: Callable[[np.ndarray], None]) -> Mutate:
    def mutate(root: Path) -> None:
        path = key_file(root, "LIDAR_TOP")
        pts = np.fromfile(path, "<f4").reshape(-1, 5)
        fn(pts)
        pts.tofile(path)

    return mutate


def radar_header(old: bytes, new: bytes) -> Mutate:
    def mutate(root: Path) -> None:
        path = key_file(root, "RADAR_FRONT")
        raw = path.read_bytes()
        assert old in raw, old
        path.write_bytes(raw.replace(old, new, 1))

    return mutate


RADAR_FIELDS = (
    b"x y z dyn_prop id rcs vx vy vx_comp vy_comp is_quality_valid ambig_state x_rms y_rms "
    b"invalid_state pdh0 vx_rms vy_rms"
)


def radar_value(field_name: str, value: float) -> Mutate:
    """Set one float field of the first radar point (the F4 fields: x y z rcs vx vy ...)."""
    offsets = {"x": 0, "y": 4, "z": 8, "rcs": 15, "vx": 19, "vy": 23, "vx_comp": 27, "vy_comp": 31}

    def mutate(root: Path) -> None:
        path = key_file(root, "RADAR_FRONT")
        raw = bytearray(path.read_bytes())
        body = raw.index(b"DATA binary\n") + len(b"DATA binary\n")
        o = body + offsets[field_name]
        raw[o : o + 4] = np.float32(value).tobytes()
        path.write_bytes(bytes(raw))

    return mutate


def jpeg_bomb(side: int) -> Mutate:
    """A ~1 kB JPEG whose frame header claims side x side pixels."""

    def mutate(root: Path) -> None:
        import simplejpeg

        raw = bytearray(simplejpeg.encode_jpeg(np.full((16, 16, 3), 128, np.uint8)))
        i = raw.index(b"\xff\xc0")
        raw[i + 5 : i + 7] = side.to_bytes(2, "big")
        raw[i + 7 : i + 9] = side.to_bytes(2, "big")
        key_file(root, "CAM_FRONT").write_bytes(bytes(raw))

    return mutate


def jpeg_half_with_eoi(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2] + b"\xff\xd9")


def jpeg_resized(path: Path) -> None:
    import cv2

    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path)), (800, 450)))


def outside_file(root: Path, name: str) -> Path:
    """A copy of the CAM_FRONT image next to (outside) the dataroot."""
    dst = root.parent / name
    dst.write_bytes(key_file(root, "CAM_FRONT").read_bytes())
    return dst


def filename_to(target: Callable[[Path], str]) -> Mutate:
    def mutate(root: Path) -> None:
        name = target(root)
        edit_sd("CAM_FRONT", lambda r, _: r.update(filename=name))(root)

    return mutate


def symlink_out(root: Path) -> None:
    path = key_file(root, "CAM_FRONT")
    target = outside_file(root, "secret.jpg")
    path.unlink()
    path.symlink_to(target)


def prev_of_keyframe(channel: str, fn: Callable[[dict], None]) -> Mutate:
    """Edit the sweep just before the first sample's `channel` keyframe."""

    def mutate(root: Path) -> None:
        recs = load(root, "sample_data")
        key = keyframe(recs, root, channel)
        fn(next(r for r in recs if r["token"] == key["prev"]))
        save(root, "sample_data", recs)

    return mutate


def second_sample_keyframe(channel: str, fn: Callable[[dict, list[dict]], None]) -> Mutate:
    def mutate(root: Path) -> None:
        recs = load(root, "sample_data")
        second = first_sample(root)["next"]
        key = next(
            r
            for r in recs
            if r["sample_token"] == second
            and r["is_key_frame"]
            and f"__{channel}__" in r["filename"]
        )
        fn(key, recs)
        save(root, "sample_data", recs)

    return mutate


def can_file(msg: str, fn: Callable[[Path], None]) -> Mutate:
    return lambda root: fn(root / "can_bus" / f"scene-0001_{msg}.json")


def can_messages(msg: str, fn: Callable[[list[dict]], object]) -> Mutate:
    """Edit the parsed messages in place (fn's return value is ignored)."""

    def mutate(root: Path) -> None:
        path = root / "can_bus" / f"scene-0001_{msg}.json"
        data = json.loads(path.read_text())
        fn(data)
        path.write_text(json.dumps(data))

    return mutate


def write(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def splits(content: bytes) -> Mutate:
    return lambda root: (root / SYNTH_VERSION / "splits.json").write_bytes(content)


def loop_sample(root: Path) -> None:
    recs = load(root, "sample")
    first = next(r for r in recs if r["token"] == first_sample(root)["token"])
    first["next"] = first["token"]
    save(root, "sample", recs)


def cycle_samples(root: Path) -> None:
    recs = load(root, "sample")
    by = {r["token"]: r for r in recs}
    first = by[first_sample(root)["token"]]
    by[first["next"]]["next"] = first["token"]
    save(root, "sample", recs)


def duplicate_annotation(root: Path) -> None:
    """A second record with the first annotation's token (the devkit keeps the last)."""
    recs = load(root, "sample_annotation")
    recs.append({**first_annotation(root, recs), "translation": [0.0, 0.0, 0.0]})
    save(root, "sample_annotation", recs)


def cycle_annotations(root: Path) -> None:
    """The first sample's first tracked annotation and its successor point at each other."""
    recs = load(root, "sample_annotation")
    by = {r["token"]: r for r in recs}
    tok = first_sample(root)["token"]
    first = next(r for r in recs if r["sample_token"] == tok and r["next"])
    by[first["next"]]["next"] = first["token"]
    save(root, "sample_annotation", recs)


def first_lidar_sweep(fn: Callable[[dict], None]) -> Mutate:
    """Edit the scene's first LIDAR sample_data (the start of its prev chain)."""

    def mutate(root: Path) -> None:
        recs = load(root, "sample_data")
        by = {r["token"]: r for r in recs}
        r = keyframe(recs, root, "LIDAR_TOP")
        while r["prev"]:
            r = by[r["prev"]]
        fn(r)
        save(root, "sample_data", recs)

    return mutate


def shift_all_timestamps(us: int) -> Mutate:
    """Every timestamp of the tables moved by `us`: the order and offsets stay consistent."""

    def mutate(root: Path) -> None:
        for table in ("sample", "sample_data", "ego_pose"):
            recs = load(root, table)
            for r in recs:
                r["timestamp"] += us
            save(root, table, recs)

    return mutate


def rename_sample(new: str) -> Mutate:
    """The first sample's token replaced by `new` everywhere it is referenced."""

    def mutate(root: Path) -> None:
        old = json.dumps(first_sample(root)["token"])
        for path in (root / version(root)).glob("*.json"):
            path.write_text(path.read_text().replace(old, json.dumps(new)))

    return mutate


def set_list_token(r: dict) -> None:
    r["token"] = [r["token"]]


def del_key(key: str) -> Callable[[dict], None]:
    return lambda r: r.pop(key)


def _set(**kw: object) -> Callable[[dict], None]:
    return lambda r: r.update(kw)


LIDAR = frozenset({"LIDAR_TOP"})
CAM = frozenset({"CAM_FRONT"})
RADAR = frozenset({"RADAR_FRONT"})
CAN = frozenset({"EGO_MOTION"})
LIDAR_FILE, CAM_FILE, RADAR_FILE = "__LIDAR_TOP__", "__CAM_FRONT__", "__RADAR_FRONT__"
POSE_FILE, IMU_FILE = "scene-0001_pose.json", "scene-0001_ms_imu.json"


def _c(id_: str, category: str, base: str, mutate: Mutate, file: str | None, reason: str | None,
       **kw: object) -> Case:  # fmt: skip
    return Case(id_, category, base, mutate, file, reason, **kw)  # type: ignore[arg-type]


CASES: list[Case] = [
    # -- LIDAR ---------------------------------------------------------------------------------
    _c(
        "lidar-truncated",
        "lidar",
        "real",
        on_file("LIDAR_TOP", lambda p: p.write_bytes(p.read_bytes()[:-7])),
        LIDAR_FILE,
        "not a positive multiple of 20",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-empty",
        "lidar",
        "real",
        on_file("LIDAR_TOP", write(b"")),
        LIDAR_FILE,
        "0 bytes is not a positive multiple",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-missing",
        "lidar",
        "real",
        on_file("LIDAR_TOP", Path.unlink),
        LIDAR_FILE,
        "file is missing",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-is-a-folder",
        "lidar",
        "real",
        on_file("LIDAR_TOP", lambda p: (p.unlink(), p.mkdir())),
        LIDAR_FILE,
        "file is missing",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-nan",
        "lidar",
        "real",
        lidar_points(lambda p: p.__setitem__((5, 1), np.nan)),
        LIDAR_FILE,
        "1 of 34688 LIDAR points have NaN or Inf",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-intensity-1e30",
        "lidar",
        "real",
        lidar_points(lambda p: p.__setitem__((7, 3), 1e30)),
        LIDAR_FILE,
        r"out of bounds \(intensity outside 0..255\)",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-negative-intensity",
        "lidar",
        "real",
        lidar_points(lambda p: p.__setitem__((7, 3), -1)),
        LIDAR_FILE,
        "intensity outside",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-coordinate-3e38",
        "lidar",
        "real",
        lidar_points(lambda p: p.__setitem__((9, 0), 3e38)),
        LIDAR_FILE,
        r"\|x\|, \|y\| or \|z\| > 2000 m",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-ring-99",
        "lidar",
        "real",
        lidar_points(lambda p: p.__setitem__((3, 4), 99)),
        LIDAR_FILE,
        r"ring not an integer 0..31",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-ring-fraction",
        "lidar",
        "real",
        lidar_points(lambda p: p.__setitem__((3, 4), 2.5)),
        LIDAR_FILE,
        "ring not an integer",
        tolerant=LIDAR,
    ),  # noqa: E501
    _c(
        "lidar-sweep-truncated",
        "lidar",
        "synth",
        lambda r: prev_of_keyframe(
            "LIDAR_TOP", lambda sd: (r / sd["filename"]).write_bytes(b"\0" * 19)
        )(r),
        "sweeps/LIDAR_TOP",
        "not a positive multiple",
        tolerant=LIDAR,
    ),  # noqa: E501
    # -- radar ---------------------------------------------------------------------------------
    _c(
        "radar-blank-header-line",
        "radar",
        "synth",
        radar_header(b"VERSION 0.7\n", b"\n"),
        RADAR_FILE,
        "line 2 is blank",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-negative-points",
        "radar",
        "synth",
        radar_header(b"\nPOINTS ", b"\nPOINTS -"),
        RADAR_FILE,
        "POINTS must be one integer >= 0",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-renamed-field",
        "radar",
        "synth",
        radar_header(b" vx_comp ", b" vxcomp "),
        RADAR_FILE,
        "FIELDS must be the 18 nuScenes radar fields",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-duplicate-field",
        "radar",
        "synth",
        radar_header(b" vy_rms\n", b" vx_rms\n"),
        RADAR_FILE,
        "FIELDS must be the 18",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-non-number-width",
        "radar",
        "synth",
        radar_header(b"\nWIDTH ", b"\nWIDTH x"),
        RADAR_FILE,
        "WIDTH must be one integer",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-non-number-size",
        "radar",
        "synth",
        radar_header(b"SIZE 4", b"SIZE four"),
        RADAR_FILE,
        "unsupported radar PCD field type F of size four",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-repeated-key",
        "radar",
        "synth",
        radar_header(b"HEIGHT 1\n", b"WIDTH 1\n"),
        RADAR_FILE,
        "header repeats WIDTH",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-ascii-data",
        "radar",
        "synth",
        radar_header(b"DATA binary", b"DATA ascii\n"),
        RADAR_FILE,
        "DATA must be binary",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-non-ascii-header",
        "radar",
        "synth",
        radar_header(b"VERSION 0.7", b"VERSION \xff.7"),
        RADAR_FILE,
        "line 2 is not ASCII",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-truncated",
        "radar",
        "synth",
        on_file("RADAR_FRONT", lambda p: p.write_bytes(p.read_bytes()[:-60])),
        RADAR_FILE,
        "truncated radar PCD",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-header-only",
        "radar",
        "synth",
        on_file("RADAR_FRONT", lambda p: p.write_bytes(p.read_bytes()[:200])),
        RADAR_FILE,
        "truncated radar PCD header",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-velocity-1e6",
        "radar",
        "synth",
        radar_value("vx_comp", 1e6),
        RADAR_FILE,
        r"vx_comp outside \[-200, 200\]",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-x-1e30",
        "radar",
        "synth",
        radar_value("x", 1e30),
        RADAR_FILE,
        "x outside",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-rcs-inf",
        "radar",
        "synth",
        radar_value("rcs", np.inf),
        RADAR_FILE,
        "NaN or Inf",
        tolerant=RADAR,
    ),  # noqa: E501
    _c(
        "radar-empty-file",
        "radar",
        "synth",
        on_file("RADAR_FRONT", write(b"")),
        RADAR_FILE,
        "truncated radar PCD header",
        tolerant=RADAR,
    ),  # noqa: E501
    # -- JPEG ----------------------------------------------------------------------------------
    _c(
        "jpeg-empty",
        "jpeg",
        "real",
        on_file("CAM_FRONT", write(b"")),
        CAM_FILE,
        r"image file is empty \(0 bytes\)",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "jpeg-bomb-32000",
        "jpeg",
        "real",
        jpeg_bomb(32000),
        CAM_FILE,
        "header claims 32000x32000",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "jpeg-bomb-65500",
        "jpeg",
        "real",
        jpeg_bomb(65500),
        CAM_FILE,
        "header claims 65500x65500",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "jpeg-half-with-eoi",
        "jpeg",
        "real",
        on_file("CAM_FRONT", jpeg_half_with_eoi),
        CAM_FILE,
        "bad JPEG data",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "jpeg-truncated",
        "jpeg",
        "real",
        on_file("CAM_FRONT", lambda p: p.write_bytes(p.read_bytes()[:5000])),
        CAM_FILE,
        r"truncated JPEG \(no end-of-image marker\)",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "jpeg-header-garbage",
        "jpeg",
        "real",
        on_file("CAM_FRONT", write(b"\xff\xd8" + bytes(range(256)) * 4 + b"\xff\xd9")),
        CAM_FILE,
        "bad JPEG header",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "jpeg-not-an-image",
        "jpeg",
        "real",
        on_file("CAM_FRONT", write(b"hello, world\n")),
        CAM_FILE,
        "not a JPEG or PNG image",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "jpeg-wrong-size",
        "jpeg",
        "real",
        on_file("CAM_FRONT", jpeg_resized),
        CAM_FILE,
        "image is 800x450, sample_data says 1600x900",
        tolerant=CAM,
    ),  # noqa: E501
    # -- tables --------------------------------------------------------------------------------
    _c(
        "sd-without-ego_pose_token-camera",
        "tables",
        "real",
        edit_sd("CAM_FRONT", lambda r, _: r.pop("ego_pose_token")),
        "sample_data.json",
        "has no 'ego_pose_token'",
        tolerant=CAM,
        validate="fields",
    ),  # noqa: E501
    _c(
        "sd-without-ego_pose_token-lidar",
        "tables",
        "real",
        edit_sd("LIDAR_TOP", lambda r, _: r.pop("ego_pose_token")),
        "sample_data.json",
        "has no 'ego_pose_token'",
        validate="fields",
    ),  # noqa: E501
    _c(
        "annotation-without-size",
        "tables",
        "real",
        edit_record("sample_annotation", first_annotation, del_key("size")),
        "sample_annotation.json",
        "has no 'size'",
        validate="fields",
    ),  # noqa: E501
    _c(
        "annotation-size-zero",
        "tables",
        "real",
        edit_record("sample_annotation", first_annotation, _set(size=[0, 1, 1])),
        "sample_annotation.json",
        "size must be 3 positive",
        validate="values",
    ),  # noqa: E501
    _c(
        "dangling-ego-pose",
        "tables",
        "real",
        edit_sd("CAM_FRONT", lambda r, _: r.update(ego_pose_token="f" * 32)),
        "sample_data.json",
        "ego_pose_token 'f{32}' not in ego_pose.json",
        validate="foreign keys",
    ),  # noqa: E501
    _c(
        "dangling-attribute",
        "tables",
        "real",
        edit_record("sample_annotation", first_annotation, _set(attribute_tokens=["a" * 32])),
        "sample_annotation.json",
        "attribute_tokens 'a{32}' not in attribute.json",
        validate="foreign keys",
    ),  # noqa: E501
    _c(
        "dangling-calibrated-sensor",
        "tables",
        "real",
        edit_sd("CAM_FRONT", lambda r, _: r.update(calibrated_sensor_token="c" * 32)),
        "sample_data.json",
        "calibrated_sensor_token 'c{32}' not in calibrated_sensor",
        validate="foreign keys",
    ),  # noqa: E501
    _c(
        "table-bad-json",
        "tables",
        "real",
        lambda r: (r / REAL_VERSION / "sample.json").write_text("[{"),
        "sample.json",
        "not valid JSON",
        validate="tables",
    ),  # noqa: E501
    _c(
        "table-not-utf8",
        "tables",
        "real",
        lambda r: (r / REAL_VERSION / "attribute.json").write_bytes(b"[\xff\xfe]"),
        "attribute.json",
        "not valid JSON",
        validate="tables",
    ),  # noqa: E501
    _c(
        "token-is-a-list",
        "tables",
        "real",
        edit_record("sample_annotation", first_annotation, set_list_token),
        "sample_annotation.json",
        "token must be a string",
        validate="fields",
    ),  # noqa: E501
    _c(
        "filename-is-a-number",
        "tables",
        "real",
        edit_sd("CAM_FRONT", lambda r, _: r.update(filename=12345)),
        "sample_data.json",
        "filename must be a non-empty string, got 12345",
        tolerant=CAM,
        validate="fields",
    ),  # noqa: E501
    _c(
        "timestamp-is-a-string",
        "tables",
        "real",
        edit_sd("CAM_FRONT", lambda r, _: r.update(timestamp="soon")),
        "sample_data.json",
        "timestamp must be a number of us, got 'soon'",
        tolerant=CAM,
        validate="fields",
    ),  # noqa: E501
    _c(
        "annotation-duplicate-token",
        "tables",
        "real",
        duplicate_annotation,
        "sample_annotation.json",
        "duplicate token '[0-9a-f]{32}' \\(2 records\\)",
        validate="tokens",
    ),  # noqa: E501
    _c(
        "annotation-visibility-dangling",
        "tables",
        "real",
        edit_record("sample_annotation", first_annotation, _set(visibility_token="v" * 32)),
        "sample_annotation.json",
        "visibility_token 'v{32}' not in visibility.json",
        validate="foreign keys",
    ),  # noqa: E501
    _c(
        "sample-token-with-dotdot",
        "tables",
        "real",
        rename_sample("../../../../escaped"),
        None,
        None,
        tolerant=frozenset(),
        inspect="ok",
        validate="tokens",
        outcome="harmless",
    ),  # noqa: E501
    # -- chains --------------------------------------------------------------------------------
    _c(
        "sample-next-self-loop",
        "chains",
        "synth",
        loop_sample,
        "sample.json",
        "sample next chain loops back",
        validate="links",
    ),  # noqa: E501
    _c(
        "sample-next-cycle",
        "chains",
        "synth",
        cycle_samples,
        "sample.json",
        "sample next chain loops back",
        validate="links",
    ),  # noqa: E501
    _c(
        "sweep-prev-self-loop",
        "chains",
        "synth",
        edit_sd("LIDAR_TOP", lambda r, _: r.update(prev=r["token"])),
        "sample_data.json",
        "sample_data prev chain loops back",
        validate="links",
    ),  # noqa: E501
    _c(
        "radar-sweep-prev-self-loop",
        "chains",
        "synth",
        edit_sd("RADAR_FRONT", lambda r, _: r.update(prev=r["token"])),
        "sample_data.json",
        "sample_data prev chain loops back",
        validate="links",
    ),  # noqa: E501
    _c(
        "sweep-prev-dangling",
        "chains",
        "synth",
        edit_sd("LIDAR_TOP", lambda r, _: r.update(prev="d" * 32)),
        "sample_data.json",
        "prev 'd{32}' not in sample_data.json",
        validate="foreign keys",
    ),  # noqa: E501
    _c(
        "annotation-prev-self-loop",
        "chains",
        "real",
        edit_record("sample_annotation", first_annotation, lambda a: a.update(prev=a["token"])),
        "sample_annotation.json",
        "sample_annotation prev chain loops back",
        validate="links",
    ),  # noqa: E501
    _c(
        "lidar-keyframe-next-dangling",
        "chains",
        "synth",
        edit_sd("LIDAR_TOP", lambda r, _: r.update(next="n" * 32)),
        "sample_data.json",
        "next 'n{32}' not in sample_data.json",
        validate="foreign keys",
    ),  # noqa: E501
    _c(
        "annotation-next-cycle-of-2",
        "chains",
        "synth",
        cycle_annotations,
        "sample_annotation.json",
        "sample_annotation next chain loops back",
        validate="links",
    ),  # noqa: E501
    # -- timestamps ----------------------------------------------------------------------------
    _c(
        "sweep-after-its-keyframe",
        "timestamps",
        "synth",
        lambda r: prev_of_keyframe(
            "LIDAR_TOP",
            lambda sd: sd.update(
                timestamp=keyframe(load(r, "sample_data"), r, "LIDAR_TOP")["timestamp"] + 50_000
            ),
        )(r),
        "sample_data.json",
        "is not older than the sample_data after it",
        tolerant=LIDAR,
        validate="time",
    ),  # noqa: E501
    _c(
        "sweep-stamped-minus-5",
        "timestamps",
        "synth",
        prev_of_keyframe("LIDAR_TOP", _set(timestamp=-5)),
        "sample_data.json",
        "timestamp -5 us is negative",
        tolerant=LIDAR,
        validate="time",
    ),  # noqa: E501
    _c(
        "camera-116-days-old",
        "timestamps",
        "real",
        edit_sd("CAM_FRONT", lambda r, _: r.update(timestamp=r["timestamp"] - 116 * DAY_US)),
        None,
        None,
        tolerant=CAM,
        strict_missing=CAM,
        inspect="ok",
        validate=None,
        outcome="tolerated",
        validate_warning="sync",
    ),  # noqa: E501
    _c(
        "radar-200ms-late",
        "timestamps",
        "synth",
        edit_sd("RADAR_FRONT", lambda r, _: r.update(timestamp=r["timestamp"] + 200_000)),
        None,
        None,
        tolerant=RADAR,
        strict_missing=RADAR,
        inspect="ok",
        validate="time",
        outcome="tolerated",
    ),  # noqa: E501
    _c(
        "lidar-keyframe-40ms-off-its-sample",
        "timestamps",
        "real",
        edit_sd("LIDAR_TOP", lambda r, _: r.update(timestamp=r["timestamp"] + 40_000)),
        None,
        None,
        tolerant=LIDAR,
        strict_missing=LIDAR,
        inspect="ok",
        validate=None,
        outcome="tolerated",
        validate_warning="sync",
    ),  # noqa: E501
    _c(
        "sweep-1us-after-its-keyframe",
        "timestamps",
        "synth",
        lambda r: prev_of_keyframe(
            "LIDAR_TOP",
            lambda sd: sd.update(
                timestamp=keyframe(load(r, "sample_data"), r, "LIDAR_TOP")["timestamp"] + 1
            ),
        )(r),
        "sample_data.json",
        "is not older than the sample_data after it",
        tolerant=LIDAR,
        validate="time",
    ),  # noqa: E501
    _c(
        "first-sweep-negative",
        "timestamps",
        "synth",
        first_lidar_sweep(_set(timestamp=-5)),
        "sample_data.json",
        "timestamp -5 us is negative",
        tolerant=LIDAR,
        validate="time",
    ),  # noqa: E501
    _c(
        "all-timestamps-negative",
        "timestamps",
        "real",
        shift_all_timestamps(-2_000_000_000_000_000),
        "sample_data.json",
        "us is negative",
        validate="time",
    ),  # noqa: E501
    _c(
        "camera-3-days-late",
        "timestamps",
        "real",
        edit_sd("CAM_FRONT", lambda r, _: r.update(timestamp=r["timestamp"] + 3 * DAY_US)),
        None,
        None,
        tolerant=CAM,
        strict_missing=CAM,
        inspect="ok",
        validate=None,
        outcome="tolerated",
        validate_warning="sync",
    ),  # noqa: E501
    # -- calibration ---------------------------------------------------------------------------
    _c(
        "zero-quaternion-lidar",
        "calibration",
        "real",
        edit_record("calibrated_sensor", calib_of("LIDAR_TOP"), _set(rotation=[0, 0, 0, 0])),
        "calibrated_sensor.json",
        "rotation is a zero quaternion",
        validate="values",
    ),  # noqa: E501
    _c(
        "zero-quaternion-camera",
        "calibration",
        "real",
        edit_record("calibrated_sensor", calib_of("CAM_FRONT"), _set(rotation=[0, 0, 0, 0])),
        "calibrated_sensor.json",
        "rotation is a zero quaternion",
        tolerant=CAM,
        validate="values",
    ),  # noqa: E501
    _c(
        "nan-translation-ego-pose",
        "calibration",
        "real",
        edit_record("ego_pose", ego_pose_of("CAM_FRONT"), _set(translation=[float("nan"), 0, 0])),
        "ego_pose.json",
        "translation must be 3 finite numbers",
        tolerant=CAM | {"EGO_MOTION"},
        validate="fields",
    ),  # noqa: E501
    _c(
        "translation-2-numbers",
        "calibration",
        "real",
        edit_record("calibrated_sensor", calib_of("CAM_FRONT"), _set(translation=[1, 2])),
        "calibrated_sensor.json",
        "translation must be 3 finite numbers",
        tolerant=CAM,
        validate="values",
    ),  # noqa: E501
    _c(
        "zero-intrinsics",
        "calibration",
        "real",
        edit_record(
            "calibrated_sensor",
            calib_of("CAM_FRONT"),
            _set(camera_intrinsic=[[0, 0, 0], [0, 0, 0], [0, 0, 1]]),
        ),
        "calibrated_sensor.json",
        "focal lengths must be positive",
        tolerant=CAM,
        validate="values",
    ),  # noqa: E501
    _c(
        "intrinsics-not-3x3",
        "calibration",
        "real",
        edit_record("calibrated_sensor", calib_of("CAM_FRONT"), _set(camera_intrinsic=[[1, 2]])),
        "calibrated_sensor.json",
        "finite 3x3 matrix",
        tolerant=CAM,
        validate="values",
    ),  # noqa: E501
    _c(
        "non-unit-quaternion",
        "calibration",
        "real",
        edit_record(
            "calibrated_sensor",
            calib_of("CAM_FRONT"),
            lambda r: r.update(rotation=[2 * q for q in r["rotation"]]),
        ),
        None,
        None,
        tolerant=frozenset(),
        inspect="ok",
        validate=None,
        outcome="harmless",
        validate_warning="values",
    ),  # noqa: E501
    _c(
        "intrinsics-zero-last-row",
        "calibration",
        "real",
        edit_record(
            "calibrated_sensor",
            calib_of("CAM_FRONT"),
            lambda r: r.update(camera_intrinsic=[*r["camera_intrinsic"][:2], [0, 0, 0]]),
        ),
        "calibrated_sensor.json",
        r"last row must be \(0, 0, 1\)",
        tolerant=CAM,
        validate="values",
    ),  # noqa: E501
    _c(
        "intrinsics-singular-positive-focals",
        "calibration",
        "real",
        edit_record(
            "calibrated_sensor",
            calib_of("CAM_FRONT"),
            _set(camera_intrinsic=[[1000, 1000, 800], [1000, 1000, 450], [0, 0, 1]]),
        ),
        "calibrated_sensor.json",
        r"singular or ill-conditioned: condition number .* > 1e\+06",
        tolerant=CAM,
        validate="values",
    ),  # noqa: E501
    _c(
        "intrinsics-condition-1e7",
        "calibration",
        "real",
        edit_record(
            "calibrated_sensor",
            calib_of("CAM_FRONT"),
            _set(camera_intrinsic=[[1e7, 0, 800], [0, 1e7, 450], [0, 0, 1]]),
        ),
        "calibrated_sensor.json",
        "singular or ill-conditioned",
        tolerant=CAM,
        validate="values",
    ),  # noqa: E501
    # -- CAN bus -------------------------------------------------------------------------------
    _c(
        "can-pose-not-utf8",
        "can_bus",
        "synth",
        can_file("pose", write(b"[\xff\xfe\x00]")),
        POSE_FILE,
        "not valid JSON",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-pose-bad-json",
        "can_bus",
        "synth",
        can_file("pose", write(b'[{"utime": ')),
        POSE_FILE,
        "not valid JSON",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-pose-not-a-list",
        "can_bus",
        "synth",
        can_file("pose", write(b'{"utime": 1}')),
        POSE_FILE,
        "must hold a JSON list of objects",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-pose-string-position",
        "can_bus",
        "synth",
        can_messages("pose", lambda d: d[0].update(pos="here")),
        POSE_FILE,
        "'pos' missing or not numbers",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-pose-without-orientation",
        "can_bus",
        "synth",
        can_messages("pose", lambda d: d[3].pop("orientation")),
        POSE_FILE,
        "'orientation' missing",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-pose-zero-quaternion",
        "can_bus",
        "synth",
        can_messages("pose", lambda d: d[3].update(orientation=[0, 0, 0, 0])),
        POSE_FILE,
        "zero quaternion",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-pose-empty",
        "can_bus",
        "synth",
        can_file("pose", write(b"[]")),
        POSE_FILE,
        "no messages",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-pose-float-utime",
        "can_bus",
        "synth",
        can_messages("pose", lambda d: d[2].update(utime=d[2]["utime"] + 0.5)),
        POSE_FILE,
        "integer microseconds",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-imu-nan",
        "can_bus",
        "synth",
        can_messages("ms_imu", lambda d: d[1].update(rotation_rate=[float("nan"), 0, 0])),
        IMU_FILE,
        "'rotation_rate' has NaN or Inf",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    _c(
        "can-imu-messages-not-objects",
        "can_bus",
        "synth",
        can_file("ms_imu", write(b"[1, 2, 3]")),
        IMU_FILE,
        "must hold a JSON list of objects",
        tolerant=CAN,
        validate="can_bus",
    ),  # noqa: E501
    # -- splits (read by the reader's split lookup: eval, train) ----------------------------------
    _c(
        "splits-bad-json",
        "splits",
        "synth",
        splits(b'{"synth_val": ['),
        "splits.json",
        "splits file is not valid JSON",
        inspect="ok",
        validate="splits",
        entry="split",
    ),  # noqa: E501
    _c(
        "splits-not-utf8",
        "splits",
        "synth",
        splits(b'{"synth_val": ["\xff"]}'),
        "splits.json",
        "splits file is not valid JSON",
        inspect="ok",
        validate="splits",
        entry="split",
    ),  # noqa: E501
    _c(
        "splits-a-list",
        "splits",
        "synth",
        splits(b"[1, 2]"),
        "splits.json",
        "must map each split name to a list",
        inspect="ok",
        validate="splits",
        entry="split",
    ),  # noqa: E501
    _c(
        "splits-value-a-string",
        "splits",
        "synth",
        splits(b'{"synth_val": "scene-0001"}'),
        "splits.json",
        "must map each split name to a list",
        inspect="ok",
        validate="splits",
        entry="split",
    ),  # noqa: E501
    # -- paths ---------------------------------------------------------------------------------
    _c(
        "filename-dotdot",
        "paths",
        "real",
        filename_to(lambda r: (outside_file(r, "secret.jpg"), "../secret.jpg")[1]),
        "../secret.jpg",
        "resolves outside the dataroot",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "filename-absolute",
        "paths",
        "real",
        filename_to(lambda r: str(outside_file(r, "abs.jpg"))),
        "abs.jpg",
        "resolves outside the dataroot",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "filename-symlink-out",
        "paths",
        "real",
        symlink_out,
        CAM_FILE,
        "resolves outside the dataroot",
        tolerant=CAM,
    ),  # noqa: E501
    _c(
        "filename-empty",
        "paths",
        "real",
        filename_to(lambda r: ""),
        "sample_data.json",
        "filename must be a non-empty string",
        tolerant=CAM,
    ),  # noqa: E501
]
CASE_IDS = [c.id for c in CASES]
assert len(set(CASE_IDS)) == len(CASES)


# -- running a case -----------------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: int, what: str) -> Iterator[None]:
    """Raise TimeoutError after `seconds` (a hang fails the case, it does not stop the run)."""

    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"{what} did not finish in {seconds} s (hang)")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Result:
    """What one entry point did: "ok" (+ missing channels) or "error" (+ file and reason)."""

    kind: str
    file: str | None = None
    reason: str | None = None
    missing: frozenset[str] = frozenset()
    rc: int | None = None
    output: str = ""
    seconds: float = 0.0


def _reader_run(root: Path, case: Case, tolerant: bool) -> Result:
    reader = None
    try:
        reader = NuScenesReader(
            root,
            version(root),
            ReaderOptions(lidar_sweeps=SWEEPS, radar_sweeps=RADAR_SWEEPS, tolerant=tolerant),
        )
        if case.entry == "split":
            reader.sample_tokens(split="synth_val")
            return Result("ok")
        missing: set[str] = set()
        for tok in reader.sample_tokens():
            missing |= set(reader.frame(tok).missing)
        return Result("ok", missing=frozenset(missing))
    except DataError as err:
        return Result("error", err.path, err.reason)


def _cli(argv: list[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return Result("ok" if rc == 0 else "error", rc=rc, output=out.getvalue() + err.getvalue())


ENTRY_POINTS = ("reader", "tolerant", "inspect", "validate")


def run_case(case: Case, root: Path, mutate: bool = True) -> dict[str, Result]:
    """Corrupt `root` (a fresh copy) as the case says (unless done), then run every entry
    point on it."""
    if mutate:
        case.mutate(root)
    ver = version(root)
    runs: dict[str, Callable[[], Result]] = {
        "reader": lambda: _reader_run(root, case, tolerant=False),
        "tolerant": lambda: _reader_run(root, case, tolerant=True),
        "inspect": lambda: _cli(
            [
                "inspect",
                "--dataroot",
                str(root),
                "--version",
                ver,
                "--json",
                "--sweeps",
                str(SWEEPS),
            ]
        ),
        "validate": lambda: _cli(["validate", "--dataroot", str(root), "--version", ver]),
    }
    results = {}
    for name, fn in runs.items():
        t0 = time.perf_counter()
        with time_limit(TIME_LIMIT_S, f"{case.id} {name}"):
            results[name] = fn()
        results[name].seconds = time.perf_counter() - t0
    return results


def classify(case: Case, entry: str) -> str:
    """How the figure counts the expected outcome of `entry` for `case`."""
    if case.outcome == "harmless":  # accepted on purpose (README), validate may still report it
        if entry == "validate" and case.validate:
            return "clean error"
        return "harmless (listed)"
    if entry == "tolerant" and isinstance(case.tolerant, frozenset):
        return "tolerated (marked missing)"
    if case.outcome == "tolerated" and entry in ("reader", "inspect"):
        return "tolerated (marked missing)"
    if entry == "validate":
        return "clean error" if case.validate else "reported (warning)"
    if entry == "inspect" and case.inspect == "ok":
        return "not read (other entry point)"
    return "clean error"


def copy_base(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    for p in dst.rglob("*"):
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def baseline_missing(root: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(channels missing over all frames, missing in the first frame) of a pristine base."""
    reader = NuScenesReader(root, version(root), ReaderOptions(lidar_sweeps=SWEEPS))
    frames = [reader.frame(t) for t in reader.sample_tokens()]
    return frozenset().union(*(f.missing for f in frames)), frozenset(frames[0].missing)


def silent(
    case: Case, got: dict[str, Result], base: tuple[frozenset[str], frozenset[str]]
) -> list[str]:
    """The entry points that read the broken input and said nothing: no error, nothing marked
    missing or counted beyond the pristine base, no warning, and the case is neither listed in
    the README as accepted on purpose nor left unread by that entry point. Computed from what
    the runs did, not from the case's expectation."""
    base_all, base_first = base
    out = []
    for entry in ENTRY_POINTS:
        r = got[entry]
        if r.kind == "error" or classify(case, entry) in (
            "harmless (listed)",
            "not read (other entry point)",
        ):
            continue
        if entry in ("reader", "tolerant"):
            said = bool(r.missing - base_all)
        elif entry == "inspect":
            try:
                info = json.loads(r.output.splitlines()[0])
                said = bool(set(info["out_of_sync"]) - base_first)
            except (ValueError, IndexError, KeyError):
                said = False
        else:
            said = case.validate_warning is not None and (
                f"WARNING [{case.validate_warning}]" in r.output
            )
        if not said:
            out.append(entry)
    return out


def deviations(
    case: Case, got: dict[str, Result], base: tuple[frozenset[str], frozenset[str]]
) -> list[str]:
    """How the results differ from the case's stated outcome (empty: exactly as stated)."""
    base_all, base_first = base
    bad: list[str] = []
    strict, tolerant, inspect, validate = (got[k] for k in ENTRY_POINTS)
    for name, r in got.items():
        if "Traceback" in r.output:
            bad.append(f"{name}: traceback")
    if case.file is None:
        if strict.kind != "ok" or strict.missing != case.strict_missing | base_all:
            bad.append(f"reader: {strict}")
    elif not (
        strict.kind == "error"
        and strict.file is not None
        and case.file in strict.file
        and strict.reason is not None
        and re.search(case.reason or "", strict.reason)
    ):
        bad.append(f"reader: {strict}")
    if case.tolerant == "raise":
        if (tolerant.kind, tolerant.file, tolerant.reason) != (
            strict.kind,
            strict.file,
            strict.reason,
        ):
            bad.append(f"tolerant: {tolerant}")
    elif tolerant.kind != "ok" or tolerant.missing != case.tolerant | base_all:
        bad.append(f"tolerant: {tolerant}")
    if case.inspect == "error":
        line = inspect.output.strip()
        if not (
            inspect.rc == 2
            and line.startswith("fusion inspect: error: ")
            and "\n" not in line
            and case.file is not None
            and case.file in line
            and re.search(case.reason or "", line)
        ):
            bad.append(f"inspect: rc {inspect.rc}: {line[:200]}")
    else:
        try:
            info = json.loads(inspect.output.splitlines()[0])
            # strict inspect: a sensor is missing only beyond the sync tolerance, and counted
            ok = (
                inspect.rc == 0
                and set(info["missing"]) == case.strict_missing | base_first
                and set(info["out_of_sync"]) == set(info["missing"])
                and all(n == 1 for n in info["out_of_sync"].values())
            )
        except (ValueError, IndexError, KeyError):
            ok = False
        if not ok:
            bad.append(f"inspect: rc {inspect.rc}: {inspect.output[:200]}")
    if case.validate is None:
        if validate.rc != 0:
            bad.append(f"validate: rc {validate.rc}")
    elif validate.rc != 1 or f"ERROR [{case.validate}]" not in validate.output:
        bad.append(f"validate: rc {validate.rc}: {validate.output[-300:]}")
    if case.validate_warning and f"WARNING [{case.validate_warning}]" not in validate.output:
        bad.append(f"validate: no WARNING [{case.validate_warning}]")
    return bad
