"""Pure parts of `fusion generate`: scene names, splits, tokens."""

from __future__ import annotations

from fusion.synth.dataroot import CAN_BLACKLIST, scene_names
from fusion.synth.scene import camera_fire_fraction, token
from fusion.synth.writer import splits


def test_scene_names_skip_the_can_bus_blacklist() -> None:
    names = scene_names(320)
    assert names[0] == "scene-0001" and len(set(names)) == 320
    numbers = [int(n[-4:]) for n in names]
    assert not set(numbers) & CAN_BLACKLIST
    assert {160, 169, 177, 308, 315} <= set(numbers)
    assert scene_names(2, first=161) == ["scene-0169", "scene-0177"]


def test_splits_cover_all_scenes_once() -> None:
    names = [f"scene-{i:04d}" for i in range(1, 11)]
    s = splits(names, 0.2)
    assert len(s["synth_val"]) == 2 and len(s["synth_train"]) == 8
    assert sorted(s["synth_train"] + s["synth_val"]) == names == s["synth_all"]
    assert splits(names[:1], 0.2)["synth_val"] == names[:1]  # one scene: both train and val
    assert splits(names[:3], 0.0)["synth_val"] == []


def test_tokens_are_deterministic_32_hex() -> None:
    a = token("v1.0-synth/1", "scene-0001", "sample", 0)
    assert a == token("v1.0-synth/1", "scene-0001", "sample", 0)
    assert a != token("v1.0-synth/2", "scene-0001", "sample", 0)
    assert len(a) == 32 and int(a, 16) >= 0


def test_camera_fires_when_the_spin_crosses_its_axis() -> None:
    # spin starts at +108 deg (ego frame) and turns clockwise: the front camera (0 deg) is
    # crossed 108/360 of the way through the sweep, the back camera (180 deg) at 288/360
    assert abs(camera_fire_fraction(0.0, 108.0) - 0.3) < 1e-12
    assert abs(camera_fire_fraction(180.0, 108.0) - 0.8) < 1e-12
    assert abs(camera_fire_fraction(-56.0, 108.0) - 164 / 360) < 1e-12


def test_image_size_is_wxh_on_the_command_line_and_hw_in_code(tmp_path) -> None:  # noqa: ANN001
    import argparse
    import json

    import pytest

    from fusion.commands.generate import _image_hw, add_arguments
    from fusion.errors import FusionError
    from fusion.synth.dataroot import _check_out

    assert _image_hw("1600x900") == (900, 1600)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--image-size", "704x396"])
    assert args.image_hw == (396, 704)
    assert parser.parse_args(["--out", str(tmp_path)]).image_hw == (900, 1600)
    # a dataroot generated before the rename recorded (W, H) as image_size: still the same
    state = tmp_path / "root" / ".synth"
    state.mkdir(parents=True)
    (state / "params.json").write_text(json.dumps({"seed": 1, "image_size": [704, 396]}))
    _check_out(tmp_path / "root", {"seed": 1, "image_hw": [396, 704]})
    with pytest.raises(FusionError, match="image_hw"):
        _check_out(tmp_path / "root", {"seed": 1, "image_hw": [900, 1600]})
    # ... and encoded its JPEGs at quality 90, which it did not record: resuming it at the new
    # default (80) is refused, at --jpeg-quality 90 it resumes
    params = {"seed": 1, "image_hw": [396, 704]}
    _check_out(tmp_path / "root", params | {"jpeg_quality": 90})
    with pytest.raises(FusionError, match="jpeg_quality"):
        _check_out(tmp_path / "root", params | {"jpeg_quality": 80})


def test_jpeg_quality_on_the_command_line(tmp_path) -> None:  # noqa: ANN001
    import argparse

    import pytest

    from fusion.commands.generate import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["--out", str(tmp_path)]).jpeg_quality == 80
    assert parser.parse_args(["--out", str(tmp_path), "--jpeg-quality", "90"]).jpeg_quality == 90
    for bad in ("0", "101"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--out", str(tmp_path), "--jpeg-quality", bad])
