"""The figures (KPIs) of contract §5, for any grouping of cases, set-based in DuckDB.

Each case gets numerator/denominator flags (``case_kpi``), then any grouping sums them. A rate
whose denominator is empty is empty (NULL / None), never 0 or 1. Figures are fractions in [0, 1].

`audit check` derives the flags once (`derive_case_kpi`) and stores them with the run
(``run_cases``, see `audit.check.runstore`); every figure is a ratio of sums, so the flags summed over each
combination of all grouping keys (``run_kpi_cells``) give every grouping exactly. `audit kpi` reads
those cells, the report reads ``run_cases`` (`use_run_cases`): neither rebuilds the per-case facts.

| figure | numerator ÷ denominator |
| --- | --- |
| response_rate     | response step on time ÷ response recorded, or missing with its limit passed (pending excluded) |
| resolution_rate   | has 办结 ÷ closed, or open, not suspended and past its deadline |
| on_time_rate      | 办结 on or before the deadline ÷ has 办结 and a deadline |
| satisfaction_rate | rated 非常满意/满意/基本满意 ÷ rated |
| mean_rating       | mean of ratings (非常满意 = 5 … 非常不满意 = 1) |
| followup_rate     | bad rating followed up in time ÷ bad rating whose follow-up is recorded or overdue |
| compliance_rate   | no error-severity finding in the run ÷ cases (a waived finding does not count) |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from audit.known import refuse, unknown_values

GROUP_KEYS = ("city", "county", "hall", "month", "service_type", "channel", "object_type", "staff")
FIGURES = ("cases", "response_rate", "resolution_rate", "on_time_rate", "satisfaction_rate", "mean_rating",
           "followup_rate", "compliance_rate")
RATES = {  # figure -> (numerator flag, denominator flag)
    "response_rate": ("resp_ok", "resp_due"),
    "resolution_rate": ("resolved", "resol_due"),
    "on_time_rate": ("on_time", "ot_due"),
    "satisfaction_rate": ("satisfied", "rated"),
    "followup_rate": ("fu_ok", "fu_due"),
    "compliance_rate": ("compliant", "one"),
}
FIGURE_ZH = {
    "cases": "办件数", "response_rate": "响应率", "resolution_rate": "解决率", "on_time_rate": "按时办结率",
    "satisfaction_rate": "满意率", "mean_rating": "平均评分", "followup_rate": "差评回访率",
    "compliance_rate": "合规率",
}


@dataclass
class KpiResult:
    """Figures by group, and the run (audit date, pack) they were computed for; `columns`: those of
    the machine output in order (empty: the keys then `FIGURES`)."""

    by: list[str]
    table: pd.DataFrame
    run_id: int
    as_of: dt.date
    columns: list[str] = field(default_factory=list)


def parse_by(text: str | None) -> list[str]:
    """`city,month` → ['city', 'month']; unknown keys are a UsageError listing the known ones; a key
    named twice counts once."""
    keys = list(dict.fromkeys(k.strip() for k in (text or "").split(",") if k.strip()))
    refuse([unknown_values("--by", keys, list(GROUP_KEYS), "不是可用的分组")])
    return keys


# The flags of the figures counted on the canonical 帮办代办 steps (受理/需求分析, 办结, 回访 and the
# deadline from 受理/委托): NULL — not applicable — in a run whose pack is written for other steps.
STEP_FLAGS = ("resp_ok", "resp_due", "resolved", "resol_due", "on_time", "ot_due", "fu_ok", "fu_due")


def derive_case_kpi(con, run_id: int, step_figures: bool = True) -> None:
    """Temp table ``case_kpi``: per case, the grouping keys and the 0/1 flags of every figure.

    Needs ``case_facts`` (built for the run's audit date) and the run's findings: `audit check`
    calls it in the run's transaction and stores the result (``run_cases``). Without `step_figures`
    (a pack whose vocabulary is not the canonical one) the flags of `STEP_FLAGS` are NULL, so 响应率,
    解决率, 按时办结率 and 差评回访率 are empty (—) rather than numbers the run did not compute; the counts,
    合规率 and the ratings' figures stay.
    """
    sql = CASE_KPI_SQL
    if not step_figures:
        sql = f"SELECT * REPLACE ({', '.join(f'NULL::INT AS {f}' for f in STEP_FLAGS)}) FROM ({CASE_KPI_SQL})"
    con.execute(f"CREATE OR REPLACE TEMP TABLE case_kpi AS {sql}", [run_id])


def use_run_cases(con, run_id: int) -> None:
    """Temp view ``case_kpi`` over the cases stored with run `run_id` (same columns as derived)."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW case_kpi AS SELECT * EXCLUDE (run_id) FROM run_cases "
                f"WHERE run_id = {int(run_id)}")


# Per case (parameter: the run id): the grouping keys and the flags of every figure.
CASE_KPI_SQL = """
        WITH fu AS (
            SELECT f.city, f.case_id,
                   count(e.case_id) AS n_followups,
                   count(e.case_id) FILTER (WHERE e."time"::DATE BETWEEN f.rating_date AND f.followup_limit) AS n_in_time
            FROM case_facts f LEFT JOIN event_rows e
              ON e.city = f.city AND e.case_id = f.case_id AND e.step = '回访'
            WHERE f.rating IN ('不满意', '非常不满意') AND f.rating_date IS NOT NULL
            GROUP BY f.city, f.case_id),
        -- 合规率: a finding a waiver covers (audit.check.waivers) does not count against the case
        err AS (SELECT DISTINCT city, case_id FROM findings
                WHERE run_id = ? AND severity = 'error' AND waiver_id IS NULL)
        SELECT f.city, f.county, f.hall, f.month, f.service_type, f.channel, f.object_type,
               f.staff_any AS staff, f.case_id, f.item, f.applicant, f.id_number, f.phone,
               f.start_time::DATE AS start_date,
               1 AS one,
               (f.response_time IS NOT NULL AND f.response_time::DATE <= f.response_limit)::INT AS resp_ok,
               (f.response_time IS NOT NULL OR (f.response_step IS NOT NULL AND f.request_time IS NOT NULL
                                                AND f.as_of > f.response_limit))::INT AS resp_due,
               (f.t_complete IS NOT NULL)::INT AS resolved,
               (f.closed OR (NOT f.suspended AND f.deadline IS NOT NULL AND f.as_of > f.deadline))::INT AS resol_due,
               (f.t_complete IS NOT NULL AND f.deadline IS NOT NULL AND f.t_complete::DATE <= f.deadline)::INT AS on_time,
               (f.t_complete IS NOT NULL AND f.deadline IS NOT NULL)::INT AS ot_due,
               (f.rating IN ('非常满意', '满意', '基本满意'))::INT AS satisfied,
               (f.rating IS NOT NULL)::INT AS rated,
               f.rating_score,
               f.rating_score::INT AS score_sum,
               (f.rating_score IS NOT NULL)::INT AS score_n,
               (coalesce(fu.n_in_time, 0) > 0)::INT AS fu_ok,
               (fu.case_id IS NOT NULL AND (fu.n_followups > 0 OR f.as_of > f.followup_limit))::INT AS fu_due,
               (err.case_id IS NULL)::INT AS compliant
        FROM case_facts f
        LEFT JOIN fu ON fu.city = f.city AND fu.case_id = f.case_id
        LEFT JOIN err ON err.city = f.city AND err.case_id = f.case_id
"""


FLAGS = ("one", "resp_ok", "resp_due", "resolved", "resol_due", "on_time", "ot_due", "satisfied", "rated",
         "score_sum", "score_n", "fu_ok", "fu_due", "compliant")


def kpi_sql(by: list[str], where: str = "TRUE", with_counts: bool = False, source: str = "case_kpi") -> str:
    """SELECT of the figures grouped by `by` (ordered by the keys) from `source`: ``case_kpi``
    (a row per case) or cells of ``run_kpi_cells`` (the same flags summed): only sums are used.
    `with_counts` adds ``<figure>_num`` and ``<figure>_den`` of every rate, and of mean_rating the
    sum of the scores and the number of scored cases."""
    parts = ["sum(one)::BIGINT AS cases"]
    for fig, (num, den) in RATES.items():
        if fig == "compliance_rate":
            continue
        parts.append(f"CASE WHEN sum({den}) > 0 THEN sum({num}) / sum({den}) END AS {fig}")
        if fig == "satisfaction_rate":
            parts.append("CASE WHEN sum(score_n) > 0 THEN sum(score_sum) / sum(score_n) END AS mean_rating")
    parts.append("CASE WHEN sum(one) > 0 THEN sum(compliant) / sum(one) END AS compliance_rate")
    if with_counts:
        for fig, (num, den) in RATES.items():
            # coalesce: a flag is NULL where its figure does not apply (satisfied of an unrated case)
            parts.append(f"coalesce(sum({num}), 0)::BIGINT AS {fig}_num, coalesce(sum({den}), 0)::BIGINT AS {fig}_den")
        parts.append("coalesce(sum(score_sum), 0)::BIGINT AS mean_rating_num, "
                     "coalesce(sum(score_n), 0)::BIGINT AS mean_rating_den")
    keys = ", ".join(by)
    group = f"GROUP BY {keys} ORDER BY {', '.join(f'{k} NULLS LAST' for k in by)}" if by else ""
    select_keys = f"{keys}, " if by else ""
    return f"SELECT {select_keys}{', '.join(parts)} FROM {source} WHERE {where} {group}"



def store_kpi_cells(con, run_id: int) -> None:
    """Keep the run's figures as ``run_kpi_cells``: the per-case flags of ``case_kpi`` summed per
    combination of all grouping keys (far fewer rows than cases). Call inside the run's transaction."""
    keys = ", ".join(GROUP_KEYS)
    sums = ", ".join(f"sum({f})::BIGINT AS {f}" for f in FLAGS)
    con.execute("DELETE FROM run_kpi_cells WHERE run_id = ?", [run_id])
    con.execute(f"INSERT INTO run_kpi_cells BY NAME SELECT ?::BIGINT AS run_id, {keys}, {sums} FROM case_kpi "
                f"GROUP BY {keys}", [run_id])


def kpi_cells(run_id: int) -> str:
    """The stored cells of `run_id` as a relation for `kpi_sql`."""
    return f"(SELECT * FROM run_kpi_cells WHERE run_id = {int(run_id)})"


def compute_kpis(con, by: list[str], run_id: int, where: str = "TRUE", params: list | None = None,
                 with_counts: bool = False, source: str = "case_kpi") -> pd.DataFrame:
    """The figures grouped by `by` (`source`, default ``case_kpi``, must be built for `run_id`)."""
    return con.execute(kpi_sql(by, where, with_counts, source), params or []).df()
