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
from pathlib import Path

import duckdb

from audit.db import transaction
from audit.ingest import accounting, cities, merge, steps
from audit.ingest.accounting import FileReport, IngestReport
from audit.ingest.normalize import MACROS, has_rows, known_headers
from audit.ingest.profile import load_profile
from audit.ingest.readers import FileScan, read_any
from audit.ingest.stage import EMPTY_CASE_ROWS, EMPTY_EVENTS, setup, stage_file, stage_xes
from audit.ingest.xes import XesLog
from audit.vocabulary import header_lookup, normalize_value


def ingest(con: duckdb.DuckDBPyConnection, paths: list[str | Path], city: str | None = None,
           profile: str | Path | None = None, sheet: str | None = None, append: bool = False,
           command: str | None = None, vocabulary: str | None = None) -> IngestReport:
    """Load `paths` (any format and layout of contract §1, and XES logs) in one transaction; see
    module doc. `vocabulary`: canonical | open (`audit.ingest.steps`; None: the profile's, else
    the database's, else canonical); an ingest with another vocabulary than the database's is refused (UsageError).

    Files are first staged into temporary tables (outside the transaction: a file DuckDB's fast
    reader rejects is then simply read again by the exact reader); only the merge into the
    database's tables runs in the transaction."""
    if vocabulary is not None:
        steps.choose(vocabulary, None)       # a wrong value is named before the profile is read
    prof = load_profile(profile, vocabulary) if profile else None
    vocabulary = steps.choose(vocabulary, prof.vocabulary if prof else None, steps.vocabulary_of(con))
    steps.check_database(con, vocabulary)
    builtin = header_lookup()
    known = known_headers(builtin, prof)
    names = steps.step_names(vocabulary, prof.steps if prof else None)
    con.execute(MACROS)
    setup(con)
    started = dt.datetime.now().replace(microsecond=0)
    report = IngestReport(0, vocabulary=vocabulary)
    staged = []
    try:
        for path in map(Path, paths):
            scan = FileScan.of(path)
            first = len(report.files)
            for raw in read_any(path, known, sheet or (prof.sheet if prof else None),
                                prof.header_row if prof else None):
                if isinstance(raw, XesLog):
                    staged.append(_stage_xes(con, report, raw, prof, city, names))
                    continue
                st, facts = stage_file(con, len(report.files), raw, scan, builtin, prof, city, names)
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
        with transaction(con, pause_point="ingest-commit"):
            report.ingest_id = con.execute("SELECT nextval('ingest_seq')").fetchall()[0][0]
            _merge(con, report, staged, res, append, city)
            steps.record(con, vocabulary)
            accounting.log_ingest(con, report, started, command, city, profile)
    finally:
        # The working tables hold a copy of the input: free it for what follows on this
        # connection (a check, a report).
        _drop_work(con, [t for st in staged for t in st.tables])
    return report


def _stage_xes(con, report: IngestReport, log: XesLog, prof, city, names):
    """Stage an XES log (its temporary files removed whatever happens) and add its file report."""
    try:
        st, facts = stage_xes(con, len(report.files), log, prof, city, names)
    finally:
        log.cleanup()
    report.files.append(FileReport(
        str(log.path), log.path.name, "", log.path.stat().st_size, log.format, log.encoding, None, "xes", 0,
        log.unmapped, rows_read=log.rows_read, quarantined=facts["problems"], city_filled=facts["filled"],
        reader="xes", traces=log.traces_read, events=log.events_read, notes=log.notes))
    return st


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
    # The case rows loaded per file: an XES log's traces are counted rows too, next to its events.
    cases_loaded = dict(counts.loaded)
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
        counts.duplicates[file_id] += n - (counts.loaded.get(file_id, 0) - cases_loaded.get(file_id, 0))
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
        if fr.layout == "xes":
            fr.events_loaded = fr.loaded - cases_loaded.get(fr_id, 0)
        fr.waiting = counts.waiting.get(fr_id, 0)
        fr.duplicates = counts.duplicates.get(fr_id, 0)
    for file_id, n in con.execute("SELECT file_id, count(*) FROM _mquar GROUP BY 1").fetchall():
        report.files[file_id].quarantined += n
    for file_id, n in res.resolved.items():
        report.files[file_id].city_resolved = n
    accounting.cases_touched(con, report, counts)
    if city:
        accounting.filled_elsewhere(con, report, staged, normalize_value(city))
    accounting.record_problems(con, report)
    report.waiting_total = con.execute("SELECT count(*) FROM waiting_events").fetchall()[0][0]
    accounting.check_accounting(con, report, staged)


def _drop_work(con, tables: list[str]) -> None:
    """Drop the temp tables and views of an ingest (whatever exists of them)."""
    names = set(tables) | set(merge.WORK_VIEWS) | set(merge.WORK_TABLES) | {"_evx", "_allquar", "_asidekept"}
    existing = con.execute("""SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary
                              UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary""").fetchall()
    for name, kind in sorted(existing, key=lambda r: r[1] != "VIEW"):    # views first
        if name in names:
            con.execute(f"DROP {kind} IF EXISTS {name}")
