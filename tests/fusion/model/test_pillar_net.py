"""The pillar feature net's inference form (`PillarNet._forward_folded`: batch norm folded, the
linear layer split into per-point and per-pillar parts, ReLU after the max) against the layers
as trained (`_forward_layers`), in torch and through the exported ONNX graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion.model.lidar import PillarNet


def _net(cfg, mode: str, layers: int = 1, seed: int = 0) -> PillarNet:
    torch.manual_seed(seed)
    net = PillarNet(cfg.point_cloud, channels=16, layers=layers, point_features=mode)
    with torch.no_grad():  # running statistics and an affine far from the identity
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-2.0, 2.0)
                m.running_var.uniform_(0.1, 4.0)
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-1.0, 1.0)
    return net.eval()


def _pillars(cfg, v: int = 300, seed: int = 1):
    """Pillars with 0 to P points; the padded rows hold garbage (the net must not read them)."""
    g = torch.Generator().manual_seed(seed)
    pc = cfg.point_cloud
    p = pc.max_points_per_voxel
    nx, ny, _ = pc.grid_size
    coords = torch.stack(
        [
            torch.randint(0, nx, (v,), generator=g),
            torch.randint(0, ny, (v,), generator=g),
            torch.zeros(v, dtype=torch.int64),
        ],
        1,
    ).to(torch.int32)
    lo, size = torch.tensor(pc.point_range[:2]), torch.tensor(pc.voxel_size[:2])
    centre = (coords[:, :2].float() + 0.5) * size + lo
    voxels = torch.empty((v, p, 5))
    voxels[..., :2] = centre[:, None] + (torch.rand((v, p, 2), generator=g) - 0.5) * size
    voxels[..., 2] = torch.rand((v, p), generator=g) * 4 - 3
    voxels[..., 3] = torch.rand((v, p), generator=g) * 255
    voxels[..., 4] = torch.randint(0, 10, (v, p), generator=g) * 0.05
    num = torch.randint(1, p + 1, (v,), generator=g, dtype=torch.int32)
    num[:3] = torch.tensor([1, p, 0], dtype=torch.int32)  # one point, full, and none
    padded = torch.arange(p)[None, :] >= num[:, None]
    voxels[padded] = torch.randn((int(padded.sum()), 5), generator=g) * 100
    return voxels, num, coords


@pytest.mark.parametrize("mode", ["raw", "scaled"])
def test_folded_inference_equals_the_layers(tiny_cfg, mode):
    net = _net(tiny_cfg, mode)
    voxels, num, coords = _pillars(tiny_cfg)
    with torch.no_grad():
        want = net._forward_layers(voxels, num, coords)
        got = net(voxels, num, coords)
    assert (want > 0).float().mean() > 0.2  # features that the ReLU does not zero
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    assert float(got[2].abs().max()) == 0.0  # a pillar of no point, as the mask gave


def test_padded_rows_do_not_reach_the_features(tiny_cfg):
    net = _net(tiny_cfg, "scaled")
    voxels, num, coords = _pillars(tiny_cfg)
    other = voxels.clone()
    p = voxels.shape[1]
    padded = torch.arange(p)[None, :] >= num[:, None]
    other[padded] = -other[padded] * 7
    with torch.no_grad():
        torch.testing.assert_close(net(other, num, coords), net(voxels, num, coords))


def test_training_and_deeper_nets_run_the_layers(tiny_cfg):
    voxels, num, coords = _pillars(tiny_cfg)
    net = _net(tiny_cfg, "scaled").train()
    out = net(voxels, num, coords)  # batch statistics: the layers, with gradients
    torch.testing.assert_close(out, net._forward_layers(voxels, num, coords))
    out.sum().backward()
    assert net.mlp[0].weight.grad is not None
    deep = _net(tiny_cfg, "scaled", layers=2)
    with torch.no_grad():
        torch.testing.assert_close(
            deep(voxels, num, coords), deep._forward_layers(voxels, num, coords)
        )


def test_exported_lidar_graph_equals_the_layers(tiny_cfg, tmp_path):
    """The ONNX graph that ONNX Runtime and TensorRT run is the folded form."""
    ort = pytest.importorskip("onnxruntime")
    from fusion.engines.base import LIDAR_INPUTS, LIDAR_OUTPUTS
    from fusion.engines.export import _export

    net = _net(tiny_cfg, "scaled")
    voxels, num, coords = _pillars(tiny_cfg)
    path = tmp_path / "lidar.onnx"
    dyn = {n: {0: "pillars"} for n in (*LIDAR_INPUTS, *LIDAR_OUTPUTS)}
    with torch.no_grad():
        _export(
            net, (voxels[:16], num[:16], coords[:16]), path, LIDAR_INPUTS, LIDAR_OUTPUTS, dyn, 17
        )
        want = net._forward_layers(voxels, num, coords).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = dict(zip(LIDAR_INPUTS, (voxels.numpy(), num.numpy(), coords.numpy()), strict=True))
    (got,) = session.run(None, feed)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))
