"""The non-compliant cases of the report: the page's findings list and its printed digest.

On screen: every finding in scope, most serious first, up to `MAX_ROWS`. When there are more,
each severity that has findings keeps its share of the rows (`severity_quotas`), so that the
warning and info filters still find something, and the page says how many of each it left out.
Rows go to the page as JSON in a ``<script type="application/json">`` block that the page's
script renders (sort, filter); every string is escaped for that block (``<``, ``>``, ``&`` as
``\\u003c`` …), and the script writes cells as text.

In print: a digest per city instead: how many findings each rule has there and the
`DIGEST_PER_CITY` most serious of them, rendered by the template; the full list is the XLSX.
Both are picked in one pass over the findings (`findings_list`).

Personal data is masked unless asked otherwise.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field

from markupsafe import Markup, escape

from audit.outputs.findings import evidence_text, rule_labels
from audit.outputs.mask import mask_id, mask_name, mask_phone, scrub
from audit.report.text import SEVERITY_RANK, SEVERITY_ZH

MAX_ROWS = 3000         # findings on the page
DIGEST_PER_CITY = 10    # findings per city in the printed digest
COLUMNS = ("severity", "rule_id", "clause", "city", "hall", "case_id", "month", "applicant", "id_number",
           "phone", "staff", "message", "evidence", "title")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_SEVERITY_ORDER = "CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END"
# The order of the findings as one sortable value (a struct compares field by field): most serious
# first; then the most recent request month (months are YYYY-MM; none, last); then city, hall (none,
# last), case, rule. One value lets `min_by` keep the first n of a group without sorting it whole.
_ORDER_KEY = f"""struct_pack(s := {_SEVERITY_ORDER},
                             m := coalesce(-TRY_CAST(replace(c.month, '-', '') AS INTEGER), 0),
                             ci := f.city, hn := c.hall IS NULL, h := c.hall, k := f.case_id, r := f.rule_id)"""
# A date (2026-03-09), a month (2026-03), with a time (2026-03-09 09:30): Chromium breaks a line after
# any of their hyphens, so the digest keeps each whole (`keep_dates`).
_DATE = re.compile(r"\d{4}-\d{2}(?:-\d{2}(?: \d{1,2}:\d{2}(?::\d{2})?)?)?")


@dataclass
class FindingsList:
    """The findings of the report: `rows` for the page (lists in `COLUMNS` order); per severity
    with findings, how many there are in scope (`totals`) and how many the page lists (`shown`);
    the printed `digest`, one entry per city (see `findings_list`)."""

    rows: list[list[str]]
    totals: dict[str, int]
    shown: dict[str, int]
    digest: list[dict] = field(default_factory=list)
    trails: dict[str, dict] = field(default_factory=dict)     # "city␁case_id" → the case's trail

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    @property
    def capped(self) -> bool:
        return len(self.rows) < self.total

    def left_out(self) -> list[dict]:
        """Per severity, most serious first: listed and total findings (what the page says it left out)."""
        return [{"severity": s, "severity_zh": SEVERITY_ZH.get(s, s), "shown": self.shown.get(s, 0), "total": n}
                for s, n in self.totals.items()]


def severity_totals(con, run_id: int) -> dict[str, int]:
    """Findings of the cases in ``report_scope`` per severity, most serious first (only those with findings)."""
    rows = con.execute(f"""
        SELECT f.severity, count(*) FROM findings f
        SEMI JOIN report_scope s ON s.city = f.city AND s.case_id = f.case_id
        WHERE f.run_id = ? GROUP BY f.severity ORDER BY min({_SEVERITY_ORDER}), f.severity""", [run_id]).fetchall()
    return {severity: int(n) for severity, n in rows}


def severity_quotas(totals: dict[str, int], limit: int) -> dict[str, int]:
    """How many findings of each severity a list of at most `limit` rows holds.

    All of them when they fit. Otherwise every severity with findings gets an equal share of
    `limit` (all of its findings when it has fewer), and the rows left over go to the more
    serious first: 30,000 errors, 4,000 warnings and 900 infos in 3,000 rows are 1,100 + 1,000 + 900.
    `totals` is ordered most serious first (as `severity_totals` gives it).
    """
    present = [s for s, n in totals.items() if n > 0]
    if sum(totals[s] for s in present) <= limit:
        return {s: totals[s] for s in present}
    share = limit // len(present)
    quotas = {s: min(totals[s], share) for s in present}
    left = limit - sum(quotas.values())
    for s in present:
        extra = min(left, totals[s] - quotas[s])
        quotas[s] += extra
        left -= extra
    return quotas


def findings_list(con, run_id: int, show_personal: bool, limit: int = MAX_ROWS,
                  per_city: int = DIGEST_PER_CITY, pack=None) -> FindingsList:
    """The findings of the cases in ``report_scope``, masked unless `show_personal`, evidence in
    the labels of `pack` (the run's): at most `limit` for the page, split between the severities
    by `severity_quotas`; and the printed digest, per city (by name): its findings per severity,
    per rule (the most serious rule first, then the most frequent) and its `per_city` most serious.

    Order everywhere: error, warning, info; within each, the most recent request month first, then
    city, hall, case, rule. Both are picked in one pass over narrow keys (the row id and the order
    as one value), keeping the first n of each severity and of each city; only the rows picked
    are read whole.
    """
    totals = severity_totals(con, run_id)
    quotas = severity_quotas(totals, limit)
    picked = con.execute(f"""
        WITH quota AS (SELECT unnest(?::VARCHAR[]) AS severity, unnest(?::BIGINT[]) AS n),
        keyed AS (
            SELECT f.rowid AS row_id, f.severity, f.city, {_ORDER_KEY} AS key
            FROM findings f
            JOIN case_kpi c ON c.city = f.city AND c.case_id = f.case_id
            SEMI JOIN report_scope s ON s.city = f.city AND s.case_id = f.case_id
            WHERE f.run_id = ?),
        listed AS (
            SELECT unnest(list_slice(min_by(k.row_id, k.key, ?), 1, any_value(q.n))) AS row_id
            FROM keyed k JOIN quota q USING (severity)         -- every severity with findings has a quota
            GROUP BY k.severity),
        top AS (SELECT unnest(list_slice(min_by(row_id, key, ?), 1, ?)) AS row_id FROM keyed GROUP BY city)
        SELECT f.rowid IN (SELECT row_id FROM listed), f.rowid IN (SELECT row_id FROM top),
               f.severity, f.rule_id, f.clause, f.city, c.hall, f.case_id, c.month, c.applicant,
               c.id_number, c.phone, c.staff, f.message, CAST(f.evidence AS VARCHAR), r.title
        FROM findings f
        JOIN case_kpi c ON c.city = f.city AND c.case_id = f.case_id
        LEFT JOIN run_rules r ON r.run_id = f.run_id AND r.rule_id = f.rule_id
        WHERE f.rowid IN (SELECT row_id FROM listed UNION ALL SELECT row_id FROM top)
        ORDER BY {_ORDER_KEY}""",
                         [list(quotas), list(quotas.values()), run_id, max([1, *quotas.values()]),
                          max(per_city, 1), per_city]).fetchall()
    rows = _present([r[2:] for r in picked], show_personal, pack)
    listed = [row for row, r in zip(rows, picked) if r[0]]
    shown = {s: 0 for s in totals}
    for row in listed:
        shown[row[0]] = shown.get(row[0], 0) + 1
    top = [row for row, r in zip(rows, picked) if r[1]]
    return FindingsList(listed, totals, shown, _digest(con, run_id, top), case_trails(con, run_id, listed))


TRAIL_DATES = (  # run_case_dates column → label: what `audit case` shows, in the order of a case's life
    ("request_time", "请求"), ("start_time", "起算"), ("response_time", "响应"), ("response_limit", "响应时限"),
    ("promised_days", "承诺时限 (工作日)"), ("suspended_wd", "中止 (工作日)"), ("deadline", "办结时限"),
    ("complete_time", "办结"), ("close_time", "关闭"), ("archive_limit", "归档时限"), ("archive_time", "归档"),
    ("rating_date", "评价日"), ("followup_limit", "回访时限"),
)


def case_trails(con, run_id: int, rows: list[list[str]]) -> dict[str, dict]:
    """The trail of each case listed (the same as `audit case` shows, for the page): the dates the
    run computed (``run_case_dates``) and the case's events in judged order (time, then source
    order) with their source file and row. Events are read from the database as it is now (they
    are not stored with the run, as in `audit case`); notes are left out (free text)."""
    c, k = COLUMNS.index("city"), COLUMNS.index("case_id")
    cases = sorted({(r[c], r[k]) for r in rows})
    if not cases:
        return {}
    con.execute("CREATE OR REPLACE TEMP TABLE _trail_cases AS SELECT unnest(?::VARCHAR[]) AS city, "
                "unnest(?::VARCHAR[]) AS case_id", [[x[0] for x in cases], [x[1] for x in cases]])
    trails: dict[str, dict] = {f"{city}\u0001{case_id}": {"dates": [], "events": []} for city, case_id in cases}
    has_dates = con.execute("""SELECT count(*) FROM duckdb_tables() WHERE table_name = 'run_case_dates'
                               AND database_name = current_database()""").fetchall()[0][0]
    if has_dates:
        cols = ", ".join(f"d.{name}" for name, _ in TRAIL_DATES)
        for city, case_id, *values in con.execute(f"""
                SELECT d.city, d.case_id, {cols} FROM run_case_dates d SEMI JOIN _trail_cases t USING (city, case_id)
                WHERE d.run_id = ?""", [run_id]).fetchall():
            trails[f"{city}\u0001{case_id}"]["dates"] = [
                [label, _trail_value(v)] for (_, label), v in zip(TRAIL_DATES, values) if v is not None]
    for city, case_id, when, step, staff, source, row in con.execute("""
            SELECT e.city, e.case_id, strftime(e."time", '%Y-%m-%d %H:%M'), e.step, e.staff, e.source_file, e.source_row
            FROM events e SEMI JOIN _trail_cases t USING (city, case_id)
            ORDER BY e.city, e.case_id, e."time", e.seq""").fetchall():
        trails[f"{city}\u0001{case_id}"]["events"].append(
            [when, step, staff or "", f"{source}:{row}" if source else ""])
    con.execute("DROP TABLE _trail_cases")
    return trails


def _trail_value(value) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _digest(con, run_id: int, top: list[list[str]]) -> list[dict]:
    """The printed digest per city: counts per severity and rule, and the city's rows of `top`."""
    counts = con.execute(f"""
        SELECT f.city, f.rule_id, f.severity, any_value(r.title), count(*)
        FROM findings f
        SEMI JOIN report_scope s ON s.city = f.city AND s.case_id = f.case_id
        LEFT JOIN run_rules r ON r.run_id = f.run_id AND r.rule_id = f.rule_id
        WHERE f.run_id = ?
        GROUP BY f.city, f.rule_id, f.severity
        ORDER BY f.city, min({_SEVERITY_ORDER}), count(*) DESC, f.rule_id""", [run_id]).fetchall()
    cities: dict[str, dict] = {}
    for city, rule_id, severity, title, n in counts:
        entry = cities.setdefault(city, {"city": city, "total": 0, "severities": {}, "rules": [], "top": []})
        entry["total"] += n
        entry["severities"][severity] = entry["severities"].get(severity, 0) + n
        entry["rules"].append({"rule_id": rule_id, "severity": severity, "findings": n, "title": title or "",
                               "severity_zh": SEVERITY_ZH.get(severity, severity)})
    for row in top:
        cities[row[COLUMNS.index("city")]]["top"].append(dict(zip(COLUMNS, row)))
    for entry in cities.values():
        entry["severities"] = [{"severity": s, "severity_zh": SEVERITY_ZH.get(s, s), "findings": n}
                               for s, n in sorted(entry["severities"].items(), key=lambda kv: SEVERITY_RANK.get(kv[0], 9))]
        entry["shown"] = len(entry["top"])
    return list(cities.values())


def _present(rows: list[tuple], show_personal: bool, pack) -> list[list[str]]:
    """Finding rows (`COLUMNS`) as text: evidence in the rule's words, personal data masked unless `show_personal`."""
    labels = rule_labels(pack)
    out = []
    for row in rows:
        rec = dict(zip(COLUMNS, row))
        rec["evidence"] = evidence_text(rec["evidence"], labels.get(rec["rule_id"]))
        if not show_personal:
            rec["applicant"] = mask_name(rec["applicant"])
            rec["id_number"] = mask_id(rec["id_number"])
            rec["phone"] = mask_phone(rec["phone"])
            rec["message"] = scrub(rec["message"])
            rec["evidence"] = scrub(rec["evidence"])
        out.append(["" if rec[k] is None else str(rec[k]) for k in COLUMNS])
    return out


def keep_dates(text: object) -> Markup:
    """`text` escaped as HTML, each date, month or date-time in it inside ``<span class="nowrap">``
    (a printed line never ends in the middle of one)."""
    text = "" if text is None else str(text)
    out, at = [], 0
    for m in _DATE.finditer(text):
        out.append(escape(text[at:m.start()]))
        out.append(Markup('<span class="nowrap">') + escape(m.group(0)) + Markup("</span>"))
        at = m.end()
    out.append(escape(text[at:]))
    return Markup("").join(out)


def options(rows: list[list], column: str) -> list[str]:
    """The distinct values of one column of `rows`, sorted (for the filter selects)."""
    i = COLUMNS.index(column)
    return sorted({r[i] for r in rows if r[i]})


def script_json(data: object) -> Markup:
    """`data` as JSON that is safe inside ``<script type="application/json">``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for ch, esc in _SCRIPT_ESCAPES.items():
        text = text.replace(ch, esc)
    return Markup(text)


def table_data(rows: list[list], trails: dict[str, dict] | None = None) -> dict:
    """The JSON payload of the page's findings table (with each listed case's trail)."""
    return {"columns": list(COLUMNS), "severity": SEVERITY_ZH, "rows": rows, "trails": trails or {}}
