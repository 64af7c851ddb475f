"""One convention in every subcommand: `--json` is a flag (JSON on stdout), `--json-out` a
path; no default points into the source tree; `--models/--weights/--checkpoint` are one set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from fusion.cli import SUBCOMMANDS, build_parser
from fusion.commands.arguments import emit_json

REPO = Path(__file__).resolve().parents[2]


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every leaf parser: `inspect`, `calibrate board`, `bench latency`, ..."""
    out: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            out[name] = parser
        for action in subs:
            for sub_name, sub in action.choices.items():
                walk(f"{name} {sub_name}".strip(), sub)

    for command in SUBCOMMANDS:
        parser = build_parser([command])
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        walk(command, action.choices[command])
    return out


PARSERS = _parsers()


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in parser._actions if flag in a.option_strings), None)


def test_every_leaf_command_is_seen() -> None:
    assert {"inspect", "calibrate board", "calibrate check", "eval", "train"} <= set(PARSERS)
    assert {"bench kernels", "bench latency", "generate", "validate", "export"} <= set(PARSERS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_json_is_a_flag_and_json_out_a_path(name: str) -> None:
    parser = PARSERS[name]
    flag = _option(parser, "--json")
    if flag is not None:
        assert isinstance(flag, argparse._StoreTrueAction), name
    out = _option(parser, "--json-out")
    if out is not None:
        assert out.type is Path and out.default is None, name
    if name in {"inspect", "calibrate board", "calibrate check", "eval", "bench latency"}:
        assert flag is not None and out is not None, name
    if name == "bench kernels":
        assert out is not None and _option(parser, "--markdown-out") is not None


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_no_default_points_into_the_source_tree(name: str) -> None:
    for action in PARSERS[name]._actions:
        if isinstance(action.default, Path):
            path = action.default
            # the shipped rig preset is package data, read not written
            if path.suffix == ".toml" and path.parent.name == "configs":
                continue
            assert not path.is_absolute() or REPO not in path.resolve().parents, (name, action)


@pytest.mark.parametrize("name", ["bench kernels", "bench latency", "eval", "inspect", "train"])
def test_a_dataroot_is_given(name: str) -> None:
    action = _option(PARSERS[name], "--dataroot")
    assert action is not None and action.required, name


@pytest.mark.parametrize("name", ["eval", "bench latency"])
def test_model_choice_is_one_shared_set(name: str) -> None:
    parser = PARSERS[name]
    models, weights, checkpoint = (
        _option(parser, f) for f in ("--models", "--weights", "--checkpoint")
    )
    assert models.default == "fusion,camera,lidar" and weights.type is Path
    assert checkpoint.metavar == "MODEL=PATH" and checkpoint.default == []
    assert models.help == _option(PARSERS["eval"], "--models").help


def test_emit_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    payload = {"a": [1, 2]}
    args = argparse.Namespace(json=False, json_out=tmp_path / "sub" / "x.json")
    assert emit_json(args, payload) is False
    assert json.loads((tmp_path / "sub" / "x.json").read_text()) == payload
    assert capsys.readouterr().out == ""
    assert emit_json(argparse.Namespace(json=True, json_out=None), payload) is True
    assert json.loads(capsys.readouterr().out) == payload


# commands that print no result of their own, with the reason
NO_JSON = {
    "generate": "prints one summary line; its result is the dataroot it writes",
}


def test_every_command_that_prints_a_result_has_json_and_json_out() -> None:
    for name, parser in PARSERS.items():
        has = {_option(parser, "--json") is not None, _option(parser, "--json-out") is not None}
        if name in NO_JSON:
            continue
        assert has == {True}, f"{name}: --json and --json-out"


def test_a_dataroot_is_an_option_named_dataroot_with_a_required_version() -> None:
    for name, parser in PARSERS.items():
        positional = [a.dest for a in parser._actions if not a.option_strings]
        assert "dataroot" not in positional and "source" not in positional, name
        dataroot = _option(parser, "--dataroot")
        version = _option(parser, "--version")
        if dataroot is None or name in ("generate",):
            continue
        assert version is not None, name
        # these also read logs (--log) or nothing (--from-json): a dataroot without its
        # version is refused at run time instead (fusion.sources.check_version)
        if name not in ("bench real", "bench latency", "bench replay", "replay"):
            assert version.required and version.default is None, name


def test_model_is_one_model_models_a_list_weights_a_folder() -> None:
    for name, parser in PARSERS.items():
        model, models = _option(parser, "--model"), _option(parser, "--models")
        assert not (model and models), name
        if model is not None:
            assert model.choices is not None and model.nargs is None, name
        if models is not None:
            assert models.type is None and "," in models.help, name
        weights = _option(parser, "--weights")
        if weights is not None:
            assert weights.type is Path and "folder" in weights.help, (name, weights.help)


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "--model", "lidar", "--rate", "0", "--no-status"],
        ["bench", "replay", "--models", "lidar"],
        ["bench", "latency", "--models", "lidar"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_dataroot_without_its_version_is_refused(argv, capsys) -> None:
    from shared_data import REAL_ROOT

    from fusion.cli import main

    assert main([*argv, "--dataroot", str(REAL_ROOT)]) == 2
    assert "--version" in capsys.readouterr().err
