"""What the database could not take as it was: the data-quality notice of a run.

Computed by `audit check` from the database and stored with the run (``runs.data_quality``), so
that the check's summary and the report say the same: rows quarantined, cells set aside (their
rows loaded with the field empty), events waiting for their case row (no city, case not known
yet: not judged until a case table naming them is ingested), and cases without events.
"""

from __future__ import annotations

import json

WAITING_SAMPLE = 10


def data_quality(con) -> dict:
    """The counts of the notice (see module doc), over the whole database."""
    one = lambda sql: con.execute(sql).fetchall()[0][0]  # noqa: E731
    waiting = con.execute("""
        SELECT count(*), count(DISTINCT case_id) FROM waiting_events""").fetchall()[0]
    # A waiting case id known in several cities stays waiting: its city cannot be decided.
    ambiguous = con.execute("""
        SELECT case_id, string_agg(city, '、' ORDER BY city) FROM (
            SELECT DISTINCT c.city, c.case_id FROM case_rows c SEMI JOIN waiting_events w USING (case_id)
            UNION SELECT DISTINCT e.city, e.case_id FROM event_rows e SEMI JOIN waiting_events w USING (case_id))
        GROUP BY case_id HAVING count(*) > 1 ORDER BY case_id""").fetchall()
    sample = [r[0] for r in con.execute(f"""
        SELECT case_id FROM waiting_events GROUP BY case_id ORDER BY case_id LIMIT {WAITING_SAMPLE}""").fetchall()]
    no_events = one("""SELECT count(*) FROM case_rows c ANTI JOIN (SELECT DISTINCT city, case_id FROM event_rows) e
                       USING (city, case_id)""")
    return {"quarantined_rows": one("SELECT count(*) FROM quarantine"),
            "set_aside_cells": one("SELECT count(*) FROM set_aside"),
            "waiting_events": waiting[0], "waiting_cases": waiting[1], "waiting_sample": sample,
            "waiting_ambiguous": [{"case_id": c, "cities": cities} for c, cities in ambiguous],
            "cases_without_events": no_events}


def notice_lines(dq: dict | str | None) -> list[str]:
    """The notice in Chinese, one line per kind of problem; empty when there is nothing to say."""
    if not dq:
        return []
    dq = json.loads(dq) if isinstance(dq, str) else dq
    lines = []
    if dq.get("quarantined_rows"):
        lines.append(f"隔离的行 {dq['quarantined_rows']:,} 行 (未载入，原因见 audit quarantine)")
    if dq.get("set_aside_cells"):
        lines.append(f"搁置的单元格 {dq['set_aside_cells']:,} 个 (所在行已载入，该字段留空；见 audit quarantine)")
    if dq.get("waiting_events"):
        more = "…" if dq["waiting_cases"] > len(dq.get("waiting_sample") or []) else ""
        lines.append(f"等待台账的事件 {dq['waiting_events']:,} 个，涉及 {dq['waiting_cases']:,} 个办件编号 "
                     f"({'、'.join(dq.get('waiting_sample') or [])}{more})：没有地市，库中还没有这些办件的台账，"
                     "未参与审计；导入含这些办件的台账后自动归入")
    for amb in dq.get("waiting_ambiguous") or []:
        lines.append(f"办件编号 {amb['case_id']} 在多个地市 ({amb['cities']}) 都有，其等待的事件无法归入")
    if dq.get("cases_without_events"):
        lines.append(f"没有任何环节记录的办件 {dq['cases_without_events']:,} 件 (见 DATA-NO-EVENTS)")
    return lines
