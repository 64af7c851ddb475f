"""`fusion bench kernels` imports neither torch nor the model, and its markdown is generated
from its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import REAL_ROOT

REPO = Path(__file__).resolve().parents[3]

PROBE = """
import sys
from fusion.cli import main
rc = main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "fusion.model")))
print("HEAVY", heavy)
sys.exit(rc)
"""


def test_parser_builds_without_torch():
    code = (
        "import sys; from fusion.cli import build_parser; a = sys.argv[1:];"
        " build_parser(a).parse_args(a); print('torch' in sys.modules)"
    )
    argv = ["bench", "kernels", "--quick", "--dataroot", "x", "--version", "v1.0-mini"]
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_bench_kernels_quick_runs_without_torch_or_the_model(tmp_path: Path):
    js, md = tmp_path / "k.json", tmp_path / "k.md"
    argv = [
        "bench",
        "kernels",
        "--quick",
        "--no-torch",
        "--dataroot",
        str(REAL_ROOT),
        "--version",
        "v1.0-mini",
    ]
    argv += ["--json-out", str(js), "--markdown-out", str(md)]
    env = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    import os

    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout
    payload = json.loads(js.read_text())
    torch_rows = [t for t in payload["timings"] if t["impl"] in ("torch", "spconv (cpu)")]
    assert torch_rows and all(t["median_ms"] is None for t in torch_rows)
    assert any(t["impl"] == "numba" and t["median_ms"] for t in payload["timings"])
    sweeps = {t["impl"] for t in payload["timings"] if t["kernel"] == "merge_sweeps"}
    assert sweeps == {"numpy", "numba"}  # a host kernel: no CUDA row
    from fusion.bench.kernels import kernels_markdown

    assert md.read_text() == kernels_markdown(payload)
