"""Fair comparison of groups (contract §5.1): Wilson intervals, case-mix adjustment, distinguishable ranks.

- `wilson` / `add_intervals`: the 95 % Wilson score interval of every rate, from its numerator and
  denominator (``<figure>_num``, ``<figure>_den`` → ``<figure>_low``, ``<figure>_high``).
- `adjusted_rates`: the case-mix-adjusted rate of each group by direct standardisation over the strata
  (service_type, object_type), set-based in DuckDB from the run's stored ``run_kpi_cells``.
- `rank_with_marks`: ranks (1 = best) with the marks a report needs: whether a rank is distinguishable
  from the others (intervals that do not overlap) and whether it rests on fewer than `min_cases`.
- `min_cases`: the pack setting ``min_cases`` (default `MIN_CASES_DEFAULT`), a comparison setting that
  is not a column of ``case_facts``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from audit.figures.metrics import GROUP_KEYS, RATES, kpi_cells

Z = 1.959964                # the 97.5th percentile of the standard normal: a two-sided 95 % interval
ADJUSTED_FIGURES = ("compliance_rate", "on_time_rate", "response_rate", "satisfaction_rate")
MIN_CASES_DEFAULT = 30
STRATA = ("service_type", "object_type")


def wilson(k: float | None, n: float | None) -> tuple[float, float] | tuple[None, None]:
    """The 95 % Wilson score interval (low, high) of `k` successes in `n` (contract §5.1).

    p = k/n, centre = (p + z²/2n) / (1 + z²/n), half = z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n),
    low = centre − half, high = centre + half, with z = `Z`. (None, None) when `n` is 0 or None (an
    empty rate has no interval). The bounds are kept within [0, 1]: at k = 0 or k = n the formula
    gives 0 or 1 exactly, and rounding must not push them a hair outside. A ValueError when `k` is
    not within [0, n].
    """
    if n is None or n == 0:
        return None, None
    if k is None or k < 0 or k > n:
        raise ValueError(f"wilson: k = {k!r} is not within [0, n = {n!r}]")
    p = k / n
    z2 = Z * Z
    scale = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / scale
    half = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / scale
    return max(0.0, centre - half), min(1.0, centre + half)


def add_intervals(df: pd.DataFrame, figures: Iterable[str]) -> pd.DataFrame:
    """`df` with ``<figure>_low`` and ``<figure>_high`` added for each of `figures`, from its
    ``<figure>_num`` and ``<figure>_den`` columns (contract §5.1: the formula of `wilson`, vectorised).
    NaN where the denominator is 0 or missing. `df` itself is not changed."""
    out = df.copy()
    z2 = Z * Z
    for fig in figures:
        k = pd.to_numeric(out[f"{fig}_num"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        n = pd.to_numeric(out[f"{fig}_den"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        ok = n > 0
        n_ok = np.where(ok, n, 1.0)          # no division by 0 in the rows that are masked anyway
        p = np.where(ok, k, 0.0) / n_ok
        scale = 1 + z2 / n_ok
        centre = (p + z2 / (2 * n_ok)) / scale
        half = Z * np.sqrt(np.maximum(p * (1 - p), 0.0) / n_ok + z2 / (4 * n_ok * n_ok)) / scale
        out[f"{fig}_low"] = np.where(ok, np.clip(centre - half, 0.0, 1.0), np.nan)
        out[f"{fig}_high"] = np.where(ok, np.clip(centre + half, 0.0, 1.0), np.nan)
    return out


def adjusted_rates(con, run_id: int, by: list[str], where: tuple[str, list] = ("TRUE", [])) -> pd.DataFrame:
    """Case-mix-adjusted rates of run `run_id` by direct standardisation (contract §5.1): one row per
    group of `by` (ordered by the keys, NULLs last, as `audit.figures.metrics.kpi_sql`), with
    ``<figure>_adjusted`` for each of `ADJUSTED_FIGURES`.

    Strata s = (service_type, object_type). A case without a service type or without an object type is
    not dropped: NULL is a value of its own, so (帮办, NULL), (NULL, 老年人) and (NULL, NULL) are strata
    like any other. For a figure, w_s = the stratum's share of the figure's denominator over all groups
    compared — every row of the run's ``run_kpi_cells`` that `where` selects (SQL, parameters), whatever
    its group. The adjusted rate of a group = Σ w_s · rate_group,s / Σ w_s, both sums over the strata
    where the group's denominator is not empty: a group lacking a stratum is standardised on the strata
    it has. A group with no such stratum has an empty (NULL) adjusted rate. compliance_rate's
    denominator is every case. Without `by` the single group is everything compared and the adjusted
    rate equals the crude rate (up to rounding). The shares' common divisor (the total denominator)
    cancels in the ratio, so the SQL weights by the strata's denominators themselves.
    """
    unknown = [k for k in by if k not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"adjusted_rates: unknown grouping keys {unknown}; known: {', '.join(GROUP_KEYS)}")
    where_sql, params = where
    keys = list(dict.fromkeys(by))
    group_cols = list(dict.fromkeys(keys + list(STRATA)))
    sums = ", ".join(f"coalesce(sum({num}), 0)::DOUBLE AS n_{i}, coalesce(sum({den}), 0)::DOUBLE AS d_{i}"
                     for i, (num, den) in enumerate(RATES[f] for f in ADJUSTED_FIGURES))
    weights = ", ".join(f"sum(d_{i}) OVER (PARTITION BY {', '.join(STRATA)}) AS w_{i}"
                        for i in range(len(ADJUSTED_FIGURES)))
    adjusted = ", ".join(f"sum(w_{i} * n_{i} / d_{i}) FILTER (WHERE d_{i} > 0) "
                         f"/ sum(w_{i}) FILTER (WHERE d_{i} > 0) AS {fig}_adjusted"
                         for i, fig in enumerate(ADJUSTED_FIGURES))
    select_keys = "".join(f"{k}, " for k in keys)
    group = (f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(f'{k} NULLS LAST' for k in keys)}" if keys else "")
    # PARTITION BY and GROUP BY put NULL strata together: they need no join on IS NOT DISTINCT FROM.
    sql = f"""
        WITH strata AS (
            SELECT {', '.join(group_cols)}, {sums}
            FROM {kpi_cells(run_id)} WHERE {where_sql}
            GROUP BY {', '.join(group_cols)}),
        weighted AS (SELECT *, {weights} FROM strata)
        SELECT {select_keys}{adjusted} FROM weighted {group}"""
    return con.execute(sql, list(params)).df()


def rank_with_marks(df: pd.DataFrame, figure: str, min_cases: int, higher_is_better: bool = True) -> pd.DataFrame:
    """The rows of `df` (one per group, with ``<figure>``, ``<figure>_den``, ``<figure>_low``,
    ``<figure>_high``), in the same order and index, with the marks of contract §5.1 added:

    - ``<figure>_rank`` (Int64): 1 = best (highest rate, or lowest with ``higher_is_better=False``);
      ties share the best of their ranks (1, 1, 3); a group with an empty rate has no rank (NA).
    - ``<figure>_distinct`` (boolean): True when the group's interval overlaps the interval of no
      other ranked group, so its rank is distinguishable from every other; NA for an unranked group.
      Intervals are closed: two that touch (one's high equals the other's low) overlap. Tied groups
      always overlap. A group that is the only one ranked is distinct (there is nothing to confuse
      it with). A ranked group without an interval overlaps everything (False).
    - ``<figure>_distinct_next`` (boolean): True when the group's interval overlaps none of the
      groups at the next rank below it (the smallest rank number greater than its own: after a tie
      at 1, the group(s) at 3); NA for the groups at the last rank and for unranked groups.
    - ``<figure>_small`` (bool): the denominator is below `min_cases` (a missing denominator counts
      as 0, so an empty rate is small).
    """
    out = df.copy()
    rate = pd.to_numeric(out[figure], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    low = pd.to_numeric(out[f"{figure}_low"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    high = pd.to_numeric(out[f"{figure}_high"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    den = pd.to_numeric(out[f"{figure}_den"], errors="coerce").fillna(0).to_numpy(dtype=float)
    ranked = ~np.isnan(rate)
    rank = pd.Series(rate).rank(ascending=not higher_is_better, method="min").to_numpy()

    # overlap[i, j]: the closed intervals of i and j share a point; a missing bound overlaps anything
    missing = np.isnan(low) | np.isnan(high)
    overlap = (low[:, None] <= high[None, :]) & (low[None, :] <= high[:, None])
    overlap |= missing[:, None] | missing[None, :]
    others = ranked[None, :] & ~np.eye(len(out), dtype=bool)
    distinct = ~(overlap & others).any(axis=1)

    levels = np.unique(rank[ranked])                        # the rank numbers in use, ascending
    after = np.searchsorted(levels, np.where(ranked, rank, np.inf), side="right")
    has_next = after < levels.size                          # False for the last rank and the unranked
    next_rank = np.full(len(out), np.nan)
    next_rank[has_next] = levels[after[has_next]]
    at_next = ranked[None, :] & (rank[None, :] == next_rank[:, None])
    distinct_next = ~(overlap & at_next).any(axis=1)

    out[f"{figure}_rank"] = pd.array(np.where(ranked, rank, np.nan), dtype="Float64").astype("Int64")
    out[f"{figure}_distinct"] = pd.array(np.where(ranked, distinct, None), dtype="boolean")
    out[f"{figure}_distinct_next"] = pd.array(np.where(has_next, distinct_next, None), dtype="boolean")
    out[f"{figure}_small"] = den < min_cases
    return out


def min_cases(pack_settings: dict) -> int:
    """The pack's ``min_cases`` (contract §5.1; default `MIN_CASES_DEFAULT`): below this many cases in a figure's
    denominator a group's rank is marked as resting on few cases. Takes a pack's settings
    (`audit.rules.pack.Pack.settings`, or the ``settings`` of a stored run's pack); the settings in
    force stored in ``runs.settings`` (``{"default": {...}, city: {...}}``) are read from "default"."""
    settings = dict(pack_settings or {})
    if "min_cases" not in settings and isinstance(settings.get("default"), Mapping):
        settings = dict(settings["default"])
    return int(settings.get("min_cases", MIN_CASES_DEFAULT))
