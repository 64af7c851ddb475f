"""Head maps -> boxes: heatmap peaks, regression decode and BEV NMS (`kernels`).

Output boxes are `fusion.frame.Detections` in the LIDAR_TOP frame at the reference time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor

from fusion.config import DETECTION_CLASSES, PipelineConfig
from fusion.frame import Detections
from fusion.model.params import ATTRIBUTE_NAMES, CLASS_ATTRIBUTE_PREFIX, ModelParams
from fusion.model.targets import decode_regression
from kernels import circle_nms, nms_bev

# attribute index mask per class: which of ATTRIBUTE_NAMES the devkit accepts for it
_ATTRIBUTE_ALLOWED = np.array(
    [
        [
            bool(CLASS_ATTRIBUTE_PREFIX[c]) and a.startswith(CLASS_ATTRIBUTE_PREFIX[c])
            for a in ATTRIBUTE_NAMES
        ]
        for c in DETECTION_CLASSES
    ]
)


# the nuScenes detection benchmark scores at most this many boxes per sample
NUSCENES_MAX_BOXES = 500


def with_postprocess(
    cfg: PipelineConfig, score_threshold: float | None = None, max_detections: int | None = None
) -> PipelineConfig:
    """`cfg` with the decode's score threshold and box cap replaced where given (None keeps the
    weights' own). The nuScenes benchmark scores up to `NUSCENES_MAX_BOXES` boxes a sample and,
    its AP integrating over recall, only gains from lower-scored boxes; a deployed detector
    wants fewer: hence an option of `fusion eval`, not a new default."""
    m = cfg.model
    if score_threshold is not None and not 0.0 <= score_threshold < 1.0:
        raise ValueError(f"score threshold must be in [0, 1), got {score_threshold}")
    if max_detections is not None and not 1 <= max_detections <= NUSCENES_MAX_BOXES:
        raise ValueError(f"max detections must be in 1..{NUSCENES_MAX_BOXES}, got {max_detections}")
    model = dataclasses.replace(
        m,
        score_threshold=m.score_threshold if score_threshold is None else score_threshold,
        max_detections=m.max_detections if max_detections is None else max_detections,
    )
    return dataclasses.replace(cfg, model=model)


def _as_tensor(x: Tensor | NDArray[np.floating]) -> Tensor:
    return (
        x.detach().float().cpu()
        if isinstance(x, Tensor)
        else torch.from_numpy(np.asarray(x, np.float32))
    )


def empty_detections() -> Detections:
    z = np.zeros
    return Detections(
        z((0, 3), np.float32),
        z((0, 3), np.float32),
        z(0, np.float32),
        z((0, 2), np.float32),
        z(0, np.float32),
        z(0, np.int64),
        (),
    )


def decode_detections(
    heatmap: Tensor | NDArray[np.floating],
    regression: Tensor | NDArray[np.floating],
    attribute: Tensor | NDArray[np.floating],
    cfg: PipelineConfig,
    params: ModelParams | None = None,
) -> Detections:
    """One sample's maps -> Detections.

    `heatmap` (K, ny, nx) logits, `regression` (10, ny, nx), `attribute` (8, ny, nx) logits
    (torch or numpy). Peaks are local maxima of the class heatmaps (3x3), kept above
    `cfg.model.score_threshold`, suppressed per class (circle NMS on centres within
    `params.class_nms_radius[class] * cfg.model.nms_radius` m, or rotated-box NMS at
    `nms_iou`) and capped at `max_detections`.
    """
    params = params or cfg.params
    m = cfg.model
    scores = torch.sigmoid(_as_tensor(heatmap))
    k, ny, nx = scores.shape
    peaks = scores == F.max_pool2d(scores[None], 3, stride=1, padding=1)[0]
    flat = (scores * peaks).reshape(-1)
    n_top = min(flat.numel(), 4 * m.max_detections)
    top_scores, top_idx = torch.topk(flat, n_top)
    keep = top_scores > m.score_threshold
    top_scores, top_idx = top_scores[keep].numpy(), top_idx[keep].numpy()
    if len(top_idx) == 0:
        return empty_detections()
    label = top_idx // (ny * nx)
    iy = (top_idx % (ny * nx)) // nx
    ix = top_idx % nx
    reg = _as_tensor(regression).numpy()[:, iy, ix].T
    boxes, vel = decode_regression(reg, ix, iy, cfg.bev)

    kept: list[NDArray[np.int64]] = []
    for c in np.unique(label):
        idx = np.flatnonzero(label == c)
        match m.nms:
            case "circle":
                radius = params.class_nms_radius[int(c)] * m.nms_radius
                sel = circle_nms(boxes[idx, :2], top_scores[idx], radius)
            case "rotated":
                sel = nms_bev(boxes[idx], top_scores[idx], m.nms_iou)
        kept.append(idx[np.asarray(sel, np.int64)])
    order = np.concatenate(kept)
    order = order[np.argsort(-top_scores[order], kind="stable")][: m.max_detections]

    attr_logits = _as_tensor(attribute).numpy()[:, iy[order], ix[order]].T  # (K, 8)
    allowed = _ATTRIBUTE_ALLOWED[label[order]]
    best = np.where(allowed, attr_logits, -np.inf).argmax(axis=1)
    attrs = tuple(ATTRIBUTE_NAMES[b] if allowed[i].any() else "" for i, b in enumerate(best))
    b = boxes[order]
    return Detections(
        center=b[:, :3].astype(np.float32),
        size_wlh=b[:, [4, 3, 5]].astype(np.float32),
        yaw=b[:, 6].astype(np.float32),
        velocity=vel[order].astype(np.float32),
        scores=top_scores[order].astype(np.float32),
        labels=label[order].astype(np.int64),
        attributes=attrs,
    )
