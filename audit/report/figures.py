"""The figures of the report: scope, summary with month-on-month change, breakdowns.

All figures come from `audit.figures.metrics.compute_kpis` over the sums stored with the run
(``run_kpi_cells``, as `audit kpi` reads them; contract §5), restricted to the report's scope: the chosen cities and, with ``--month``, the cases requested in that month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from audit.errors import UsageError
from audit.figures.metrics import FIGURES, compute_kpis, kpi_cells
from audit.known import refuse, unknown_values
from audit.report.text import KEY_ZH, figure_zh, fmt_basis, fmt_change, fmt_count, fmt_figure, is_empty

MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
BREAKDOWNS = (  # (title, grouping keys); halls and staff have tables of their own (`audit.report.halls`)
    ("服务类型 (帮办/代办)", ["service_type"]),
    ("服务方式 (线上/线下)", ["channel"]),
    ("服务对象类别", ["object_type"]),
)
BREAKDOWN_MAX_ROWS = 300


@dataclass
class Scope:
    """What the report covers: cities (all when none chosen) and optionally one request month."""

    cities: list[str]
    month: str | None
    all_cities: list[str]
    months: list[str] = field(default_factory=list)  # every month of the chosen cities

    @property
    def city_where(self) -> tuple[str, list]:
        """SQL condition (over ``case_kpi``/``case_facts``) for the cities alone."""
        return "list_contains(?, city)", [self.cities]

    @property
    def where(self) -> tuple[str, list]:
        """SQL condition for the whole scope (cities and month)."""
        sql, params = self.city_where
        if self.month:
            return f"{sql} AND month = ?", params + [self.month]
        return sql, params


def make_scope(con, cities: list[str] | None, month: str | None) -> Scope:
    """Check the chosen cities and month against the run's cases (``case_kpi`` must exist): a city
    or month with no case there is a UsageError listing the known ones."""
    all_cities = [r[0] for r in con.execute(
        "SELECT DISTINCT city FROM case_kpi WHERE city IS NOT NULL ORDER BY city").fetchall()]
    chosen = city_names(cities) or all_cities
    refuse([unknown_values("--city", chosen, all_cities, "在本次审计中没有办件")])
    months = [r[0] for r in con.execute(
        "SELECT DISTINCT month FROM case_kpi WHERE list_contains(?, city) AND month IS NOT NULL ORDER BY month",
        [chosen]).fetchall()]
    if month is not None:
        require_month_format(month)
        refuse([unknown_values("--month", [month], months, "所选地市没有这个月受理的办件", suggest=False)])
    return Scope(chosen, month, all_cities, months)


def city_names(cities: list[str] | None) -> list[str]:
    """The cities named by `--city`, which may be repeated or list several at once (延安,宝鸡 /
    延安、宝鸡), sorted."""
    return sorted({c.strip() for item in cities or [] for c in re.split(r"[,，、]", item) if c.strip()})


def require_month_format(month: str | None) -> None:
    """Refuse a `--month` that is not YYYY-MM."""
    if month is not None and not MONTH_RE.match(month):
        raise UsageError(f"--month {month!r} 应为 YYYY-MM")


def previous_month(month: str) -> str:
    """'2026-01' → '2025-12'."""
    year, mon = int(month[:4]), int(month[5:])
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


def kpis(con, run_id: int, by: list[str], where: tuple[str, list], with_counts: bool = False) -> pd.DataFrame:
    """`compute_kpis` for a (sql, params) condition, from the sums stored with the run — the same
    cells `audit kpi` reads, so the report's figures equal its figures by construction.
    `with_counts` adds each rate's ``<figure>_num`` and ``<figure>_den``."""
    return compute_kpis(con, by, run_id, where[0], where[1], with_counts=with_counts, source=kpi_cells(run_id))


def summary(con, run_id: int, scope: Scope) -> dict:
    """The scope's figures, and the latest month's against the month before it (contract §5)."""
    total = kpis(con, run_id, [], scope.where).iloc[0]
    monthly = kpis(con, run_id, ["month"], scope.city_where).set_index("month")
    latest = scope.month or (scope.months[-1] if scope.months else None)
    prev = previous_month(latest) if latest else None
    cards = []
    for fig in FIGURES:
        now = monthly.at[latest, fig] if latest in monthly.index else None
        before = monthly.at[prev, fig] if prev in monthly.index else None
        change = None if is_empty(now) or is_empty(before) else float(now) - float(before)
        text = fmt_change(fig, change)
        cards.append({"figure": fig, "name": figure_zh(fig), "value": fmt_figure(fig, total[fig]),
                      "latest": fmt_figure(fig, now), "change": text,
                      "trend": {"+": "up", "-": "down"}.get(text[:1], "")})
    return {"cards": cards, "latest_month": latest, "previous_month": prev,
            "has_previous": prev in monthly.index if prev else False}


def monthly_by_city(con, run_id: int, scope: Scope) -> pd.DataFrame:
    """Figures by city and month, with k/n, over every month of the chosen cities (trend charts)."""
    return kpis(con, run_id, ["city", "month"], scope.city_where, with_counts=True)


def breakdowns(con, run_id: int, scope: Scope) -> list[dict]:
    """Figures by service type, channel and service-object category, each rate with its k/n."""
    tables = []
    for title, keys in BREAKDOWNS:
        df = kpis(con, run_id, keys, scope.where, with_counts=True)
        note = ""
        if len(df) > BREAKDOWN_MAX_ROWS:
            note = f"共 {len(df):,} 行，仅列出办件数最多的 {BREAKDOWN_MAX_ROWS} 行。"
            df = df.sort_values(["cases"] + keys, ascending=[False] + [True] * len(keys), kind="stable")
            df = df.head(BREAKDOWN_MAX_ROWS).sort_values(keys, kind="stable", na_position="last")
        rows = [{"labels": ["(未填写)" if is_empty(rec[k]) else str(rec[k]) for k in keys],
                 "cells": [figure_cell(f, rec) for f in FIGURES]}
                for rec in df.to_dict("records")]
        tables.append({"id": "by-" + keys[-1].replace("_", "-"), "title": title,
                       "headers": [KEY_ZH[k] for k in keys], "rows": rows, "note": note})
    return tables


def figure_cell(fig: str, rec: dict) -> dict:
    """A figure as a table cell: its value, and what it rests on (``sub``, `fmt_basis`)."""
    if fig == "cases":
        return {"text": fmt_count(rec[fig]), "sub": ""}
    return {"text": fmt_figure(fig, rec[fig]), "sub": fmt_basis(fig, rec)}
