"""Load files into the database in one transaction, accounting for every row (contract §1.5).

For each file: rows read = loaded + quarantined + duplicates, and "loaded" is what the tables
gained from it. Each file is first staged into a temporary table outside the transaction
(`audit.ingest.stage`); then one DuckDB transaction gives city-less rows their case's city
(`audit.ingest.cities`), merges the stages into the database (`audit.ingest.merge`), checks the
accounting against the tables and logs the ingest: if anything fails (or the process is killed)
the database is as it was.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from audit.errors import AuditError
from audit.ingest import cities, merge
from audit.ingest.normalize import MACROS, has_rows, known_headers
from audit.ingest.profile import load_profile
from audit.ingest.readers import FileScan, read_any
from audit.ingest.stage import EMPTY_CASE_ROWS, EMPTY_EVENTS, EVENT_COLUMNS, setup, stage_file
from audit.ingest.vocab import header_lookup, normalize_value, step_lookup
from audit.testpause import pause_for_test


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
    set_aside: int = 0          # cells set aside (their rows loaded with the field empty)
    city_filled: int = 0        # rows whose empty city --city filled
    city_resolved: int = 0      # rows without a city that took their case's city
    waiting: int = 0            # events loaded waiting for their case row (part of `loaded`)
    filled_elsewhere: tuple[int, str] = (0, "")  # case ids --city filled that belong to other cities
    reader: str = ""            # duckdb (read straight from the file) | exact (pyarrow, csv, calamine)


@dataclass
class IngestReport:
    """The result of one `ingest` call."""

    ingest_id: int
    files: list[FileReport] = field(default_factory=list)
    replaced_cases: int = 0
    new_cases: int = 0
    joined: int = 0                 # earlier waiting events that joined their case in this ingest
    joined_duplicates: int = 0      # … of which their case already had an identical event
    waiting_total: int = 0          # events still waiting in the database after this ingest
    quarantine_sample: list[str] = field(default_factory=list)

    def _sum(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    rows_read = property(lambda self: self._sum("rows_read"))
    loaded = property(lambda self: self._sum("loaded"))
    quarantined = property(lambda self: self._sum("quarantined"))
    duplicates = property(lambda self: self._sum("duplicates"))
    set_aside = property(lambda self: self._sum("set_aside"))
    waiting = property(lambda self: self._sum("waiting"))
    city_filled = property(lambda self: self._sum("city_filled"))
    city_resolved = property(lambda self: self._sum("city_resolved"))


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
    con.execute(MACROS)
    setup(con)
    started = dt.datetime.now().replace(microsecond=0)
    report = IngestReport(0)
    staged = []
    try:
        for path in map(Path, paths):
            scan = FileScan.of(path)
            first = len(report.files)
            for raw in read_any(path, known, sheet or (prof.sheet if prof else None),
                                prof.header_row if prof else None):
                st, facts = stage_file(con, len(report.files), raw, scan, builtin, prof, city, steps)
                staged.append(st)
                raw, plan = facts["raw"], facts["plan"]
                report.files.append(FileReport(
                    str(raw.path), raw.path.name, "", raw.path.stat().st_size, raw.format, raw.encoding, raw.sheet,
                    plan.layout, raw.header_row, plan.unmapped, rows_read=facts["rows"] + len(raw.bad_rows),
                    quarantined=facts["problems"], city_filled=facts["filled"], reader=facts["reader"]))
            scan.result()
            for fr in report.files[first:]:
                fr.sha256 = scan.sha256
        # Cities are placed before the transaction: it works on the staged (temporary) tables
        # only, and an UPDATE of them inside it would make the commit seconds slower.
        res = _prepare(con, report, staged)
        con.execute("BEGIN TRANSACTION")
        try:
            report.ingest_id = con.execute("SELECT nextval('ingest_seq')").fetchall()[0][0]
            _merge(con, report, staged, res, append, city)
            _log(con, report, started, command, city, profile)
            pause_for_test(con, "ingest-commit")    # TEST-ONLY pause point: a no-op unless AUDIT_TEST_PAUSE_AT is set
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        # The working tables hold a copy of the input: free it for what follows on this
        # connection (a check, a report).
        _drop_work(con, [t for st in staged for t in st.tables])
    return report


def _prepare(con, report: IngestReport, staged) -> cities.Resolution:
    """The working tables of the merge, the views of all staged events (`_ev0`) and case rows
    (`_cs0`), and the city of the rows without one."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _mquar (file_id INTEGER, "row" BIGINT, field VARCHAR, reason VARCHAR);
        CREATE OR REPLACE TEMP TABLE _touched (file_id BIGINT, city VARCHAR, case_id VARCHAR, kind VARCHAR);
        CREATE OR REPLACE TEMP TABLE _files (file_id INTEGER, file_name VARCHAR, sha256 VARCHAR);
        CREATE OR REPLACE TEMP TABLE _heads (file_id INTEGER, field VARCHAR, header VARCHAR);""")
    if staged:
        con.executemany("INSERT INTO _files VALUES (?, ?, ?)",
                        [[st.file_id, st.name, report.files[st.file_id].sha256] for st in staged])
        con.executemany("INSERT INTO _heads VALUES (?, ?, ?)",
                        [[st.file_id, a, h] for st in staged for a, h in st.headers.items()])
    events = [sql for st in staged for sql in st.events_sql]
    case_sql = [sql for st in staged for sql in st.cases_sql]
    con.execute(f"CREATE OR REPLACE TEMP VIEW _ev0 AS {' UNION ALL '.join(events) or EMPTY_EVENTS}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW _cs0 AS {' UNION ALL '.join(case_sql) or EMPTY_CASE_ROWS}")
    return cities.resolve(con, staged)


def _merge(con, report: IngestReport, staged, res: cities.Resolution, append: bool, city: str | None) -> None:
    """The merges, and the accounting of every row (see module doc)."""
    ingest_id = report.ingest_id
    events = [sql for st in staged for sql in st.events_sql]
    case_sql = [sql for st in staged for sql in st.cases_sql]
    counts = merge.MergeCounts()
    conflicts = merge.merge_cases(con, res.cases, ingest_id, counts)
    ev = res.events
    if conflicts:
        # A wide ledger's row quarantined as a conflict takes the events made from it along.
        con.execute(f"""CREATE OR REPLACE TEMP VIEW _evx AS SELECT * FROM {res.events} e
                        WHERE e.counted OR (e.pos >> 6) NOT IN (SELECT pos >> 6 FROM _csconf)""")
        ev = "_evx"
    # Only counted rows count; when they all come from one file and nothing else is in the
    # source (no wide ledger), that file's loaded rows are simply the rows inserted.
    derived = any(st.layout == "wide" for st in staged)
    if res.waiting is None and not has_rows(con, "_mquar"):
        # Every counted event row without a key problem is in `ev` (none waits, none ambiguous).
        counted = {st.file_id: st.events_ok for st in staged if st.counts_events and st.events_ok}
    else:
        counted = merge.count_counted(con, ev)
    if events:
        merge.merge_events(con, ev, merge.EVENTS, "_e", append, ingest_id, counts,
                           one_source=not case_sql and len(events) == 1,
                           one_file=next(iter(counted)) if len(counted) == 1 and not derived else None)
    for file_id, n in counted.items():
        counts.duplicates[file_id] += n - counts.loaded.get(file_id, 0)
    if res.waiting:
        waiting = merge.count_counted(con, res.waiting)
        if waiting:
            merge.merge_events(con, res.waiting, merge.WAITING, "_w", append, ingest_id, counts,
                               one_file=next(iter(waiting)) if len(waiting) == 1 else None)
        for file_id, n in waiting.items():
            counts.duplicates[file_id] += n - counts.waiting.get(file_id, 0)
    merge.release_waiting(con, counts)
    report.joined, report.joined_duplicates = counts.joined, counts.joined_duplicates

    for fr_id, fr in enumerate(report.files):
        fr.loaded = counts.loaded.get(fr_id, 0) + counts.waiting.get(fr_id, 0)
        fr.waiting = counts.waiting.get(fr_id, 0)
        fr.duplicates = counts.duplicates.get(fr_id, 0)
    for file_id, n in con.execute("SELECT file_id, count(*) FROM _mquar GROUP BY 1").fetchall():
        report.files[file_id].quarantined += n
    for file_id, n in res.resolved.items():
        report.files[file_id].city_resolved = n
    _cases_touched(con, report, counts)
    if city:
        _filled_elsewhere(con, report, staged, normalize_value(city))
    _record_problems(con, report)
    report.waiting_total = con.execute("SELECT count(*) FROM waiting_events").fetchall()[0][0]
    _check_accounting(con, report, staged)


def _cases_touched(con, report: IngestReport, counts: merge.MergeCounts) -> None:
    """Cases new to the database / replaced, per file and in all (a case can be both: new from its
    events and replaced from its case row, or touched by several files)."""
    if counts.first_load_cases is not None:    # the first events of the database, from one file
        only = next(i for i, f in enumerate(report.files) if f.layout in ("events", "combined"))
        report.files[only].new_cases = report.new_cases = counts.first_load_cases
        return
    if any(f.layout in ("combined", "wide") for f in report.files):
        # A file with both events and case rows may have touched a case twice.
        con.execute("""CREATE OR REPLACE TEMP TABLE _tc AS
                       SELECT file_id, city, case_id, bool_or(kind = 'replaced') AS r, bool_or(kind = 'new') AS n
                       FROM _touched GROUP BY ALL""")
        tc = "_tc"
    else:
        tc = "(SELECT file_id, city, case_id, kind = 'replaced' AS r, kind = 'new' AS n FROM _touched)"
    for file_id, replaced, new in con.execute(f"""
            SELECT file_id, count(*) FILTER (WHERE r), count(*) FILTER (WHERE n) FROM {tc} GROUP BY file_id""").fetchall():
        report.files[file_id].replaced_cases = replaced
        report.files[file_id].new_cases = new
    report.replaced_cases, report.new_cases = con.execute(f"""
        SELECT count(*) FILTER (WHERE r), count(*) FILTER (WHERE n AND NOT r)
        FROM (SELECT bool_or(r) AS r, bool_or(n) AS n FROM {tc} GROUP BY city, case_id)""").fetchall()[0]


def _filled_elsewhere(con, report: IngestReport, staged, city: str) -> None:
    """Case ids whose empty city --city filled while the database knows them only in other
    cities: the sign of a file that spans cities, where --city makes copies of other cities'
    cases. Reported, not refused: --city is the user's explicit choice."""
    for st in staged:
        if not report.files[st.file_id].city_filled:
            continue
        n, where = con.execute(f"""
            SELECT count(DISTINCT s.case_id), string_agg(DISTINCT o.city, '、' ORDER BY o.city)
            FROM {st.tables[0]} s JOIN (SELECT DISTINCT city, case_id FROM case_rows WHERE city <> $1
                                        UNION SELECT DISTINCT city, case_id FROM event_rows WHERE city <> $1) o
              ON o.case_id = s.case_id
            WHERE s.filled AND s.problem IS NULL AND NOT EXISTS (
                SELECT 1 FROM case_rows c WHERE c.city = $1 AND c.case_id = s.case_id AND c.ingest_id < $2)""",
                                [city, report.ingest_id]).fetchall()[0]
        report.files[st.file_id].filled_elsewhere = (n, where or "")


def _record_problems(con, report: IngestReport) -> None:
    """Store the quarantined rows and the set-aside cells of loaded rows; a row or cell of a file
    recorded before for the same reason is not recorded twice (ingesting the same file again
    leaves both lists as they were)."""
    ingest_id = report.ingest_id
    con.execute("""
        CREATE OR REPLACE TEMP VIEW _allquar AS
        SELECT file_id, "row", "column", reason, raw FROM _quar
        UNION ALL SELECT m.file_id, m."row", h.header, m.reason, NULL FROM _mquar m
                  LEFT JOIN _heads h ON h.file_id = m.file_id AND h.field = m.field;
        CREATE OR REPLACE TEMP TABLE _asidekept AS
        SELECT a.* FROM _aside a ANTI JOIN (SELECT file_id, "row" FROM _allquar) q USING (file_id, "row");""")
    con.execute("""
        INSERT INTO quarantine SELECT $1, f.file_name, f.sha256, q."row", q."column", q.reason, q.raw
        FROM _allquar q JOIN _files f USING (file_id)""", [ingest_id])
    con.execute("""
        INSERT INTO set_aside
        SELECT $1, f.file_name, f.sha256, a."row", coalesce(a."column", h.header), a.field, a.raw, a.reason
        FROM _asidekept a JOIN _files f USING (file_id)
        LEFT JOIN _heads h ON h.file_id = a.file_id AND h.field = a.field""", [ingest_id])
    for file_id, n in con.execute("SELECT file_id, count(*) FROM _asidekept GROUP BY 1").fetchall():
        report.files[file_id].set_aside = n
    report.quarantine_sample = [f"{name} 第 {row} 行: {reason}" for name, row, reason in con.execute("""
        SELECT file_name, source_row, reason FROM quarantine WHERE ingest_id = ?
        ORDER BY file_name, source_row LIMIT 10""", [ingest_id]).fetchall()]
    for table in ("quarantine", "set_aside"):
        con.execute(f"""
            DELETE FROM {table} q WHERE q.ingest_id = $1 AND EXISTS (
                SELECT 1 FROM {table} o WHERE o.ingest_id < $1 AND o.sha256 = q.sha256
                   AND o.source_row = q.source_row AND o.reason = q.reason)""", [ingest_id])


def _check_accounting(con, report: IngestReport, staged) -> None:
    """Internal invariants, checked before commit: each file's rows add up, and what it reports
    loaded is what the tables gained from it (events, waiting events, or case rows)."""
    gained: dict[int, int] = {}
    for table in ("event_rows", "waiting_events", "case_rows"):
        for file_id, n in con.execute(f"SELECT file_id, count(*) FROM {table} WHERE ingest_id = ? GROUP BY 1",
                                      [report.ingest_id]).fetchall():
            counts_events = staged[file_id].counts_events
            if (table == "case_rows") != counts_events:
                gained[file_id] = gained.get(file_id, 0) + n
    for i, f in enumerate(report.files):
        if f.rows_read != f.loaded + f.quarantined + f.duplicates:
            raise AuditError(f"内部错误: {f.name} 读入 {f.rows_read} 行 ≠ 载入 {f.loaded} + 隔离 {f.quarantined} + "
                             f"重复 {f.duplicates}；导入已撤销 (ingest rolled back)")
        if f.loaded != gained.get(i, 0):
            raise AuditError(f"内部错误: {f.name} 载入 {f.loaded} 行，但数据表只增加了 {gained.get(i, 0)} 行；"
                             "导入已撤销 (ingest rolled back)")


def _log(con, report: IngestReport, started: dt.datetime, command: str | None, city: str | None,
         profile) -> None:
    for i, f in enumerate(report.files):
        con.execute("""INSERT INTO ingest_files (ingest_id, file_id, path, file_name, sha256, size_bytes, format,
                           encoding, sheet, layout, header_row, city_option, profile, unmapped_columns, rows_read,
                           loaded, quarantined, duplicates, replaced_cases, new_cases, set_aside, city_filled,
                           city_resolved, waiting)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [report.ingest_id, i, f.path, f.name, f.sha256, f.size_bytes, f.format, f.encoding, f.sheet,
                     f.layout, f.header_row, city, str(profile) if profile else None, f.unmapped, f.rows_read,
                     f.loaded, f.quarantined, f.duplicates, f.replaced_cases, f.new_cases, f.set_aside,
                     f.city_filled, f.city_resolved, f.waiting])
    con.execute("""INSERT INTO ingests (ingest_id, started_at, finished_at, command, files, rows_read, loaded,
                   quarantined, duplicates, replaced_cases, set_aside, waiting_joined)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [report.ingest_id, started, dt.datetime.now().replace(microsecond=0), command, len(report.files),
                 report.rows_read, report.loaded, report.quarantined, report.duplicates, report.replaced_cases,
                 report.set_aside, report.joined])


def _drop_work(con, tables: list[str]) -> None:
    """Drop the temp tables and views of an ingest (whatever exists of them)."""
    names = set(tables) | set(merge.WORK_VIEWS) | set(merge.WORK_TABLES) | {"_evx", "_allquar", "_asidekept"}
    existing = con.execute("""SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary
                              UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary""").fetchall()
    for name, kind in sorted(existing, key=lambda r: r[1] != "VIEW"):    # views first
        if name in names:
            con.execute(f"DROP {kind} IF EXISTS {name}")
