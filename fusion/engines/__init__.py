"""Inference engines for the dense network (torch, ONNX Runtime, TensorRT) and the runner
that puts the kernels between them."""
