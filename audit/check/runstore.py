"""A run stored whole: what `audit check` decided, kept so that every later command reads it.

`audit check` stores, in the run's transaction, everything the later commands show:

- ``runs``: the audit date, settings in force, calendar description, input files, the data-quality
  summary, and the **pack as it was** (``pack``: its rules, clauses and settings as JSON) with
  ``pack_sha256`` over the content of its files;
- ``run_files``: the content and SHA-256 of every file the run was judged with — the pack's
  ``pack.yaml`` and rule files (and those of the pack it extends) and the calendar override files;
- ``run_calendar`` / ``run_city_calendar``: the working-day calendars in force (day, working or not)
  and which city used which;
- ``run_cases``: one row per case judged — the grouping keys, the item and start date (for the
  rectification lists), the personal fields the report masks, and the 0/1 numerator and denominator
  flags of every figure (`audit.figures.metrics.CASE_KPI_SQL`);
- ``run_kpi_cells``: those flags summed per combination of all grouping keys (`audit kpi`);
- ``run_case_dates``: the dates the run computed for each case — request, start, response, close,
  the deadline with the promised and suspended working days, the archive and follow-up limits
  (`audit case`);
- ``run_waivers`` and ``findings.waiver_id``: the waivers the run was given and the findings they
  cover (`audit.check.waivers`); the waiver file itself is in ``run_files`` (kind ``waivers``).

`kpi`, `findings` and `report` read a stored run and never rebuild it: deleting or moving the pack
directory or the calendar files changes nothing they show, from any working directory. A run that
cannot serve a request (none yet, an unknown id, a run stored by an older version without its cases)
is a `UsageError` saying what to run — never a silent default. The tables are declared in
`audit.db` (RUN_SCHEMA).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from audit.errors import UsageError
from audit.rules.pack import Pack, Rule
from audit.rules.templates import vocabulary_from_data

RERUN = "请重新运行 audit check"


@dataclass(frozen=True)
class StoredRun:
    """A run chosen for reading: its id and audit date."""

    run_id: int
    as_of: dt.date


# --- storing ------------------------------------------------------------------------------------
def pack_files(pack: Pack) -> list[Path]:
    """Every file the pack was loaded from: each pack.yaml of the `extends` chain, each rule file."""
    files = list(pack.files) + [Path(r.path) for r in pack.rules]
    return sorted(set(files), key=str)


def file_records(paths: list[Path], kind: str) -> list[tuple[str, str, str, str]]:
    """(kind, name, sha256, content) of each file (read as UTF-8; undecodable bytes replaced)."""
    out = []
    for path in paths:
        data = Path(path).read_bytes()
        out.append((kind, str(path), hashlib.sha256(data).hexdigest(), data.decode("utf-8", errors="replace")))
    return out


def pack_digest(records: list[tuple[str, str, str, str]]) -> str:
    """SHA-256 over the pack files' names (within the pack) and contents' hashes."""
    h = hashlib.sha256()
    for _, name, sha, _ in sorted(r for r in records if r[0] == "pack"):
        h.update(f"{Path(name).name}\0{sha}\n".encode())
    return h.hexdigest()


def pack_json(pack: Pack) -> str:
    """The pack as the run used it: metadata, settings and every rule (examples left out)."""
    rules = [{k: v for k, v in dataclasses.asdict(r).items() if k != "examples"} for r in pack.rules]
    data = {"path": str(pack.path), "name": pack.name, "standard": pack.standard, "edition": pack.edition,
            "version": pack.version, "clauses": pack.clauses, "settings": pack.settings, "cities": pack.cities,
            "description": pack.description, "vocabulary": pack.vocabulary.as_data(), "rules": rules}
    return json.dumps(data, ensure_ascii=False, default=str)


def store_run_files(con, run_id: int, records: list[tuple[str, str, str, str]]) -> None:
    """Keep the content of the files the run was judged with (call inside the run's transaction)."""
    if records:
        con.executemany("INSERT INTO run_files VALUES (?, ?, ?, ?, ?)", [(run_id, *r) for r in records])


def store_calendars(con, run_id: int) -> None:
    """Keep the run's working-day calendars (``cal_days``, ``city_calendar``) with the run."""
    con.execute("INSERT INTO run_calendar SELECT ?, cal_key, d, is_workday FROM cal_days", [run_id])
    con.execute("INSERT INTO run_city_calendar SELECT ?, city, cal_key FROM city_calendar", [run_id])


def store_cases(con, run_id: int) -> None:
    """Keep ``case_kpi`` (built for this run) as the run's cases."""
    con.execute("INSERT INTO run_cases BY NAME SELECT ?::BIGINT AS run_id, * FROM case_kpi", [run_id])


def keep_answers(con, replaced: list[int], run_id: int) -> None:
    """The halls' answers to the findings of runs that `run_id` replaces (the same run made again:
    the same findings) now answer `run_id`'s (``rectify_answers``, ``rectify_superseded``; see
    `audit.rectify`). Call inside the run's transaction."""
    if not replaced:
        return
    for table in ("rectify_answers", "rectify_superseded"):
        con.execute(f"UPDATE {table} SET run_id = ? WHERE list_contains(?, run_id)", [run_id, replaced])


# run_case_dates column <- case_facts expression
CASE_DATES = {
    "city": "city", "case_id": "case_id", "request_time": "request_time", "start_time": "start_time",
    "response_step": "response_step", "response_time": "response_time", "response_limit": "response_limit",
    "complete_time": "t_complete", "close_time": "close_time", "promised_days": "promised_days",
    "suspended_wd": "suspended_wd", "suspensions": "suspensions", "suspended": "suspended",
    "deadline": "deadline", "archive_time": "t_archive", "archive_limit": "archive_limit",
    "rating_date": "rating_date", "followup_limit": "followup_limit",
}


def store_case_dates(con, run_id: int) -> None:
    """Keep the dates ``case_facts`` computed for each case (``run_case_dates``; `audit case`)."""
    cols = ", ".join(f"{expr} AS {name}" for name, expr in CASE_DATES.items())
    con.execute(f"INSERT INTO run_case_dates BY NAME SELECT ?::BIGINT AS run_id, {cols} FROM case_facts", [run_id])


# --- reading ------------------------------------------------------------------------------------
def select_run(con, run_id: int | None = None, as_of: dt.date | None = None) -> StoredRun:
    """The run to read: `run_id`, or the latest (at `as_of`, if given); a UsageError that says
    what to run when there is none, and lists the runs there are when the one asked for is not."""
    runs = con.execute("SELECT run_id, as_of FROM runs ORDER BY run_id").fetchall()
    if not runs:
        raise UsageError("数据库中还没有审计结果：请先运行 audit check")
    if run_id is not None:
        match = [r for r in runs if r[0] == run_id]
        if not match:
            raise UsageError(f"没有编号为 {run_id} 的审计；已有: {_run_list(runs)}")
        return StoredRun(*match[0])
    if as_of is not None:
        match = [r for r in runs if r[1] == as_of]
        if not match:
            raise UsageError(f"没有审计日为 {as_of} 的审计；已有: {_run_list(runs)}。"
                             f"请先运行 audit check --as-of {as_of}")
        return StoredRun(*match[-1])
    return StoredRun(*runs[-1])


def _run_list(runs: list[tuple]) -> str:
    shown = [f"{r[0]} (审计日 {r[1]})" for r in runs[-20:]]
    return "、".join(shown) + (f" …共 {len(runs)} 次" if len(runs) > 20 else "")


def require_cases(con, run: StoredRun) -> None:
    """UsageError unless the run was stored with its cases and figures (runs stored before this
    version were not)."""
    stored = con.execute("""SELECT (SELECT count(*) FROM (SELECT 1 FROM run_cases WHERE run_id = $1 LIMIT 1))
                                 * (SELECT count(*) FROM (SELECT 1 FROM run_kpi_cells WHERE run_id = $1 LIMIT 1))""",
                         [run.run_id]).fetchall()[0][0]
    if not stored:
        cases = con.execute("SELECT cases FROM runs WHERE run_id = ?", [run.run_id]).fetchall()[0][0]
        if cases:
            raise UsageError(f"审计 {run.run_id} 由旧版本保存，没有保存逐件结果，无法据此计算指标或报告；{RERUN}")


def stored_pack(con, run_id: int) -> Pack | None:
    """The pack of a run as it was when the run was made (None for a run stored without it)."""
    row = con.execute("SELECT pack FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not row or not row[0][0]:
        return None
    return pack_from_json(row[0][0])


def pack_from_json(text: str) -> Pack:
    """A pack stored by `pack_json` (its rules without their examples)."""
    data = json.loads(text)
    rules = [Rule(**{**r, "examples": []}) for r in data.pop("rules")]
    data["path"] = Path(data["path"])
    data["vocabulary"] = vocabulary_from_data(data.get("vocabulary"))   # absent in runs stored before packs had one
    return Pack(**data, rules=rules)
