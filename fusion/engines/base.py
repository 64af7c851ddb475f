"""The contract every engine meets: the three dense graphs, numpy in and numpy out.

Graphs (see `fusion.engines.export`): `camera` images (Ncam, 3, H, W) -> depth (Ncam, D, h, w),
context (Ncam, C, h, w); `lidar` voxels (V, P, 5), num_points (V,) int32, coords (V, 3) int32
-> pillar features (V, C); `bev` the variant's BEV maps, each (1, C_i, ny, nx), -> heatmap
(1, K, ny, nx), regression (1, 10, ny, nx), attribute (1, 8, ny, nx).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from fusion.errors import FusionError

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
    """Runs the dense graphs of one detector variant.

    `camera_batch`: the fixed number of images the camera graph takes (an exported graph has the
    rig's camera count in its shape), None when any count runs (torch). `Runner` pads a frame
    that lacks some cameras to it with zero images and keeps only the present cameras' outputs,
    so every engine runs such a frame the same way (ONNX Runtime on CPU or CUDA, TensorRT)."""

    name: str
    camera_batch: int | None

    def camera(
        self, images: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]: ...

    def lidar(
        self, voxels: NDArray[np.float32], num_points: NDArray[np.int32], coords: NDArray[np.int32]
    ) -> NDArray[np.float32]: ...

    def bev(
        self, *maps: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]: ...


# -- an export folder's manifest (written by `fusion.engines.export.export_onnx`) ---------------

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ExportManifest:
    variant: str
    graphs: tuple[str, ...]
    bev_inputs: tuple[str, ...]
    camera_shape: tuple[int, ...]  # images (Ncam, 3, H, W); () without a camera graph
    bev_shapes: tuple[tuple[int, ...], ...]
    opset: int
    weights_sha256: str


def read_manifest(folder: Path) -> ExportManifest:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FusionError(
            "not an export folder (no manifest.json): run `fusion export` first", path
        )
    raw = json.loads(path.read_text())
    return ExportManifest(
        variant=raw["variant"],
        graphs=tuple(raw["graphs"]),
        bev_inputs=tuple(raw["bev_inputs"]),
        camera_shape=tuple(raw["camera_shape"]),
        bev_shapes=tuple(tuple(s) for s in raw["bev_shapes"]),
        opset=int(raw["opset"]),
        weights_sha256=raw["weights_sha256"],
    )


def fixed_camera_batch(manifest: ExportManifest) -> int | None:
    """The camera graph's fixed batch (its images' first axis), None without a camera graph."""
    return int(manifest.camera_shape[0]) if manifest.camera_shape else None


def pad_camera_batch(images: NDArray[np.float32], batch: int | None) -> NDArray[np.float32]:
    """`images` (n, 3, H, W) filled up to `batch` with zero images (unchanged when `batch` is None
    or n == batch); more images than the graph takes is an error naming both counts."""
    n = len(images)
    if batch is None or n == batch:
        return images
    if n > batch:
        raise FusionError(
            f"the frame has {n} camera images, the exported camera graph takes {batch}: "
            "export the model for this rig's cameras"
        )
    pad = np.zeros((batch - n, *images.shape[1:]), images.dtype)
    return np.concatenate([images, pad])
