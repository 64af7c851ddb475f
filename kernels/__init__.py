"""Custom kernels: numpy reference, Numba CPU and Numba CUDA backends."""
