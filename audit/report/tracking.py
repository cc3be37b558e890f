"""整改跟踪 (rectification follow-up): what became of the base run's findings, and 合规率 across runs.

The report's run is compared with a *base* run — by default the run before it; none before it, no
section — through `audit.rectify.compare.compare_runs` over the report's cities and month, so the
counts are exactly those of `audit compare --base B --run R --city …`. Per city and hall: the base
run's findings, how many were fixed (with the rectification rate k/n), persisting, persisting
although the hall answered 已整改 (claimed_fixed), without an answer after the base run's 整改期限
(overdue), waived, new, and not judged again (gone).

The trend is every stored run's 合规率 over the report's cities (and month), from the sums stored
with each run (``run_kpi_cells``): one row per run that has cases in that scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.check.runstore import StoredRun
from audit.errors import UsageError
from audit.figures.fair import wilson
from audit.rectify.compare import RATE, STATUS_ZH, Comparison, compare_runs
from audit.rectify.lists import NO_HALL
from audit.report.text import fmt_change, fmt_count, fmt_ratio, pct

# (summary column, header) of the table, in order; the rate comes after `fixed`.
COLUMNS = [("base_findings", "上次审计的发现"), ("fixed", STATUS_ZH["fixed"]), (RATE, "整改率"),
           ("persisting", STATUS_ZH["persisting"]), ("claimed_fixed", STATUS_ZH["claimed_fixed"]),
           ("overdue", "逾期未答复"), ("waived", STATUS_ZH["waived"]), ("new", STATUS_ZH["new"]),
           ("gone", STATUS_ZH["gone"])]


@dataclass
class Row:
    """A row of the table: a hall, a city's subtotal or the total."""

    level: str                     # hall | city | total
    city: str
    hall: str | None
    cells: list[dict] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.level == "hall":
            return self.hall or NO_HALL
        return "小计" if self.level == "city" else ""


def previous_run(con, run_id: int) -> StoredRun | None:
    """The run stored just before `run_id` (None when it is the first)."""
    row = con.execute("SELECT run_id, as_of FROM runs WHERE run_id < ? ORDER BY run_id DESC LIMIT 1",
                      [run_id]).fetchall()
    return StoredRun(*row[0]) if row else None


def tracking(con, run_id: int, cities: list[str], month: str | None, base_run: int | None = None) -> dict | None:
    """The section's content (None when there is no base: `base_run` not given and no run before).
    A base given that cannot be compared is a UsageError; the default one (stored by an older
    version without its cases) gives a section that says why it cannot compare."""
    if base_run is None:
        before = previous_run(con, run_id)
        if before is None:
            return None
        try:
            c = compare_runs(con, before.run_id, run_id, cities, month, with_findings=False)
        except UsageError as exc:
            return {"unavailable": str(exc), "base": before,
                    "trend": compliance_trend(con, run_id, before.run_id, cities, month)}
    else:
        c = compare_runs(con, base_run, run_id, cities, month, with_findings=False)
    return {"unavailable": None, "base": c.base, "run": c.run, "headers": [h for _, h in COLUMNS],
            "rows": table_rows(c), "total": _row("total", "", None, c.total),
            "deadlines": [{"city": city, "days": n, "deadline": d} for city, (n, d) in c.deadlines.items()],
            "notices": c.notices, "trend": compliance_trend(con, run_id, c.base.run_id, cities, month)}


def table_rows(c: Comparison) -> list[Row]:
    """Per city: its halls (the order of `audit compare`: by name, no hall last), then its subtotal."""
    halls = c.summary["hall"].to_dict("records")
    rows = []
    for city_rec in c.summary["city"].to_dict("records"):
        city = city_rec["city"]
        rows += [_row("hall", city, _text(h["hall"]), h) for h in halls if h["city"] == city]
        rows.append(_row("city", city, None, city_rec))
    return rows


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _row(level: str, city: str, hall: str | None, rec: dict) -> Row:
    row = Row(level, city, hall)
    for key, _ in COLUMNS:
        if key == RATE:
            k, n = int(rec[f"{RATE}_num"]), int(rec[f"{RATE}_den"])
            row.cells.append({"key": key, "text": pct(k / n) if n else "—", "sub": fmt_ratio(k, n), "value": k})
        else:
            row.cells.append({"key": key, "text": fmt_count(rec[key]), "sub": "", "value": int(rec[key])})
    return row


def compliance_trend(con, run_id: int, base_id: int, cities: list[str], month: str | None) -> list[dict]:
    """Every stored run's 合规率 over `cities` (and `month`), oldest first, with k/n, the 95 %
    interval and the change from the row before (pp); runs without a case in the scope are left out."""
    rows = con.execute("""
        SELECT r.run_id, r.as_of, r.pack_version, sum(k.compliant)::BIGINT, sum(k.one)::BIGINT
        FROM runs r JOIN run_kpi_cells k USING (run_id)
        WHERE list_contains($cities::VARCHAR[], k.city) AND ($month::VARCHAR IS NULL OR k.month = $month::VARCHAR)
        GROUP BY ALL HAVING sum(k.one) > 0 ORDER BY r.run_id""", {"cities": cities, "month": month}).fetchall()
    out, previous = [], None
    for rid, as_of, version, k, n in rows:
        rate = k / n
        low, high = wilson(k, n)
        out.append({"run_id": rid, "as_of": as_of, "pack_version": version or "", "rate": pct(rate),
                     "basis": fmt_ratio(k, n), "interval": f"{pct(low)}–{pct(high)}", "width": f"{rate * 100:.1f}",
                     "change": fmt_change("compliance_rate", None if previous is None else rate - previous),
                     "mark": "本报告" if rid == run_id else "基准" if rid == base_id else ""})
        previous = rate
    return out
