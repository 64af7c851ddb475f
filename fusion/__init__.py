"""Camera + LIDAR + radar + GPS/IMU sensor fusion for 3D object detection."""

import os

# The OpenMP pools of torch and of Numba's `omp` threading layer (two libgomp instances) run
# one after the other in every frame; by default their idle threads spin and take the cores
# from the stage that runs next (torch 1,604 -> 96 ms per fusion frame on 2 shared cores:
# benchmarks/latency.md). libgomp reads this once, when torch or Numba loads it, hence here;
# a value set by the user wins. See fusion.threads for the pool sizes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
