"""Log sources (nuScenes dataroot, Foxglove MCAP, ROS 2 and ROS 1 bags) behind one interface.

    src = open_source(path, version=..., scene=..., rig=..., topics=...)
    rig = src.rig()
    for msg in src.messages():   # lazy, log-time order, undecoded
        payload = msg.decode()   # DataError naming the message on bad bytes

The kind is detected from the file: a folder with `<version>/scene.json` is a nuScenes dataroot;
a folder with `metadata.yaml` (or a `.mcap`/`.db3` inside one) a ROS 2 bag; a file starting with
the ROS 1 bag magic a ROS 1 bag; an MCAP file a Foxglove log when its schemas are `protobuf`,
a ROS 2 log when they are `ros2msg`/`ros2idl`. See `fusion.sources.base` for the messages.
"""

from __future__ import annotations

from pathlib import Path

from fusion.errors import DataError, FusionError
from fusion.sources.base import Rig, Source
from fusion.sources.dataroot import DatarootSource
from fusion.sources.layout import TopicMap, load_topic_map, rig_from_file
from fusion.sources.mcap import FoxgloveMcapSource, mcap_schema_encodings
from fusion.sources.rosbag import RosbagSource

__all__ = ["open_source", "detect_kind"]

_MCAP_MAGIC = b"\x89MCAP0\r\n"
_ROS1_MAGIC = b"#ROSBAG V2.0\n"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_ROS2_SCHEMAS = {"ros2msg", "ros2idl"}


def _is_dataroot(path: Path) -> bool:
    return any((d / "scene.json").is_file() for d in path.iterdir() if d.is_dir())


def detect_kind(path: str | Path) -> str:
    """`dataroot`, `mcap` (foxglove), `ros2` or `ros1`; DataError naming the file otherwise."""
    p = Path(path)
    if not p.exists():
        raise DataError("file is missing", p)
    if p.is_dir():
        if (p / "metadata.yaml").is_file():
            return "ros2"
        if _is_dataroot(p):
            return "dataroot"
        raise DataError("folder is neither a nuScenes dataroot nor a ROS 2 bag", p)
    try:
        with p.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise DataError(f"cannot read file: {exc.strerror}", p) from exc
    if head.startswith(_ROS1_MAGIC):
        return "ros1"
    if head.startswith(_SQLITE_MAGIC):
        if (p.parent / "metadata.yaml").is_file():
            return "ros2"
        raise DataError("SQLite file outside a ROS 2 bag folder (no metadata.yaml beside it)", p)
    if head.startswith(_MCAP_MAGIC):
        if (p.parent / "metadata.yaml").is_file():
            return "ros2"

        encodings = mcap_schema_encodings(p)
        if encodings & _ROS2_SCHEMAS:
            return "ros2"
        if "protobuf" in encodings:
            return "mcap"
        found = ", ".join(sorted(encodings)) or "none"
        raise DataError(f"unknown MCAP schema encodings ({found}): not foxglove nor ROS 2", p)
    raise DataError("unknown log format (not a dataroot, MCAP, ROS 2 or ROS 1 bag)", p)


def _dataroot_args(path: Path, version: str | None, scene: str | None) -> tuple[str, str]:
    if version is None:
        versions = sorted(d.name for d in path.iterdir() if (d / "scene.json").is_file())
        if len(versions) != 1:
            raise DataError(f"a dataroot needs --version (has: {', '.join(versions)})", path)
        version = versions[0]
    if scene is None:
        import json

        try:
            scenes = [s["name"] for s in json.loads((path / version / "scene.json").read_text())]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"cannot read the scene table: {exc}", path / version) from exc
        if len(scenes) != 1:
            raise DataError(f"a dataroot needs --scene (has: {', '.join(scenes[:10])})", path)
        scene = scenes[0]
    return version, scene


def check_version(path: str | Path, version: str | None) -> None:
    """The commands' convention: a dataroot is read with its `--version` given (a log file
    carries no version). Raises FusionError when `path` is a dataroot and `version` is None."""
    if version is None and detect_kind(Path(path)) == "dataroot":
        raise FusionError("a dataroot is read with --version (e.g. v1.0-mini)", Path(path))


def open_source(
    path: str | Path,
    *,
    version: str | None = None,
    scene: str | None = None,
    rig: str | Path | Rig | None = None,
    topics: str | Path | TopicMap | None = None,
) -> Source:
    """Open a log as a `Source`. `version`/`scene` select a dataroot's scene (optional when it
    has one); `rig` (a `configs/rig_nuscenes.toml`-format file, or a Rig) calibrates sensors
    the log has no calibration for; `topics` (a topic-map TOML, or a TopicMap) maps another
    layout's topics. A missing or unreadable file, an unknown schema, a topic map naming a
    topic absent from the log, or a log without LIDAR raises DataError naming the file."""
    p = Path(path)
    kind = detect_kind(p)
    fallback = rig_from_file(rig) if isinstance(rig, (str, Path)) else rig
    tmap = topics if isinstance(topics, TopicMap) or topics is None else load_topic_map(topics)
    match kind:
        case "dataroot":
            return DatarootSource(p, *_dataroot_args(p, version, scene))
        case "mcap":
            return FoxgloveMcapSource(p, topics=tmap, rig=fallback)
        case _:
            return RosbagSource(p, topics=tmap, rig=fallback)
