"""The city comparison on one yardstick (contract §5.1) and the city × rule matrix.

`city_table`: per city and figure the rate with what it rests on (k/n), its 95 % Wilson interval,
the case-mix-adjusted rate where the figure has one, and its rank (1 = best) with the marks of
`audit.figures.fair.rank_with_marks`: ≈ when the city's interval overlaps another city's (the rank
cannot be told apart), * when the rate rests on fewer than `min_cases`. The mean rating is shown
but not ranked (it has no interval). With one city in scope nothing is ranked or adjusted.

`city_rule_matrix`: per service rule and city, the cases the rule flagged and their share of the
city's cases, beside the share over all cities of the scope. A cell is shaded by how far the city
falls short there (see `gap_level`); the level is also written in the cell (▲ / △), so that it
reads the same printed in grey.
"""

from __future__ import annotations

import pandas as pd

from audit.figures.fair import ADJUSTED_FIGURES, add_intervals, adjusted_rates, rank_with_marks, wilson
from audit.figures.metrics import FIGURES
from audit.report.figures import Scope, kpis
from audit.report.text import RATE_FIGURES, fmt_basis, fmt_count, fmt_figure, is_empty, pct

GAP_NOTABLE_PP = 1.0     # a share this many points above the all-city share is shaded lightly
MARK_TIE = "≈"
MARK_SMALL = "*"


def city_frame(con, run_id: int, scope: Scope, min_cases: int) -> pd.DataFrame:
    """Figures by city with k/n, intervals, adjusted rates and marked ranks (one city: no ranks)."""
    df = add_intervals(kpis(con, run_id, ["city"], scope.where, with_counts=True), RATE_FIGURES)
    if len(df) < 2:
        return df
    adjusted = adjusted_rates(con, run_id, ["city"], scope.where)
    df = df.merge(adjusted, on="city", how="left")
    for fig in RATE_FIGURES:
        df = rank_with_marks(df, fig, min_cases)
    return df


def city_table(df: pd.DataFrame, min_cases: int) -> list[dict]:
    """One row per city of `city_frame`: a cell per figure (value, k/n, interval, adjusted, rank)."""
    ranked = len(df) >= 2
    rows = []
    for rec in df.to_dict("records"):
        cells = []
        for fig in FIGURES:
            cell = {"figure": fig, "value": fmt_figure(fig, rec[fig]), "kn": "", "interval": "", "adjusted": "",
                    "rank": "", "marks": [], "extreme": ""}
            cell["kn"] = fmt_basis(fig, rec) if fig != "cases" else ""
            if fig in RATE_FIGURES:
                if not is_empty(rec[f"{fig}_low"]):
                    cell["interval"] = f"{pct(rec[f'{fig}_low'])}–{pct(rec[f'{fig}_high'])}"
            if ranked and fig in ADJUSTED_FIGURES:
                cell["adjusted"] = fmt_figure(fig, rec.get(f"{fig}_adjusted"))
            if ranked and fig in RATE_FIGURES and not is_empty(rec[f"{fig}_rank"]):
                rank = int(rec[f"{fig}_rank"])
                cell["rank"] = str(rank)
                if not rec[f"{fig}_distinct"]:
                    cell["marks"].append({"mark": MARK_TIE, "kind": "tie",
                                          "title": "95% 区间与其他地市重叠，名次无法区分"})
                if rec[f"{fig}_small"]:
                    cell["marks"].append({"mark": MARK_SMALL, "kind": "small",
                                          "title": f"分母不足 {min_cases}，名次仅供参考"})
                worst = pd.to_numeric(df[f"{fig}_rank"], errors="coerce").max()
                if worst > 1:  # all tied: no best and no worst
                    cell["extreme"] = "best" if rank == 1 else ("worst" if rank == worst else "")
            cells.append(cell)
        rows.append({"city": rec["city"], "cells": cells})
    return rows


def gap_level(k: int, n: int, all_share: float) -> int:
    """How far a city falls short on a rule: 2 when the 95 % Wilson interval of its share (k of n)
    lies wholly above the share over all cities (the city is distinguishably worse there), 1 when
    its share is at least `GAP_NOTABLE_PP` points above it, 0 otherwise."""
    if not n:
        return 0
    low, _ = wilson(k, n)
    if low is not None and low > all_share:
        return 2
    return 1 if (k / n - all_share) * 100 >= GAP_NOTABLE_PP else 0


def city_rule_matrix(con, rules: dict[str, dict], cities: list[str]) -> dict:
    """Cases and share per service rule (rows, clause order) and city (columns), with the share over
    all cities of the scope; only rules with a finding in scope. Needs ``report_scope`` and
    ``report_findings``."""
    city_cases = dict(con.execute("SELECT city, count(*) FROM report_scope GROUP BY city").fetchall())
    total = sum(city_cases.values())
    counts = {(r, c): int(n) for r, c, n in con.execute(
        "SELECT rule_id, city, count(*) FROM report_findings GROUP BY ALL").fetchall()}
    rows = []
    for rule_id, info in rules.items():
        if info.get("clause_key") == "DATA":
            continue
        all_k = sum(n for (r, _), n in counts.items() if r == rule_id)
        if not all_k:
            continue
        all_share = all_k / total if total else 0.0
        cells = []
        for city in cities:
            k, n = counts.get((rule_id, city), 0), city_cases.get(city, 0)
            level = gap_level(k, n, all_share) if len(cities) > 1 else 0
            gap = (k / n - all_share) * 100 if n else 0.0
            cells.append({"city": city, "cases": fmt_count(k), "share": pct(k / n) if n else "", "level": level,
                          "gap": f"{gap:+.1f} pp" if level else "", "cases_n": k})
        rows.append({**info, "cells": cells, "all_cases": fmt_count(all_k), "all_share": pct(all_share)})
    return {"cities": cities, "city_cases": [fmt_count(city_cases.get(c, 0)) for c in cities],
            "total": fmt_count(total), "rows": rows, "notable_pp": GAP_NOTABLE_PP}
