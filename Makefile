# Two commands on a fresh machine: `make demo` and `make test`. Each does all set-up first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# torch first, pinned: 2.13.0 is the CPU build that lies on disk; a looser pin downloads a CUDA build.
TORCH := torch==2.13.0

.PHONY: setup demo test lint bench clean sysdeps

setup: sysdeps $(STAMP)

# open3d needs libusb-1.0 at import time.
sysdeps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
		echo "installing libusb-1.0-0 (needed by open3d)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libusb-1.0-0; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[dev]"
	$(PIP) install -q -e ".[viz]"
	-$(PIP) install -q -e ".[bench]" || echo "optional bench extra (spconv) not installed"
	touch $(STAMP)

# The main job on built-in data: the real keyframe's calibration picture; the shipped models
# scored by the devkit on real nuScenes (the keyframe of scene-0553, which they never saw, and
# two keyframes of scene-0916, which they were trained on); then a small synthetic validation set
# (a seed the shipped models never saw) scored for fusion, camera and lidar, and one of its
# scenes replayed through the fusion model at the log's pace (warm: the engine built and one
# frame run before the clock; the summary prints the engine, the decode and the warm-up time).
DEMO := demo_out
demo: setup
	$(VENV)/bin/fusion inspect --dataroot tests/data/nuscenes-real-frame --version v1.0-mini --render $(DEMO)/inspect.png
	$(VENV)/bin/fusion eval --dataroot tests/data/nuscenes-real-frame --version v1.0-mini --split mini_train \
		--models fusion,camera,lidar --out $(DEMO)/eval-real-unseen --pictures 1 --no-progress
	$(VENV)/bin/fusion eval --dataroot tests/data/nuscenes-real-keyframes --version v1.0-mini --split mini_val \
		--models fusion,camera,lidar --out $(DEMO)/eval-real-seen --pictures 1 --no-progress
	$(VENV)/bin/fusion generate --out $(DEMO)/synth-val --version v1.0-synth --scenes 3 --samples-per-scene 4 \
		--seed 7 --conditions day,night,rain --image-size 704x396 --workers 2
	$(VENV)/bin/fusion eval --dataroot $(DEMO)/synth-val --version v1.0-synth --split synth_all \
		--models fusion,camera,lidar --out $(DEMO)/eval --pictures 3
	$(VENV)/bin/fusion replay --dataroot $(DEMO)/synth-val --version v1.0-synth --scene scene-0001 --model fusion \
		--rate 1 --no-status --detections $(DEMO)/replay/detections.jsonl --mcap $(DEMO)/replay/replay.mcap \
		--json-out $(DEMO)/replay/summary.json
	@echo "pictures: $(DEMO)/inspect.png, $(DEMO)/eval-real-unseen/plots/, $(DEMO)/eval/plots/; replay: $(DEMO)/replay/ (open replay.mcap in Foxglove)"

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check fusion kernels calibration tests benchmarks

bench: setup
	$(VENV)/bin/fusion bench kernels --dataroot tests/data/nuscenes-real-frame --version v1.0-mini \
		--json-out benchmarks/kernels.json --markdown-out benchmarks/kernels.md
	$(VENV)/bin/fusion bench latency --dataroot out/bench-scene --generate \
		--json-out benchmarks/latency.json --markdown-out benchmarks/latency.md \
		--plot benchmarks/latency.png

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
