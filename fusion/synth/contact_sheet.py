"""A contact sheet of a dataroot: per scene, one keyframe's six cameras and a bird's-eye view
of its LIDAR sweep with the ground-truth boxes, stacked into one small PNG
(drawn by `fusion.outputs.plots.contact_sheet`).

    python -m fusion.synth.contact_sheet DATAROOT --version v1.0-synth --out sheet.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fusion.outputs.plots import contact_sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataroot", type=Path)
    parser.add_argument("--version", default="v1.0-synth")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cam-width", type=int, default=240)
    args = parser.parse_args(argv)
    path = contact_sheet(args.dataroot, args.version, args.out, args.cam_width)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
