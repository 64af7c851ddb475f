"""Bad input at the two entry points that write: resuming from a broken checkpoint
(`fusion.train.loop.load_checkpoint`), and `fusion eval`, whose files must all land inside --out
(a sample token is a dataset string)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
from pathlib import Path

import pytest
import torch
from model_fakes import tiny_config, tiny_params
from shared_data import REAL_ROOT

from fusion.cli import main
from fusion.errors import DataError
from fusion.model import build_detector, save_detector
from fusion.train.loop import RunPosition, load_checkpoint, save_checkpoint

REAL = REAL_ROOT


def _model_and_optimizer(seed: int = 0):  # noqa: ANN202
    torch.manual_seed(seed)
    model = build_detector(tiny_config(), "lidar", tiny_params())
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, opt = _model_and_optimizer()
    loss = sum(p.sum() for p in model.parameters())
    loss.backward()
    opt.step()
    path = tmp_path_factory.mktemp("ckpt") / "last.safetensors"
    return save_checkpoint(path, model, opt, RunPosition(3, 1, 2, 4.5), {"note": "x"})


def _rewrite_metadata(src: Path, dst: Path, **changes: str) -> None:
    """The same tensors with some metadata values replaced (safetensors: u64 header size +
    JSON header + data)."""
    raw = src.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    header["__metadata__"].update(changes)
    new = json.dumps(header).encode()
    dst.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])


def _truncate(src: Path, dst: Path) -> None:
    raw = src.read_bytes()
    dst.write_bytes(raw[: len(raw) // 2])


def _shape(src: Path, dst: Path) -> None:
    """A tensor whose declared shape does not match the model's (same byte count)."""
    raw = src.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    key = next(k for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 4)
    s = header[key]["shape"]
    header[key]["shape"] = [s[1], s[0], *s[2:]] if s[0] != s[1] else [s[0] * s[1], 1, *s[2:]]
    new = json.dumps(header).encode()
    dst.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + n :])


def _poison(src: Path, dst: Path, prefix: str, value: float, every: bool = False) -> str:
    """The same file with the first tensor named `prefix`... (or every one, with `every`)
    set to `value`; returns the name of the first tensor poisoned."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    names = [k for k, t in tensors.items() if k.startswith(prefix) and t.is_floating_point()]
    for k in names if every else names[:1]:
        tensors[k] = torch.full_like(tensors[k], value)
    save_file(tensors, str(dst), meta)
    return names[0]


CHECKPOINT_CASES = {
    "truncated-half": (_truncate, "corrupt or truncated checkpoint"),
    "empty": (lambda s, d: d.write_bytes(b""), "corrupt or truncated checkpoint"),
    "garbage": (lambda s, d: d.write_bytes(b"\xff" * 4096), "corrupt or truncated checkpoint"),
    "header-size-huge": (
        lambda s, d: d.write_bytes(struct.pack("<Q", 2**60) + s.read_bytes()[8:]),
        "corrupt or truncated checkpoint",
    ),
    "position-bad-json": (
        lambda s, d: _rewrite_metadata(s, d, position="{"),
        "corrupt or truncated checkpoint",
    ),
    "position-wrong-keys": (
        lambda s, d: _rewrite_metadata(s, d, position='{"step": 1}'),
        "not a RunPosition",
    ),
    "position-negative-step": (
        lambda s, d: _rewrite_metadata(
            s, d, position='{"step": -1, "epoch": 0, "epoch_step": 0, "elapsed_s": 0}'
        ),
        "bad values",
    ),
    "param-groups-bad-json": (
        lambda s, d: _rewrite_metadata(s, d, param_groups="[{"),
        "corrupt or truncated checkpoint",
    ),
    "no-position": (lambda s, d: _rewrite_metadata(s, d, position=""), "corrupt or truncated"),
    "tensor-shape": (_shape, "corrupt or truncated checkpoint"),
    "weight-nan": (
        lambda s, d: _poison(s, d, "model.", float("nan")),
        r"tensor '.+' has \d+ of \d+ values NaN or Inf",
    ),
    "optimizer-state-inf": (
        lambda s, d: _poison(s, d, "optim.", float("inf")),
        r"tensor 'optim\.\d+\.exp_avg.*' has \d+ of \d+ values NaN or Inf",
    ),
}


def test_checkpoint_roundtrip(checkpoint: Path) -> None:
    model, opt = _model_and_optimizer(seed=1)
    assert load_checkpoint(checkpoint, model, opt) == RunPosition(3, 1, 2, 4.5)


@pytest.mark.parametrize("name", sorted(CHECKPOINT_CASES))
def test_broken_checkpoint_is_a_data_error(name: str, checkpoint: Path, tmp_path: Path) -> None:
    corrupt, reason = CHECKPOINT_CASES[name]
    bad = tmp_path / "last.safetensors"
    corrupt(checkpoint, bad)
    model, opt = _model_and_optimizer()
    with pytest.raises(DataError, match=reason) as err:
        load_checkpoint(bad, model, opt)
    assert err.value.path == str(bad)


# -- eval: every write inside --out ----------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("w")
    torch.manual_seed(0)
    save_detector(
        build_detector(tiny_config(), "lidar", tiny_params()), folder / "lidar.safetensors"
    )
    return folder


def _rename_sample(root: Path, new: str) -> None:
    """Give the real keyframe's sample the token `new` everywhere it is referenced."""
    v = root / "v1.0-mini"
    text = {p: p.read_text() for p in v.glob("*.json")}
    old = json.loads(text[v / "sample.json"])[0]["token"]
    for p, t in text.items():
        p.write_text(t.replace(json.dumps(old), json.dumps(new)))


def _eval(root: Path, weights: Path, out: Path, *extra: str) -> tuple[int, str]:
    buf = io.StringIO()
    argv = ["eval", "--dataroot", str(root), "--version", "v1.0-mini", "--split", "mini_train",
            "--models", "lidar", "--weights", str(weights), "--out", str(out), "--no-progress",
            "--pictures", "1", *extra]  # fmt: skip
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    return rc, buf.getvalue()


@pytest.fixture()
def real_root(tmp_path: Path) -> Path:
    return Path(shutil.copytree(REAL, tmp_path / "data" / "root"))


def test_eval_sample_token_with_dotdot_writes_inside_out(
    real_root: Path, weights: Path, tmp_path: Path
) -> None:
    _rename_sample(real_root, "../../../../escaped")
    out = tmp_path / "data" / "out"
    before = {p for p in tmp_path.rglob("*")}
    rc, log = _eval(real_root, weights, out)
    assert rc == 0, log
    written = {p for p in tmp_path.rglob("*")} - before
    assert written and all(p.resolve().is_relative_to(out.resolve()) for p in written), written
    assert [p.name for p in (out / "plots").glob("bev_*.png")] == ["bev__.._.._.._escaped.png"]


def test_eval_broken_inputs_exit_2_naming_the_file(
    real_root: Path, weights: Path, tmp_path: Path
) -> None:
    lidar = next((real_root / "samples" / "LIDAR_TOP").iterdir())
    lidar.write_bytes(lidar.read_bytes()[:-7])
    rc, log = _eval(real_root, weights, tmp_path / "out")
    assert rc == 2 and "fusion eval: error: " in log and lidar.name in log
    assert "Traceback" not in log
    (real_root / "v1.0-mini" / "splits.json").write_bytes(b'{"mini_train": [')
    rc, log = _eval(real_root, weights, tmp_path / "out")
    assert rc == 2 and "splits.json: splits file is not valid JSON" in log


# -- weights: every tensor finite, before inference ------------------------------------------


def test_nan_weights_name_the_tensor_before_inference(weights: Path, tmp_path: Path) -> None:
    """A weights file of NaNs ran and scored mAP 0; now `load_detector` (eval, replay, export,
    bench, train --init) refuses it, naming the first tensor."""
    from fusion.model.weights import load_detector

    bad = tmp_path / "lidar.safetensors"
    first = _poison(weights / "lidar.safetensors", bad, "model.", float("nan"), every=True)
    with pytest.raises(DataError, match="NaN or Inf") as err:
        load_detector(bad)
    assert err.value.path == str(bad) and repr(first[len("model.") :]) in err.value.reason


def test_eval_checkpoint_of_nans_exits_2_naming_the_tensor(
    real_root: Path, weights: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "nan.safetensors"
    first = _poison(weights / "lidar.safetensors", bad, "model.", float("nan"), every=True)
    buf = io.StringIO()
    argv = ["eval", "--dataroot", str(real_root), "--version", "v1.0-mini", "--split",
            "mini_train", "--models", "lidar", "--checkpoint", f"lidar={bad}", "--out",
            str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        rc = main(argv)
    line = buf.getvalue().strip()
    assert rc == 2 and "\n" not in line and line.startswith("fusion eval: error: ")
    assert str(bad) in line and first[len("model.") :] in line and "NaN or Inf" in line
    assert not (tmp_path / "out" / "lidar").exists()  # nothing was scored


# -- eval: keyframes beyond the sync tolerance are counted and printed ---------------------------


def test_eval_counts_a_camera_days_out_of_sync(
    real_root: Path, weights: Path, tmp_path: Path
) -> None:
    sd_path = real_root / "v1.0-mini" / "sample_data.json"
    recs = json.loads(sd_path.read_text())
    cam = next(r for r in recs if r["is_key_frame"] and "__CAM_FRONT__" in r["filename"])
    cam["timestamp"] += 3 * 86_400 * 1_000_000
    sd_path.write_text(json.dumps(recs))
    rc, text = _eval(real_root, weights, tmp_path / "out")
    assert rc == 0, text
    warning = "WARNING: 1 keyframe(s) beyond the [sync] tolerance, left out of their frames"
    assert f"{warning}: CAM_FRONT 1" in text
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["out_of_sync"] == {"CAM_FRONT": 1}
    rc, text = _eval(real_root, weights, tmp_path / "out", "--json")
    assert rc == 0 and json.loads(text.splitlines()[-1])["out_of_sync"] == {"CAM_FRONT": 1}


def test_eval_in_sync_prints_no_warning(real_root: Path, weights: Path, tmp_path: Path) -> None:
    rc, text = _eval(real_root, weights, tmp_path / "out")
    assert rc == 0 and "WARNING" not in text
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["out_of_sync"] == {}
