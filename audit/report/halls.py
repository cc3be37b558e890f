"""The hall and staff tables of the report: who falls short, worst first, with what it rests on.

One row per service hall (within its city) and per staff member (within city and hall): cases,
compliance with its k/n, the number of violation (error) findings, the rule with the most cases
there, and the response, on-time and satisfaction rates with their k/n. The page's script sorts
them by any column (``table.sortable``: every cell carries its sort value in ``data-sort``).

Order, worst first: rows resting on at least `min_cases` cases by compliance (lowest first), then
more violation findings, then more cases; below them the rows with fewer cases (marked), in the
same order; last, per hall, the staff members below `min_cases` folded into one line
("其他 N 名帮办代办员，共 M 件", their sums), unless every staff member is asked for.
"""

from __future__ import annotations

import pandas as pd

from audit.figures.metrics import RATES, compute_kpis, kpi_cells
from audit.report.text import figure_zh, fmt_count, fmt_figure, fmt_ratio, is_empty
from audit.rules.titles import rule_title

UNIT_FIGURES = ("response_rate", "on_time_rate", "satisfaction_rate")  # shown beside compliance
TOP_RULE_CELL = 3  # the place of the top rule among a row's cells (after cases, compliance, errors)
COLUMNS = ["办件数", figure_zh("compliance_rate"), "违规发现", "办件最多的规则", *(figure_zh(f) for f in UNIT_FIGURES)]
MISSING = "(未填写)"
MAX_ROWS = 300  # rows shown per table
# Rows of a kind: reliable (>= min_cases), small, and the folded staff lines.
RELIABLE, SMALL, FOLDED = 0, 1, 2
FOLDED_KEY = "\0folded"  # the staff key of a folded line: no name from the data holds a NUL


def unit_tables(con, run_id: int, where: tuple[str, list], rules: dict[str, dict], settings, min_cases: int,
                all_staff: bool = False) -> list[dict]:
    """The hall table and the staff table of the scope (`where`; ``report_findings`` must hold
    the scope's findings). `rules` maps rule id → {"raw_title", "clause_key", …}, as
    `audit.report.compliance.rule_catalog`; a top rule is titled with its city's values of the
    run's `settings`."""
    titles = {rule_id: info["raw_title"] for rule_id, info in rules.items()}
    halls = _unit_rows(con, run_id, where, ["city", "hall"], rules, min_cases)
    staff = _unit_rows(con, run_id, where, ["city", "hall", "staff"], rules, min_cases, fold=not all_staff)
    for row in halls + staff:
        row["cells"][TOP_RULE_CELL]["sub"] = _top_rule_text(row, titles, settings)
    n_folded = sum(r["folded_staff"] for r in staff)
    staff_note = (f"办件少于 {min_cases} 件的帮办代办员按服务大厅合并为一行 (共 {n_folded:,} 名)；"
                  "列出每一名请用 audit report --all-staff。" if n_folded else "")
    halls, hall_cap = _cap(halls, "city,hall")
    staff, staff_cap = _cap(staff, "city,hall,staff")
    return [
        {"id": "by-hall", "title": "服务大厅", "headers": ["地市", "服务大厅"], "columns": COLUMNS, "rows": halls,
         "note": hall_cap},
        {"id": "by-staff", "title": "帮办代办员", "headers": ["地市", "服务大厅", "帮办代办员"], "columns": COLUMNS,
         "rows": staff, "note": " ".join(n for n in (staff_note, staff_cap) if n)},
    ]


def _cap(rows: list[dict], by: str) -> tuple[list[dict], str]:
    """The first `MAX_ROWS` rows (the worst: rows are in that order) and a note when some are left out."""
    if len(rows) <= MAX_ROWS:
        return rows, ""
    return rows[:MAX_ROWS], (f"共 {len(rows):,} 行，仅列出排在最前 (最差) 的 {MAX_ROWS} 行；全部数字见 "
                             f"audit kpi --by {by} --detail。")


def _unit_rows(con, run_id: int, where: tuple[str, list], keys: list[str], rules: dict[str, dict],
               min_cases: int, fold: bool = False) -> list[dict]:
    df = _text_keys(compute_kpis(con, keys, run_id, where[0], where[1], with_counts=True, source=kpi_cells(run_id)),
                    keys)
    counts = {name: _text_keys(frame, keys) for name, frame in _rule_counts(con, keys, rules).items()}
    df = df.merge(counts["errors"], on=keys, how="left") if len(df) else df.assign(errors=0)
    df["errors"] = df["errors"].fillna(0).astype(int)
    df["kind"] = [RELIABLE if n >= min_cases else SMALL for n in df["cases"]]
    df["folded_staff"] = 0
    df["label"] = ""
    per_rule = counts["per_rule"]
    if fold and len(df):
        df, per_rule = _fold_small_staff(df, per_rule, min_cases)
    top = _text_keys(_top_rules(per_rule, keys), keys)   # an all-NULL key (no hall in the data) stays text
    df = df.merge(top, on=keys, how="left") if len(top) else df.assign(top_rule=None, top_cases=0)
    df = _recompute_rates(df)
    df["_sort_rate"] = pd.to_numeric(df["compliance_rate"], errors="coerce").fillna(2.0)
    df = df.sort_values(["kind", "_sort_rate", "errors", "cases"], ascending=[True, True, False, False],
                        kind="stable")
    return [_row(rec, keys, rules) for rec in df.to_dict("records")]


def _text_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The key columns as Python objects: a key that is empty in every row (no hall column in the
    export) comes back from DuckDB as float NaN in one frame and object in another, and pandas
    refuses to merge the two."""
    return df.astype({k: object for k in keys if k in df.columns})


def _rule_counts(con, keys: list[str], rules: dict[str, dict]) -> dict[str, pd.DataFrame]:
    """Per unit: violation findings, and the cases of each service rule (DATA-* rules describe the
    data, not the service: they are never a unit's top rule)."""
    cols = ", ".join(f"k.{k}" for k in keys)
    findings = con.execute(f"""
        SELECT {cols}, f.rule_id, f.severity, count(*) AS n
        FROM report_findings f JOIN case_kpi k ON k.city = f.city AND k.case_id = f.case_id
        WHERE NOT f.waived
        GROUP BY ALL""").df()
    errors = (findings[findings["severity"] == "error"].groupby(keys, dropna=False)["n"].sum()
              .rename("errors").reset_index())
    service = [r for r, info in rules.items() if info.get("clause_key") != "DATA"]
    per_rule = findings[findings["rule_id"].isin(service)][[*keys, "rule_id", "n"]]
    return {"errors": errors, "per_rule": per_rule}


def _fold_small_staff(df: pd.DataFrame, per_rule: pd.DataFrame, min_cases: int):
    """Per (city, hall), the staff below `min_cases` summed into one line (its staff key is
    `FOLDED_KEY`), when there are two or more of them (a single one keeps its own row)."""
    small = df[df["cases"] < min_cases]
    n_small = small.groupby(["city", "hall"], dropna=False)["staff"].transform("size")
    fold = small[n_small >= 2]
    if fold.empty:
        return df, per_rule
    sums = [c for c in df.columns if c.endswith(("_num", "_den"))] + ["cases", "errors"]
    groups = fold.groupby(["city", "hall"], dropna=False, sort=False)
    lines = groups[sums].sum().reset_index()
    lines["folded_staff"] = groups.size().to_numpy()
    lines["staff"] = FOLDED_KEY
    lines["kind"] = FOLDED
    lines["label"] = [f"其他 {n:,} 名帮办代办员，共 {m:,} 件" for n, m in zip(lines["folded_staff"], lines["cases"])]
    key = ["city", "hall", "staff"]
    marked = per_rule.merge(fold[key].assign(_folded=True), on=key, how="left")
    marked.loc[marked["_folded"].eq(True), "staff"] = FOLDED_KEY
    per_rule = marked.groupby([*key, "rule_id"], dropna=False)["n"].sum().reset_index()
    return pd.concat([df.drop(fold.index), lines], ignore_index=True), per_rule


def _top_rules(per_rule: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per unit, the rule with the most cases (ties: the first rule id)."""
    if per_rule.empty:
        return pd.DataFrame(columns=[*keys, "top_rule", "top_cases"])
    ordered = per_rule.sort_values([*keys, "n", "rule_id"], ascending=[True] * len(keys) + [False, True],
                                   na_position="last", kind="stable")
    top = ordered.groupby(keys, dropna=False, sort=False).head(1)
    return top.rename(columns={"rule_id": "top_rule", "n": "top_cases"})[[*keys, "top_rule", "top_cases"]]


def _recompute_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Every rate from its summed numerator and denominator (folded lines are sums)."""
    for fig in RATES:
        num, den = df[f"{fig}_num"].astype(float), df[f"{fig}_den"].astype(float)
        df[fig] = (num / den).where(den > 0)
    return df


def _label(value) -> str:
    return MISSING if is_empty(value) else str(value)


def _rate(fig: str, rec: dict) -> dict:
    value = rec[fig]
    return {"text": fmt_figure(fig, value), "sub": fmt_ratio(rec[f"{fig}_num"], rec[f"{fig}_den"]),
            "sort": "" if is_empty(value) else f"{float(value):.6f}", "cls": "num"}


def _row(rec: dict, keys: list[str], rules: dict[str, dict]) -> dict:
    labels = [_label(rec[k]) for k in keys]
    if rec["kind"] == FOLDED:
        labels[-1] = rec["label"]
    top = rec.get("top_rule")
    has_top = not is_empty(top) and top
    cells = [
        {"text": fmt_count(rec["cases"]), "sub": "", "sort": str(int(rec["cases"])), "cls": "num"},
        _rate("compliance_rate", rec),
        {"text": fmt_count(rec["errors"]), "sub": "", "sort": str(int(rec["errors"])), "cls": "num"},
        {"text": str(top) if has_top else "—", "sub": "", "top_cases": int(rec["top_cases"]) if has_top else 0,
         "sort": str(top) if has_top else "", "cls": "rule"},
        *(_rate(f, rec) for f in UNIT_FIGURES),
    ]
    return {"labels": labels, "cells": cells, "small": rec["kind"] != RELIABLE, "folded": rec["kind"] == FOLDED,
            "folded_staff": int(rec["folded_staff"] or 0), "city": rec["city"]}


def _top_rule_text(row: dict, titles: dict[str, str], settings) -> str:
    """The top rule's title with its city's values, and its cases: '差评须在 5 个工作日内回访 · 3 件'."""
    cell = row["cells"][TOP_RULE_CELL]
    if not cell["top_cases"]:
        return ""
    city = None if is_empty(row["city"]) else row["city"]
    return f"{rule_title(titles.get(cell['text'], ''), settings, city=city)} · {cell['top_cases']:,} 件"
