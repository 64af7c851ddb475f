#!/usr/bin/env bash
# One prepared GPU check, under 10 minutes: the CUDA kernels against the numpy oracle and timed
# against the memory-bandwidth bound, then end to end with torch CUDA (and TensorRT FP16 when
# the tensorrt package is importable) against torch CPU on the same synthetic frames.
#
# For a machine with Python 3.12, torch CUDA, numba-cuda, cupy, onnxruntime, numpy 2 and no
# nuScenes devkit (so no dataroot reader: the end-to-end part runs on the tests' synthetic
# frames, tests/model/model_fakes.py). Run from the repository root:
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh
# Results go to $OUT (default ./gpu-check): kernels_gpu.{json,md}, e2e_gpu.json, log.txt.
# It has NOT been run yet: no GPU machine was lent to the session that wrote it.
set -u -o pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
unset NUMBA_ENABLE_CUDASIM
exec > >(tee "$OUT/log.txt") 2>&1

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv || true
$PY -c "import torch, numba, numpy; from numba import cuda; print('torch', torch.__version__,
'cuda', torch.version.cuda, torch.cuda.get_device_name(0), '| numba', numba.__version__,
'cuda.is_available', cuda.is_available(), '| numpy', numpy.__version__)"

echo "== 1. CUDA kernels against the numpy oracle at full size (tests/kernels/test_kernel_gpu.py)"
timeout 240 $PY -m pytest -q -x tests/kernels/test_kernel_gpu.py -p no:cacheprovider || echo "GPU kernel tests FAILED or timed out"

echo "== 2. kernel timings with the bandwidth bound (fusion bench kernels --quick)"
timeout 180 $PY -m fusion.cli bench kernels --quick --dataroot tests/data/nuscenes-real-frame \
    --json-out "$OUT/kernels_gpu.json" --markdown-out "$OUT/kernels_gpu.md" \
    || echo "bench kernels FAILED or timed out"

echo "== 3. end to end: torch CPU, torch CUDA, TensorRT FP16 (synthetic frames, tiny config)"
timeout 240 $PY - "$OUT/e2e_gpu.json" <<'EOF'
import json, sys, time
sys.path.insert(0, "tests/model")
import fusion  # first: it sets OMP_WAIT_POLICY=PASSIVE before torch loads libgomp
import numpy as np, torch
from model_fakes import make_frame
from fusion.bench.machine import machine_info
from fusion.bench.stats import LatencyRecorder
from fusion.config import load_config
from fusion.engines.runner import Runner, open_engine
from fusion.model import build_detector
from fusion.threads import apply_threads

apply_threads()
cfg = load_config("tiny")
frames = [make_frame(i) for i in range(8)]
out = {"env": machine_info(), "models": {}}
for variant in ("fusion", "camera", "lidar"):
    torch.manual_seed(0)
    model = build_detector(cfg, variant).eval()
    lanes = {"torch-cpu": ("torch", "cpu"), "torch-cuda": ("torch", "cuda")}
    try:
        import tensorrt  # noqa: F401
        lanes["tensorrt-fp16"] = ("tensorrt", "cuda")
    except ImportError as exc:
        print(f"TensorRT skipped: {exc}")
    for lane, (backend, device) in lanes.items():
        try:
            engine = open_engine(backend, model, "gpu-check-work", device)
        except Exception as exc:  # report and go on: one failing backend must not hide the rest
            print(f"{variant}/{lane}: cannot build ({exc})")
            continue
        runner = Runner(model.cfg, variant, engine)
        rec = LatencyRecorder(warmup=5)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t_end = time.perf_counter() + 25
        while rec.frames < 200 and time.perf_counter() < t_end or rec.seen < 10:
            _, times = runner.detect(frames[rec.seen % len(frames)])
            rec.add(times.as_dict())
        s = rec.summary()
        if device == "cuda":
            s["peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["models"].setdefault(variant, {})[lane] = s
        e = s["end_to_end"]
        print(f"{variant:<7} {lane:<14} frames {s['frames']:>4}  p50 {e['p50_ms']:8.2f}  "
              f"p99 {e['p99_ms']:8.2f} ms")
json.dump(out, open(sys.argv[1], "w"), indent=2)
EOF
echo "== done: $OUT"
