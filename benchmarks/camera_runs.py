"""Camera-only mAP against training time, for the camera baseline of benchmarks/accuracy.md.

    python benchmarks/camera_runs.py --out benchmarks/accuracy/camera_runs \
        --run "LABEL|WEIGHTS|PRIOR_S|EVAL_A/summary.json|EVAL_B/summary.json" [--run ...]

Each run is a weights file and the `fusion eval` summaries of it on the two held-out sets.
The steps and training seconds come from the weights' metadata (`run.steps`,
`run.train_time_s`); PRIOR_S is the training time of the weights the run started from
(`--init`, 0 from scratch), which the weights do not hold once the parent run is gone, so it is
stated with the run. Writes OUT.json, OUT.md (a table) and OUT.png (mAP against the run's own
training time and against the whole lineage's).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tomllib

from fusion.model.weights import read_metadata
from fusion.render import _pyplot, _save


def run_record(label: str, weights: Path, prior_s: float, summaries: list[Path]) -> dict:
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
        "val": scores,
    }


def write_markdown(records: list[dict], path: Path) -> None:
    lines = [
        "| run | config | steps | training (s) | with its start (s) "
        "| mAP val A | mAP val B | NDS val A | NDS val B |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        a, b = r["val"]
        total = r["train_time_s"] + r["prior_train_time_s"]
        lines.append(
            f"| {r['label']} | {r['config']} | {r['steps']:,} | {r['train_time_s']:,.0f} | "
            f"{total:,.0f} | {a['mAP']:.3f} | {b['mAP']:.3f} | {a['NDS']:.3f} | {b['NDS']:.3f} |"
        )
    path.write_text("\n".join(lines) + "\n")


def plot(records: list[dict], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, lineage in zip(axes, (False, True), strict=True):
        for r in records:
            t = r["train_time_s"] + (r["prior_train_time_s"] if lineage else 0.0)
            m = [v["mAP"] for v in r["val"]]
            ax.plot([t, t], m, color="0.7", lw=1)
            ax.scatter([t, t], m, marker="o", s=18)
            ax.annotate(
                r["label"], (t, max(m)), fontsize=8, xytext=(3, 3), textcoords="offset points"
            )
        ax.axhline(0.20, color="tab:red", ls="--", lw=1, label="target 0.20")
        ax.set_xlabel(
            "training time, with the runs it started from (s, 1 CPU thread)"
            if lineage
            else "training time of the run (s, 1 CPU thread)"
        )
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("camera-only mAP (val A and val B)")
    axes[0].legend(loc="upper left")
    return _save(fig, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="OUT.json, OUT.md, OUT.png")
    p.add_argument("--run", action="append", required=True, help="LABEL|WEIGHTS|PRIOR_S|A|B")
    args = p.parse_args()
    records = []
    for item in args.run:
        label, weights, prior, a, b = item.split("|")
        records.append(run_record(label, Path(weights), float(prior), [Path(a), Path(b)]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(records, indent=1) + "\n")
    write_markdown(records, args.out.with_suffix(".md"))
    plot(records, args.out.with_suffix(".png"))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
