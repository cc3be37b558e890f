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

from audit.ingest.normalize import sql_str
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
    cityless = con.execute("""SELECT (SELECT count(*) FROM (SELECT 1 FROM _ev0 WHERE city IS NULL LIMIT 1))
                                   + (SELECT count(*) FROM (SELECT 1 FROM _cs0 WHERE city IS NULL LIMIT 1))""").fetchall()[0][0]
    if not cityless:
        return Resolution()
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _cityless AS
        SELECT DISTINCT case_id FROM (SELECT case_id FROM _ev0 WHERE city IS NULL
                                      UNION ALL SELECT case_id FROM _cs0 WHERE city IS NULL);
        -- The cities each of those case ids is known in, here or in the database.
        CREATE OR REPLACE TEMP TABLE _cmap AS
        SELECT case_id, min(city) AS city, count(*) AS n, string_agg(city, '、' ORDER BY city) AS cities
        FROM (SELECT DISTINCT city, case_id FROM (
                  SELECT city, case_id FROM case_rows SEMI JOIN _cityless USING (case_id)
                  UNION ALL SELECT city, case_id FROM event_rows SEMI JOIN _cityless USING (case_id)
                  UNION ALL SELECT city, case_id FROM _cs0 SEMI JOIN _cityless USING (case_id) WHERE city IS NOT NULL
                  UNION ALL SELECT city, case_id FROM _ev0 SEMI JOIN _cityless USING (case_id) WHERE city IS NOT NULL))
        GROUP BY case_id;
        -- The city-less events with what is known of their case: n = 1 placed, n > 1 ambiguous,
        -- NULL not known yet.
        CREATE OR REPLACE TEMP TABLE _evres AS
        SELECT e.pos, e.counted, m.city, e.case_id, e.step, e."time", e.staff, e.note, e.h, m.n, m.cities
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
        FROM _evres WHERE n > 1 AND counted""")
    # Case rows: placed, or quarantined (counted rows) / set aside (a combined export's folded
    # attributes: its event rows wait for the case, its attributes cannot be kept).
    cols = ", ".join(f"c.{a}, c.p_{a}" for a in ATTRS)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _csres AS
        SELECT c.pos, c.file_id, c."row", c.counted, m.city, c.case_id, {cols}, m.n, m.cities
        FROM _cs0 c LEFT JOIN _cmap m USING (case_id) WHERE c.city IS NULL;
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
