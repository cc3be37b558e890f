"""The figures of a stored run, grouped as asked (the library side of `audit kpi`; rendered by
`audit.outputs.kpi`)."""

from __future__ import annotations

import datetime as dt

from audit.check.runstore import require_cases, select_run
from audit.db import ensure_schema
from audit.figures.metrics import KpiResult, compute_kpis, kpi_cells, parse_by


def run_kpis(con, by: str | list[str] | None, as_of: dt.date | None = None, run_id: int | None = None) -> KpiResult:
    """Figures grouped by `by` for a stored run (`run_id`, or the latest at `as_of`), read from the
    figures stored with it; a UsageError when there is no such run or it was stored without them."""
    keys = parse_by(by) if isinstance(by, str) or by is None else list(by)
    ensure_schema(con)
    run = select_run(con, run_id, as_of)
    require_cases(con, run)
    return KpiResult(keys, compute_kpis(con, keys, run.run_id, source=kpi_cells(run.run_id)), run.run_id, run.as_of)
