"""Constants and helpers of the replay tests (a module of its own: test files import it by name,
and `conftest` is a name every test folder has)."""

from __future__ import annotations

import contextlib
import io

from fusion.cli import main
from fusion.outputs.sinks import Processed, boxes_global

VERSION = "v1.0-synth"
SCENE = "scene-0001"
GENERATE = [
    "--version", VERSION, "--scenes", "1", "--samples-per-scene", "4", "--seed", "11",
    "--conditions", "day", "--workers", "1", "--image-size", "704x396",
]  # fmt: skip


def quiet(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


class Collect:
    """A sink keeping every processed trigger, and (timestamp, detections in the global frame)
    of each."""

    def __init__(self) -> None:
        self.items: list[Processed] = []

    def write(self, item: Processed) -> None:
        self.items.append(item)

    def close(self) -> None:
        pass

    def boxes(self) -> dict[int, list[dict]]:
        return {i.frame.timestamp_us: boxes_global(i) for i in self.items}
