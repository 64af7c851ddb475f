"""Camera-only mAP against training time, for the camera baseline of benchmarks/accuracy.md.

    python benchmarks/camera_runs.py --out benchmarks/accuracy/camera_runs \
        --run "LABEL|WEIGHTS|PRIOR|EVAL_A/summary.json|EVAL_B/summary.json" [--run ...]

Each run is a weights file and the `fusion eval` summaries of it on the two held-out sets.
The steps and training seconds come from the weights' metadata (`run.steps`,
`run.train_time_s`); PRIOR is the training time of the weights the run started from
and its steps (`--init`, 0:0 from scratch): `@LABEL` for a run listed before it (its own plus
its PRIOR), or SECONDS:STEPS for weights whose run is gone (the weights do not hold their
parents'). Training seconds depend on the machine's load; steps do not. Writes OUT.json,
OUT.md (a table) and OUT.png (mAP against the steps of the whole lineage). The commands of
the issue-12 runs are in benchmarks/accuracy.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tomllib

from fusion.model.weights import read_metadata
from fusion.outputs.plots import _pyplot, _save


def run_record(
    label: str, weights: Path, prior_s: float, prior_steps: int, summaries: list[Path]
) -> dict:
    meta = read_metadata(weights)
    run = json.loads(meta["run"])
    variant = meta["variant"]
    cfg = tomllib.loads(meta["config"])
    scores = []
    for s in summaries:
        m = json.loads(s.read_text())["models"][variant]
        scores.append(
            {"mAP": m["mean_ap"], "NDS": m["nd_score"], "mATE": m["tp_errors"]["trans_err"]}
        )
    return {
        "label": label,
        "weights": str(weights),
        "config": cfg.get("name"),
        "init": run.get("init"),
        "steps": run["steps"],
        "train_time_s": run["train_time_s"],
        "prior_train_time_s": prior_s,
        "prior_steps": prior_steps,
        "val": scores,
    }


def write_markdown(records: list[dict], path: Path) -> None:
    lines = [
        "| run | config | steps | training (s) | steps with its start | s with its start "
        "| mAP val A | mAP val B | NDS val A | NDS val B |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        a, b = r["val"]
        total = r["train_time_s"] + r["prior_train_time_s"]
        lines.append(
            f"| {r['label']} | {r['config']} | {r['steps']:,} | {r['train_time_s']:,.0f} | "
            f"{r['steps'] + r['prior_steps']:,} | {total:,.0f} | {a['mAP']:.3f} | {b['mAP']:.3f} "
            f"| {a['NDS']:.3f} | {b['NDS']:.3f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def plot(records: list[dict], path: Path) -> Path:
    """mAP on both sets against the optimizer steps of each run's whole lineage, each run
    joined to the run it started from."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4.5))
    by_label = {r["label"]: r for r in records}
    for r in records:
        x = r["steps"] + r["prior_steps"]
        parent = by_label.get(r.get("parent") or "")
        for i, marker in enumerate(("o", "s")):
            y = r["val"][i]["mAP"]
            ax.scatter([x], [y], marker=marker, s=22, color="tab:blue" if i == 0 else "tab:purple")
            if parent is not None:
                px = parent["steps"] + parent["prior_steps"]
                ax.plot([px, x], [parent["val"][i]["mAP"], y], color="0.6", lw=1)
        ax.annotate(r["label"], (x, r["val"][1]["mAP"]), fontsize=8, xytext=(4, 2),
                    textcoords="offset points")  # fmt: skip
    ax.scatter([], [], marker="o", color="tab:blue", label="val A (seed 1234)")
    ax.scatter([], [], marker="s", color="tab:purple", label="val B (seed 4321)")
    ax.axhline(0.20, color="tab:red", ls="--", lw=1, label="target 0.20")
    ax.set_xlabel("optimizer steps (batch 2), with the runs it started from")
    ax.set_ylabel("camera-only mAP")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="OUT.json, OUT.md, OUT.png")
    p.add_argument("--run", action="append", required=True, help="LABEL|WEIGHTS|PRIOR_S|A|B")
    args = p.parse_args()
    records: list[dict] = []
    for item in args.run:
        label, weights, prior, a, b = item.split("|")
        if prior.startswith("@"):
            parent = next(r for r in records if r["label"] == prior[1:])
            prior_s = parent["train_time_s"] + parent["prior_train_time_s"]
            prior_steps = parent["steps"] + parent["prior_steps"]
        else:
            seconds, steps = prior.split(":")
            prior_s, prior_steps = float(seconds), int(steps)
        record = run_record(label, Path(weights), prior_s, prior_steps, [Path(a), Path(b)])
        record["parent"] = prior[1:] if prior.startswith("@") else None
        records.append(record)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(records, indent=1) + "\n")
    write_markdown(records, args.out.with_suffix(".md"))
    plot(records, args.out.with_suffix(".png"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
