"""`audit kpi`: the figures of a stored run, grouped as asked, as a terminal table, CSV or JSON.

Machine output (CSV, JSON) writes every figure at full precision (the shortest text that reads back
as the same float). With `detail`, each figure is followed (after all the figures) by its numerator,
denominator and 95 % Wilson interval (`audit.figures.fair`): ``<figure>_num``, ``<figure>_den``,
``<figure>_low``, ``<figure>_high``; mean_rating gets ``_num`` = the sum of the scores and ``_den`` =
the scored cases, and no interval (it is a mean, not a proportion). With `adjusted`, the case-mix-
adjusted rates ``<figure>_adjusted`` of `audit.figures.fair.ADJUSTED_FIGURES` come last, standardised
over the groups of the output (over the whole run when there is no grouping: then they equal the rates).
"""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd

from audit.check.runstore import require_cases, select_run
from audit.db import ensure_schema
from audit.figures.fair import ADJUSTED_FIGURES, add_intervals, adjusted_rates
from audit.figures.metrics import FIGURE_ZH, FIGURES, RATES, KpiResult, compute_kpis, kpi_cells, parse_by
from audit.spreadsheet import csv_text

COUNTED = tuple(f for f in FIGURES if f in RATES or f == "mean_rating")   # the figures with _num/_den


def run_kpis(con, by: str | list[str] | None, as_of: dt.date | None = None, run_id: int | None = None,
             detail: bool = False, adjusted: bool = False) -> KpiResult:
    """Figures grouped by `by` for a stored run (`run_id`, or the latest at `as_of`), read from the
    figures stored with it; a UsageError when there is no such run or it was stored without them.
    `detail` adds numerators, denominators and intervals, `adjusted` the case-mix-adjusted rates
    (module doc); `KpiResult.columns` lists the columns of the machine output in order."""
    keys = parse_by(by) if isinstance(by, str) or by is None else list(by)
    ensure_schema(con)
    run = select_run(con, run_id, as_of)
    require_cases(con, run)
    table = compute_kpis(con, keys, run.run_id, source=kpi_cells(run.run_id), with_counts=detail)
    if detail:
        table = add_intervals(table, [f for f in COUNTED if f in RATES])
    if adjusted:
        table = _with_adjusted(table, adjusted_rates(con, run.run_id, keys), keys)
    return KpiResult(keys, table, run.run_id, run.as_of, columns=kpi_columns(keys, detail, adjusted))


def kpi_columns(by: list[str], detail: bool = False, adjusted: bool = False) -> list[str]:
    """The columns of the machine output: the keys, the figures, per figure its detail, the adjusted."""
    cols = list(by) + list(FIGURES)
    if detail:
        for f in COUNTED:
            cols += [f"{f}_num", f"{f}_den"] + ([f"{f}_low", f"{f}_high"] if f in RATES else [])
    if adjusted:
        cols += [f"{f}_adjusted" for f in FIGURES if f in ADJUSTED_FIGURES]
    return cols


def _with_adjusted(table: pd.DataFrame, adj: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if not keys:                      # one row each
        return pd.concat([table.reset_index(drop=True), adj.reset_index(drop=True)], axis=1)
    # Both come from the same cells grouped by the same keys: one row of `adj` per row of `table`
    # (pandas matches missing keys with missing keys).
    return table.merge(adj, on=keys, how="left", validate="one_to_one", sort=False)


def _clean(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


def kpi_csv(result: KpiResult) -> str:
    """CSV: grouping keys, then the figure names (then the detail and adjusted columns when asked);
    rates at full precision; empty cell for an empty rate; formula-like keys (a hall or staff name
    starting with =, + …) made safe as in `audit.spreadsheet`."""
    return csv_text(result.table[_columns(result)])


def kpi_json(result: KpiResult) -> str:
    """JSON: {"as_of", "run_id", "by", "rows": [{key…, figure…}]}, full floats, empty rates as null."""
    rows = [{k: _clean(v) for k, v in rec.items()} for rec in result.table[_columns(result)].to_dict("records")]
    return json.dumps({"as_of": result.as_of.isoformat(), "run_id": result.run_id, "by": result.by, "rows": rows},
                      ensure_ascii=False, indent=1)


def kpi_table(result: KpiResult) -> str:
    """A terminal table with rates as percentages; with the detail columns each rate reads
    ``75.0% (3/4, 30.1–95.4%)`` (k/n and the 95 % interval) and the mean rating ``3.00 (6/2)`` (score
    sum / scored cases); the adjusted rates follow as columns of their own."""
    columns = _columns(result)
    detail = any(c.endswith("_num") for c in columns)
    adjusted = [c.removesuffix("_adjusted") for c in columns if c.endswith("_adjusted")]
    head = list(result.by) + [FIGURE_ZH[f] for f in FIGURES] + [f"{FIGURE_ZH[f]}(调整)" for f in adjusted]
    lines = [f"审计日 {result.as_of} (审计 {result.run_id})", "\t".join(head)]
    for rec in result.table.to_dict("records"):
        cells = ["" if _clean(rec[k]) is None else str(rec[k]) for k in result.by]
        for f in FIGURES:
            text = _figure_text(f, _clean(rec[f]))
            if detail and f in COUNTED:
                text += _detail_text(f, rec)
            cells.append(text)
        cells += [_figure_text(f, _clean(rec[f"{f}_adjusted"])) for f in adjusted]
        lines.append("\t".join(cells))
    return "\n".join(lines)


def _figure_text(figure: str, v) -> str:
    if v is None:
        return "—"
    return str(v) if figure == "cases" else f"{v:.2f}" if figure == "mean_rating" else f"{v * 100:.1f}%"


def _detail_text(figure: str, rec: dict) -> str:
    k, n = _clean(rec[f"{figure}_num"]), _clean(rec[f"{figure}_den"])
    counts = f"{k or 0}/{n or 0}"
    low, high = _clean(rec.get(f"{figure}_low")), _clean(rec.get(f"{figure}_high"))
    if figure not in RATES or low is None:
        return f" ({counts})"
    return f" ({counts}, {low * 100:.1f}–{high * 100:.1f}%)"


def _columns(result: KpiResult) -> list[str]:
    return result.columns or result.by + list(FIGURES)
