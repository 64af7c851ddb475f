"""The contract every engine meets: the three dense graphs, numpy in and numpy out.

Graphs (see `fusion.engines.export`): `camera` images (Ncam, 3, H, W) -> depth (Ncam, D, h, w),
context (Ncam, C, h, w); `lidar` voxels (V, P, 5), num_points (V,) int32, coords (V, 3) int32
-> pillar features (V, C); `bev` the variant's BEV maps, each (1, C_i, ny, nx), -> heatmap
(1, K, ny, nx), regression (1, 10, ny, nx), attribute (1, 8, ny, nx).
"""

from __future__ import annotations

import argparse
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

EngineBackend = Literal["torch", "onnxruntime", "tensorrt"]  # runs the dense graphs
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")


def add_backend_argument(parser: argparse.ArgumentParser, default: str = "torch") -> None:
    """`--backend`, shared by every command that runs a model; `auto` picks the fastest engine
    installed (`fusion.engines.device.resolve_backend`)."""
    parser.add_argument(
        "--backend",
        default=default,
        choices=("auto", *BACKENDS),
        help="engine of the dense graphs (auto: TensorRT on an NVIDIA GPU when installed, else "
        f"ONNX Runtime, else torch; default {default}); the kernels between them pick numba or "
        "CUDA by where their inputs live",
    )


CAMERA_INPUTS = ("images",)
CAMERA_OUTPUTS = ("depth", "context")
LIDAR_INPUTS = ("voxels", "num_points", "coords")
LIDAR_OUTPUTS = ("pillar_features",)
BEV_OUTPUTS = ("heatmap", "regression", "attribute")


def bev_input_names(modalities: tuple[str, ...]) -> tuple[str, ...]:
    """Names of the BEV graph's inputs for a variant's modalities, in order."""
    return tuple(f"{m}_bev" for m in modalities)


class Engine(Protocol):
    """Runs the dense graphs of one detector variant."""

    name: str

    def camera(
        self, images: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]: ...

    def lidar(
        self, voxels: NDArray[np.float32], num_points: NDArray[np.int32], coords: NDArray[np.int32]
    ) -> NDArray[np.float32]: ...

    def bev(
        self, *maps: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]: ...
