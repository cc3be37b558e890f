"""The rule engine: run a pack's rules over the database, set-based, and store the findings.

A run: build the working-day calendar table and the per-case facts (`audit.check.facts`), run each
rule's SQL (it returns the violating cases with a message and structured evidence), and store
the findings with the run's metadata in one transaction. A run is identified by what it was
judged on (pack and version, settings, audit date, city filter, calendar, input files, and the waiver
file's content when one is given): running the same again replaces that run's findings; other runs
stay for trends. Findings that a waiver in force covers are stored marked (`audit.check.waivers`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from audit import __version__
from audit.calendar.workcalendar import WorkCalendar, notice_remedy
from audit.check.dataquality import data_quality
from audit.check.facts import CalendarDateError, build_facts, build_settings, settings_in_force
from audit.check.runstore import (
    file_records,
    keep_answers,
    pack_digest,
    pack_files,
    pack_json,
    store_calendars,
    store_case_dates,
    store_cases,
    store_run_files,
)
from audit.check.templates import check_steps, needs_traces
from audit.check.traces import build_traces
from audit.check.waiverfile import WaiverFile
from audit.check.waivers import WaiverStatus, store_findings, waived_by_rule
from audit.check.workdays import RunCalendars, build_calendars
from audit.db import RUN_TABLES, ensure_schema, insert_rows, transaction
from audit.errors import CalendarError, PackError, UsageError
from audit.figures.metrics import derive_case_kpi, store_kpi_cells
from audit.rules.contract import RULE_OUTPUT
from audit.rules.pack import Pack, Rule, load_pack
from audit.rules.sqlguard import check_sql, seal, wrap


@dataclass
class RuleResult:
    """How many cases one rule flagged, and how many of those findings a waiver covers."""

    rule: Rule
    findings: int
    waived: int = 0
    seconds: float = 0.0     # the rule's query alone (stored in run_rules.seconds)


@dataclass
class RunResult:
    """The outcome of `run_check`."""

    run_id: int
    as_of: dt.date
    cases: int
    pack: Pack
    calendar: str
    fallback_years: list[int]
    results: list[RuleResult] = field(default_factory=list)
    data_quality: dict = field(default_factory=dict)
    waivers: list[WaiverStatus] = field(default_factory=list)
    waiver_file: WaiverFile | None = None
    warnings: list[str] = field(default_factory=list)   # e.g. steps the rules name that the data never uses

    def count(self, severity: str) -> int:
        """Open findings of one severity (waived ones left out: they do not trigger --fail-on)."""
        return sum(r.findings - r.waived for r in self.results if r.rule.severity == severity)

    def waived(self, severity: str) -> int:
        """Waived findings of one severity."""
        return sum(r.waived for r in self.results if r.rule.severity == severity)


def default_as_of(con) -> dt.date | None:
    """The audit date by default: the date of the latest event in the database (contract §3)."""
    row = con.execute('SELECT max("time")::DATE FROM event_rows').fetchall()
    return row[0][0]


def parse_as_of(text: str | None) -> dt.date | None:
    """An --as-of value (YYYY-MM-DD) as a date."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of {text!r} 不是日期 (应为 YYYY-MM-DD)") from None


def prepare(con, pack: Pack, as_of: dt.date, calendar: WorkCalendar, cities: list[str] | None = None,
            per_city: dict[str, list[Path]] | None = None, timings: dict | None = None) -> RunCalendars:
    """Build the calendar tables, the settings tables and ``case_facts`` for a run (and what the template
    rules read); `timings` receives the seconds spent on ``facts`` and ``traces``."""
    lo, hi = con.execute("""
        SELECT least(min("time")::DATE, (SELECT min(rating_time)::DATE FROM case_rows)),
               greatest(max("time")::DATE, (SELECT max(rating_time)::DATE FROM case_rows))
        FROM event_rows""").fetchall()[0]
    lo = min(lo or as_of, as_of) - dt.timedelta(days=7)
    hi = max(hi or as_of, as_of)
    all_cities = [r[0] for r in con.execute(
        "SELECT city FROM case_rows UNION SELECT city FROM event_rows ORDER BY city").fetchall()]
    calendars = build_calendars(con, pack, calendar, all_cities, lo, hi, per_city)
    build_settings(con, pack, all_cities)
    t0 = time.perf_counter()
    _guard_calendar(lambda: build_facts(con, as_of.isoformat()))
    if cities:
        con.execute("DELETE FROM case_facts WHERE city NOT IN (SELECT unnest(?))", [cities])
    t1 = time.perf_counter()
    if needs_traces(pack):     # the template rules' traces, shared by all of them (audit.check.traces)
        build_traces(con, pack)
    if timings is not None:
        timings.update(facts=round(t1 - t0, 3), traces=round(time.perf_counter() - t1, 3))
    return calendars


CALENDAR_REMEDY = ("；请用 --calendar FILE 提供该年的日历 (date,is_workday)，{notice}，"
                   "或 pip install -U chinesecalendar，或明确选择 --calendar-fallback weekdays")


def calendar_remedy(message: str) -> str:
    """CALENDAR_REMEDY for the year the message names (the `--from-notice` example uses it)."""
    year = re.search(r"(\d{4}) 年不在工作日历范围内", message)
    return CALENDAR_REMEDY.format(notice=notice_remedy(int(year.group(1)) if year else None))


def _guard_calendar(fn: Callable[[], object]):
    """Run `fn`; a date beyond the working-day tables becomes a CalendarError with the remedy.

    Recognised by structure, never by wording: the facts' own limits are checked on their joins
    (`CalendarDateError`), and inside a rule's SQL the working-day macros raise ``error()`` with a
    message that starts with `CalendarError.SQL_CODE`. A range check before the rules cannot
    replace the code: a rule may call ``add_workdays_k`` with any date and any n, so the latest
    date it reaches is known only when it runs.
    """
    try:
        return fn()
    except CalendarDateError as exc:
        raise CalendarError(str(exc) + calendar_remedy(str(exc))) from None
    except duckdb.InvalidInputException as exc:
        detail = _calendar_detail(str(exc))
        if detail is None:
            raise
        raise CalendarError(detail + calendar_remedy(detail)) from None


# DuckDB puts its error class before the message ("Invalid Input Error: "): the code must open
# the message proper.
_CALENDAR_CODE_RE = re.compile(r"^(?:[A-Za-z ]+ Error: )?" + re.escape(CalendarError.SQL_CODE) + r": (.*)", re.S)


def _calendar_detail(message: str) -> str | None:
    """The Chinese part of a calendar macro's error, or None when the message is not one."""
    match = _CALENDAR_CODE_RE.match(message)
    return match.group(1).split("(date outside")[0].strip() if match else None


def rule_sql(rule: Rule) -> str:
    """The rule's SQL wrapped to the declared output shape (`audit.rules.contract.RULE_OUTPUT`:
    city, case_id, message, and the evidence struct stored as JSON)."""
    return wrap(rule.sql, ", ".join(f"{c.stored_as} AS {c.name}" for c in RULE_OUTPUT))


def validate_sql(con, pack: Pack) -> None:
    """Seal the database (`audit.rules.sqlguard.seal`: no file, network or extension access, settings
    locked), then check every rule's SQL with the parser and bind it (EXPLAIN) against the run's
    prepared tables before any rule runs.

    Raises one PackError listing every rule whose SQL is refused or does not bind, with the file
    and the line of its `sql:` block (DuckDB's message names the column or function at fault).
    Nothing has been stored at that point: `prepare` only builds temporary tables, and only a
    single SELECT, which changes nothing, is ever explained.
    """
    seal(con)
    problems = []
    for rule in pack.rules:
        where = f"{rule.path}:{_sql_line(rule.path)}: 规则 {rule.id} 的 SQL"
        refused = check_sql(rule.sql, rule_sql(rule))
        if refused:
            problems += [f"{where} 不能运行: {p}" for p in refused]
            continue
        try:
            con.execute("EXPLAIN " + rule_sql(rule)).fetchall()
        except duckdb.Error as exc:
            problems.append(f"{where} 无效: {str(exc).splitlines()[0]}")
    if problems:
        raise PackError(f"规则包 {pack.path} 有 {len(problems)} 处规则 SQL 错误:", problems)


def _sql_line(path: str) -> str:
    """`line:column` of the `sql:` key in a rule file (1:1 if not found)."""
    try:
        for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("sql:"):
                return f"{i}:1"
    except OSError:
        pass
    return "1:1"


def execute_rule(con, rule: Rule, run_id: int, into: str = "findings") -> int:
    """Run one rule over ``case_facts`` into ``findings`` (or `into`, a table of the same shape);
    return how many cases it flagged.

    The database is sealed first and the SQL checked again (`audit.rules.sqlguard`): refused SQL, or a
    SQL error, becomes a PackError naming the rule file; a date outside the calendar, a
    CalendarError naming the year.
    """
    seal(con)  # defence in depth: also for callers that skip validate_sql (audit.check.examples)
    refused = check_sql(rule.sql, rule_sql(rule))
    if refused:
        raise PackError(f"{rule.path}:{_sql_line(rule.path)}: 规则 {rule.id} 的 SQL 不能运行: "
                        + "；".join(map(str, refused)))
    sql = (f"INSERT INTO {into} (run_id, rule_id, severity, clause, city, case_id, message, evidence) "
           f"SELECT ?, ?, ?, ?, city, case_id, message, evidence FROM ({rule_sql(rule)})")
    try:
        inserted = _guard_calendar(lambda: con.execute(sql, [run_id, rule.id, rule.severity, rule.clause]).fetchall())
    except duckdb.Error as exc:
        raise PackError(f"{rule.path}: 规则 {rule.id} 的 SQL 无法执行: {str(exc).splitlines()[0]}") from None
    return inserted[0][0]


def run_check(con, pack: Pack | None = None, as_of: dt.date | None = None,
              cities: list[str] | None = None, calendar: WorkCalendar | None = None,
              on_rule: Callable[[int, int, Rule], None] | None = None,
              per_city_calendars: dict[str, list[Path]] | None = None,
              waivers: WaiverFile | None = None) -> RunResult:
    """Run every rule of `pack` (default pack if None) and store the findings, marking those that a
    waiver of `waivers` (`audit.check.waiverfile.load_waivers`) in force covers; see module doc."""
    ensure_schema(con)
    pack = pack or load_pack()
    calendar = calendar or WorkCalendar.load()
    as_of_source = "--as-of" if as_of else "最新事件日期 (latest event)"
    as_of = as_of or default_as_of(con)
    if as_of is None:
        raise UsageError("数据库中没有事件：请先运行 audit ingest")
    warnings = check_steps(con, pack, cities)   # a pack for other steps than the data's is refused here
    timings: dict = {}
    calendars = prepare(con, pack, as_of, calendar, cities, per_city_calendars, timings)
    validate_sql(con, pack)
    n_cases = con.execute("SELECT count(*) FROM case_facts").fetchall()[0][0]
    inputs = [dict(zip(("file", "sha256", "rows_read", "loaded"), r)) for r in con.execute("""
        SELECT DISTINCT path, sha256, rows_read, loaded FROM ingest_files ORDER BY path, sha256""").fetchall()]
    used_cities = [r[0] for r in con.execute("SELECT DISTINCT city FROM case_facts ORDER BY 1").fetchall()]
    settings = settings_in_force(pack, used_cities)
    # The files the run is judged with, kept whole: later commands never read the directories again.
    files = file_records(pack_files(pack), "pack") + file_records(calendars.files, "calendar")
    key_parts = [pack.name, pack.version, pack_digest(files), settings, as_of.isoformat(),
                 sorted(cities or []), calendars.description, inputs]
    if waivers is not None:     # a different waiver file (by content) is a different run
        files.append(("waivers", str(waivers.path), waivers.sha256, waivers.content))
        key_parts.append({"waivers": waivers.sha256})
    key_src = json.dumps(key_parts, ensure_ascii=False, sort_keys=True)
    run_key = hashlib.sha256(key_src.encode()).hexdigest()
    result = RunResult(0, as_of, n_cases, pack, calendars.description, calendars.fallback_years,
                       data_quality=data_quality(con), waiver_file=waivers, warnings=warnings)
    spec = json.dumps({"common": [str(f) for f in calendar.files], "fallback": calendar.fallback,
                       "per_city": {c: [str(f) for f in fs] for c, fs in (per_city_calendars or {}).items()}},
                      ensure_ascii=False)
    with transaction(con, pause_point="check-commit"):
        # The same run again replaces it (under a new id, so the latest run is the highest id);
        # the halls' answers to its findings stay with it.
        replaced = [r[0] for r in con.execute("SELECT run_id FROM runs WHERE run_key = ?", [run_key]).fetchall()]
        for old_id in replaced:
            for table in RUN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE run_id = ?", [old_id])
        run_id = con.execute("SELECT nextval('run_seq')").fetchall()[0][0]
        result.run_id = run_id
        keep_answers(con, replaced, run_id)
        # The rules' findings are gathered first and stored with one INSERT: DuckDB then writes
        # them straight to the database file, in parallel, instead of through the log at commit.
        con.execute("CREATE OR REPLACE TEMP TABLE _run_findings AS FROM findings LIMIT 0")
        for i, rule in enumerate(pack.rules):
            if on_rule:
                on_rule(i, len(pack.rules), rule)
            t0 = time.perf_counter()
            n = execute_rule(con, rule, run_id, into="_run_findings")
            result.results.append(RuleResult(rule, n, seconds=round(time.perf_counter() - t0, 3)))
        result.waivers = store_findings(con, run_id, waivers, as_of)
        con.execute("DROP TABLE _run_findings")
        waived = waived_by_rule(con, run_id) if result.waivers else {}
        for r in result.results:
            r.waived = waived.get(r.rule.id, 0)
        insert_rows(con, "run_rules", [(run_id, r.rule.id, r.rule.severity, r.rule.clause, r.rule.title, r.findings,
                                        r.waived, r.seconds) for r in result.results],
                    "(run_id, rule_id, severity, clause, title, findings, waived, seconds)")
        # The run's cases and figures, kept with it (see audit.check.runstore): later commands read them.
        # The 帮办代办 figures count the canonical steps: for a pack of other steps they do not apply.
        derive_case_kpi(con, run_id, step_figures=pack.vocabulary.kind == "canonical")
        store_cases(con, run_id)
        store_case_dates(con, run_id)
        store_kpi_cells(con, run_id)
        con.execute("DROP TABLE case_kpi")
        store_calendars(con, run_id)
        store_run_files(con, run_id, files)
        con.execute("""INSERT INTO runs (run_id, run_key, pack_name, pack_version, pack_path, standard, settings,
                       as_of, as_of_source, city_filter, calendar, calendar_fallback_years, calendar_spec,
                       input_files, tool_version, cases, findings, data_quality, pack, pack_sha256, prepare_seconds)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [run_id, run_key, pack.name, pack.version, str(pack.path), pack.standard,
                     json.dumps(settings, ensure_ascii=False), as_of, as_of_source, ",".join(cities or []),
                     calendars.description, calendars.fallback_years, spec,
                     json.dumps(inputs, ensure_ascii=False), __version__, n_cases,
                     sum(r.findings for r in result.results),
                     json.dumps(result.data_quality, ensure_ascii=False), pack_json(pack), pack_digest(files),
                     json.dumps(timings)])
    return result
