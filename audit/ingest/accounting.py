"""The accounting of an ingest (contract §1.5): every row of every file is loaded, quarantined or
a duplicate, and "loaded" is what the tables gained from it — checked before the commit.

The row key: a row of an input is identified by its file (``file_id``, the file's or sheet's
number within the ingest) and its physical row number ``row`` (CSV line, sheet row, Parquet
record); in the database that is (``ingest_id``, ``file_id``, ``source_row``), the key of
``ingest_files`` plus the row, which every quarantined row, set-aside cell, case row and event
carries. Here the working tables of the merge are joined on `ROW_KEY`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from audit.errors import AuditError
from audit.ingest import merge

ROW_KEY = ("file_id", "row")
_ROW_KEY_SQL = ", ".join(f'"{k}"' for k in ROW_KEY)


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
    reader: str = ""            # duckdb (read straight from the file) | exact (pyarrow, csv, calamine) | xes
    traces: int = 0             # XES: the traces read (each a case row) ...
    events: int = 0             # ... and the events read; rows_read = traces + events
    events_loaded: int = 0      # XES: the events of `loaded` (the rest are its traces' case rows)
    notes: list[str] = field(default_factory=list)   # what of the file was not used (XES attributes)


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
    vocabulary: str = "canonical"   # of the step names: canonical | open (audit.ingest.steps)

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



def cases_touched(con, report: IngestReport, counts: merge.MergeCounts) -> None:
    """Cases new to the database / replaced, per file and in all (a case can be both: new from its
    events and replaced from its case row, or touched by several files)."""
    if counts.first_load_cases is not None:    # the first events of the database, from one file
        only = next(i for i, f in enumerate(report.files) if f.layout in ("events", "combined"))
        report.files[only].new_cases = report.new_cases = counts.first_load_cases
        return
    if any(f.layout in ("combined", "wide", "xes") for f in report.files):
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


def filled_elsewhere(con, report: IngestReport, staged, city: str) -> None:
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


def record_problems(con, report: IngestReport) -> None:
    """Store the quarantined rows and the set-aside cells of loaded rows; a row or cell of a file
    recorded before for the same reason is not recorded twice (ingesting the same file again
    leaves both lists as they were)."""
    ingest_id = report.ingest_id
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW _allquar AS
        SELECT file_id, "row", "column", reason, raw FROM _quar
        UNION ALL SELECT m.file_id, m."row", h.header, m.reason, NULL FROM _mquar m
                  LEFT JOIN _heads h ON h.file_id = m.file_id AND h.field = m.field;
        CREATE OR REPLACE TEMP TABLE _asidekept AS
        SELECT a.* FROM _aside a ANTI JOIN (SELECT {_ROW_KEY_SQL} FROM _allquar) q USING ({_ROW_KEY_SQL});""")
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


def check_accounting(con, report: IngestReport, staged) -> None:
    """Internal invariants, checked before commit: each file's rows add up, and what it reports
    loaded is what the tables gained from it (events, waiting events, or case rows)."""
    gained: dict[int, int] = {}
    for table in ("event_rows", "waiting_events", "case_rows"):
        for file_id, n in con.execute(f"SELECT file_id, count(*) FROM {table} WHERE ingest_id = ? GROUP BY 1",
                                      [report.ingest_id]).fetchall():
            st = staged[file_id]
            if st.counts_cases if table == "case_rows" else st.counts_events:
                gained[file_id] = gained.get(file_id, 0) + n
    for i, f in enumerate(report.files):
        if f.rows_read != f.loaded + f.quarantined + f.duplicates:
            raise AuditError(f"内部错误: {f.name} 读入 {f.rows_read} 行 ≠ 载入 {f.loaded} + 隔离 {f.quarantined} + "
                             f"重复 {f.duplicates}；导入已撤销 (ingest rolled back)")
        if f.loaded != gained.get(i, 0):
            raise AuditError(f"内部错误: {f.name} 载入 {f.loaded} 行，但数据表只增加了 {gained.get(i, 0)} 行；"
                             "导入已撤销 (ingest rolled back)")


def log_ingest(con, report: IngestReport, started: dt.datetime, command: str | None, city: str | None,
               profile) -> None:
    """One row per file in ``ingest_files`` and one for the command in ``ingests``."""
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
                   quarantined, duplicates, replaced_cases, set_aside, waiting_joined, vocabulary)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [report.ingest_id, started, dt.datetime.now().replace(microsecond=0), command, len(report.files),
                 report.rows_read, report.loaded, report.quarantined, report.duplicates, report.replaced_cases,
                 report.set_aside, report.joined, report.vocabulary])
