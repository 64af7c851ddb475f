"""Argument helpers every subcommand shares (`fusion.cli` lists the conventions): the JSON
output of a command's result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_json_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """`--json` (print `what` as JSON instead of the text) and `--json-out PATH`."""
    parser.add_argument(
        "--json", action="store_true", help=f"print {what} as one JSON object instead of text"
    )
    parser.add_argument(
        "--json-out", type=Path, metavar="PATH", help=f"also write {what} as JSON to PATH"
    )


def emit_json(args: argparse.Namespace, payload: Any) -> bool:
    """Print and/or write `payload` as `add_json_arguments` asked; True when it was printed
    (the caller then prints no text)."""
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n")
    if args.json:
        json.dump(payload, sys.stdout)
        sys.stdout.write("\n")
    return bool(args.json)
