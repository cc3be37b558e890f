"""Compliance per rule and per clause of the standard, over the report's scope.

Needs the temp table ``report_scope`` (city, case_id of every case in scope). A rule's count is
the number of cases in scope it flagged; its share is that count over the cases in scope.
"""

from __future__ import annotations

from audit.pack import Pack
from audit.report.text import SEVERITY_RANK, SEVERITY_ZH, fmt_count, pct

SCOPED_FINDINGS = """
    SELECT DISTINCT f.rule_id, f.severity, f.clause, f.city, f.case_id
    FROM findings f SEMI JOIN report_scope s ON s.city = f.city AND s.case_id = f.case_id
    WHERE f.run_id = ?"""


def clause_key(clause: str | None) -> str:
    """The chapter a rule's clause belongs to: '10 限时办结' → '10', '8/9 资料归档' → '8/9'."""
    return (clause or "").split(" ", 1)[0]


def _clause_order(pack: Pack | None) -> dict[str, int]:
    return {key: i for i, key in enumerate(pack.clauses)} if pack else {}


def rule_table(con, run_id: int, n_cases: int, pack: Pack | None) -> list[dict]:
    """One row per rule of the run: cases flagged in scope and their share of the cases in scope."""
    rows = con.execute(f"""
        WITH f AS ({SCOPED_FINDINGS})
        SELECT r.rule_id, r.severity, r.clause, r.title, count(f.case_id) AS cases
        FROM run_rules r LEFT JOIN f ON f.rule_id = r.rule_id
        WHERE r.run_id = ?
        GROUP BY ALL""", [run_id, run_id]).fetchall()
    order = _clause_order(pack)
    rows.sort(key=lambda r: (order.get(clause_key(r[2]), len(order)), r[0]))
    return [{"rule_id": rule_id, "severity": severity, "severity_zh": SEVERITY_ZH.get(severity, severity),
             "clause": clause, "title": title, "cases": fmt_count(cases), "cases_n": int(cases),
             "share": pct(cases / n_cases) if n_cases else ""}
            for rule_id, severity, clause, title, cases in rows]


def clause_table(con, run_id: int, n_cases: int, pack: Pack | None) -> list[dict]:
    """One row per clause (chapter) of the standard: cases with any finding, and with a violation."""
    rows = con.execute(f"""
        WITH f AS ({SCOPED_FINDINGS}),
        r AS (SELECT split_part(clause, ' ', 1) AS ck, list(rule_id ORDER BY rule_id) AS rules
              FROM run_rules WHERE run_id = ? GROUP BY ALL)
        SELECT r.ck, r.rules,
               (SELECT count(DISTINCT (city, case_id)) FROM f WHERE split_part(f.clause, ' ', 1) = r.ck) AS cases,
               (SELECT count(DISTINCT (city, case_id)) FROM f
                 WHERE split_part(f.clause, ' ', 1) = r.ck AND f.severity = 'error') AS error_cases
        FROM r""", [run_id, run_id]).fetchall()
    order = _clause_order(pack)
    rows.sort(key=lambda r: (order.get(r[0], len(order)), r[0]))
    clauses = pack.clauses if pack else {}
    return [{"clause": ck, "name": clauses.get(ck, ""), "rules": "、".join(rules),
             "cases": fmt_count(cases), "share": pct(cases / n_cases) if n_cases else "",
             "error_cases": fmt_count(errors),
             "compliance": pct(1 - errors / n_cases) if n_cases else ""}
            for ck, rules, cases, errors in rows]


def severity_counts(con, run_id: int) -> dict[str, int]:
    """Cases in scope with at least one finding of each severity."""
    rows = con.execute(f"""SELECT severity, count(DISTINCT (city, case_id)) FROM ({SCOPED_FINDINGS})
                           GROUP BY severity""", [run_id]).fetchall()
    counts = {s: 0 for s in SEVERITY_RANK}
    counts.update({s: int(n) for s, n in rows})
    return counts
