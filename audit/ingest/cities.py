"""The city of rows that have none (contract §1.2).

An event log often has no city column: one export may span several cities. A row without a city
takes the city of its case, found by case_id among the rows of this ingest and of the database
that name a city (case rows, and events of a file that has a city column). A case_id known in
two or more cities is ambiguous: the row is quarantined, naming them. An event whose case is not
known anywhere yet *waits* for its case row (`waiting_events`); a case row without a city that
cannot be placed is quarantined (its city cannot come from anywhere else).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.ingest.normalize import has_rows, sql_str
from audit.ingest.stage import ATTRS, ROW_BITS

AMBIGUOUS = ("'办件编号 ' || case_id || ' 在多个地市 (' || cities || ') 都有，无法确定本行属于哪个地市；"
             "请在文件中加 地市 列'")
NO_CITY = ("'缺少地市：文件没有 地市 列 (或本行为空)，库中和本次导入中也没有办件 ' || case_id || "
           "'；请用 --city 指定，或在文件中加 地市 列'")
UNPLACED = ("'办件 ' || case_id || ' 的地市未知 (文件没有 地市 列，库中也没有该办件)，此属性未载入；"
            "请用 --city 指定或先导入台账'")


@dataclass
class Resolution:
    """What resolving the cities of one ingest did."""

    events: str = "_ev0"          # events with a city (given, or taken from their case)
    waiting: str | None = None    # counted events whose case is not known yet
    cases: str = "_cs0"           # case rows with a city
    resolved: dict[int, int] = field(default_factory=dict)   # per file: counted rows given their case's city


def resolve(con, staged) -> Resolution:
    """Give the city-less rows of this ingest their case's city (see module doc).

    `_ev0` (events) and `_cs0` (case rows) are views over the staged tables. Ambiguous counted rows and
    case rows that cannot be placed go to `_mquar` (quarantine), the attributes of a combined
    export's case that cannot be placed to `_aside`. Events made from a wide ledger's row follow
    their row."""
    if not (has_rows(con, "_ev0 WHERE city IS NULL") or has_rows(con, "_cs0 WHERE city IS NULL")):
        return Resolution()
    # The cities each case id is known in, here or in the database: min = max when it is one.
    # The database's rows are narrowed to the case ids in question first; this ingest's own are
    # taken whole (as many as its rows: cheaper than finding which ones matter).
    known = ["SELECT city, case_id FROM _cs0 WHERE city IS NOT NULL",
             "SELECT city, case_id FROM _ev0 WHERE city IS NOT NULL"]
    if has_rows(con, "case_rows") or has_rows(con, "event_rows"):
        con.execute("""CREATE OR REPLACE TEMP TABLE _cityless AS
                       SELECT DISTINCT case_id FROM (SELECT case_id FROM _ev0 WHERE city IS NULL
                                                     UNION ALL SELECT case_id FROM _cs0 WHERE city IS NULL)""")
        known += ["SELECT city, case_id FROM case_rows SEMI JOIN _cityless USING (case_id)",
                  "SELECT city, case_id FROM event_rows SEMI JOIN _cityless USING (case_id)"]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _cmap AS
        SELECT case_id, min(city) AS city, min(city) <> max(city) AS ambiguous
        FROM ({' UNION ALL '.join(known)}) GROUP BY case_id;
        -- The names of the cities of an ambiguous case id, for the reason.
        CREATE OR REPLACE TEMP TABLE _camb AS
        SELECT case_id, string_agg(DISTINCT city, '、' ORDER BY city) AS cities
        FROM ({' UNION ALL '.join(known)}) SEMI JOIN (SELECT case_id FROM _cmap WHERE ambiguous) USING (case_id)
        GROUP BY case_id""")
    res = Resolution(events="_ev", waiting="_evwait", cases="_cs")
    # Case rows: their tables are updated in place (an UPDATE writes one column and keeps each
    # row's rowid, from which its row number comes).
    for st in staged:
        tables = ([st.case_table] if st.case_table else []) + [t for t in st.tables if t.startswith("_csf")]
        for table in tables:
            n = con.execute(f"""UPDATE {table} SET city = m.city FROM _cmap m
                                WHERE {table}.city IS NULL AND {table}.case_id = m.case_id AND NOT m.ambiguous
                                {f'AND {table}.problem IS NULL' if table == st.case_table else ''}""").fetchall()[0][0]
            if table == st.case_table and n:
                res.resolved[st.file_id] = n
    # Events (millions of rows): their city is looked up as they are read, which costs less than
    # writing it into their tables.
    con.execute("""
        CREATE OR REPLACE TEMP VIEW _placed AS SELECT case_id, city FROM _cmap WHERE NOT ambiguous;
        CREATE OR REPLACE TEMP VIEW _ev AS
        SELECT e.pos, e.counted, coalesce(e.city, m.city) AS city, e.case_id, e.step, e."time", e.staff, e.note, e.h
        FROM _ev0 e LEFT JOIN _placed m ON e.city IS NULL AND m.case_id = e.case_id
        WHERE e.city IS NOT NULL OR m.city IS NOT NULL;
        CREATE OR REPLACE TEMP VIEW _cs AS SELECT * FROM _cs0 WHERE city IS NOT NULL;""")
    # Per file: the counted events without a city, and those of them still without one (one pass).
    left = False
    for file_id, n, unplaced in con.execute("""
            SELECT e.pos >> 40, count(*), count(*) FILTER (WHERE m.case_id IS NULL)
            FROM _ev0 e LEFT JOIN _placed m USING (case_id) WHERE e.city IS NULL AND e.counted GROUP BY 1""").fetchall():
        left = left or unplaced > 0
        if n - unplaced:      # (added to the case rows of an XES log's traces)
            res.resolved[file_id] = res.resolved.get(file_id, 0) + n - unplaced
    # (a wide ledger's events, not counted, follow their case row)
    left = left or has_rows(con, "_ev0 e WHERE e.city IS NULL AND NOT e.counted AND e.case_id NOT IN (SELECT case_id FROM _placed)")
    if not (left or has_rows(con, "_cs0 WHERE city IS NULL")):
        res.waiting = None       # every row has its city now
        return res
    # What is still without a city is ambiguous, or not known yet (waiting; a case row: quarantined).
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW _evwait AS
        SELECT * FROM _ev0 WHERE city IS NULL AND counted AND case_id NOT IN (SELECT case_id FROM _cmap);
        -- (A wide ledger's events whose row has no city follow their row, quarantined.)
        INSERT INTO _mquar SELECT pos >> 40, (pos >> 6) & {ROW_BITS}, 'case_id', {AMBIGUOUS}
        FROM _ev0 JOIN _camb USING (case_id) WHERE city IS NULL AND counted;
        INSERT INTO _mquar SELECT file_id, "row", 'case_id', CASE WHEN cities IS NOT NULL THEN {AMBIGUOUS} ELSE {NO_CITY} END
        FROM _cs0 LEFT JOIN _camb USING (case_id) WHERE city IS NULL AND counted;""")
    for a in ATTRS:
        con.execute(f"""
            INSERT INTO _aside SELECT file_id, "row", {sql_str(a)}, NULL, CAST({a} AS VARCHAR), {UNPLACED}
            FROM _cs0 WHERE city IS NULL AND NOT counted AND p_{a} AND {a} IS NOT NULL""")
    return res
