"""The non-compliant cases table: findings in scope, most serious first, capped for the page.

Rows go to the page as JSON in a ``<script type="application/json">`` block that the page's
script renders (sort, filter). Personal data is masked unless asked otherwise; every string is
escaped for that block (``<``, ``>``, ``&`` as ``\\u003c`` …), and the script writes cells as text.
"""

from __future__ import annotations

import json

from markupsafe import Markup

from audit.outputs.findings import evidence_text, rule_labels
from audit.outputs.mask import mask_id, mask_name, mask_phone, scrub
from audit.report.text import SEVERITY_ZH

MAX_ROWS = 3000
COLUMNS = ("severity", "rule_id", "clause", "city", "hall", "case_id", "month", "applicant", "id_number",
           "phone", "staff", "message", "evidence", "title")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def findings_rows(con, run_id: int, show_personal: bool, limit: int = MAX_ROWS, pack=None) -> list[list]:
    """The first `limit` findings of the cases in ``report_scope``, masked unless `show_personal`;
    evidence reads with the labels of `pack` (the run's).

    Order: error, warning, info; then the most recent request month first; then city, hall, case, rule.
    """
    rows = con.execute("""
        SELECT f.severity, f.rule_id, f.clause, f.city, c.hall, f.case_id, c.month, c.applicant, c.id_number,
               c.phone, c.staff, f.message, CAST(f.evidence AS VARCHAR), r.title
        FROM findings f
        JOIN case_kpi c ON c.city = f.city AND c.case_id = f.case_id
        SEMI JOIN report_scope s ON s.city = f.city AND s.case_id = f.case_id
        LEFT JOIN run_rules r ON r.run_id = f.run_id AND r.rule_id = f.rule_id
        WHERE f.run_id = ?
        ORDER BY CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                 c.month DESC NULLS LAST, f.city, c.hall NULLS LAST, f.case_id, f.rule_id
        LIMIT ?""", [run_id, limit]).fetchall()
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


def table_data(rows: list[list]) -> dict:
    """The JSON payload of the page's findings table."""
    return {"columns": list(COLUMNS), "severity": SEVERITY_ZH, "rows": rows}
