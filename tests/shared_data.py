"""The data every test folder shares, defined once: the real nuScenes keyframe carried in
tests/data (CC BY-NC-SA 4.0; see its LICENSE). Test modules import it by name (`tests/` is on
the path through the root conftest); fixtures over it are in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REAL_ROOT = TESTS / "data" / "nuscenes-real-frame"
REAL_VERSION = "v1.0-mini"
REAL_SAMPLE = "ca9a282c9e77460f8360f564131a8af5"
# two real keyframes of scene-0916 (mini_val) in the keyframes-only layout (tests/data/README.md)
REAL_KEYFRAMES = TESTS / "data" / "nuscenes-real-keyframes"
# LIDAR weights in format 1, as shipped before 2026-12-01 (tests/data/README.md)
FORMAT_1_LIDAR = TESTS / "data" / "weights-format-1" / "lidar.safetensors"


def generate_small(out: Path, seed: int, condition: str, version: str = "v1.0-synth") -> Path:
    """A tiny generated dataroot (1 scene x 2 keyframes, 160x90 images) for tests that need
    any valid synthetic data quickly."""
    import contextlib
    import io

    from fusion.cli import main

    argv = ["generate", "--out", str(out), "--version", version, "--scenes", "1"]
    argv += ["--samples-per-scene", "2", "--seed", str(seed), "--image-size", "160x90"]
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main([*argv, "--conditions", condition])
    assert rc == 0, f"fusion generate failed for {out}"
    return out


def drop_sweep_files(root: Path, keep_every: int = 0) -> dict[str, int]:
    """Make `root` a keyframes-only dataroot, as nuScenes' "keyframes only" download: delete
    the sweep files under `sweeps/` (the tables still link them). With `keep_every` = k > 0,
    every k-th sweep file of each channel (in time order) is kept: a partly keyframes-only
    dataroot. Returns channel -> files deleted."""
    deleted: dict[str, int] = {}
    for channel_dir in sorted((root / "sweeps").iterdir()):
        for i, f in enumerate(sorted(channel_dir.iterdir())):  # names end in the timestamp
            if keep_every and i % keep_every == 0:
                continue
            f.unlink()
            deleted[channel_dir.name] = deleted.get(channel_dir.name, 0) + 1
    return deleted
