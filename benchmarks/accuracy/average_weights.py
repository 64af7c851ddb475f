"""Weighted average of detector weights files of one model (a "model soup"; WiSE-FT when one
of them is the synthetic-only model the others were fine-tuned from).

    python benchmarks/accuracy/average_weights.py --out runs/wise75.safetensors \
        --weights fusion/weights/fusion.safetensors=0.75 --weights ISSUE12/fusion.safetensors=0.25

Interpolating a fine-tuned model towards its start can keep the start's robustness under a
shift of the data; here it asks whether the synthetic-only weights and the real-tuned ones
average into weights that are good on both. The files must hold the same tensors (names and
shapes); floating-point tensors are averaged with the given coefficients (which must sum to
1), integer ones (batch-norm counters) are taken from the first file, and so is the metadata
(config, variant), with the mix recorded under `run`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def average(parts: list[tuple[Path, float]]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if abs(sum(w for _, w in parts) - 1.0) > 1e-6:
        raise SystemExit(f"the coefficients sum to {sum(w for _, w in parts):g}, not 1")
    acc: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}
    for k, (path, weight) in enumerate(parts):
        try:
            with safe_open(str(path), "pt") as f:
                tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
                if k == 0:
                    meta = dict(f.metadata() or {})
        except (OSError, ValueError) as e:  # safetensors raises its own errors as these
            raise SystemExit(f"{path}: cannot read the weights ({e})") from e
        if k and tensors.keys() != acc.keys():
            raise SystemExit(f"{path}: not the same tensors as {parts[0][0]}")
        for name, t in tensors.items():
            if k and t.shape != acc[name].shape:
                shape, want = tuple(t.shape), tuple(acc[name].shape)
                raise SystemExit(f"{path}: {name} is {shape}, not {want}")
            if not t.is_floating_point():
                acc.setdefault(name, t)
            else:
                acc[name] = acc.get(name, 0) + weight * t.double()
    out = {n: (t.float() if t.is_floating_point() else t).contiguous() for n, t in acc.items()}
    meta["run"] = json.dumps(
        {
            "average": [
                {"weights": f"{p.name} sha256:{_sha256(p)}", "coefficient": w} for p, w in parts
            ]
        }
    )
    return out, meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--weights", action="append", required=True, metavar="PATH=COEFFICIENT")
    args = ap.parse_args(argv if argv is not None else sys.argv[1:])
    parts = []
    for spec in args.weights:
        path, sep, w = spec.rpartition("=")
        try:
            parts.append((Path(path), float(w)))
        except ValueError:
            sep = ""
        if not sep:
            raise SystemExit(f"--weights {spec!r}: expected PATH=COEFFICIENT")
    tensors, meta = average(parts)
    save_file(tensors, str(args.out), meta)
    print(f"wrote {args.out}: " + ", ".join(f"{w:g} x {p}" for p, w in parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
