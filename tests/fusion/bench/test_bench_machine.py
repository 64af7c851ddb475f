"""fusion.machine: the environment line and the memory figures."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fusion.machine import (
    current_rss_mb,
    env_line,
    machine_info,
    peak_rss_mb,
    reset_peak_rss,
)


def test_machine_info_and_env_line():
    info = machine_info()
    assert info["cpu"] and info["cores"] >= 1 and "numba" in info["threads"]
    assert {"python", "numpy", "numba"} <= set(info["versions"])
    info["precision"] = "fp32"
    line = env_line(info)
    assert info["cpu"] in line and "precision fp32" in line and "numba" in line


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_peak_rss_sees_a_transient_allocation_and_resets():
    import mmap

    assert reset_peak_rss()
    base = current_rss_mb()
    # 64 MB mapped, touched and unmapped: resident, then surely returned to the kernel (an
    # array's buffer goes through malloc, which may keep it, depending on what ran before)
    with mmap.mmap(-1, 64 * 2**20) as block:
        np.frombuffer(block, np.uint8)[::4096] = 1  # one write per page
        assert current_rss_mb() >= base + 60
    assert peak_rss_mb() >= base + 60
    assert reset_peak_rss()
    now = current_rss_mb()
    assert now < base + 30  # unmapped
    assert peak_rss_mb() < now + 30  # the mark starts again from what is resident now
