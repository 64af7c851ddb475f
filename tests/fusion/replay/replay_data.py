"""Constants and helpers of the replay tests (a module of its own: test files import it by name,
and `conftest` is a name every test folder has)."""

from __future__ import annotations

import contextlib
import io

from fusion.cli import main

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
