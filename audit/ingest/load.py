"""Load files into the database in one transaction, accounting for every row.

For each file: rows read = loaded + quarantined + duplicates. The whole `ingest` call is one
DuckDB transaction: if anything fails (or the process is killed) the database is as it was.

Replacement (a corrected re-export): the events of a case in this ingest replace the events of
that case loaded by earlier ingests, unless they are exactly the same set (then its rows are
duplicates and nothing changes). Case attributes in this ingest replace the earlier ones field by
field, for the fields the new file has columns for. Within one ingest the files are combined:
an event found twice is loaded once, and for a case row found twice the later one wins.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from audit.errors import AuditError
from audit.ingest.normalize import MACROS, plan_columns, stage_sql, known_headers
from audit.ingest.profile import Profile, load_profile
from audit.ingest.readers import read_any
from audit.ingest.vocab import (
    CASE_ATTRIBUTES, RATINGS, STEPS, header_lookup, step_lookup,
)

# Case attributes as stored (rating_score is derived from rating).
ATTRS = CASE_ATTRIBUTES


@dataclass
class FileReport:
    """What happened to one input file (or one sheet of a workbook)."""

    path: str
    name: str
    sha256: str
    size_bytes: int
    format: str
    encoding: str | None
    sheet: str | None
    layout: str
    header_row: int
    unmapped: list[str]
    rows_read: int = 0
    loaded: int = 0
    quarantined: int = 0
    duplicates: int = 0
    replaced_cases: int = 0
    new_cases: int = 0


@dataclass
class IngestReport:
    """The result of one `ingest` call."""

    ingest_id: int
    files: list[FileReport] = field(default_factory=list)
    replaced_cases: int = 0
    new_cases: int = 0
    quarantine_sample: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates for f in self.files)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _setup(con: duckdb.DuckDBPyConnection, profile: Profile | None) -> None:
    con.execute(MACROS)
    steps = step_lookup(profile.steps if profile else None)
    con.execute("CREATE OR REPLACE TEMP TABLE _step_map (src VARCHAR, step VARCHAR, code VARCHAR)")
    con.executemany("INSERT INTO _step_map VALUES (?, ?, ?)", [(k, v, STEPS[v]) for k, v in steps.items()])
    attr_cols = ", ".join(f"{a} {_attr_type(a)}, p_{a} BOOLEAN" for a in ATTRS)
    con.execute(f"""
        -- pos = file_id << 40 | row << 6 | wide column: one ordered key per staged value.
        CREATE OR REPLACE TEMP TABLE _ev (pos BIGINT, counted BOOLEAN, city VARCHAR, case_id VARCHAR,
            step VARCHAR, step_code VARCHAR, "time" TIMESTAMP, staff VARCHAR, note VARCHAR);
        CREATE OR REPLACE TEMP TABLE _cs (pos BIGINT, file_id INTEGER, "row" BIGINT, counted BOOLEAN,
            city VARCHAR, case_id VARCHAR, {attr_cols});
        CREATE OR REPLACE TEMP TABLE _status (file_id INTEGER, "row" BIGINT, status VARCHAR);
        CREATE OR REPLACE TEMP TABLE _files (file_id INTEGER, file_name VARCHAR, sha256 VARCHAR,
            ingest_id BIGINT, case_id_header VARCHAR);
    """)


def _attr_type(a: str) -> str:
    return {"promised_days": "INTEGER", "fee": "DECIMAL(12,2)", "visits": "INTEGER",
            "rating_time": "TIMESTAMP"}.get(a, "VARCHAR")


def ingest(con: duckdb.DuckDBPyConnection, paths: list[str | Path], city: str | None = None,
           profile: str | Path | None = None, sheet: str | None = None, append: bool = False,
           command: str | None = None) -> IngestReport:
    """Load `paths` (any format and layout of contract §1) in one transaction; see module doc."""
    prof = load_profile(profile) if profile else None
    builtin = header_lookup()
    known = known_headers(builtin, prof)
    _setup(con, prof)
    started = dt.datetime.now().replace(microsecond=0)
    con.execute("BEGIN TRANSACTION")
    try:
        ingest_id = con.execute("SELECT nextval('ingest_seq')").fetchall()[0][0]
        report = IngestReport(ingest_id)
        for path in map(Path, paths):
            sha = sha256_of(path) if path.exists() else ""
            for raw in read_any(path, known, sheet or (prof.sheet if prof else None),
                                prof.header_row if prof else None):
                _stage_file(con, report, raw, sha, builtin, prof, city)
        _merge(con, report, append)
        _log(con, report, started, command)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return report


def _stage_file(con, report: IngestReport, raw, sha: str, builtin, prof, city) -> None:
    file_id = len(report.files)
    where = f"{raw.path}" + (f" 工作表 {raw.sheet!r}" if raw.sheet else "")
    plan = plan_columns(raw.headers, builtin, prof, where)
    fr = FileReport(str(raw.path), raw.path.name, sha, raw.path.stat().st_size, raw.format, raw.encoding,
                    raw.sheet, plan.layout, raw.header_row, plan.unmapped)
    report.files.append(fr)
    fr.rows_read = raw.table.num_rows + len(raw.bad_rows)
    con.register("_raw", raw.table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {stage_sql(plan, prof, city, '_raw')}")
    finally:
        con.unregister("_raw")
    name = raw.path.name + (f"#{raw.sheet}" if raw.sheet else "")
    con.execute("INSERT INTO _files VALUES (?, ?, ?, ?, ?)",
                [file_id, name, sha, report.ingest_id, plan.header("case_id")])
    base = f"(({file_id}::BIGINT << 40) | (_row << 6))"
    headers_json = ", ".join(f"{_lit(h or f'列{i + 1}')}, c{i}" for i, h in enumerate(raw.headers))
    con.execute(f"""
        INSERT INTO quarantine SELECT ?, ?, ?, _row, problem_col, problem, json_object({headers_json})
        FROM _stage WHERE problem IS NOT NULL""", [report.ingest_id, name, sha])
    for row, reason, cells in raw.bad_rows:
        con.execute("INSERT INTO quarantine VALUES (?, ?, ?, ?, NULL, ?, ?)",
                    [report.ingest_id, name, sha, row, f"第 {row} 行 {reason}", json.dumps(cells, ensure_ascii=False)])
    con.execute("INSERT INTO _status SELECT ?, _row, 'quarantined' FROM _stage WHERE problem IS NOT NULL", [file_id])
    if raw.bad_rows:
        con.executemany("INSERT INTO _status VALUES (?, ?, 'quarantined')", [[file_id, r[0]] for r in raw.bad_rows])
    ok = "problem IS NULL"
    if plan.layout in ("events", "combined"):
        con.execute(f"""INSERT INTO _ev SELECT {base}, TRUE, city, case_id, step, step_code, "time",
                        event_staff, note FROM _stage WHERE {ok}""")
    for n, (i, step) in enumerate(plan.wide.items()):
        con.execute(f"""INSERT INTO _ev SELECT {base} | {n + 1}, FALSE, city, case_id, ?, ?, w{i}, NULL, NULL
                        FROM _stage WHERE {ok} AND w{i} IS NOT NULL""", [step, STEPS[step]])
    present = {a: (a in plan.fields or (prof is not None and a in prof.constants)) for a in ATTRS}
    if plan.layout in ("cases", "wide"):
        cols = ", ".join(f"{a}, {present[a]}" for a in ATTRS)
        con.execute(f"INSERT INTO _cs SELECT {base}, {file_id}, _row, TRUE, city, case_id, {cols} FROM _stage WHERE {ok}")
    elif plan.layout == "combined":
        # Case attributes repeated on event rows: per case, the last non-empty value of each.
        cols = ", ".join(f"arg_max({a}, _row) FILTER (WHERE {a} IS NOT NULL), {present[a]}" for a in ATTRS)
        con.execute(f"""INSERT INTO _cs SELECT max({base}), {file_id}, min(_row), FALSE, city, case_id, {cols}
                        FROM _stage WHERE {ok} GROUP BY city, case_id""")
    con.execute("DROP TABLE _stage")


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _merge(con, report: IngestReport, append: bool) -> None:
    """Deduplicate, replace and insert the staged events and case rows; record row statuses."""
    _merge_events(con, append)
    _merge_cases(con)
    # Per-file accounting.
    counts = con.execute("""
        SELECT file_id, status, count(*) FROM _status GROUP BY ALL""").fetchall()
    for file_id, status, n in counts:
        fr = report.files[file_id]
        if status == "loaded":
            fr.loaded = n
        elif status == "duplicate":
            fr.duplicates = n
        elif status == "quarantined":
            fr.quarantined = n
    per_file = con.execute("""
        SELECT file_id, count(DISTINCT (city, case_id)) FILTER (WHERE kind = 'replaced'),
               count(DISTINCT (city, case_id)) FILTER (WHERE kind = 'new')
        FROM _touched GROUP BY file_id""").fetchall()
    for file_id, replaced, new in per_file:
        report.files[file_id].replaced_cases = replaced
        report.files[file_id].new_cases = new
    report.replaced_cases, report.new_cases = con.execute("""
        SELECT count(DISTINCT (city, case_id)) FILTER (WHERE kind = 'replaced'),
               count(DISTINCT (city, case_id)) FILTER (WHERE kind = 'new' AND (city, case_id) NOT IN
                   (SELECT (city, case_id) FROM _touched WHERE kind = 'replaced'))
        FROM _touched""").fetchall()[0]
    report.quarantine_sample = [r[0] for r in con.execute(
        "SELECT reason FROM quarantine WHERE ingest_id = ? ORDER BY file_name, source_row LIMIT 10",
        [report.ingest_id]).fetchall()]
    # A row of a file quarantined before for the same reason is not recorded twice: ingesting
    # the same file again leaves the quarantine as it was.
    con.execute("""
        DELETE FROM quarantine q WHERE q.ingest_id = $1 AND EXISTS (
            SELECT 1 FROM quarantine o WHERE o.ingest_id < $1 AND o.sha256 = q.sha256
               AND o.source_row = q.source_row AND o.reason = q.reason)""", [report.ingest_id])


def _merge_events(con, append: bool) -> None:
    con.execute("""
        -- An event found more than once in this ingest is loaded once (its first row, by pos).
        CREATE OR REPLACE TEMP TABLE _evu AS
        SELECT city, case_id, step, any_value(step_code) AS step_code, "time", staff, note,
               min(pos) AS pos, arg_min(counted, pos) AS counted
        FROM _ev GROUP BY city, case_id, step, "time", staff, note;
        INSERT INTO _status
            SELECT e.pos >> 40, (e.pos >> 6) & 17179869183, 'duplicate'
            FROM _ev e ANTI JOIN _evu u ON e.pos = u.pos WHERE e.counted;
        -- Compare each touched case's event set with what earlier ingests loaded.
        CREATE OR REPLACE TEMP TABLE _evcase AS
        WITH newc AS (SELECT city, case_id, count(*) AS n_new FROM _evu GROUP BY ALL),
             oldc AS (SELECT e.city, e.case_id, count(*) AS n_old FROM event_rows e
                      SEMI JOIN newc USING (city, case_id) GROUP BY ALL),
             same AS (SELECT u.city, u.case_id, count(*) AS n_same FROM _evu u JOIN event_rows e
                        ON e.city = u.city AND e.case_id = u.case_id AND e.step = u.step
                       AND e."time" = u."time" AND e.staff IS NOT DISTINCT FROM u.staff
                       AND e.note IS NOT DISTINCT FROM u.note GROUP BY ALL)
        SELECT newc.city, newc.case_id,
               CASE WHEN n_old IS NULL THEN 'new'
                    WHEN n_old = n_new AND n_same = n_new THEN 'same'
                    ELSE 'changed' END AS verdict
        FROM newc LEFT JOIN oldc USING (city, case_id) LEFT JOIN same USING (city, case_id);
    """)
    if append:
        # Append mode: keep earlier events; add only the ones not loaded before.
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _evload AS
            SELECT u.* FROM _evu u ANTI JOIN event_rows e
              ON e.city = u.city AND e.case_id = u.case_id AND e.step = u.step AND e."time" = u."time"
             AND e.staff IS NOT DISTINCT FROM u.staff AND e.note IS NOT DISTINCT FROM u.note;
            CREATE OR REPLACE TEMP TABLE _touched AS
            SELECT DISTINCT l.pos >> 40 AS file_id, l.city, l.case_id,
                   CASE WHEN c.verdict = 'new' THEN 'new' ELSE 'appended' END AS kind
            FROM _evload l JOIN _evcase c USING (city, case_id);
        """)
    else:
        con.execute("""
            CREATE OR REPLACE TEMP TABLE _evload AS
            SELECT u.* FROM _evu u SEMI JOIN (SELECT * FROM _evcase WHERE verdict <> 'same') c USING (city, case_id);
            DELETE FROM event_rows WHERE (city, case_id) IN
                (SELECT (city, case_id) FROM _evcase WHERE verdict = 'changed');
            CREATE OR REPLACE TEMP TABLE _touched AS
            SELECT DISTINCT u.pos >> 40 AS file_id, u.city, u.case_id,
                   CASE WHEN c.verdict = 'new' THEN 'new' ELSE 'replaced' END AS kind
            FROM _evload u JOIN _evcase c USING (city, case_id);
        """)
    con.execute("""
        INSERT INTO _status
        SELECT u.pos >> 40, (u.pos >> 6) & 17179869183,
               CASE WHEN l.pos IS NULL THEN 'duplicate' ELSE 'loaded' END
        FROM _evu u LEFT JOIN _evload l USING (pos) WHERE u.counted;
        INSERT INTO event_rows
        SELECT l.city, l.case_id, l.step, l.step_code, l."time", l.staff, l.note,
               f.file_name, f.sha256, (l.pos >> 6) & 17179869183,
               (SELECT coalesce(max(seq), 0) FROM event_rows) + row_number() OVER (ORDER BY l.pos),
               f.ingest_id
        FROM _evload l JOIN _files f ON f.file_id = l.pos >> 40;
    """)


def _merge_cases(con) -> None:
    """Fold this ingest's case rows field by field (later rows win), then merge with the database."""
    attr_hash = "hash(" + ", ".join(f"{a}, p_{a}" for a in ATTRS) + ")"
    fold = ", ".join(f"arg_max_null({a}, pos) FILTER (WHERE p_{a}) AS {a}, bool_or(p_{a}) AS p_{a}" for a in ATTRS)
    merged = ", ".join(f"CASE WHEN n.p_{a} THEN n.{a} ELSE o.{a} END AS {a}" for a in ATTRS)
    same_cond = " AND ".join(f"m.{a} IS NOT DISTINCT FROM o.{a}" for a in ATTRS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _csn AS
        SELECT city, case_id, min(pos) FILTER (WHERE counted) AS first_pos, max(pos) AS last_pos, {fold}
        FROM _cs GROUP BY city, case_id;
        CREATE OR REPLACE TEMP TABLE _csv AS
        WITH m AS (SELECT n.city, n.case_id, n.last_pos, n.first_pos, {merged}, o.case_id IS NOT NULL AS existed
                   FROM _csn n LEFT JOIN case_rows o USING (city, case_id))
        SELECT m.*, CASE WHEN NOT m.existed THEN 'new' WHEN {same_cond} THEN 'same' ELSE 'changed' END AS verdict
        FROM m LEFT JOIN case_rows o USING (city, case_id);
        -- Counted case rows (case tables, wide ledgers): an exact repeat of an earlier row of the
        -- case is a duplicate; a row followed in the same file by a different row of the same case
        -- is quarantined (a conflict inside one ledger: the later row wins); the rest are loaded,
        -- or duplicates when the case ends up exactly as the database already had it.
        CREATE OR REPLACE TEMP TABLE _csr AS
        SELECT c.pos, c.city, c.case_id, c.file_id, c."row",
               row_number() OVER (PARTITION BY c.city, c.case_id, {attr_hash} ORDER BY c.pos) > 1 AS is_dup,
               max(c.pos) OVER (PARTITION BY c.city, c.case_id, c.file_id) > c.pos AS superseded
        FROM _cs c WHERE c.counted;
        INSERT INTO _status
        SELECT r.file_id, r."row",
               CASE WHEN r.is_dup THEN 'duplicate' WHEN r.superseded THEN 'conflict'
                    WHEN v.verdict = 'same' THEN 'duplicate' ELSE 'loaded' END
        FROM _csr r JOIN _csv v USING (city, case_id);
        INSERT INTO quarantine
        SELECT f.ingest_id, f.file_name, f.sha256, s."row", f.case_id_header,
               '第 ' || s."row" || ' 行 办件 ' || r.case_id || ' 在本文件后面再次出现且内容不同，以后出现的一行为准',
               NULL
        FROM _status s JOIN _csr r ON s.file_id = r.file_id AND s."row" = r."row"
        JOIN _files f ON f.file_id = s.file_id
        WHERE s.status = 'conflict';
        UPDATE _status SET status = 'quarantined' WHERE status = 'conflict';
        DELETE FROM case_rows WHERE (city, case_id) IN (SELECT (city, case_id) FROM _csv WHERE verdict = 'changed');
        INSERT INTO case_rows
        SELECT v.city, v.case_id, {', '.join(f'v.{a}' for a in ATTRS if a not in ('rating_time', 'materials'))},
               CASE v.rating {' '.join(f"WHEN '{k}' THEN {s}" for k, s in RATINGS.items())} END,
               v.rating_time, v.materials, f.file_name, f.sha256, (v.last_pos >> 6) & 17179869183, f.ingest_id
        FROM _csv v JOIN _files f ON f.file_id = v.last_pos >> 40 WHERE v.verdict <> 'same';
        INSERT INTO _touched SELECT last_pos >> 40, city, case_id,
               CASE WHEN verdict = 'new' THEN 'new' ELSE 'replaced' END
        FROM _csv WHERE verdict <> 'same';
    """)


def _log(con, report: IngestReport, started: dt.datetime, command: str | None) -> None:
    for i, f in enumerate(report.files):
        con.execute("""INSERT INTO ingest_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [report.ingest_id, i, f.path, f.name, f.sha256, f.size_bytes, f.format, f.encoding, f.sheet,
                     f.layout, f.header_row, None, None, f.unmapped, f.rows_read, f.loaded, f.quarantined,
                     f.duplicates, f.replaced_cases, f.new_cases])
    con.execute("INSERT INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [report.ingest_id, started, dt.datetime.now().replace(microsecond=0), command, len(report.files),
                 report.rows_read, report.loaded, report.quarantined, report.duplicates, report.replaced_cases])
    bad = [f for f in report.files if f.rows_read != f.loaded + f.quarantined + f.duplicates]
    if bad:  # an internal invariant: never commit an ingest that does not add up
        f = bad[0]
        raise AuditError(f"内部错误: {f.name} 读入 {f.rows_read} 行 ≠ 载入 {f.loaded} + 隔离 {f.quarantined} + 重复 {f.duplicates}")
