"""The tables' structure, checked once when the reader loads them (`fusion.data.reader.
table_problems`): every declared foreign key dangling, every table with a duplicate token and
prev/next cycles of several lengths are each one DataError naming the table file, in strict and
tolerant mode, and the same problem in `fusion validate`'s report."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from corpus import copy_base, load, save

from fusion.cli import main
from fusion.data.reader import NuScenesReader, ReaderOptions
from fusion.data.tables import CHAINED_TABLES, FOREIGN_KEYS, TABLES, ForeignKey, table_problems
from fusion.errors import DataError

VERSION = "v1.0-synth"
DANGLING = "z" * 32


def _reader_error(root: Path, tolerant: bool) -> DataError:
    with pytest.raises(DataError) as err:
        NuScenesReader(root, VERSION, ReaderOptions(tolerant=tolerant))
    return err.value


def _validate(root: Path) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = main(["validate", "--dataroot", str(root), "--version", VERSION])
    return rc, out.getvalue()


def test_the_generated_base_has_no_table_problem(bases: dict[str, Path]) -> None:
    root = bases["synth"]
    assert list(table_problems({t: load(root, t) for t in TABLES})) == []
    for key in FOREIGN_KEYS:  # every key is exercised below: the base has a record to break
        assert any(r.get(key.field) not in ("", []) for r in load(root, key.table)), key


@pytest.mark.parametrize("key", FOREIGN_KEYS, ids=lambda k: f"{k.table}.{k.field}")
def test_every_dangling_foreign_key_names_its_table(
    key: ForeignKey, bases: dict[str, Path], tmp_path: Path
) -> None:
    root = copy_base(bases["synth"], tmp_path / "root")
    recs = load(root, key.table)
    rec = next(r for r in recs if r.get(key.field) not in ("", []))
    rec[key.field] = [DANGLING] if key.kind == "tokens" else DANGLING
    save(root, key.table, recs)
    reason = f"{key.field} '{DANGLING}' not in {key.target}.json"
    for tolerant in (False, True):
        err = _reader_error(root, tolerant)
        assert err.path is not None and err.path.endswith(f"{VERSION}/{key.table}.json")
        assert reason in err.reason and rec["token"] in err.reason
    rc, out = _validate(root)
    assert rc == 1 and "ERROR [foreign keys]" in out and reason in out


@pytest.mark.parametrize("table", TABLES)
def test_a_duplicate_token_in_any_table_names_it(
    table: str, bases: dict[str, Path], tmp_path: Path
) -> None:
    root = copy_base(bases["synth"], tmp_path / "root")
    recs = load(root, table)
    save(root, table, [*recs, dict(recs[-1])])
    reason = f"{table}: duplicate token '{recs[-1]['token']}' (2 records)"
    for tolerant in (False, True):
        err = _reader_error(root, tolerant)
        assert err.path is not None and err.path.endswith(f"{table}.json")
        assert reason in err.reason
    rc, out = _validate(root)
    assert rc == 1 and "ERROR [tokens]" in out and reason in out


def _chain(recs: list[dict], length: int) -> list[dict]:
    """`length` records linked by `next`, from the first record that starts such a run."""
    by = {r["token"]: r for r in recs}
    for start in recs:
        run = [start]
        while len(run) < length and run[-1]["next"]:
            run.append(by[run[-1]["next"]])
        if len(run) == length:
            return run
    raise AssertionError(f"no chain of {length}")


@pytest.mark.parametrize(
    ("table", "length"),
    [("sample", 2), ("sample_data", 2), ("sample_data", 3), ("sample_data", 10)]
    + [("sample_annotation", 2)],
)
def test_a_cycle_of_any_length_is_found_when_tables_load(
    table: str, length: int, bases: dict[str, Path], tmp_path: Path
) -> None:
    assert table in CHAINED_TABLES
    root = copy_base(bases["synth"], tmp_path / "root")
    recs = load(root, table)
    run = _chain(recs, length)
    run[-1]["next"] = run[0]["token"]
    save(root, table, recs)
    for tolerant in (False, True):
        err = _reader_error(root, tolerant)
        assert err.path is not None and err.path.endswith(f"{table}.json")
        assert f"{table} next chain loops back to '" in err.reason
    rc, out = _validate(root)
    assert rc == 1 and "ERROR [links]" in out and f"{table} next chain loops back" in out


def test_non_string_keys_are_reported_not_hashed() -> None:
    """A list where a token belongs (or a token where a list belongs) is a problem, never a
    TypeError from a set lookup."""
    tables = {
        "sensor": [{"token": "s"}],
        "calibrated_sensor": [{"token": "c", "sensor_token": ["s"]}],
        "map": [{"token": "m", "log_tokens": "l"}],
        "log": [{"token": "l"}],
        "sample": [{"token": 5}],
    }
    got = [p.message for p in table_problems(tables)]
    assert got == [
        "sample[0]: token must be a string",
        "calibrated_sensor 'c': sensor_token must be a token string, got ['s']",
        "map 'm': log_tokens must be a list of tokens, got 'l'",
    ]
