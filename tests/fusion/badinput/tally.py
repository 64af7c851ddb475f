"""The README's "Bad input" figure: every corpus case run at every entry point, outcomes
counted against the expectation. Run from the repository root:

    PYTHONPATH=$PWD python tests/fusion/badinput/tally.py

Prints one table (cases x entry points -> outcome) and the cases whose result deviates from
their stated expectation, and the silent runs: broken input an entry point read without a
word (none of either when the corpus test passes).
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.append(str(Path(__file__).resolve().parents[2]))  # tests/: shared_data

from conftest import REAL, generate_synth  # noqa: E402
from corpus import (  # noqa: E402
    CASES,
    ENTRY_POINTS,
    baseline_missing,
    classify,
    copy_base,
    deviations,
    run_case,
    silent,
)


def main() -> int:
    counts: Counter[tuple[str, str]] = Counter()
    seconds: Counter[str] = Counter()
    unexpected = []
    quiet: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        bases = {"real": REAL, "synth": generate_synth(Path(tmp) / "synth")}
        base = {name: baseline_missing(root) for name, root in bases.items()}
        for i, case in enumerate(CASES):
            root = copy_base(bases[case.base], Path(tmp) / f"c{i}" / "root")
            got = run_case(case, root)
            unexpected += [(case.id, d) for d in deviations(case, got, base[case.base])]
            quiet += [(case.id, e) for e in silent(case, got, base[case.base])]
            for entry in ENTRY_POINTS:
                seconds[entry] += got[entry].seconds
                counts[(classify(case, entry), entry)] += 1
    outcomes = sorted({o for o, _ in counts})
    runs = len(CASES) * len(ENTRY_POINTS)
    print(f"{len(CASES)} cases x {len(ENTRY_POINTS)} entry points = {runs} runs")
    print("| outcome | " + " | ".join(ENTRY_POINTS) + " | all |")
    print("|---|" + "---|" * (len(ENTRY_POINTS) + 1))
    for o in outcomes:
        row = [counts[(o, e)] for e in ENTRY_POINTS]
        print(f"| {o} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
    cats = Counter(c.category for c in CASES)
    print("cases per category: " + ", ".join(f"{k} {v}" for k, v in cats.items()))
    print("seconds per entry point: " + ", ".join(f"{e} {seconds[e]:.1f}" for e in ENTRY_POINTS))
    print(f"silent runs (broken input read, nothing reported): {len(quiet)}")
    for case_id, entry in quiet:
        print(f"  {case_id}: {entry}")
    print(f"runs deviating from the stated outcome (tracebacks included): {len(unexpected)}")
    for case_id, what in unexpected:
        print(f"  {case_id}: {what}")
    return 1 if unexpected or quiet else 0


if __name__ == "__main__":
    sys.exit(main())
