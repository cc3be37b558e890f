"""Load files into the database in one transaction, accounting for every row.

For each file: rows read = loaded + quarantined + duplicates. Each file is first normalised into a
temporary stage table (`audit.ingest.normalize.stage_sql`); a CSV file DuckDB can read itself is
staged straight from the file, anything else through the exact readers. Then one DuckDB
transaction merges the stages into the database: if anything fails (or the process is killed)
the database is as it was.

Replacement (a corrected re-export): the events of a case in this ingest replace the events of
that case loaded by earlier ingests, unless they are exactly the same set (then its rows are
duplicates and nothing changes). Case attributes in this ingest replace the earlier ones field by
field, for the fields the new file has columns for. Within one ingest the files are combined:
an event found twice is loaded once, and for a case row found twice the later one wins.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from audit.errors import AuditError
from audit.ingest.normalize import MACROS, known_headers, plan_columns, present_attributes, stage_sql
from audit.ingest.profile import load_profile
from audit.ingest.readers import FileScan, read_any
from audit.ingest.vocab import CASE_ATTRIBUTES, RATINGS, header_lookup, step_lookup

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
    reader: str = ""            # duckdb (read straight from the file) | exact (pyarrow, csv, calamine)


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


def _setup(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MACROS)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _status (file_id INTEGER, "row" BIGINT, status VARCHAR);
        CREATE OR REPLACE TEMP TABLE _quar (file_id INTEGER, "row" BIGINT, "column" VARCHAR, reason VARCHAR, raw JSON);
        CREATE OR REPLACE TEMP TABLE _files (file_id INTEGER, file_name VARCHAR, sha256 VARCHAR,
            ingest_id BIGINT, case_id_header VARCHAR);
        CREATE OR REPLACE TEMP TABLE _touched (file_id BIGINT, city VARCHAR, case_id VARCHAR, kind VARCHAR);
    """)


def _case_rows_sql(pos: str, file_id: int | str, row: str, counted: str, attrs: dict[str, str],
                   source: str) -> str:
    """A SELECT giving case rows in the shape `_merge_cases` reads (`_cs`): pos = file_id << 40 |
    row << 6 | wide column, one ordered key per staged value; the row; counted (a row of its own
    in the file, not folded from event rows); city, case_id; each attribute and p_<attribute>,
    whether the file gives it (`attrs`: attribute -> its expression, for the attributes given)."""
    cols = ", ".join(f"CAST({attrs[a]} AS {_attr_type(a)}) AS {a}, TRUE AS p_{a}" if attrs.get(a)
                     else f"NULL::{_attr_type(a)} AS {a}, FALSE AS p_{a}" for a in ATTRS)
    return (f'SELECT {pos} AS pos, {file_id}::INTEGER AS file_id, {row} AS "row", {counted} AS counted, '
            f"city, case_id, {cols} FROM {source}")


def _attr_type(a: str) -> str:
    return {"promised_days": "INTEGER", "fee": "DECIMAL(12,2)", "visits": "INTEGER",
            "rating_time": "TIMESTAMP"}.get(a, "VARCHAR")


@dataclass
class _Staged:
    """One staged file (or sheet): its temp table and what the merge needs to know about it."""

    file_id: int
    name: str
    case_id_header: str
    tables: list[str] = field(default_factory=list)     # temp tables to drop at the end
    events_sql: list[str] = field(default_factory=list)  # SELECTs giving its event rows
    cases_sql: list[str] = field(default_factory=list)   # SELECTs giving its case rows (`_case_rows_sql`)
    events_ok: int = 0                                   # counted event rows without a problem


def ingest(con: duckdb.DuckDBPyConnection, paths: list[str | Path], city: str | None = None,
           profile: str | Path | None = None, sheet: str | None = None, append: bool = False,
           command: str | None = None) -> IngestReport:
    """Load `paths` (any format and layout of contract §1) in one transaction; see module doc.

    Files are first staged into temporary tables (outside the transaction: a file DuckDB's fast
    reader rejects is then simply read again by the exact reader); only the merge into the
    database's tables runs in the transaction."""
    prof = load_profile(profile) if profile else None
    builtin = header_lookup()
    known = known_headers(builtin, prof)
    steps = step_lookup(prof.steps if prof else None)
    _setup(con)
    started = dt.datetime.now().replace(microsecond=0)
    report = IngestReport(0)
    staged: list[_Staged] = []
    try:
        for path in map(Path, paths):
            scan = FileScan.of(path)
            first = len(report.files)
            for raw in read_any(path, known, sheet or (prof.sheet if prof else None),
                                prof.header_row if prof else None):
                staged.append(_stage_file(con, report, raw, scan, builtin, prof, city, steps))
            scan.result()
            for fr in report.files[first:]:
                fr.sha256 = scan.sha256
        con.execute("BEGIN TRANSACTION")
        try:
            report.ingest_id = con.execute("SELECT nextval('ingest_seq')").fetchall()[0][0]
            if staged:
                con.executemany("INSERT INTO _files VALUES (?, ?, ?, ?, ?)",
                                [[st.file_id, st.name, report.files[st.file_id].sha256, report.ingest_id,
                                  st.case_id_header] for st in staged])
            _merge(con, report, staged, append)
            _log(con, report, started, command)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        for st in staged:
            for t in st.tables:
                con.execute(f"DROP TABLE IF EXISTS {t}")
        # The working tables of the merge hold a copy of the input: free it for what follows
        # on this connection (a check, a report).
        for view in _WORK_VIEWS:
            con.execute(f"DROP VIEW IF EXISTS {view}")
        for t in _WORK_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return report


_WORK_VIEWS = ("_evu", "_ev", "_csv_v", "_csn_v", "_cs")
_WORK_TABLES = ("_status", "_quar", "_files", "_touched", "_tc", "_duph", "_dupskip", "_evc", "_evf",
                "_evcase", "_evload", "_csn", "_csv", "_csr")


def _stage_file(con, report: IngestReport, raw, scan: FileScan, builtin, prof, city, steps) -> _Staged:
    """Normalise one file into a temp table; record its quarantined rows; queue its events and
    case rows for the merge."""
    file_id = len(report.files)
    st = f"_st{file_id}"
    plan = _plan(raw, builtin, prof)
    args = (plan, prof, city)
    rowx, rows = "_row", 0
    if raw.duck is not None:
        fast = False
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS "
                        f"{stage_sql(*args, raw.duck.sql(), steps, has_row=False, fields=len(raw.duck.names))}")
            rows = con.execute(f"SELECT count(*) FROM {st}").fetchall()[0][0]
            scan.result()
            fast = scan.error is None and rows == raw.duck.expected_records(scan.newlines, scan.ends_with_newline)
        except duckdb.Error:
            pass   # ragged rows, bad UTF-8, mixed line ends...: the exact reader says what is wrong
        finally:
            raw.duck.cleanup()
        if fast:
            rowx = f"(rowid + {raw.duck.first_row})"
        else:
            con.execute(f"DROP TABLE IF EXISTS {st}")
            raw = raw.fallback()
            plan = _plan(raw, builtin, prof)
            args = (plan, prof, city)
    if raw.table is None and rowx == "_row":     # a CSV file DuckDB should not read itself
        raw = raw.fallback()
        plan = _plan(raw, builtin, prof)
        args = (plan, prof, city)
    if raw.table is not None:
        con.register("_raw", raw.table)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS "
                        f"{stage_sql(*args, '_raw', steps, has_row=True)}")
        finally:
            con.unregister("_raw")
        rows = raw.table.num_rows
        raw.table = None
    name = raw.path.name + (f"#{raw.sheet}" if raw.sheet else "")
    fr = FileReport(str(raw.path), raw.path.name, "", raw.path.stat().st_size, raw.format, raw.encoding,
                    raw.sheet, plan.layout, raw.header_row, plan.unmapped,
                    reader="duckdb" if rowx != "_row" else "exact")
    report.files.append(fr)
    staged = _Staged(file_id, name, plan.header("case_id"), [st])
    fr.rows_read = rows + len(raw.bad_rows)

    con.execute(f"""INSERT INTO _quar SELECT {file_id}, {rowx}, problem->>'column',
                           '第 ' || {rowx} || ' 行 ' || (problem->>'reason'), problem->'raw'
                    FROM {st} WHERE problem IS NOT NULL""")
    problems = con.execute(f"SELECT count(*) FROM _quar WHERE file_id = {file_id}").fetchall()[0][0]
    if raw.bad_rows:
        con.executemany("INSERT INTO _quar VALUES (?, ?, NULL, ?, ?)",
                        [[file_id, row, f"第 {row} 行 {reason}", json.dumps(cells, ensure_ascii=False)]
                         for row, reason, cells in raw.bad_rows])
    fr.quarantined = problems + len(raw.bad_rows)

    base = f"(({file_id}::BIGINT << 40) | ({rowx} << 6))"
    ok = "problem IS NULL"
    if plan.layout in ("events", "combined"):
        staged.events_sql.append(f"""SELECT {base} AS pos, TRUE AS counted, city, case_id, step,
                                     "time", event_staff AS staff, note, h FROM {st} WHERE {ok}""")
        staged.events_ok = rows - problems
    if plan.wide:
        wide = f"_evw{file_id}"
        staged.tables.append(wide)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {wide} (pos BIGINT, counted BOOLEAN, city VARCHAR,
                        case_id VARCHAR, step VARCHAR, "time" TIMESTAMP, staff VARCHAR,
                        note VARCHAR, h UBIGINT)""")
        for n, (i, step) in enumerate(plan.wide.items()):
            con.execute(f"""INSERT INTO {wide} SELECT {base} | {n + 1}, FALSE, city, case_id, $1, w{i},
                            NULL, NULL, hash(city, case_id, $1, w{i}, NULL::VARCHAR, NULL::VARCHAR)
                            FROM {st} WHERE {ok} AND w{i} IS NOT NULL""", [step])
        staged.events_sql.append(f"SELECT * FROM {wide}")
    present = set(present_attributes(plan, prof))
    if plan.layout in ("cases", "wide"):
        staged.cases_sql.append(_case_rows_sql(base, file_id, rowx, "TRUE", {a: a for a in present},
                                               f"{st} WHERE {ok}"))
    elif plan.layout == "combined":
        # Case attributes repeated on event rows: per case, the last non-empty value of each.
        folded = f"_csf{file_id}"
        staged.tables.append(folded)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {folded} AS {_case_rows_sql(
                            f'max({base})', file_id, f'min({rowx})', 'FALSE',
                            {a: f'arg_max({a}, {rowx}) FILTER (WHERE {a} IS NOT NULL)' for a in present},
                            f'{st} WHERE {ok} GROUP BY city, case_id')}""")
        staged.cases_sql.append(f"SELECT * FROM {folded}")
    return staged


def _plan(raw, builtin, prof):
    where = f"{raw.path}" + (f" 工作表 {raw.sheet!r}" if raw.sheet else "")
    return plan_columns(raw.headers, builtin, prof, where)


def _merge(con, report: IngestReport, staged: list[_Staged], append: bool) -> None:
    """Deduplicate, replace and insert the staged events and case rows; count every row."""
    con.execute("""
        INSERT INTO quarantine SELECT f.ingest_id, f.file_name, f.sha256, q."row", q."column", q.reason, q.raw
        FROM _quar q JOIN _files f USING (file_id)""")
    parts = [(st.file_id, sql) for st in staged for sql in st.events_sql]
    # This ingest's case rows: a view over the staged files (a copy would cost time and memory).
    cases = [sql for st in staged for sql in st.cases_sql] or [_case_rows_sql(
        "0", 0, "0", "TRUE", {}, "(SELECT NULL::VARCHAR AS city, NULL::VARCHAR AS case_id) WHERE false")]
    con.execute(f"CREATE OR REPLACE TEMP VIEW _cs AS {' UNION ALL '.join(cases)}")
    only_events = con.execute("SELECT count(*) FROM (SELECT 1 FROM _cs LIMIT 1)").fetchall()[0][0] == 0
    first_load = None
    if parts:
        loaded, first_load = _merge_events(con, " UNION ALL ".join(sql for _, sql in parts),
                                           {st.file_id: st.events_ok for st in staged}, append, report.ingest_id,
                                           one_source=only_events and len(parts) == 1)
        for st in staged:
            fr = report.files[st.file_id]
            fr.loaded += loaded.get(st.file_id, 0)
            fr.duplicates += st.events_ok - loaded.get(st.file_id, 0)
    _merge_cases(con, report.ingest_id)
    for file_id, status, n in con.execute("SELECT file_id, status, count(*) FROM _status GROUP BY ALL").fetchall():
        fr = report.files[file_id]
        if status == "loaded":
            fr.loaded += n
        elif status == "duplicate":
            fr.duplicates += n
        elif status == "quarantined":
            fr.quarantined += n
    # Cases new to the database / replaced, per file and in all (a case can be both: new from its
    # events and replaced from its case row, or touched by several files).
    if first_load is not None:     # the first events of the database, from one file: all cases new
        report.files[parts[0][0]].new_cases = report.new_cases = first_load
    else:
        if only_events or not parts:
            # With only events (from the events' _evf) or only case rows (from _csv), each
            # (file, case) is in _touched once.
            tc = "(SELECT file_id, city, case_id, kind = 'replaced' AS r, kind = 'new' AS n FROM _touched)"
        else:
            con.execute("""CREATE OR REPLACE TEMP TABLE _tc AS
                           SELECT file_id, city, case_id, bool_or(kind = 'replaced') AS r,
                                  bool_or(kind = 'new') AS n
                           FROM _touched GROUP BY ALL""")
            tc = "_tc"
        for file_id, replaced, new in con.execute(f"""
                SELECT file_id, count(*) FILTER (WHERE r), count(*) FILTER (WHERE n) FROM {tc}
                GROUP BY file_id""").fetchall():
            report.files[file_id].replaced_cases = replaced
            report.files[file_id].new_cases = new
        multi = len(report.files) > 1
        report.replaced_cases, report.new_cases = con.execute(f"""
            SELECT count(*) FILTER (WHERE r), count(*) FILTER (WHERE n AND NOT r)
            FROM {f'(SELECT bool_or(r) AS r, bool_or(n) AS n FROM {tc} GROUP BY city, case_id)' if multi else tc}
            """).fetchall()[0]
    report.quarantine_sample = [r[0] for r in con.execute(
        "SELECT reason FROM quarantine WHERE ingest_id = ? ORDER BY file_name, source_row LIMIT 10",
        [report.ingest_id]).fetchall()]
    # A row of a file quarantined before for the same reason is not recorded twice: ingesting
    # the same file again leaves the quarantine as it was.
    con.execute("""
        DELETE FROM quarantine q WHERE q.ingest_id = $1 AND EXISTS (
            SELECT 1 FROM quarantine o WHERE o.ingest_id < $1 AND o.sha256 = q.sha256
               AND o.source_row = q.source_row AND o.reason = q.reason)""", [report.ingest_id])


# The identity of an event, for comparing this ingest's events with each other and the database's.
EVENT_KEY = 'city, case_id, step, "time", staff, note'
_SAME_EVENT = " AND ".join(f"o.{c} IS NOT DISTINCT FROM e.{c}" for c in ("city", "case_id", "step", '"time"', "staff", "note"))


def _merge_events(con, events_sql: str, events_ok: dict[int, int], append: bool, ingest_id: int,
                  one_source: bool) -> tuple[dict[int, int], int | None]:
    """Load the staged events; return the counted rows loaded per file (the others are duplicates),
    and, when the database had no events and `one_source` (one file's events, no case rows in
    this ingest), the number of cases: all new, so nothing is compared and `_touched` is not
    filled.

    Repeats are found by a 64-bit hash of each event first (a hash seen twice), then confirmed on
    the exact values. A case's events are compared with the database's
    by their count and the sum of those hashes (a 128-bit sum of 64-bit hashes)."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW _ev AS {events_sql}")
    # Hashes seen more than once: sorting 6 M hashes in numpy takes a tenth of a second, several
    # times less than any grouping in SQL. Only rows with such a hash are compared exactly.
    hashes = con.execute("SELECT h FROM _ev").fetchnumpy()["h"]
    sorting = threading.Thread(target=hashes.sort)     # numpy sorts without holding the GIL
    sorting.start()
    try:
        existing = con.execute("SELECT count(*) FROM (SELECT 1 FROM event_rows LIMIT 1)").fetchall()[0][0] > 0
        cases = None
        if one_source and not existing:
            # The first events of the database, from one file: all its cases are new. Counted while
            # the hashes sort (a repeated event is of the same case: the repeats do not matter).
            cases = con.execute("SELECT count(*) FROM (SELECT DISTINCT city, case_id FROM _ev)").fetchall()[0][0]
    finally:
        sorting.join()
    repeated = hashes[1:][hashes[1:] == hashes[:-1]]
    del hashes
    con.execute("CREATE OR REPLACE TEMP TABLE _duph (h UBIGINT)")
    if len(repeated):
        import numpy as np
        import pyarrow as pa

        con.register("_duph_np", pa.table({"h": pa.array(np.unique(repeated), pa.uint64())}))
        try:
            con.execute("INSERT INTO _duph SELECT h FROM _duph_np")
        finally:
            con.unregister("_duph_np")
    con.execute(f"""
        -- An event found more than once in this ingest is loaded once (its first row, by pos).
        CREATE OR REPLACE TEMP TABLE _dupskip AS
        SELECT pos, counted FROM (
            SELECT pos, counted, row_number() OVER (PARTITION BY {EVENT_KEY} ORDER BY pos) AS rn
            FROM _ev WHERE h IN (SELECT h FROM _duph))
        WHERE rn > 1""")
    has_dups = con.execute("SELECT count(*) FROM _dupskip").fetchall()[0][0] > 0
    con.execute("CREATE OR REPLACE TEMP VIEW _evu AS SELECT e.* FROM _ev e"
                + (" ANTI JOIN _dupskip d ON e.pos = d.pos" if has_dups else ""))
    if cases is not None:
        _insert_events(con, "_evu", ingest_id)
        return _loaded_per_file(con, "_evu", events_ok), cases
    # Per case: the first and last file it is in; to compare with the database's events, its
    # (loaded) rows and the sum of their hashes.
    compare = "count(*) AS n, sum(h) AS s, " if existing else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _evc AS
                    SELECT city, case_id, {compare}min(pos >> 40) AS f0, max(pos >> 40) AS f1
                    FROM _evu GROUP BY ALL""")
    # The files each case's (loaded) events come from.
    con.execute("""CREATE OR REPLACE TEMP TABLE _evf AS
                   SELECT f0 AS file_id, city, case_id FROM _evc WHERE f0 = f1
                   UNION ALL
                   SELECT DISTINCT e.pos >> 40, e.city, e.case_id FROM _evu e
                   SEMI JOIN (SELECT city, case_id FROM _evc WHERE f0 <> f1) m USING (city, case_id)""")
    if existing:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _evcase AS
            WITH c AS (SELECT city, case_id, n, s FROM _evc),
                 o AS (SELECT city, case_id, count(*) AS n, sum(hash({EVENT_KEY})) AS s
                       FROM event_rows SEMI JOIN c USING (city, case_id) GROUP BY ALL)
            SELECT c.city, c.case_id, CASE WHEN o.n IS NULL THEN 'new'
                                           WHEN o.n = c.n AND o.s = c.s THEN 'same' ELSE 'changed' END AS verdict
            FROM c LEFT JOIN o USING (city, case_id)""")
    else:   # a case the database does not have yet is new: nothing to compare
        con.execute("CREATE OR REPLACE TEMP TABLE _evcase AS SELECT city, case_id, 'new' AS verdict FROM _evc WHERE false")
    if append and existing:
        # Append mode: keep earlier events; add only the ones not loaded before.
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _evload AS
            SELECT e.* FROM _evu e ANTI JOIN (SELECT o.* FROM event_rows o SEMI JOIN
                (SELECT city, case_id FROM _evcase WHERE verdict <> 'new') c USING (city, case_id)) o
              ON {_SAME_EVENT};
            INSERT INTO _touched
            SELECT DISTINCT l.pos >> 40, l.city, l.case_id,
                   CASE WHEN c.verdict = 'new' THEN 'new' ELSE 'appended' END
            FROM _evload l JOIN _evcase c USING (city, case_id);""")
        source = "_evload"
    else:
        same = existing and con.execute("SELECT count(*) FROM _evcase WHERE verdict = 'same'").fetchall()[0][0] > 0
        if existing:
            con.execute("""DELETE FROM event_rows WHERE (city, case_id) IN
                           (SELECT (city, case_id) FROM _evcase WHERE verdict = 'changed')""")
        con.execute("""INSERT INTO _touched
                       SELECT f.file_id, f.city, f.case_id, CASE WHEN v.verdict = 'changed' THEN 'replaced' ELSE 'new' END
                       FROM _evf f LEFT JOIN _evcase v USING (city, case_id)
                       WHERE v.verdict IS DISTINCT FROM 'same'""")
        source = ("(SELECT e.* FROM _evu e ANTI JOIN (SELECT city, case_id FROM _evcase WHERE verdict = 'same') s "
                  "USING (city, case_id))" if same else "_evu")
    _insert_events(con, source, ingest_id)
    return _loaded_per_file(con, source, events_ok), None


def _insert_events(con, source: str, ingest_id: int) -> None:
    base = con.execute("SELECT coalesce(max(seq), 0) FROM event_rows").fetchall()[0][0]
    con.execute(f"""
        INSERT INTO event_rows
        SELECT city, case_id, step, "time", staff, note, (pos >> 6) & 17179869183, {base} + pos,
               {ingest_id}, pos >> 40
        FROM {source}""")


def _loaded_per_file(con, source: str, events_ok: dict[int, int]) -> dict[int, int]:
    if source == "_evu":   # every counted row not repeated within this ingest was loaded
        skipped = dict(con.execute("SELECT pos >> 40, count(*) FROM _dupskip WHERE counted GROUP BY 1").fetchall())
        return {f: n - skipped.get(f, 0) for f, n in events_ok.items()}
    return dict(con.execute(f"SELECT pos >> 40, count(*) FROM {source} WHERE counted GROUP BY 1").fetchall())


def _merge_cases(con, ingest_id: int) -> None:
    """Fold this ingest's case rows field by field (later rows win), then merge with the database."""
    attr_hash = "hash(" + ", ".join(f"{a}, p_{a}" for a in ATTRS) + ")"
    fold = ", ".join(f"arg_max_null({a}, pos) FILTER (WHERE p_{a}) AS {a}, bool_or(p_{a}) AS p_{a}" for a in ATTRS)
    merged = ", ".join(f"CASE WHEN n.p_{a} THEN n.{a} ELSE o.{a} END AS {a}" for a in ATTRS)
    # The merged case equals the database's: every field this ingest gives is the same.
    same_cond = " AND ".join(f"(NOT n.p_{a} OR n.{a} IS NOT DISTINCT FROM o.{a})" for a in ATTRS)
    # The usual case table has one row per case: nothing to fold, no repeats or conflicts to find.
    one_row_each = con.execute("""SELECT count(*) FROM (SELECT 1 FROM _cs GROUP BY city, case_id
                                  HAVING count(*) > 1 LIMIT 1)""").fetchall()[0][0] == 0
    # A database without case rows yet: every case is new, nothing to compare.
    fresh = con.execute("SELECT count(*) FROM (SELECT 1 FROM case_rows LIMIT 1)").fetchall()[0][0] == 0
    if one_row_each:    # the cases are `_cs` as it is: a view, not a copy
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW _csn_v AS
            SELECT city, case_id, CASE WHEN counted THEN pos END AS first_pos, pos AS last_pos,
                   {', '.join(f'{a}, p_{a}' for a in ATTRS)}
            FROM _cs;
            CREATE OR REPLACE TEMP TABLE _csr AS
            SELECT pos, city, case_id, file_id, "row", false AS is_dup, false AS superseded FROM _cs WHERE counted""")
    else:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _csn AS
            SELECT city, case_id, min(pos) FILTER (WHERE counted) AS first_pos, max(pos) AS last_pos, {fold}
            FROM _cs GROUP BY city, case_id;
            -- Counted case rows (case tables, wide ledgers): an exact repeat of an earlier row of the
            -- case is a duplicate; a row followed in the same file by a different row of the same case
            -- is quarantined (a conflict inside one ledger: the later row wins); the rest are loaded,
            -- or duplicates when the case ends up exactly as the database already had it.
            CREATE OR REPLACE TEMP TABLE _csr AS
            SELECT c.pos, c.city, c.case_id, c.file_id, c."row",
                   row_number() OVER (PARTITION BY c.city, c.case_id, {attr_hash} ORDER BY c.pos) > 1 AS is_dup,
                   max(c.pos) OVER (PARTITION BY c.city, c.case_id, c.file_id) > c.pos AS superseded
            FROM _cs c WHERE c.counted""")
    csn = "_csn_v" if one_row_each else "_csn"
    if fresh:
        csv = "_csv_v"
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW _csv_v AS
            SELECT n.city, n.case_id, n.last_pos, n.first_pos,
                   {', '.join(f'CASE WHEN n.p_{a} THEN n.{a} END AS {a}' for a in ATTRS)},
                   false AS existed, 'new' AS verdict
            FROM {csn} n;
            INSERT INTO _status
            SELECT file_id, "row", CASE WHEN is_dup THEN 'duplicate' WHEN superseded THEN 'conflict' ELSE 'loaded' END
            FROM _csr""")
    else:
        csv = "_csv"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _csv AS
            SELECT n.city, n.case_id, n.last_pos, n.first_pos, {merged}, o.case_id IS NOT NULL AS existed,
                   CASE WHEN o.case_id IS NULL THEN 'new' WHEN {same_cond} THEN 'same' ELSE 'changed' END AS verdict
            FROM {csn} n LEFT JOIN case_rows o USING (city, case_id);
            INSERT INTO _status
            SELECT r.file_id, r."row",
                   CASE WHEN r.is_dup THEN 'duplicate' WHEN r.superseded THEN 'conflict'
                        WHEN v.verdict = 'same' THEN 'duplicate' ELSE 'loaded' END
            FROM _csr r JOIN _csv v USING (city, case_id);
            DELETE FROM case_rows WHERE (city, case_id) IN
                (SELECT (city, case_id) FROM _csv WHERE verdict = 'changed');""")
    con.execute(f"""
        INSERT INTO quarantine
        SELECT f.ingest_id, f.file_name, f.sha256, s."row", f.case_id_header,
               '第 ' || s."row" || ' 行 办件 ' || r.case_id || ' 在本文件后面再次出现且内容不同，以后出现的一行为准',
               NULL
        FROM _status s JOIN _csr r ON s.file_id = r.file_id AND s."row" = r."row"
        JOIN _files f ON f.file_id = s.file_id
        WHERE s.status = 'conflict';
        UPDATE _status SET status = 'quarantined' WHERE status = 'conflict';
        INSERT INTO case_rows
        SELECT v.city, v.case_id, {', '.join(f'v.{a}' for a in ATTRS if a not in ('rating_time', 'materials'))},
               CASE v.rating {' '.join(f"WHEN '{k}' THEN {s}" for k, s in RATINGS.items())} END,
               v.rating_time, v.materials, (v.last_pos >> 6) & 17179869183, {ingest_id}, v.last_pos >> 40
        FROM {csv} v WHERE v.verdict <> 'same';
        INSERT INTO _touched SELECT last_pos >> 40, city, case_id,
               CASE WHEN verdict = 'new' THEN 'new' ELSE 'replaced' END
        FROM {csv} WHERE verdict <> 'same';
    """)


def _log(con, report: IngestReport, started: dt.datetime, command: str | None) -> None:
    for i, f in enumerate(report.files):
        con.execute("""INSERT INTO ingest_files (ingest_id, file_id, path, file_name, sha256, size_bytes, format,
                           encoding, sheet, layout, header_row, city_option, profile, unmapped_columns, rows_read,
                           loaded, quarantined, duplicates, replaced_cases, new_cases)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [report.ingest_id, i, f.path, f.name, f.sha256, f.size_bytes, f.format, f.encoding, f.sheet,
                     f.layout, f.header_row, None, None, f.unmapped, f.rows_read, f.loaded, f.quarantined,
                     f.duplicates, f.replaced_cases, f.new_cases])
    con.execute("""INSERT INTO ingests (ingest_id, started_at, finished_at, command, files, rows_read, loaded,
                   quarantined, duplicates, replaced_cases) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [report.ingest_id, started, dt.datetime.now().replace(microsecond=0), command, len(report.files),
                 report.rows_read, report.loaded, report.quarantined, report.duplicates, report.replaced_cases])
    bad = [f for f in report.files if f.rows_read != f.loaded + f.quarantined + f.duplicates]
    if bad:  # an internal invariant: never commit an ingest that does not add up
        f = bad[0]
        raise AuditError(f"内部错误: {f.name} 读入 {f.rows_read} 行 ≠ 载入 {f.loaded} + 隔离 {f.quarantined} + 重复 {f.duplicates}")
