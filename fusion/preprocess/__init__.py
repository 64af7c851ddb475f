"""Frames to network inputs: augmentation, image warping, camera frustum geometry, voxels and
the radar raster (`inputs`, `geometry`). NumPy and the kernels only: no torch."""
