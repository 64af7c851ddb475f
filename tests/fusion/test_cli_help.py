"""`fusion --help` opens with one whole sentence: the first paragraph of `fusion.cli`'s doc."""

from __future__ import annotations

import re

import pytest

import fusion.cli
from fusion.cli import main


def test_top_level_help_opens_with_a_whole_sentence(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    opening = " ".join(fusion.cli.__doc__.split("\n\n")[0].split())
    assert re.fullmatch(r"[A-Z][^.`]*\.", opening), opening  # one sentence, no markup
    assert f"] COMMAND ... {opening} " in text + " "  # right after the usage line
