"""Every picture comes from fusion.render, in its one style."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import fusion.evaluate
import fusion.render as render
import fusion.synth.contact_sheet
import fusion.train
from fusion.config import DETECTION_CLASSES
from fusion.evaluate import ModelMetrics


def test_callers_use_the_render_module() -> None:
    assert fusion.evaluate.plot_class_aps is render.plot_class_aps
    assert fusion.evaluate.plot_bev_samples is render.plot_bev_samples
    assert fusion.train.plot_losses is render.plot_losses
    assert fusion.synth.contact_sheet.contact_sheet is render.contact_sheet


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_loss_and_ap_plots(tmp_path: Path) -> None:
    log = tmp_path / "losses.jsonl"
    rows = [
        {
            "step": i + 1,
            "total": 3.0 / (i + 1),
            "heatmap": 2.0 / (i + 1),
            "regression": 1.0,
            "attribute": 0.0,
            "depth": 0.5,
        }  # fmt: skip
        for i in range(120)
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert render.plot_losses(tmp_path / "none.jsonl", tmp_path / "x.png") is None
    out = render.plot_losses(log, tmp_path / "plots" / "loss.png")
    assert out is not None and _png_size(out) == (800, 450)  # 8 x 4.5 in at DPI 100
    aps = {c: float(i) / 10 for i, c in enumerate(DETECTION_CLASSES)}
    metrics = {m: ModelMetrics(0.4, 0.5, aps, {}) for m in ("fusion", "lidar")}
    out = render.plot_class_aps(metrics, tmp_path / "plots" / "ap.png")
    assert _png_size(out) == (1100, 400)


def test_box_corners_front_first() -> None:
    corners = render.box_corners_bev(
        np.array([[1.0, 2.0]]), np.array([[2.0, 4.0, 1.5]]), np.array([np.pi / 2])
    )
    # a 4 m long box heading +y: its two front corners are 2 m ahead of the centre
    np.testing.assert_allclose(corners[0, :2, 1], [4.0, 4.0], atol=1e-12)
    np.testing.assert_allclose(sorted(corners[0, :2, 0]), [0.0, 2.0], atol=1e-12)
