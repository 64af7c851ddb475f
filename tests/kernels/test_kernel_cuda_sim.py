"""Run the CUDA-backend kernel tests under numba's simulator when this process cannot.

numba reads NUMBA_ENABLE_CUDASIM once, at its first import; in a full test run another module
may import numba before tests/kernels/conftest.py can switch the simulator on, and the CUDA
cases then skip. This test reruns exactly those cases in a fresh interpreter with it on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_cuda_cases_under_simulator() -> None:
    from numba import config, cuda

    if config.ENABLE_CUDASIM or cuda.is_available():
        pytest.skip("the CUDA cases already run in this process (simulator on or a GPU present)")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-k",
        "cuda and not simulator",
        "-m",
        "not gpu",
        str(HERE),
    ]
    res = subprocess.run(
        cmd, env=env, cwd=HERE.parents[1], capture_output=True, text=True, timeout=900, check=False
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert " passed" in res.stdout and "skipped" not in res.stdout.splitlines()[-1], res.stdout[
        -2000:
    ]
