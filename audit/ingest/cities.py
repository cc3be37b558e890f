"""The city of rows that have none (contract §1.2).

An event log often has no city column: one export may span several cities. A row without a city
takes the city of its case, found by case_id among the rows of this ingest and of the database
that name a city (case rows, and events of a file that has a city column). A case_id known in
two or more cities is ambiguous: the row is quarantined, naming them. An event whose case is not
known anywhere yet *waits* for its case row (`waiting_events`); a case row without a city that
cannot be placed is quarantined (its city cannot come from anywhere else).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.ingest.normalize import has_rows, sql_str
from audit.ingest.stage import ATTRS, ROW_BITS


@dataclass
class Resolution:
    """What resolving the cities of one ingest did: the names of the relations it made."""

    events: str = "_ev0"          # events with a city (given, or taken from their case)
    waiting: str | None = None    # counted events whose case is not known yet
    cases: str = "_cs0"           # case rows with a city


def resolve(con) -> Resolution:
    """Give the city-less rows of `_ev0` (events) and `_cs0` (case rows) their case's city.

    Ambiguous counted rows and case rows that cannot be placed go to `_mquar` (quarantine);
    the attributes of a combined export's case that cannot be placed go to `_aside`. Events
    derived from a case row (a wide ledger's time columns, not counted) follow their row."""
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
        SELECT case_id, min(city) AS city, CASE WHEN min(city) = max(city) THEN 1 ELSE 2 END AS n
        FROM ({' UNION ALL '.join(known)}) GROUP BY case_id;
        -- The names of the cities of an ambiguous case id, for the reason.
        CREATE OR REPLACE TEMP TABLE _camb AS
        SELECT case_id, string_agg(DISTINCT city, '、' ORDER BY city) AS cities
        FROM ({' UNION ALL '.join(known)}) SEMI JOIN (SELECT case_id FROM _cmap WHERE n > 1) USING (case_id)
        GROUP BY case_id;
        -- The city-less events with what is known of their case: n = 1 placed, n > 1 ambiguous,
        -- NULL not known yet.
        CREATE OR REPLACE TEMP TABLE _evres AS
        SELECT e.pos, e.counted, m.city, e.case_id, e.step, e."time", e.staff, e.note, e.h, m.n
        FROM _ev0 e LEFT JOIN _cmap m USING (case_id) WHERE e.city IS NULL;
        CREATE OR REPLACE TEMP VIEW _ev AS
        SELECT * FROM _ev0 WHERE city IS NOT NULL
        UNION ALL SELECT pos, counted, city, case_id, step, "time", staff, note, h FROM _evres WHERE n = 1;
        CREATE OR REPLACE TEMP VIEW _evwait AS
        SELECT pos, counted, NULL::VARCHAR AS city, case_id, step, "time", staff, note, h
        FROM _evres WHERE n IS NULL AND counted;
    """)
    ambiguous = ("'办件编号 ' || case_id || ' 在多个地市 (' || cities || ') 都有，无法确定本行属于哪个地市；"
                 "请在文件中加 地市 列'")
    con.execute(f"""
        INSERT INTO _mquar SELECT pos >> 40, (pos >> 6) & {ROW_BITS}, 'case_id', {ambiguous}
        FROM _evres JOIN _camb USING (case_id) WHERE n > 1 AND counted""")
    # Case rows: placed, or quarantined (counted rows) / set aside (a combined export's folded
    # attributes: its event rows wait for the case, its attributes cannot be kept).
    cols = ", ".join(f"c.{a}, c.p_{a}" for a in ATTRS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _csres AS
        SELECT c.pos, c.file_id, c."row", c.counted, m.city, c.case_id, {cols}, m.n, a.cities
        FROM _cs0 c LEFT JOIN _cmap m USING (case_id) LEFT JOIN _camb a USING (case_id) WHERE c.city IS NULL;
        CREATE OR REPLACE TEMP VIEW _cs AS
        SELECT * FROM _cs0 WHERE city IS NOT NULL
        UNION ALL SELECT * EXCLUDE (n, cities) FROM _csres WHERE n = 1;
        INSERT INTO _mquar SELECT file_id, "row", 'case_id',
            CASE WHEN n > 1 THEN {ambiguous}
                 ELSE '缺少地市：文件没有 地市 列 (或本行为空)，库中和本次导入中也没有办件 ' || case_id ||
                      '；请用 --city 指定，或在文件中加 地市 列' END
        FROM _csres WHERE counted AND (n IS NULL OR n > 1);
    """)
    unplaced = "'办件 ' || case_id || ' 的地市未知 (文件没有 地市 列，库中也没有该办件)，此属性未载入；请用 --city 指定或先导入台账'"
    for a in ATTRS:
        con.execute(f"""
            INSERT INTO _aside SELECT file_id, "row", {sql_str(a)}, NULL, CAST({a} AS VARCHAR), {unplaced}
            FROM _csres WHERE NOT counted AND (n IS NULL OR n > 1) AND p_{a} AND {a} IS NOT NULL""")
    return Resolution(events="_ev", waiting="_evwait", cases="_cs")
