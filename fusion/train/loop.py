"""`fusion train`: train the fusion, camera or LIDAR detector on any nuScenes-format dataroot.

One process trains on CPU or one GPU; `torchrun --nproc_per_node N -m fusion.cli train ...`
trains with DistributedDataParallel (gloo on CPU, NCCL on GPUs), each rank reading its own
shard of every epoch. Checkpoints are safetensors holding the weights, the optimizer state,
the config and the position in the run, so a stopped run resumes exactly where its last
checkpoint was written (`--resume`). Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from fusion.config import (
    BranchLR,
    PipelineConfig,
    dumps_toml,
    save_config,
)
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.distributed import DistInfo, join_process_group
from fusion.engines.device import resolve_device
from fusion.errors import DataError, FusionError
from fusion.model.detector import Detector, Variant, build_detector, variant_modalities
from fusion.model.losses import detection_loss
from fusion.model.weights import (
    MODEL_PREFIX,
    check_finite,
    detector_metadata,
    load_detector,
    model_tensors,
    save_detector,
)
from fusion.outputs.plots import plot_losses
from fusion.train.dataset import DataPart, FrameDataset, FrameSource, MixedSource, collate_training
from fusion.train.gt_sampling import ObjectDatabase, build_database

OPTIM_PREFIX = "optim."
CHECKPOINT_NAME = "last.safetensors"


@dataclass(frozen=True)
class TrainOptions:
    """One training run. `epochs`/`batch_size`/`seed` default to the config's [train]; the
    rest of what shapes the run (model params, augmentation, learning rates, warm-up) is in
    the config, which the run writes to `out/config.toml`."""

    config: PipelineConfig
    dataroot: Path
    version: str
    split: str
    variant: Variant
    out: Path
    epochs: int
    batch_size: int
    seed: int
    workers: int = 2
    max_steps: int | None = None  # stop after this many optimizer steps in total (smoke runs)
    resume: bool = False
    init: Path | None = None  # start from these weights (see `init_from`)
    # then take these sensors' branches from other weights: (modality, path)
    init_branches: tuple[tuple[str, Path], ...] = ()
    device: str = "auto"
    checkpoint_every: int = 100  # steps
    cache_frames: int = 0  # decoded frames kept in memory per loader process
    progress: bool = True
    repeat: int = 1  # each sample of `dataroot`'s split seen this many times per epoch
    # more dataroots in the same training set: (dataroot, version, split, repeat)
    mix: tuple[tuple[Path, str, str, int], ...] = ()
    # where ground-truth sampling cuts its objects (cfg.train.gt_sampling): (dataroot, version,
    # split); none: `dataroot`'s split
    gt_database: tuple[tuple[Path, str, str], ...] = ()


@dataclass(frozen=True)
class RunPosition:
    """Where a run is: optimizer steps done, and the epoch and step within it to continue at."""

    step: int = 0
    epoch: int = 0
    epoch_step: int = 0
    elapsed_s: float = 0.0  # training wall time so far, over every resumed session


def _position(
    step: int, epoch: int, epoch_step: int, per_epoch: int, elapsed_s: float
) -> RunPosition:
    """The position after `epoch_step` steps of `epoch` (the next epoch once it is complete)."""
    if epoch_step >= per_epoch:
        return RunPosition(step, epoch + 1, 0, round(elapsed_s, 1))
    return RunPosition(step, epoch, epoch_step, round(elapsed_s, 1))


# -- distributed -------------------------------------------------------------------------------


def init_distributed(device: torch.device) -> DistInfo:
    """Join torchrun's process group with the backend of `device`'s tensors."""
    return join_process_group("nccl" if device.type == "cuda" else "gloo")


def shard_indices(n: int, seed: int, epoch: int, rank: int, world: int) -> list[int]:
    """This rank's share of a (seed, epoch) permutation of range(n), padded so that every
    rank gets the same number of samples."""
    order = np.random.default_rng([seed, epoch, 7919]).permutation(n).tolist()
    per_rank = math.ceil(n / world)
    order += order[: per_rank * world - n]
    return order[rank::world]


class _EpochSampler(torch.utils.data.Sampler[tuple[int, int]]):
    """Yields (epoch, index) keys of the current epoch's shard; `start` skips what a resumed
    run has done. Set per epoch in the main process, so persistent workers can stay up."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []

    def start(self, epoch: int, indices: Sequence[int]) -> None:
        self.keys = [(epoch, i) for i in indices]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(list(self.keys))

    def __len__(self) -> int:
        return len(self.keys)


# -- optimizer and schedule --------------------------------------------------------------------


def param_groups(
    model: Detector, base_lr: float, weight_decay: float, scales: BranchLR
) -> list[dict[str, Any]]:
    """AdamW groups per branch; norms and biases are not decayed."""
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        branch = "dense"
        if name.startswith("encoders."):
            branch = name.split(".")[1]
        decay = p.ndim > 1
        groups.setdefault((branch, decay), []).append(p)
    out = []
    for (branch, decay), ps in sorted(groups.items()):
        scale = getattr(scales, branch)
        out.append(
            {
                "params": ps,
                "lr": base_lr * scale,
                "base_lr": base_lr * scale,
                "weight_decay": weight_decay if decay else 0.0,
                "name": f"{branch}{'' if decay else '.no_decay'}",
            }
        )
    return out


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1% of the base rate."""
    if step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t))


# -- checkpoints -------------------------------------------------------------------------------


def save_checkpoint(
    path: Path,
    model: Detector,
    optimizer: torch.optim.Optimizer,
    position: RunPosition,
    extra: dict[str, Any],
) -> Path:
    """Weights + optimizer state + run position, atomically (write then rename)."""
    tensors = model_tensors(model)
    state = optimizer.state_dict()
    for idx, st in state["state"].items():
        for key, value in st.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"{OPTIM_PREFIX}{idx}.{key}"] = t.detach().cpu().contiguous()
    groups = [
        {k: v for k, v in g.items() if k != "params"} | {"params": g["params"]}
        for g in state["param_groups"]
    ]
    meta = detector_metadata(model) | {
        "position": json.dumps(dataclasses.asdict(position)),
        "param_groups": json.dumps(groups),
        "run": json.dumps(extra),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), meta)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path, model: Detector, optimizer: torch.optim.Optimizer) -> RunPosition:
    """Restore weights and optimizer state in place from a checkpoint; return its position.

    A truncated, corrupt or foreign file (not safetensors, bad metadata JSON, missing or
    mis-shaped tensors) is a `DataError` naming the checkpoint; nothing is unpickled.
    """
    try:
        return _load_checkpoint(path, model, optimizer)
    except FusionError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        # SafetensorError: truncated header/data; JSONDecodeError (a ValueError): bad metadata;
        # RuntimeError: tensors that do not fit the model or optimizer (load_state_dict)
        raise DataError(
            f"corrupt or truncated checkpoint ({type(exc).__name__}: {exc})", path
        ) from None


def _load_checkpoint(path: Path, model: Detector, optimizer: torch.optim.Optimizer) -> RunPosition:
    with safe_open(str(path), framework="pt", device="cpu") as f:
        meta = f.metadata() or {}
        if "position" not in meta:
            raise DataError("not a training checkpoint (no run position)", path)
        if meta.get("variant") != model.variant or meta.get("config") != dumps_toml(model.cfg):
            raise FusionError("checkpoint was written for another model or config", path)
        model_state, optim_state = {}, {}
        for key in f.keys():  # noqa: SIM118
            if key.startswith(MODEL_PREFIX):
                model_state[key[len(MODEL_PREFIX) :]] = f.get_tensor(key)
            elif key.startswith(OPTIM_PREFIX):
                idx, name = key[len(OPTIM_PREFIX) :].split(".", 1)
                optim_state.setdefault(int(idx), {})[name] = f.get_tensor(key)
    check_finite(model_state, path)
    check_finite(
        {f"{OPTIM_PREFIX}{i}.{k}": v for i, st in optim_state.items() for k, v in st.items()}, path
    )
    model.load_state_dict(model_state, strict=True)
    groups = json.loads(meta["param_groups"])
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise DataError("checkpoint optimizer param_groups do not match the model's", path)
    device = next(model.parameters()).device
    optim_state = {
        i: {k: (v if k == "step" else v.to(device)) for k, v in st.items()}
        for i, st in optim_state.items()
    }
    optimizer.load_state_dict({"state": optim_state, "param_groups": groups})
    position = json.loads(meta["position"])
    if not isinstance(position, dict) or set(position) != {
        f.name for f in dataclasses.fields(RunPosition)
    }:
        raise DataError("checkpoint run position is not a RunPosition object", path)
    pos = RunPosition(**position)
    if not all(
        isinstance(v, int) and v >= 0 for v in (pos.step, pos.epoch, pos.epoch_step)
    ) or not (isinstance(pos.elapsed_s, int | float) and math.isfinite(pos.elapsed_s)):
        raise DataError(f"checkpoint run position has bad values: {position}", path)
    return pos


# -- the loop ----------------------------------------------------------------------------------


def init_from(model: Detector, path: Path) -> None:
    """Copy the weights of `path` into `model` (fine-tuning, e.g. on a config with more sweeps):
    every tensor's shape must agree; the configs may differ. The pillar net's first layer is
    rescaled to the model's point-feature scaling, so the copy computes what the source
    computed on the same points.

    The source may also be a model that reads more sensors than `model` (the camera or LIDAR
    model started from the fusion model): its branches for the other sensors are left out and
    the fuser's first convolution keeps the input channels of `model`'s sensors. A camera net
    with stride-8 features may start from one at stride 16: its extra FPN level (`NEW_LAYERS`)
    starts fresh."""

    src = load_detector(path)
    if not set(model.modalities) <= set(src.modalities):
        raise FusionError(
            f"--init: weights of the {src.variant!r} model, which does not read every sensor "
            f"of the {model.variant!r} model",
            path,
        )
    theirs = _subset_state(src, model.modalities)
    ours = model.state_dict()
    # a layer only this model has (the stride-8 FPN level) keeps its fresh initialization
    theirs.update({k: v for k, v in ours.items() if k.startswith(NEW_LAYERS) and k not in theirs})
    wrong = _mismatched(ours, theirs)
    if wrong:
        raise FusionError(f"--init: tensors differ from this model's: {', '.join(wrong[:5])}", path)
    if "lidar" in model.encoders:
        key = "encoders.lidar." + PILLAR_INPUT_KEY
        theirs = {**theirs, key: _rescaled_pillar_input(theirs[key], src, model)}
    model.load_state_dict(theirs)


def init_branch_from(model: Detector, modality: str, path: Path) -> None:
    """Copy the `modality` branch (`encoders.<modality>.*`) of the model at `path` into `model`,
    e.g. the fusion model's camera branch from a camera model trained further; the rest of
    `model` is left as it is. The branch's tensors must agree in shape."""

    if modality not in model.encoders:
        raise FusionError(f"--init-branch: the {model.variant!r} model has no {modality} branch")
    src = load_detector(path)
    if modality not in src.encoders:
        raise FusionError(
            f"--init-branch: weights of the {src.variant!r} model, which has no {modality} branch",
            path,
        )
    theirs = src.encoders[modality].state_dict()
    ours = model.encoders[modality].state_dict()
    wrong = _mismatched(ours, theirs)
    if wrong:
        raise FusionError(
            f"--init-branch: {modality} tensors differ from this model's: {', '.join(wrong[:5])}",
            path,
        )
    if modality == "lidar":
        key = PILLAR_INPUT_KEY
        theirs = {**theirs, key: _rescaled_pillar_input(theirs[key], src, model)}
    model.encoders[modality].load_state_dict(theirs)


def _mismatched(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> list[str]:
    """Tensor names that `theirs` lacks or has in another shape, then those only it has."""
    wrong = [k for k in ours if k not in theirs or theirs[k].shape != ours[k].shape]
    return wrong + sorted(set(theirs) - set(ours))


PILLAR_INPUT_KEY = "pillars.mlp.0.weight"  # in encoders.lidar


def _rescaled_pillar_input(weight: torch.Tensor, src: Detector, model: Detector) -> torch.Tensor:
    """The pillar net's first-layer `weight` of `src` for `model`'s point-feature scaling, so
    that it computes on the same points what it computed in `src`."""
    src_scale = src.encoders["lidar"].pillars.feature_scale
    dst_scale = model.encoders["lidar"].pillars.feature_scale.to(src_scale.device)
    return weight * src_scale / dst_scale


FUSER_INPUT_KEY = "fuser.conv.0.weight"
# Layers a model may have that its --init source lacks: they start freshly initialized.
NEW_LAYERS = ("encoders.camera.lateral8.",)


def _subset_state(src: Detector, modalities: Sequence[str]) -> dict[str, torch.Tensor]:
    """`src`'s tensors for a model of `modalities` (a subset of `src.modalities`): the other
    encoders dropped, the fuser's input channels of the kept sensors, in `modalities` order."""
    state = src.state_dict()
    if tuple(modalities) == tuple(src.modalities):
        return state
    keep = {
        k: v
        for k, v in state.items()
        if not k.startswith("encoders.") or k.split(".")[1] in modalities
    }
    spans, start = {}, 0
    for m, width in src.fuser_input_widths().items():
        spans[m] = (start, start + width)
        start += width
    w = state[FUSER_INPUT_KEY]
    if start != w.shape[1]:
        raise FusionError(f"--init: the fuser reads {w.shape[1]} channels, not {start}")
    keep[FUSER_INPUT_KEY] = torch.cat([w[:, slice(*spans[m])] for m in modalities], dim=1)
    return keep


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(
    opts: TrainOptions, source: FrameSource | None = None, tokens: Sequence[str] | None = None
) -> Path:
    """Run (or resume) training; returns the path of the final weights. `source`/`tokens`
    override the dataroot reader (tests)."""
    device = torch.device(resolve_device("torch", opts.device))
    info = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    cfg = opts.config
    torch.manual_seed(opts.seed + info.rank)
    data: list[dict[str, object]] = []
    if source is None:
        source, tokens, data = _training_data(opts)
    tokens = list(tokens or [])
    if not tokens:
        raise FusionError(f"split {opts.split!r} has no samples", opts.dataroot)

    model = build_detector(cfg, opts.variant).to(device)
    optimizer = torch.optim.AdamW(
        param_groups(model, cfg.train.lr, cfg.train.weight_decay, cfg.train.branch_lr)
    )
    ckpt_path = opts.out / "checkpoints" / CHECKPOINT_NAME
    position = RunPosition()
    if opts.resume:
        if not ckpt_path.is_file():
            raise FusionError("--resume: no checkpoint to resume from", ckpt_path)
        position = load_checkpoint(ckpt_path, model, optimizer)
    elif ckpt_path.is_file():
        raise FusionError(
            "a run already exists here: pass --resume or choose another --out", opts.out
        )
    else:
        if opts.init is not None:
            init_from(model, opts.init)
        for modality, path in opts.init_branches:
            init_branch_from(model, modality, path)

    database = None
    if cfg.train.gt_sampling.probability > 0 and "lidar" in model.modalities:
        database = _gt_database(opts, info.is_main and opts.progress)
    dataset = FrameDataset(
        source,
        tokens,
        cfg,
        opts.variant,
        cfg.params,
        cfg.train.augment,
        opts.seed,
        cfg.train.modality_dropout,
        cache_frames=opts.cache_frames,
        sweep_dropout=cfg.train.sweep_dropout,
        database=database,
    )
    sampler = _EpochSampler()
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=opts.batch_size,
        sampler=sampler,
        num_workers=opts.workers,
        collate_fn=partial(collate_training, cfg=cfg),
        persistent_workers=opts.workers > 0,  # keeps each worker's frame cache across epochs
        # forked workers can deadlock in the parent's Numba/OpenMP thread pool: start them fresh
        multiprocessing_context="spawn" if opts.workers > 0 else None,
        drop_last=False,
    )
    steps_per_epoch = math.ceil(math.ceil(len(tokens) / info.world_size) / opts.batch_size)
    total_steps = steps_per_epoch * opts.epochs
    if opts.max_steps is not None:
        total_steps = min(total_steps, opts.max_steps)

    ddp: nn.Module = model
    if info.world_size > 1:
        ddp = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            # modality dropout can leave a whole branch out of a batch
            find_unused_parameters=len(model.modalities) > 1 and cfg.train.modality_dropout > 0,
        )
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    if info.is_main:
        opts.out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, opts.out / "config.toml")
    log_path = opts.out / "losses.jsonl"
    run_meta = {
        "seed": opts.seed,
        "world_size": info.world_size,
        "batch_size": opts.batch_size,
        "epochs": opts.epochs,
        "split": opts.split,
        "version": opts.version,
    }
    if data:
        run_meta["data"] = data
    if opts.init is not None:
        run_meta["init"] = f"{opts.init.name} sha256:{_sha256(opts.init)}"
    if database is not None:
        run_meta["gt_database"] = database.describe()
    if opts.init_branches:
        run_meta["init_branches"] = {
            m: f"{p.name} sha256:{_sha256(p)}" for m, p in opts.init_branches
        }

    step = position.step
    start = time.time() - position.elapsed_s
    pos = position
    model.train()
    _STOP.clear()
    _STEPPING.set()
    try:
        for epoch in range(position.epoch, opts.epochs):
            if step >= total_steps:
                break
            skip = position.epoch_step if epoch == position.epoch else 0
            indices = shard_indices(len(tokens), opts.seed, epoch, info.rank, info.world_size)
            sampler.start(epoch, indices[skip * opts.batch_size :])
            desc = f"{opts.variant} epoch {epoch + 1}/{opts.epochs}"
            bar = _progress(loader, info.is_main and opts.progress, desc, steps_per_epoch, skip)
            epoch_step = skip
            for inputs, targets in bar:
                for g in optimizer.param_groups:
                    g["lr"] = g["base_lr"] * lr_factor(step, total_steps, cfg.train.warmup_steps)
                inputs, targets = inputs.to(device), targets.to(device)
                with torch.autocast("cuda", dtype=torch.float16) if amp else nullcontext():
                    out = ddp(inputs)
                    loss = detection_loss(out.maps, out.depth, targets, cfg.params)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss.total).backward()
                scaler.unscale_(optimizer)
                grad_norm = float(
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                )
                if math.isfinite(float(loss.total.detach())) and math.isfinite(grad_norm):
                    scaler.step(optimizer)  # a non-finite step is skipped, not applied
                scaler.update()
                step += 1
                epoch_step += 1
                pos = _position(step, epoch, epoch_step, steps_per_epoch, time.time() - start)
                if info.is_main:
                    values = loss.as_floats()
                    record = {
                        "step": step,
                        "epoch": epoch,
                        "lr": optimizer.param_groups[0]["lr"],
                        "grad_norm": grad_norm,
                        "time_s": pos.elapsed_s,
                        **values,
                    }
                    with log_path.open("a") as f:
                        f.write(json.dumps(record) + "\n")
                    if hasattr(bar, "set_postfix"):
                        bar.set_postfix({k[:4]: f"{v:.3f}" for k, v in values.items()})
                    if step % opts.checkpoint_every == 0 or step >= total_steps:
                        save_checkpoint(ckpt_path, model, optimizer, pos, run_meta)
                if _STOP.is_set():
                    raise KeyboardInterrupt  # SIGTERM (`request_stop`), after a whole step
                if step >= total_steps:
                    break
            if hasattr(bar, "close"):
                bar.close()  # a bar left by `break` is redrawn half-full by the next print
            if info.is_main:
                save_checkpoint(ckpt_path, model, optimizer, pos, run_meta)
                plot_losses(log_path, opts.out / "loss.png")
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: keep every completed step, then stop (resume with --resume).
        if info.is_main:
            save_checkpoint(ckpt_path, model, optimizer, pos, run_meta)
            plot_losses(log_path, opts.out / "loss.png")
        raise
    finally:
        _STEPPING.clear()
    weights = opts.out / f"{opts.variant}.safetensors"
    if info.is_main:
        meta = run_meta | {"steps": step, "train_time_s": pos.elapsed_s}
        save_detector(model, weights, {"run": json.dumps(meta)})
        plot_losses(log_path, opts.out / "loss.png")
    if info.world_size > 1:
        dist.barrier()
    return weights


# SIGTERM while the steps run stops after the current step (`request_stop`)
_STOP = threading.Event()
_STEPPING = threading.Event()


def request_stop() -> None:
    """Stop a run as Ctrl-C does (the completed steps checkpointed, exit 130): `fusion train`'s
    SIGTERM handler. While the training steps run, the stop is taken after the current step: a
    KeyboardInterrupt raised by the handler inside a numba or torch kernel surfaces as a
    SystemError instead, and nothing is checkpointed. Before the steps, it is raised at once."""
    if not _STEPPING.is_set():
        raise KeyboardInterrupt
    _STOP.set()


def _training_data(opts: TrainOptions) -> tuple[FrameSource, list[str], list[dict[str, object]]]:
    """The training set: `dataroot`'s split, repeated `repeat` times, plus every `--mix` part.
    Returns the source, its tokens and the record of what was mixed (for the run's metadata)."""

    specs = ((opts.dataroot, opts.version, opts.split, opts.repeat), *opts.mix)
    # a model without cameras trains without decoding (and caching) every frame's six images
    images = "camera" in variant_modalities(opts.variant)
    options = ReaderOptions.from_config(opts.config, load_images=images)
    parts = []
    for dataroot, version, split, repeat in specs:
        reader = NuScenesReader(dataroot, version, options, opts.config)
        tokens = tuple(reader.sample_tokens(split))
        if not tokens:
            raise FusionError(f"split {split!r} has no samples", dataroot)
        parts.append(DataPart(f"{dataroot} {version} {split}", reader, tokens, repeat))
    if len(parts) == 1 and opts.repeat == 1:
        return parts[0].source, list(parts[0].tokens), []
    mixed = MixedSource(parts)
    return mixed, mixed.tokens(), mixed.describe()


def _gt_database(opts: TrainOptions, progress: bool) -> ObjectDatabase:
    """Ground-truth sampling's objects, cut from the keyframe scans of `opts.gt_database`'s
    splits (or `dataroot`'s)."""
    specs = opts.gt_database or ((opts.dataroot, opts.version, opts.split),)
    cfg = opts.config
    frames = []
    for dataroot, version, split in specs:
        reader = NuScenesReader(
            dataroot, version, ReaderOptions.from_config(cfg, load_images=False), cfg
        )
        tokens = reader.sample_tokens(split)
        if not tokens:
            raise FusionError(f"--gt-database: split {split!r} has no samples", dataroot)
        bar = _progress(tokens, progress, f"gt database {Path(dataroot).name}", len(tokens), 0)
        frames.extend(reader.frame(t) for t in bar)
    names = [f"{d} {v} {s}" for d, v, s in specs]
    database = build_database(frames, cfg.train.gt_sampling.min_points, names)
    if not database.counts():
        raise FusionError(
            "gt_sampling: no annotated object with enough LIDAR points in " + "; ".join(names)
        )
    return database


def _progress(loader: Any, enabled: bool, desc: str, total: int, initial: int) -> Any:
    if not enabled:
        return loader
    from tqdm import tqdm

    return tqdm(loader, desc=desc, total=total, initial=initial, dynamic_ncols=True)


# -- CLI ---------------------------------------------------------------------------------------
