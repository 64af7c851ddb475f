"""Actor sizes: nuScenes' per-class means, the real per-instance spread of each dimension."""

from __future__ import annotations

import numpy as np
import pytest

from fusion.synth.actors import CLASS_INFO, sample_size


@pytest.mark.parametrize("cls", sorted(CLASS_INFO))
def test_sizes_follow_the_class_mean_and_spread_of_each_dimension(cls: str) -> None:
    rng = np.random.default_rng(3)
    sizes = np.array([sample_size(rng, cls) for _ in range(4000)])
    _, mean, spread, _ = CLASS_INFO[cls]
    np.testing.assert_allclose(sizes.mean(0), mean, rtol=0.02)
    # clipped at 2.5 sigma: the spread shrinks by ~5 %
    np.testing.assert_allclose(sizes.std(0) / sizes.mean(0), spread, rtol=0.12)
    assert (sizes > 0).all()


def test_a_walking_persons_box_length_varies_more_than_its_height() -> None:
    # real scene-0916: 23 pedestrians, length varies 28 %, height 10 % (benchmarks/sim2real.md)
    rng = np.random.default_rng(4)
    w, l, h = np.array([sample_size(rng, "pedestrian") for _ in range(4000)]).T
    assert l.std() / l.mean() > 0.2 > 0.12 > h.std() / h.mean()
