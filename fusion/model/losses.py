"""Detection losses: gaussian focal loss on heatmaps, L1 on box codes, attribute and depth CE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from fusion.model.head import HeadMaps
from fusion.model.params import ModelParams


@dataclass(frozen=True, eq=False)
class TargetBatch:
    """Targets for a batch (see `fusion.model.targets.TargetMaps`, stacked over B).

    `heatmap` (B, K, ny, nx); `regression` (B, 10, ny, nx); `mask`, `velocity_valid`
    (B, ny, nx) bool; `attribute` (B, ny, nx) int64 (-1 none); `depth` (N, h, w) int64 depth
    bins of the present images in (sample, camera) order (-1 none), or None."""

    heatmap: Tensor
    regression: Tensor
    mask: Tensor
    velocity_valid: Tensor
    attribute: Tensor
    depth: Tensor | None

    def to(self, device: torch.device | str) -> TargetBatch:
        return TargetBatch(
            self.heatmap.to(device),
            self.regression.to(device),
            self.mask.to(device),
            self.velocity_valid.to(device),
            self.attribute.to(device),
            None if self.depth is None else self.depth.to(device),
        )


@dataclass(frozen=True, eq=False)
class LossTerms:
    """Scalar loss tensors; `total` is the weighted sum that is optimized."""

    total: Tensor
    heatmap: Tensor
    regression: Tensor
    attribute: Tensor
    depth: Tensor

    def as_floats(self) -> dict[str, float]:
        """For logging only."""
        return {
            k: float(getattr(self, k).detach())
            for k in ("total", "heatmap", "regression", "attribute", "depth")
        }


def gaussian_focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """CenterNet's penalty-reduced focal loss, summed and divided by the number of peaks."""
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg_w = (1 - target).pow(4)
    pos_loss = -(torch.log(p) * (1 - p).pow(2) * pos).sum()
    neg_loss = -(torch.log(1 - p) * p.pow(2) * neg_w * (1 - pos)).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def detection_loss(
    maps: HeadMaps, depth: Tensor | None, targets: TargetBatch, params: ModelParams
) -> LossTerms:
    """All loss terms for one batch."""
    hm = gaussian_focal_loss(maps.heatmap, targets.heatmap)
    mask = targets.mask
    n_pos = mask.sum().clamp(min=1).float()
    # (B, 10, ny, nx) -> (P, 10) at centre cells
    pred = maps.regression.float().permute(0, 2, 3, 1)[mask]
    tgt = targets.regression.permute(0, 2, 3, 1)[mask]
    w = pred.new_tensor(params.code_weights).expand_as(pred).clone()
    w[:, 8:] = w[:, 8:] * targets.velocity_valid[mask].unsqueeze(1).float()
    reg = ((pred - tgt).abs() * w).sum() / n_pos

    attr_t = targets.attribute[mask]
    attr_ok = attr_t >= 0
    if bool(attr_ok.any()):
        attr_logits = maps.attribute.float().permute(0, 2, 3, 1)[mask][attr_ok]
        attr = F.cross_entropy(attr_logits, attr_t[attr_ok])
    else:
        attr = maps.attribute.new_zeros(())

    if depth is not None and targets.depth is not None and bool((targets.depth >= 0).any()):
        logp = torch.log(depth.float().clamp(min=1e-6))  # (N, D, h, w)
        dep = F.nll_loss(logp, targets.depth, ignore_index=-1)
    else:
        dep = maps.heatmap.new_zeros(())

    total = (
        params.heatmap_weight * hm
        + params.regression_weight * reg
        + params.attribute_weight * attr
        + params.depth_weight * dep
    )
    return LossTerms(total, hm, reg, attr, dep)
