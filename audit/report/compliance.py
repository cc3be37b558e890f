"""Compliance per rule and per clause of the standard, over the report's scope.

`scope_findings` first keeps the run's findings of the cases in ``report_scope`` (city, case_id of
every case in scope) in the temp table ``report_findings``. A rule's count is the number of cases in
scope it flagged; its share is that count over the cases in scope. A clause's compliance counts, like
合规率, only the error findings no waiver covers (`audit.check.waivers`).
"""

from __future__ import annotations

from audit.report.text import SEVERITY_RANK, SEVERITY_ZH, fmt_count, pct
from audit.rules.pack import Pack
from audit.rules.titles import rule_title


def scope_findings(con, run_id: int) -> int:
    """Temp table ``report_findings``: (rule, case) pairs of the run within the scope; returns its size."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE report_findings AS
        SELECT DISTINCT f.rule_id, f.severity, f.clause, f.city, f.case_id, f.waiver_id IS NOT NULL AS waived
        FROM findings f SEMI JOIN report_scope s ON s.city = f.city AND s.case_id = f.case_id
        WHERE f.run_id = ?""", [run_id])
    return con.execute("SELECT count(*) FROM report_findings").fetchall()[0][0]


def clause_key(clause: str | None) -> str:
    """The chapter a rule's clause belongs to: '10 限时办结' → '10', '8/9 资料归档' → '8/9'."""
    return (clause or "").split(" ", 1)[0]


def _clause_order(pack: Pack | None) -> dict[str, int]:
    return {key: i for i, key in enumerate(pack.clauses)} if pack else {}


def rule_catalog(con, run_id: int, pack: Pack | None, settings, city: str | None = None,
                 cities: list[str] | None = None) -> dict[str, dict]:
    """The run's rules in the pack's clause order: id → severity, clause, its chapter
    (`clause_key`), the title as the pack writes it (`raw_title`) and with the values in force
    (`title`, `audit.report.text.rule_title`: for `city`, or the default with the differing values
    of `cities`)."""
    rows = con.execute("SELECT rule_id, severity, clause, title FROM run_rules WHERE run_id = ?", [run_id]).fetchall()
    order = _clause_order(pack)
    rows.sort(key=lambda r: (order.get(clause_key(r[2]), len(order)), r[0]))
    by_id = {r.id: r for r in pack.rules} if pack else {}
    out = {}
    for rule_id, severity, clause, title in rows:
        raw = by_id[rule_id].title if rule_id in by_id else title or ""
        out[rule_id] = {"rule_id": rule_id, "severity": severity, "severity_zh": SEVERITY_ZH.get(severity, severity),
                        "clause": clause, "clause_key": clause_key(clause), "raw_title": raw,
                        "title": rule_title(raw, settings, city, cities)}
    return out


def rule_table(con, catalog: dict[str, dict], n_cases: int) -> list[dict]:
    """One row per rule of the run (`rule_catalog`): cases flagged in scope and their share of the
    cases in scope."""
    counts = dict(con.execute("SELECT rule_id, count(*) FROM report_findings GROUP BY rule_id").fetchall())
    return [{**info, "cases": fmt_count(counts.get(rule_id, 0)), "cases_n": int(counts.get(rule_id, 0)),
             "share": pct(counts.get(rule_id, 0) / n_cases) if n_cases else ""}
            for rule_id, info in catalog.items()]


def clause_table(con, run_id: int, n_cases: int, pack: Pack | None) -> list[dict]:
    """One row per clause (chapter) of the standard: cases with any finding, and with a violation."""
    rows = con.execute("""
        WITH fc AS (SELECT split_part(clause, ' ', 1) AS ck, city, case_id, bool_or(severity = 'error' AND NOT waived) AS is_error
                    FROM report_findings GROUP BY ALL),
        r AS (SELECT split_part(clause, ' ', 1) AS ck, list(rule_id ORDER BY rule_id) AS rules
              FROM run_rules WHERE run_id = ? GROUP BY ALL)
        SELECT r.ck, r.rules, count(fc.case_id) AS cases, count(fc.case_id) FILTER (WHERE fc.is_error) AS error_cases
        FROM r LEFT JOIN fc USING (ck)
        GROUP BY ALL""", [run_id]).fetchall()
    order = _clause_order(pack)
    rows.sort(key=lambda r: (order.get(r[0], len(order)), r[0]))
    clauses = pack.clauses if pack else {}
    return [{"clause": ck, "name": clauses.get(ck, ""), "rules": "、".join(rules),
             "cases": fmt_count(cases), "share": pct(cases / n_cases) if n_cases else "",
             "error_cases": fmt_count(errors),
             "compliance": pct(1 - errors / n_cases) if n_cases else ""}
            for ck, rules, cases, errors in rows]


def severity_counts(con) -> dict[str, int]:
    """Cases in scope with at least one finding of each severity."""
    rows = con.execute("""SELECT severity, count(DISTINCT (city, case_id)) FROM report_findings
                          GROUP BY severity""").fetchall()
    counts = {s: 0 for s in SEVERITY_RANK}
    counts.update({s: int(n) for s, n in rows})
    return counts
