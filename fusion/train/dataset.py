"""Frames -> training samples: augmented inputs, targets on the BEV grid, depth targets.

The pre-processing of a frame (images, camera geometry, voxels, radar raster) is that of
inference too and lives in `fusion.preprocess.inputs`; this module adds what only training needs:
the
random global transform and image jitter, LIDAR thinning, modality dropout, box and depth
targets, batching.
Depth targets come from the LIDAR points projected into each network-input camera (before the
global transform, which the cameras' own depth bins do not see).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from fusion.config import DETECTION_CLASSES, LIDAR_CHANNEL, AugmentParams, PipelineConfig
from fusion.frame import Frame
from fusion.model.detector import Variant, variant_modalities
from fusion.model.inputs import BatchInputs, collate_inputs
from fusion.model.losses import TargetBatch
from fusion.model.params import ATTRIBUTE_NAMES, CLASS_ATTRIBUTE_PREFIX, ModelParams
from fusion.model.targets import TargetMaps, encode_targets
from fusion.motion.sweeps import keyframe_only
from fusion.preprocess.geometry import depth_targets
from fusion.preprocess.inputs import GlobalTransform, SampleInputs, drop_sensors, sample_inputs
from fusion.train.gt_sampling import ObjectDatabase, paste_objects


class FrameSource(Protocol):
    """Anything that yields frames by sample token (`fusion.data.reader.NuScenesReader`)."""

    def frame(self, sample_token: str) -> Frame: ...


@dataclass(frozen=True)
class DataPart:
    """One dataroot's share of a training set: its reader, the split's sample tokens, and how
    many times each sample is seen per epoch (`repeat`, to balance a small real set against a
    large synthetic one)."""

    name: str  # "DATAROOT VERSION SPLIT", for the run's record
    source: FrameSource
    tokens: tuple[str, ...]
    repeat: int = 1


class MixedSource:
    """Several dataroots read as one training set. Its tokens are `"<part>/<sample token>"`,
    each repeated `repeat` times (a repeated sample is augmented afresh at every index)."""

    def __init__(self, parts: Sequence[DataPart]) -> None:
        if not parts:
            raise ValueError("MixedSource needs at least one part")
        for part in parts:
            if part.repeat < 1:
                raise ValueError(f"{part.name}: repeat must be >= 1, not {part.repeat}")
        self.parts = tuple(parts)

    def tokens(self) -> list[str]:
        return [
            f"{i}/{token}"
            for i, part in enumerate(self.parts)
            for _ in range(part.repeat)
            for token in part.tokens
        ]

    def frame(self, sample_token: str) -> Frame:
        part, _, token = sample_token.partition("/")
        return self.parts[int(part)].source.frame(token)

    def describe(self) -> list[dict[str, object]]:
        """Each part's name, sample count and repeat (the run's `data` record)."""
        return [
            {"data": part.name, "samples": len(part.tokens), "repeat": part.repeat}
            for part in self.parts
        ]


@dataclass(frozen=True, eq=False)
class TrainingSample:
    """One training sample: inputs, targets on the grid, and per-camera depth-bin targets
    `depth` (Ncam, h, w) int64 (-1 where no LIDAR point or camera absent)."""

    sample_token: str
    inputs: SampleInputs
    targets: TargetMaps
    depth: NDArray[np.int64]


def box_targets(
    frame: Frame, cfg: PipelineConfig, params: ModelParams, transform: GlobalTransform | None = None
) -> TargetMaps:
    """Targets from the frame's GT boxes of the detection classes seen by a sensor (as the
    devkit filters them: at least one LIDAR or radar point)."""
    boxes = frame.boxes
    keep = []
    if boxes is not None:
        keep = [
            i
            for i, name in enumerate(boxes.detection_names)
            if name is not None and boxes.num_lidar_pts[i] + boxes.num_radar_pts[i] > 0
        ]
    if boxes is None or not keep:
        arr, vel = np.zeros((0, 7)), np.zeros((0, 2))
        labels = attrs = np.zeros(0, np.int64)
    else:
        arr = boxes.as_array()[keep]
        vel = boxes.velocity_lidar[keep]
        labels = np.array([DETECTION_CLASSES.index(boxes.detection_names[i]) for i in keep])
        attrs = np.array(
            [_attribute_index(boxes.detection_names[i], boxes.attributes[i]) for i in keep]
        )
    if transform is not None:
        arr = transform.boxes(arr)
        vel = transform.vectors_2d(vel)
    return encode_targets(arr, labels, vel, attrs, cfg.bev, len(DETECTION_CLASSES), params)


def _attribute_index(detection_name: str | None, attribute: str) -> int:
    """Index in ATTRIBUTE_NAMES, or -1 when absent or not one the devkit scores for the class
    (real annotations carry a few, e.g. a barrier marked pedestrian.standing)."""
    prefix = CLASS_ATTRIBUTE_PREFIX.get(detection_name or "", "")
    if not prefix or not attribute.startswith(prefix) or attribute not in ATTRIBUTE_NAMES:
        return -1
    return ATTRIBUTE_NAMES.index(attribute)


def training_sample(
    frame: Frame,
    cfg: PipelineConfig,
    variant: Variant,
    params: ModelParams,
    rng: np.random.Generator | None = None,
    augment: AugmentParams | None = None,
    modality_dropout: float = 0.0,
    sweep_dropout: float = 0.0,
    database: ObjectDatabase | None = None,
) -> TrainingSample:
    """Frame -> augmented inputs and targets. Without `rng` nothing random happens.
    `sweep_dropout`: probability that the frame keeps only its keyframe scans (the input of
    a keyframes-only dataroot); drawn only when > 0, so other runs draw as before.
    `database`: objects pasted into the LIDAR scan (`cfg.train.gt_sampling`), after the camera
    depth targets are taken and only when the model reads the LIDAR and dropout kept it."""
    modalities = variant_modalities(variant)
    transform = None
    if rng is not None and augment is not None:
        transform = GlobalTransform.random(rng, augment)
    if rng is not None and sweep_dropout > 0 and rng.random() < sweep_dropout:
        frame = keyframe_only(frame)
    # Depth supervision from the keyframe scan alone: it is exact at the reference time (earlier
    # sweeps smear moving objects) and a third of the points to project.
    depth_source = np.zeros((0, cfg.point_cloud.features), np.float32)
    if frame.lidar is not None:
        depth_source = frame.lidar.points[: frame.lidar.keyframe_points]
    drop: list[str] = []
    if rng is not None and modality_dropout > 0 and len(modalities) > 1:
        drop = _draw_dropout(rng, modality_dropout)
    gt = cfg.train.gt_sampling
    if (
        rng is not None
        and database is not None
        and gt.probability > 0
        and "lidar" in modalities
        and LIDAR_CHANNEL not in drop
        and rng.random() < gt.probability
    ):
        frame = paste_objects(frame, database, gt, cfg, rng)
    if drop:
        frame = drop_sensors(frame, drop)
    if rng is not None and augment is not None and augment.point_keep[0] < 1:
        frame = thin_points(frame, float(rng.uniform(*augment.point_keep)), rng)
    inputs, cams = sample_inputs(frame, cfg, modalities, transform, rng, augment)
    h, w = cfg.camera.feature_size
    depth = np.full((len(cfg.camera.channels), h, w), -1, np.int64)
    if cams is not None:
        for i, (cam, pose) in enumerate(zip(cams.cameras, cams.cam_to_lidar, strict=True)):
            if cam is not None and pose is not None:
                depth[i] = depth_targets(depth_source, cam, pose, cfg.camera)
    return TrainingSample(
        frame.sample_token, inputs, box_targets(frame, cfg, params, transform), depth
    )


def thin_points(frame: Frame, keep: float, rng: np.random.Generator) -> Frame:
    """`frame` with each LIDAR point (of every sweep) kept with probability `keep`: the
    `[train.augment] point_keep` augmentation. The keyframe scan stays the first rows."""
    lidar = frame.lidar
    if lidar is None or keep >= 1:
        return frame
    kept = rng.random(len(lidar.points)) < keep
    lidar = dataclasses.replace(
        lidar,
        points=lidar.points[kept],
        keyframe_points=int(kept[: lidar.keyframe_points].sum()),
    )
    return dataclasses.replace(frame, lidar=lidar)


def _draw_dropout(rng: np.random.Generator, p: float) -> list[str]:
    """Each of LIDAR, all cameras, all radars dropped with probability p, never all three."""
    while True:
        drop = [name for name in (LIDAR_CHANNEL, "cameras", "radars") if rng.random() < p]
        if len(drop) < 3:
            return drop


def collate_training(
    samples: Sequence[TrainingSample], cfg: PipelineConfig
) -> tuple[BatchInputs, TargetBatch]:
    """Stack training samples; depth targets keep the present images in (sample, camera) order."""
    inputs = collate_inputs([s.inputs for s in samples], cfg)
    present = np.stack([s.inputs.camera_present for s in samples])
    depth = np.stack([s.depth for s in samples])[present]
    targets = TargetBatch(
        heatmap=torch.from_numpy(np.stack([s.targets.heatmap for s in samples])),
        regression=torch.from_numpy(np.stack([s.targets.regression for s in samples])),
        mask=torch.from_numpy(np.stack([s.targets.mask for s in samples])),
        velocity_valid=torch.from_numpy(np.stack([s.targets.velocity_valid for s in samples])),
        attribute=torch.from_numpy(np.stack([s.targets.attribute for s in samples])),
        depth=torch.from_numpy(depth) if len(depth) else None,
    )
    return inputs, targets


class FrameDataset(torch.utils.data.Dataset):
    """Training samples of a list of sample tokens, indexed by `(epoch, index)`.

    Augmentation is drawn from (seed, epoch, index), so a run is repeatable whatever the number
    of loader workers, and persistent workers need no per-epoch state. Up to `cache_frames`
    frames stay decoded in memory (per worker process): reading a frame (JPEG decoding, sweeps)
    costs about as much as preparing it.
    """

    def __init__(
        self,
        source: FrameSource,
        tokens: Sequence[str],
        cfg: PipelineConfig,
        variant: Variant,
        params: ModelParams,
        augment: AugmentParams | None = None,
        seed: int = 0,
        modality_dropout: float = 0.0,
        cache_frames: int = 0,
        sweep_dropout: float = 0.0,
        database: ObjectDatabase | None = None,
    ) -> None:
        self.source = source
        self.tokens = list(tokens)
        self.cfg = cfg
        self.variant = variant
        self.params = params
        self.augment = augment
        self.seed = seed
        self.modality_dropout = modality_dropout
        self.sweep_dropout = sweep_dropout
        self.database = database
        self.cache_frames = cache_frames
        self._cache: OrderedDict[int, Frame] = OrderedDict()

    def __len__(self) -> int:
        return len(self.tokens)

    def _frame(self, index: int) -> Frame:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        frame = self.source.frame(self.tokens[index])
        if self.cache_frames > 0:
            self._cache[index] = frame
            if len(self._cache) > self.cache_frames:
                self._cache.popitem(last=False)
        return frame

    def __getitem__(self, key: tuple[int, int]) -> TrainingSample:
        epoch, index = key
        rng = None
        if (
            self.augment is not None
            or self.modality_dropout > 0
            or self.sweep_dropout > 0
            or self.database is not None
        ):
            rng = np.random.default_rng([self.seed, epoch, index])
        return training_sample(
            self._frame(index),
            self.cfg,
            self.variant,
            self.params,
            rng,
            self.augment,
            self.modality_dropout,
            self.sweep_dropout,
            self.database,
        )
