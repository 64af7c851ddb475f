#!/usr/bin/env bash
# One prepared GPU check, under 10 minutes on one H200 (the timeouts add up to 600 s): the CUDA kernels against the numpy oracle
# and timed against the memory-bandwidth bound, then end to end with torch CUDA (tensors kept on
# the device between the stages, eagerly and under CUDA graphs), ONNX Runtime's CUDA provider
# with IO binding (when onnxruntime-gpu is there) and TensorRT FP16 (when the tensorrt package
# is importable), against torch CPU, on the same synthetic frames. Stage times of the CUDA lanes
# come from CUDA events (fusion.engines.device.CudaEventClock).
#
# For a machine with Python 3.12, torch CUDA, numba-cuda, cupy, onnxruntime, numpy 2 and no
# nuScenes devkit (no dataroot reader: the end-to-end part runs on the tests' synthetic frames,
# tests/model_fakes.py; nothing in kernels/ or fusion/engines imports the devkit at import
# time). Run from the repository root:
#   OUT=/tmp/gpu bash benchmarks/gpu_check.sh
# Results: $OUT (default ./gpu-check): kernels_gpu.{json,md}, e2e_gpu.json, gpu.md, log.txt;
# gpu.md is also written to benchmarks/gpu.md (MD=... to change).
# It has NOT been run yet: no GPU machine was lent to the sessions that wrote it.
set -u -o pipefail
OUT=${OUT:-gpu-check}
MD=${MD:-benchmarks/gpu.md}
mkdir -p "$OUT"
PY=${PY:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
unset NUMBA_ENABLE_CUDASIM
exec > >(tee "$OUT/log.txt") 2>&1
T0=$(date +%s)

echo "== machine"
nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv || true
$PY -c "import torch, numba, numpy; from numba import cuda; print('torch', torch.__version__,
'cuda', torch.version.cuda, torch.cuda.get_device_name(0), '| numba', numba.__version__,
'cuda.is_available', cuda.is_available(), '| numpy', numpy.__version__)"
$PY -c "import sys; sys.modules['nuscenes'] = None
import kernels, fusion.engines.runner, fusion.engines.tensorrt_engine, fusion.engines.int8
print('imports without the devkit: ok')" || echo "IMPORT CHECK FAILED"

echo "== 1. CUDA kernels against the numpy oracle at full size (tests/kernels/test_kernel_gpu.py)"
timeout 120 $PY -m pytest -q -x tests/kernels/test_kernel_gpu.py -p no:cacheprovider \
    || echo "GPU kernel tests FAILED or timed out"

echo "== 2. engines on the GPU (tests/fusion/engines/test_engine_device.py -m gpu)"
timeout 90 $PY -m pytest -q -m gpu tests/fusion/engines/test_engine_device.py -p no:cacheprovider \
    || echo "GPU engine tests FAILED or timed out"

echo "== 3. kernel timings with the bandwidth bound (fusion bench kernels --quick)"
timeout 120 $PY -m fusion.cli bench kernels --quick --dataroot tests/data/nuscenes-real-frame --version v1.0-mini \
    --json-out "$OUT/kernels_gpu.json" --markdown-out "$OUT/kernels_gpu.md" \
    || echo "bench kernels FAILED or timed out"

echo "== 4. end to end: torch CPU, torch CUDA (eager, CUDA graphs), ORT CUDA, TensorRT FP16"
timeout 240 $PY - "$OUT/e2e_gpu.json" "$OUT" <<'EOF'
import json, sys, time
sys.path.insert(0, "tests")
import fusion  # first: it sets OMP_WAIT_POLICY=PASSIVE before torch loads libgomp
import numpy as np, torch
from model_fakes import make_frame
from fusion.machine import machine_info
from fusion.stats import LatencyRecorder
from fusion.config import load_config
from fusion.engines.runner import Runner, open_engine
from fusion.model import build_detector
from fusion.preprocess.inputs import drop_sensors
from fusion.threads import apply_threads

apply_threads()
partial = drop_sensors(make_frame(3), ["CAM_BACK"])  # a frame missing a camera: padded batch
reference = {}
cfg = load_config("tiny")
frames = [make_frame(i) for i in range(8)]
out = {"env": machine_info(), "models": {}, "skipped": []}
lanes = {
    "torch-cpu": ("torch", "cpu", {}),
    "torch-cuda": ("torch", "cuda", {}),
    "torch-cuda-graphs": ("torch", "cuda", {"cuda_graphs": True}),
    "onnxruntime-cuda": ("onnxruntime", "cuda", {}),
    "tensorrt-fp16": ("tensorrt", "cuda", {"precision": "fp16"}),
}
for variant in ("fusion", "camera", "lidar"):
    torch.manual_seed(0)
    model = build_detector(cfg, variant).eval()
    for lane, (backend, device, kw) in lanes.items():
        try:
            engine = open_engine(backend, model, sys.argv[2] + "/work", device, **kw)
        except Exception as exc:  # report and go on: one failing backend must not hide the rest
            out["skipped"].append(f"{variant}/{lane}: {exc}")
            print(f"{variant}/{lane}: cannot build ({exc})")
            continue
        runner = Runner(model.cfg, variant, engine)
        rec = LatencyRecorder(warmup=10)
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t_end = time.perf_counter() + 6
        while (rec.frames < 300 and time.perf_counter() < t_end) or rec.seen < 20:
            t0 = time.perf_counter()
            _, times = runner.detect(frames[rec.seen % len(frames)])
            rec.add(times.as_dict(), (time.perf_counter() - t0) * 1e3)
        s = rec.summary()
        try:  # the runner pads the fixed camera batch; scores must match the CPU reference
            dets, _ = runner.detect(partial)
            scores = np.asarray(dets.scores)
            ref = reference.setdefault(variant, scores)
            same = ref.shape == scores.shape and np.allclose(ref, scores, atol=2e-2)
            s["missing_camera"] = "same detections as torch-cpu" if same else "DIFFERENT detections"
        except Exception as exc:  # noqa: BLE001
            s["missing_camera"] = f"FAILED: {exc}"
        print(f"{variant}/{lane}: frame missing CAM_BACK: {s['missing_camera']}")
        s["clock"] = "cuda events" if runner.on_device and device == "cuda" else "wall"
        if device == "cuda":
            s["peak_device_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["models"].setdefault(variant, {})[lane] = s
        e = s["end_to_end"]
        print(f"{variant:<7} {lane:<18} frames {s['frames']:>4}  p50 {e['p50_ms']:8.2f}  "
              f"p99 {e['p99_ms']:8.2f} ms")
        json.dump(out, open(sys.argv[1], "w"), indent=2)  # after each lane: a timeout keeps them
        del runner, engine
        torch.cuda.empty_cache()
json.dump(out, open(sys.argv[1], "w"), indent=2)
EOF

echo "== 5. $MD"
timeout 30 $PY - "$OUT" "$MD" <<'EOF'
import json, sys
from pathlib import Path
out, md = Path(sys.argv[1]), Path(sys.argv[2])
lines = ["# GPU check", "", "Written by `benchmarks/gpu_check.sh` (one run; see its header).", ""]
e2e = out / "e2e_gpu.json"
if e2e.is_file():
    p = json.loads(e2e.read_text())
    env = p["env"]
    lines += [f"Machine: {env.get('cpu')}, GPU {env.get('gpu')}; versions {env.get('versions')}", ""]
    lines += ["## End to end, synthetic frames, tiny config (ms; warm-up 10 left out)", ""]
    lines += ["| model | lane | frames | p50 | p90 | p99 | max | camera_net p50 | bev_pool p50 |"
              " bev_net p50 | peak device MB | stage clock | frame missing a camera |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for model, lanes in p["models"].items():
        for lane, s in lanes.items():
            e, st = s["end_to_end"], s["stages"]
            f = lambda v: "" if v is None else f"{v:.2f}"
            lines.append(
                f"| {model} | {lane} | {s['frames']} | {f(e['p50_ms'])} | {f(e['p90_ms'])} |"
                f" {f(e['p99_ms'])} | {f(e['max_ms'])} | {f(st['camera_net']['p50_ms'])} |"
                f" {f(st['bev_pool']['p50_ms'])} | {f(st['bev_net']['p50_ms'])} |"
                f" {f(s.get('peak_device_mb'))} | {s['clock']} | {s.get('missing_camera', '')} |")
        t, r = lanes.get("tensorrt-fp16"), lanes.get("torch-cuda")
        if t and r:
            ratio = t["end_to_end"]["p50_ms"] / r["end_to_end"]["p50_ms"]
            lines.append(f"| {model} | tensorrt-fp16 / torch-cuda p50 | | {ratio:.2f} x | | | | | | | | | |")
    if p.get("skipped"):
        lines += ["", "Not run: " + "; ".join(p["skipped"])]
k = out / "kernels_gpu.md"
if k.is_file():
    lines += ["", "## Kernels (fusion bench kernels --quick; ratio = time / bandwidth bound)", ""]
    lines += [l for l in k.read_text().splitlines() if not l.startswith("# ")]
md.parent.mkdir(parents=True, exist_ok=True)
md.write_text("\n".join(lines) + "\n")
(out / "gpu.md").write_text(md.read_text())
print(f"wrote {md}")
EOF
echo "== done in $(( $(date +%s) - T0 )) s: $OUT"
