"""Camera + LIDAR + radar + GPS/IMU sensor fusion for 3D object detection.

The package is layered; a module imports its own layer and the layers below, never one above
(`tests/test_import_graph.py` holds this, lazy imports included). Lowest first:

- `errors`; then `kernels` and `calibration` (top-level packages: Numba/CUDA kernels, sensor
  geometry);
- vocabulary: `config` (presets, channels, classes), `frame` (Frame, Detections), `threads`,
  `machine`, `stats`, `distributed`;
- `motion`: the one pose interpolator and sweep motion compensation; `localization`, the
  GNSS/IMU pose estimator;
- `data`: files on disk (sensor files, the nuScenes tables, CAN bus and GNSS/IMU files, the rig
  file, the reader, validate);
- `sources`: recorded logs behind one protocol (dataroot, MCAP, ROS 2 and ROS 1 bags);
- `sync`: the online synchronizer and the ingest pump;
- `preprocess`: frames to network inputs (NumPy and kernels, no torch);
- `model`: the torch detector; `postprocess`: decoding and devkit results;
- `engines`: torch, ONNX Runtime and TensorRT behind one runner, and the ONNX export;
- `outputs`: replay sinks, pictures and plots;
- applications: `eval`, `train`, `replay`, `synth` (the synthetic data generator);
- commands: `commands` (one module per `fusion` subcommand) and `bench` (the `fusion bench`
  targets); nothing imports them; `cli` dispatches to them by name.
"""

import os

# The OpenMP pools of torch and of Numba's `omp` threading layer (two libgomp instances) run
# one after the other in every frame; by default their idle threads spin and take the cores
# from the stage that runs next (torch 1,604 -> 96 ms per fusion frame on 2 shared cores:
# benchmarks/latency.md). libgomp reads this once, when torch or Numba loads it, hence here;
# a value set by the user wins. See fusion.threads for the pool sizes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
