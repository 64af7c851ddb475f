"""The nuScenes tables' schema and its checks: the tables, their fields and JSON types, foreign
keys, prev/next chains. The reader checks whole tables when they load (`table_problems`) and
names the first bad table file when the devkit cannot load a dataroot (`first_table_error`);
`fusion validate` reports every problem (`Report`)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from calibration.camera import intrinsics_problem

TABLES = (
    "attribute",
    "calibrated_sensor",
    "category",
    "ego_pose",
    "instance",
    "log",
    "map",
    "sample",
    "sample_annotation",
    "sample_data",
    "scene",
    "sensor",
    "visibility",
)

KeyKind = Literal["token", "optional", "tokens"]


class ForeignKey(NamedTuple):
    """`table.field` names records of `target`: one token ("token"), one token or "" (the end of
    a prev/next chain, an annotation without visibility: "optional"), or a list ("tokens")."""

    table: str
    field: str
    target: str
    kind: KeyKind


# Every foreign key of the tables the reader loads, checked once when they load (README "Bad
# input"): a dangling one is an error naming the table, not a KeyError deep in a frame.
FOREIGN_KEYS: tuple[ForeignKey, ...] = (
    ForeignKey("calibrated_sensor", "sensor_token", "sensor", "token"),
    ForeignKey("scene", "log_token", "log", "token"),
    ForeignKey("scene", "first_sample_token", "sample", "token"),
    ForeignKey("scene", "last_sample_token", "sample", "token"),
    ForeignKey("map", "log_tokens", "log", "tokens"),
    ForeignKey("sample", "scene_token", "scene", "token"),
    ForeignKey("sample", "prev", "sample", "optional"),
    ForeignKey("sample", "next", "sample", "optional"),
    ForeignKey("sample_data", "sample_token", "sample", "token"),
    ForeignKey("sample_data", "ego_pose_token", "ego_pose", "token"),
    ForeignKey("sample_data", "calibrated_sensor_token", "calibrated_sensor", "token"),
    ForeignKey("sample_data", "prev", "sample_data", "optional"),
    ForeignKey("sample_data", "next", "sample_data", "optional"),
    ForeignKey("instance", "category_token", "category", "token"),
    ForeignKey("instance", "first_annotation_token", "sample_annotation", "token"),
    ForeignKey("instance", "last_annotation_token", "sample_annotation", "token"),
    ForeignKey("sample_annotation", "sample_token", "sample", "token"),
    ForeignKey("sample_annotation", "instance_token", "instance", "token"),
    ForeignKey("sample_annotation", "attribute_tokens", "attribute", "tokens"),
    ForeignKey("sample_annotation", "visibility_token", "visibility", "optional"),
    ForeignKey("sample_annotation", "prev", "sample_annotation", "optional"),
    ForeignKey("sample_annotation", "next", "sample_annotation", "optional"),
)
# the tables whose records form prev/next chains
CHAINED_TABLES = ("sample", "sample_data", "sample_annotation")


class TableProblem(NamedTuple):
    """One structural fault of the tables: `check` is `fusion validate`'s report group."""

    check: Literal["tokens", "foreign keys", "links"]
    table: str
    message: str


def table_problems(tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> Iterator[TableProblem]:
    """Duplicate or non-string tokens, dangling foreign keys (`FOREIGN_KEYS`) and prev/next
    cycles of any length, over whole tables in O(records). A record without one of the fields
    is skipped here: a missing field is reported where it is used (the reader) or by the field
    checks (`fusion validate`)."""
    index: dict[str, set[str]] = {}
    for table, recs in tables.items():
        quick = _known_tokens(recs)
        if quick is not None:
            index[table] = quick
            continue
        seen: set[str] = set()
        dups: dict[str, int] = {}
        for i, rec in enumerate(recs):
            tok = rec.get("token")
            if not isinstance(tok, str):
                yield TableProblem("tokens", table, f"{table}[{i}]: token must be a string")
            elif tok in seen:
                dups[tok] = dups.get(tok, 1) + 1
            else:
                seen.add(tok)
        for tok, n in dups.items():
            yield TableProblem("tokens", table, f"{table}: duplicate token {tok!r} ({n} records)")
        index[table] = seen
    for key in FOREIGN_KEYS:
        targets = index.get(key.target, set())
        if _all_known(tables.get(key.table, ()), key, targets):
            continue
        for rec in tables.get(key.table, ()):
            if key.field not in rec:
                continue
            value = rec[key.field]
            if key.kind == "tokens" and not isinstance(value, list):
                where = f"{key.table} {rec.get('token')!r:.40}: {key.field}"
                yield TableProblem(
                    "foreign keys",
                    key.table,
                    f"{where} must be a list of tokens, got {value!r:.40}",
                )
                continue
            for v in value if key.kind == "tokens" else (value,):
                if isinstance(v, str) and (v in targets or (key.kind == "optional" and v == "")):
                    continue  # the common case first: no string is formatted for a good key
                where = f"{key.table} {rec.get('token')!r:.40}: {key.field}"
                if not isinstance(v, str):
                    yield TableProblem(
                        "foreign keys", key.table, f"{where} must be a token string, got {v!r:.40}"
                    )
                else:
                    yield TableProblem(
                        "foreign keys", key.table, f"{where} {v!r} not in {key.target}.json"
                    )
    for table in CHAINED_TABLES:
        for link in ("prev", "next"):
            links = {
                r["token"]: r[link]
                for r in tables.get(table, ())
                if isinstance(r.get("token"), str) and isinstance(r.get(link), str)
            }
            for tok in _cycles(links):
                yield TableProblem("links", table, f"{table} {link} chain loops back to {tok!r}")


def _known_tokens(recs: Sequence[Mapping[str, Any]]) -> set[str] | None:
    """The tokens of a table when all are distinct strings (set operations, no per-record
    Python branch: tables of millions of records), else None: the slow loop says what is wrong."""
    tokens = [rec.get("token") for rec in recs]
    try:
        seen = set(tokens)
    except TypeError:  # an unhashable token
        return None
    if len(seen) != len(tokens) or not all(isinstance(t, str) for t in seen):
        return None
    return seen  # type: ignore[return-value]


def _all_known(recs: Sequence[Mapping[str, Any]], key: ForeignKey, targets: set[str]) -> bool:
    """True when every value of `key` in `recs` names a record of `targets` (or is "" where
    that is allowed): the fast path of `table_problems`, in set operations."""
    values: set[Any] = set()
    try:
        if key.kind == "tokens":
            for rec in recs:
                v = rec.get(key.field, [])
                if not isinstance(v, list):
                    return False
                values.update(v)
        else:
            values = {rec[key.field] for rec in recs if key.field in rec}
    except TypeError:  # an unhashable value
        return False
    unknown = values - targets
    return not unknown or (key.kind == "optional" and unknown == {""})


def _cycles(links: dict[str, str]) -> list[str]:
    """Tokens on a loop of a prev/next map (token -> linked token or ""), in O(n)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found = []
    for start in links:
        path = []
        tok = start
        while tok and tok in links and tok not in state:
            state[tok] = 1
            path.append(tok)
            tok = links[tok]
        if tok and state.get(tok) == 1:
            found.append(tok)
        for p in path:
            state[p] = 2
    return found


FIELDS: dict[str, tuple[str, ...]] = {
    "attribute": ("name",),
    "calibrated_sensor": ("sensor_token", "translation", "rotation", "camera_intrinsic"),
    "category": ("name",),
    "ego_pose": ("translation", "rotation", "timestamp"),
    "instance": (
        "category_token",
        "nbr_annotations",
        "first_annotation_token",
        "last_annotation_token",
    ),
    "log": ("logfile", "vehicle", "date_captured", "location"),
    "map": ("log_tokens", "category", "filename"),
    "sample": ("timestamp", "scene_token", "prev", "next"),
    "sample_annotation": (
        "sample_token",
        "instance_token",
        "attribute_tokens",
        "visibility_token",
        "translation",
        "size",
        "rotation",
        "num_lidar_pts",
        "num_radar_pts",
        "prev",
        "next",
    ),
    "sample_data": (
        "sample_token",
        "ego_pose_token",
        "calibrated_sensor_token",
        "filename",
        "fileformat",
        "width",
        "height",
        "timestamp",
        "is_key_frame",
        "prev",
        "next",
    ),
    "scene": ("name", "log_token", "nbr_samples", "first_sample_token", "last_sample_token"),
    "sensor": ("channel", "modality"),
    "visibility": ("level",),
}
MAX_LISTED = 8  # problems listed per check; the rest are counted


_STR, _INT, _BOOL, _NUMS, _STRS = "string", "integer", "boolean", "list of numbers", "strings"


def _kind(name: str) -> str | None:
    """The JSON type a field must have (None: not checked)."""
    if name.endswith("token") or name in ("prev", "next", "filename", "name", "channel"):
        return _STR
    if name in ("modality", "fileformat", "logfile", "vehicle", "location", "category"):
        return _STR
    if name in ("timestamp", "width", "height", "nbr_samples", "nbr_annotations"):
        return _INT
    if name == "is_key_frame":
        return _BOOL
    if name in ("translation", "rotation", "size"):
        return _NUMS
    if name in ("attribute_tokens", "log_tokens"):
        return _STRS
    return None


def _type_ok(value: object, kind: str) -> bool:
    match kind:
        case "string":
            return isinstance(value, str)
        case "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        case "boolean":
            return isinstance(value, bool)
        case "list of numbers":
            return isinstance(value, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
                for v in value
            )
        case _:
            return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclass
class Report:
    """Problems found, grouped by check."""

    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    warnings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    info: list[str] = field(default_factory=list)

    def error(self, check: str, msg: str) -> None:
        self.errors[check].append(msg)

    def warn(self, check: str, msg: str) -> None:
        self.warnings[check].append(msg)

    @property
    def n_errors(self) -> int:
        return sum(len(v) for v in self.errors.values())

    @property
    def n_warnings(self) -> int:
        return sum(len(v) for v in self.warnings.values())

    def as_json(self) -> dict[str, object]:
        """The report as `fusion validate --json` gives it: counts, then each check's
        messages (all of them, not the first few the text lists)."""
        return {
            "ok": self.n_errors == 0,
            "errors": self.n_errors,
            "warnings": self.n_warnings,
            "error_checks": {k: list(v) for k, v in self.errors.items()},
            "warning_checks": {k: list(v) for k, v in self.warnings.items()},
            "info": list(self.info),
        }

    def render(self) -> str:
        lines = list(self.info)
        for title, group in (("ERROR", self.errors), ("WARNING", self.warnings)):
            for check, msgs in group.items():
                lines.append(f"{title} [{check}] {len(msgs)} problem(s)")
                lines += [f"    {m}" for m in msgs[:MAX_LISTED]]
                if len(msgs) > MAX_LISTED:
                    lines.append(f"    ... and {len(msgs) - MAX_LISTED} more")
        verdict = "FAILED" if self.n_errors else "OK"
        lines.append(f"{verdict}: {self.n_errors} error(s), {self.n_warnings} warning(s)")
        return "\n".join(lines)


def load_tables(vdir: Path, report: Report) -> dict[str, list[dict]]:
    tables: dict[str, list[dict]] = {}
    for name in TABLES:
        path = vdir / f"{name}.json"
        if not path.is_file():
            report.error("tables", f"{path}: missing")
            tables[name] = []
            continue
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError) as exc:
            report.error("tables", f"{path}: not valid JSON ({exc})")
            tables[name] = []
            continue
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            report.error("tables", f"{path}: must be a JSON list of records")
            tables[name] = []
            continue
        good = []
        for i, rec in enumerate(data):
            missing = [f for f in ("token", *FIELDS[name]) if f not in rec]
            wrong = [
                f"{f} must be a {k}, got {rec[f]!r:.40}"
                for f in ("token", *FIELDS[name])
                if f in rec and (k := _kind(f)) is not None and not _type_ok(rec[f], k)
            ]
            if missing:
                report.error(
                    "fields",
                    f"{name}[{i}] (token {rec.get('token', '?')!r:.40}): missing "
                    f"{', '.join(missing)}",
                )
            elif wrong:
                report.error(
                    "fields", f"{name}[{i}] (token {rec['token']!r:.40}): {'; '.join(wrong)}"
                )
            else:
                good.append(rec)
        tables[name] = good  # duplicate tokens: `table_problems`, with the foreign keys
    return tables


def check_keys(t: dict[str, list[dict]], report: Report) -> None:
    idx = {name: {r["token"]: r for r in recs} for name, recs in t.items()}
    # duplicate tokens, dangling foreign keys, prev/next cycles: the reader's own check
    for problem in table_problems(t):
        report.error(problem.check, problem.message)
    for r in t["sample"]:
        # a sample token names output files (`fusion eval`'s pictures, which sanitize it): one
        # that reads as a path is a corrupt or hostile table, not a token
        if any(c in r["token"] for c in ("/", "\\", "\0")):
            report.error(
                "tokens", f"sample {r['token']!r:.60}: token holds a path separator or NUL"
            )
    mapped = {lt for r in t["map"] for lt in r["log_tokens"]}
    for r in t["log"]:
        if r["token"] not in mapped:
            report.error(
                "foreign keys", f"log {r['token']} ({r['logfile']}) is in no map's log_tokens"
            )
    for r in t["sample_annotation"]:
        if not (
            isinstance(r["num_lidar_pts"], int)
            and r["num_lidar_pts"] >= 0
            and isinstance(r["num_radar_pts"], int)
            and r["num_radar_pts"] >= 0
        ):
            report.error(
                "counts", f"sample_annotation {r['token']}: point counts must be integers >= 0"
            )
        if len(r["size"]) != 3 or min(r["size"], default=0) <= 0:
            report.error(
                "values", f"sample_annotation {r['token']}: size must be 3 positive numbers"
            )
    for table in ("sample_annotation", "calibrated_sensor", "ego_pose"):
        for r in t[table]:
            _check_pose(table, r, report)
    for r in t["calibrated_sensor"]:
        k = r["camera_intrinsic"]
        if k in ([], None):
            continue
        # the reader's own check (PinholeCamera): finite, positive focal lengths, well conditioned
        problem = intrinsics_problem(k)
        if problem is not None:
            report.error("values", f"calibrated_sensor {r['token']}: camera_intrinsic: {problem}")

    # linked lists: prev/next symmetric, chain lengths match the declared counts
    for table in CHAINED_TABLES:
        for r in t[table]:
            nxt = idx[table].get(r["next"]) if r["next"] else None
            if nxt is not None and nxt["prev"] != r["token"]:
                report.error("links", f"{table} {r['token']}: next's prev does not point back")
    for sc in t["scene"]:
        n, cur, seen = 0, idx["sample"].get(sc["first_sample_token"]), set()
        while cur is not None and cur["token"] not in seen:
            seen.add(cur["token"])
            n += 1
            if cur["scene_token"] != sc["token"]:
                report.error(
                    "links", f"scene {sc['name']}: sample {cur['token']} belongs to another scene"
                )
            cur = idx["sample"].get(cur["next"]) if cur["next"] else None
        if n != sc["nbr_samples"]:
            report.error(
                "counts",
                f"scene {sc['name']}: nbr_samples {sc['nbr_samples']} but {n} linked samples",
            )
    for ins in t["instance"]:
        n, cur, seen = 0, idx["sample_annotation"].get(ins["first_annotation_token"]), set()
        while cur is not None and cur["token"] not in seen:
            seen.add(cur["token"])
            n += 1
            cur = idx["sample_annotation"].get(cur["next"]) if cur["next"] else None
        if n != ins["nbr_annotations"]:
            report.error(
                "counts",
                f"instance {ins['token']}: nbr_annotations {ins['nbr_annotations']} but "
                f"{n} linked annotations",
            )


def _check_pose(table: str, r: dict, report: Report) -> None:
    """translation: 3 finite numbers; rotation: a finite non-zero quaternion (a non-unit one
    is a warning: the reader normalizes it)."""
    if len(r["translation"]) != 3:
        report.error("values", f"{table} {r['token']}: translation must be 3 numbers")
    norm = float(np.linalg.norm(r["rotation"])) if len(r["rotation"]) == 4 else 0.0
    if len(r["rotation"]) != 4 or norm < 1e-6:
        report.error("values", f"{table} {r['token']}: rotation is not a non-zero quaternion")
    elif abs(norm - 1) > 1e-3:
        report.warn(
            "values", f"{table} {r['token']}: rotation is not a unit quaternion (normalized)"
        )


def first_table_error(vdir: Path) -> tuple[Path, str] | None:
    """(table file, reason) of the first table problem (bad JSON, missing or mistyped field,
    dangling or duplicate token), for the reader's error when the devkit cannot load a dataroot."""
    report = Report()
    t = load_tables(vdir, report)
    if not report.n_errors:
        check_keys(t, report)
    for msgs in report.errors.values():
        for msg in msgs:
            name = re.split(r"[\[ :]", msg, maxsplit=1)[0]
            if name in TABLES:
                return vdir / f"{name}.json", msg
            if msg.startswith(str(vdir)):
                path, _, why = msg.partition(": ")
                return Path(path), why
    return None
