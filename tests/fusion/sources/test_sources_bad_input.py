"""Bad logs give one DataError naming the file: missing, truncated, unknown schema, a topic map
naming a topic the log lacks, a log without LIDAR; a corrupt message fails only its decode()."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from source_logs import SYNTH_SCENE, SYNTH_VERSION, quiet_main

from fusion.errors import DataError
from fusion.sources import open_source
from fusion.sources.layout import DEFAULT_TOPICS
from fusion.sources.mcap import FoxgloveMcapWriter
from fusion.sources.rosbag import RosbagWriter


def _raises(path: Path, match: str, **kw) -> DataError:  # noqa: ANN003
    with pytest.raises(DataError, match=match) as err:
        src = open_source(path, **kw)
        list(src.messages())
    assert err.value.path is not None and Path(err.value.path).name == path.name, err.value
    return err.value


def test_missing_and_unrecognised_files(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.mcap", "missing")
    junk = tmp_path / "junk.mcap"
    junk.write_bytes(b"\x00garbage" * 100)
    _raises(junk, "unknown log format")
    folder = tmp_path / "folder"
    folder.mkdir()
    _raises(folder, "neither a nuScenes dataroot nor a ROS 2 bag")


@pytest.mark.parametrize("layout", ["mcap", "ros1", "ros2-bare-mcap"])
def test_truncated_log(layout: str, synth_logs: dict[str, Path], tmp_path: Path) -> None:
    src = synth_logs[layout]
    cut = tmp_path / src.name
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    _raises(cut, "truncated|not a readable|corrupt|cannot")


def test_truncated_ros2_bag_storage(synth_logs: dict[str, Path], tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    shutil.copytree(synth_logs["ros2-mcap"], bag)
    storage = next(bag.glob("*.mcap"))
    storage.write_bytes(storage.read_bytes()[:5000])
    _raises(bag, "not a readable|corrupt")


def test_unknown_schema(tmp_path: Path) -> None:
    from mcap.writer import Writer

    path = tmp_path / "flat.mcap"
    with path.open("wb") as f:
        w = Writer(f)
        w.start()
        sid = w.register_schema("foxglove.PointCloud", "flatbuffer", b"\x00")
        cid = w.register_channel("/lidar_top", "flatbuffer", sid)
        w.add_message(cid, log_time=1, data=b"\x00", publish_time=1)
        w.finish()
    _raises(path, "unknown MCAP schema encodings")


def test_wrong_schema_on_a_sensor_topic(synth_root: Path, tmp_path: Path) -> None:
    ref = open_source(synth_root, version=SYNTH_VERSION, scene=SYNTH_SCENE)
    tmap = DEFAULT_TOPICS.read_text().replace('topic = "/lidar_top"', 'topic = "/lidar_x"')
    tmap = tmap.replace('topic = "/cam_front/image_rect_compressed"', 'topic = "/lidar_top"')
    (tmp_path / "swap.toml").write_text(tmap)
    from fusion.sources.layout import load_topic_map

    out = tmp_path / "swapped.mcap"  # CAM_FRONT images on /lidar_top
    with FoxgloveMcapWriter(out, ref.rig(), topics=load_topic_map(tmp_path / "swap.toml")) as w:
        for m in ref.messages():
            w.write(m)
    _raises(out, "has schema 'foxglove.CompressedImage'")


def test_topic_map_naming_an_absent_topic(synth_logs: dict[str, Path], tmp_path: Path) -> None:
    tmap = tmp_path / "velodyne.toml"
    tmap.write_text(DEFAULT_TOPICS.read_text().replace('"/lidar_top"', '"/velodyne_points"'))
    for layout in ("mcap", "ros1", "ros2-db3"):
        with pytest.raises(DataError, match="/velodyne_points") as err:
            open_source(synth_logs[layout], topics=tmap)
        assert err.value.path == str(tmap)


def test_topic_map_with_an_unknown_key(synth_logs: dict[str, Path], tmp_path: Path) -> None:
    tmap = tmp_path / "typo.toml"
    tmap.write_text(DEFAULT_TOPICS.read_text().replace("tf_static =", "tf_statik ="))
    with pytest.raises(DataError, match="tf_statik") as err:
        open_source(synth_logs["mcap"], topics=tmap)
    assert err.value.path == str(tmap)


@pytest.mark.parametrize("to", ["mcap", "ros1", "ros2"])
def test_log_without_lidar(to: str, synth_root: Path, tmp_path: Path) -> None:
    ref = open_source(synth_root, version=SYNTH_VERSION, scene=SYNTH_SCENE)
    out = tmp_path / {"mcap": "nolidar.mcap", "ros1": "nolidar.bag", "ros2": "nolidar"}[to]
    writer = (
        FoxgloveMcapWriter(out, ref.rig()) if to == "mcap" else RosbagWriter(out, ref.rig(), ros=to)
    )
    with writer:
        for m in ref.messages():
            if m.kind != "lidar":
                writer.write(m)
    _raises(out, "no LIDAR")


def test_a_corrupt_message_fails_only_its_decode(synth_logs: dict[str, Path]) -> None:
    for layout in ("mcap", "ros1", "ros2-db3"):
        decoded = failed = 0
        for m in open_source(synth_logs[layout]).messages():
            bad = m.with_raw(m.raw[: len(m.raw) // 3])
            with pytest.raises(DataError) as err:
                bad.decode()
            assert str(synth_logs[layout]) in err.value.path
            failed += 1
            m.decode()
            decoded += 1
        assert decoded == failed > 600


def test_convert_errors_exit_2_with_one_line(synth_root: Path, tmp_path: Path) -> None:
    base = ["convert", "--dataroot", str(synth_root), "--version", SYNTH_VERSION, "--to", "mcap"]
    rc, text = quiet_main([*base, "--scene", "scene-9999", "--out", str(tmp_path / "a.mcap")])
    assert rc == 2 and text.strip().startswith("fusion convert: error:") and "scene-9999" in text
    assert not (tmp_path / "a.mcap").exists()
    (tmp_path / "b.mcap").write_bytes(b"keep")
    rc, text = quiet_main([*base, "--scene", SYNTH_SCENE, "--out", str(tmp_path / "b.mcap")])
    assert rc == 2 and "output exists" in text and (tmp_path / "b.mcap").read_bytes() == b"keep"
    rc, text = quiet_main(["convert", "--dataroot", str(tmp_path / "none"),
                           "--version", "v", "--scene", "s",
                           "--to", "ros1", "--out", str(tmp_path / "c.bag")])  # fmt: skip
    assert rc == 2 and text.count("\n") == 1 and str(tmp_path / "none") in text
