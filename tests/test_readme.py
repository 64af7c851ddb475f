"""The README is the quick start: it opens with the two commands, stays short, every link in it
and in docs/ resolves (files and #anchors), and every example command in it parses with the
real `fusion` parser."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from fusion.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "tests/fusion/badinput/README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(line.lstrip("#")) for line in path.read_text().splitlines() if line[:1] == "#"}


def test_readme_opens_with_the_two_commands_and_is_short() -> None:
    lines = README.read_text().splitlines()
    assert lines[2:6] == ["```", "make demo", "make test", "```"]
    assert len(lines) <= 160


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves(doc: Path) -> None:
    links = LINK.findall(doc.read_text())
    if doc == README:
        assert len(links) >= 10
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        target, _, anchor = link.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        assert path.exists(), f"{doc.name}: {link} does not exist"
        if anchor:
            assert anchor in _anchors(path), f"{doc.name}: no heading #{anchor} in {target}"


def test_link_checker_catches_a_broken_link(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# Title\n[a](missing.md) [b](#title)\n")
    (link_a, link_b) = LINK.findall(doc.read_text())
    assert not (tmp_path / link_a).exists() and link_b[1:] in _anchors(doc)


def _examples() -> list[list[str]]:
    text = README.read_text()
    block = text[text.index("## Quick start") :].split("```")[1]
    lines = [line for line in block.splitlines() if line.startswith("fusion ")]
    return [shlex.split(line)[1:] for line in lines]


def test_every_subcommand_has_an_example() -> None:
    from fusion.cli import SUBCOMMANDS

    assert {argv[0] for argv in _examples()} == set(SUBCOMMANDS)


@pytest.mark.parametrize("argv", _examples(), ids=lambda a: " ".join(a[:2]))
def test_each_example_parses(argv: list[str]) -> None:
    args = build_parser(argv).parse_args(argv)
    assert args.command == argv[0]
