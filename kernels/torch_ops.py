"""torch autograd wrapper of the fused BEV pooling (imports torch; the rest of kernels does not)."""

from __future__ import annotations

from typing import Any

import torch

from kernels._backend import KernelBackend
from kernels.bev_pool import BevPoolGeometry, bev_pool, bev_pool_backward


class BevPoolFunction(torch.autograd.Function):
    """`BevPoolFunction.apply(depth, context, geometry, backend="auto")` -> (C, ny, nx).

    depth (Ncam, D, H, W) and context (Ncam, C, H, W) share a float dtype and a device; the
    gradients of both come from the kernels' backward (no outer product is stored either way).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        depth: torch.Tensor,
        context: torch.Tensor,
        geometry: BevPoolGeometry,
        backend: KernelBackend = "auto",
    ) -> torch.Tensor:
        ctx.save_for_backward(depth, context)
        ctx.geometry = geometry
        ctx.backend = backend
        return bev_pool(depth.detach(), context.detach(), geometry, backend=backend)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        depth, context = ctx.saved_tensors
        grad_depth, grad_context = bev_pool_backward(
            grad_out.detach().contiguous(),
            depth.detach(),
            context.detach(),
            ctx.geometry,
            backend=ctx.backend,
        )
        return (
            grad_depth if ctx.needs_input_grad[0] else None,
            grad_context if ctx.needs_input_grad[1] else None,
            None,
            None,
        )


def bev_pool_torch(
    depth: torch.Tensor,
    context: torch.Tensor,
    geometry: BevPoolGeometry,
    backend: KernelBackend = "auto",
) -> torch.Tensor:
    """Differentiable `bev_pool` for torch tensors."""
    return BevPoolFunction.apply(depth, context, geometry, backend)
