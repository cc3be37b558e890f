"""`audit kpi`: the figures of a stored run, grouped as asked, as a terminal table, CSV or JSON."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd

from audit.check.runstore import require_cases, select_run
from audit.db import ensure_schema
from audit.figures.metrics import FIGURE_ZH, FIGURES, KpiResult, compute_kpis, kpi_cells, parse_by
from audit.spreadsheet import csv_text


def run_kpis(con, by: str | list[str] | None, as_of: dt.date | None = None, run_id: int | None = None) -> KpiResult:
    """Figures grouped by `by` for a stored run (`run_id`, or the latest at `as_of`), read from the
    figures stored with it; a UsageError when there is no such run or it was stored without them."""
    keys = parse_by(by) if isinstance(by, str) or by is None else list(by)
    ensure_schema(con)
    run = select_run(con, run_id, as_of)
    require_cases(con, run)
    return KpiResult(keys, compute_kpis(con, keys, run.run_id, source=kpi_cells(run.run_id)), run.run_id, run.as_of)


def _clean(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


def kpi_csv(result: KpiResult) -> str:
    """CSV: grouping keys, then the figure names; empty cell for an empty rate; formula-like keys
    (a hall or staff name starting with =, + …) made safe as in `audit.spreadsheet`."""
    return csv_text(result.table[result.by + list(FIGURES)], float_format="%.6g")


def kpi_json(result: KpiResult) -> str:
    """JSON: {"as_of", "run_id", "by", "rows": [{key…, figure…}]}, empty rates as null."""
    rows = [{k: _clean(v) for k, v in rec.items()} for rec in result.table[result.by + list(FIGURES)].to_dict("records")]
    return json.dumps({"as_of": result.as_of.isoformat(), "run_id": result.run_id, "by": result.by, "rows": rows},
                      ensure_ascii=False, indent=1)


def kpi_table(result: KpiResult) -> str:
    """A terminal table with rates as percentages."""
    head = [k for k in result.by] + [FIGURE_ZH[f] for f in FIGURES]
    lines = [f"审计日 {result.as_of} (审计 {result.run_id})", "\t".join(head)]
    for rec in result.table.to_dict("records"):
        cells = ["" if _clean(rec[k]) is None else str(rec[k]) for k in result.by]
        for f in FIGURES:
            v = _clean(rec[f])
            cells.append("—" if v is None else (str(v) if f == "cases" else f"{v:.2f}" if f == "mean_rating" else f"{v * 100:.1f}%"))
        lines.append("\t".join(cells))
    return "\n".join(lines)
