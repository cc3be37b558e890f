"""The time bounds of template rules (``within:``): SQL that gives each activation–target pair its limit
and says whether the target is late or, when it is missing, overdue (`audit.check.templates`).

- ``workdays: N`` — date(target) ≤ add_workdays(date(source), N) by the calendar joins of contract §2
  (the working day numbered wd_no(d) + N of the case's city calendar; N = 0 is the day itself);
- ``days: N`` — date(target) − date(source) ≤ N; ``hours: N`` — target − source ≤ N hours;
- ``working_hours: N`` — W(target) − W(source) ≤ N hours, W(t) = (working days before date(t)) × (the
  working day's length) + (time worked on date(t) before t, if it is a working day), the working day
  being the pack's ``working_hours`` windows (per city); the limit shown is the first instant at which
  N hours have been worked.

A missing target is overdue when a target at the audit date's first instant would already be late.
Per-city values (a setting a city overrides, its own working hours) become a CASE on the city.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.errors import CalendarError
from audit.rules.templates import BOUND_UNITS, as_plain, parse_working_hours

if TYPE_CHECKING:
    from audit.rules.pack import Pack

FMT = "'%Y-%m-%d %H:%M'"
US = 1_000_000      # microseconds per second


def lit(text: str) -> str:
    """A SQL string literal (quotes doubled): activities and values are text from a pack file."""
    return "'" + str(text).replace("'", "''") + "'"


def num(value) -> str:
    value = as_plain(value)
    return repr(int(value)) if isinstance(value, int) else repr(float(value))


def fmt_time(expr: str) -> str:
    return f"strftime({expr}, {FMT})"


# The candidate rows of a sequence template with their case's city, calendar and audit date.
CAND_WITH_CASE = ("(SELECT c0.*, cf.cal_key, cf.as_of FROM cand c0 "
                  "JOIN case_facts cf ON cf.city = c0.city AND cf.case_id = c0.case_id)")


# -- bounds --------------------------------------------------------------------------------------

def per_city(pack: Pack, value_of, render) -> str:
    """`render(value)` for the pack's value, with a CASE on the city where a city's value differs."""
    default = value_of(pack.settings)
    branches = []
    for city in sorted(pack.cities):
        own = value_of(pack.settings_for(city))
        if own != default:
            branches.append(f"WHEN {lit(city)} THEN {render(own)}")
    if not branches:
        return render(default)
    return f"(CASE c.city {' '.join(branches)} ELSE {render(default)} END)"


def bound_ctes(within: dict, pack: Pack) -> list[str]:
    unit = within["unit"]

    def amount(settings: dict):
        return as_plain(within["value"] if within["setting"] is None else settings[within["setting"]])

    n = per_city(pack, amount, num)
    bound = per_city(pack, amount, lambda v: lit(f"{as_plain(v)} {BOUND_UNITS[unit]}"))
    cand = CAND_WITH_CASE
    beyond = lit(f"{CalendarError.SQL_CODE}: 模板规则的时限超出工作日历表 (date outside the working-day calendar): ")
    if unit == "workdays":
        return [f"""bc AS (SELECT c.*, {bound} AS bound, lim_d IS NOT NULL AND c.b_t::DATE > lim_d AS late,
               lim_d IS NOT NULL AND c.as_of > lim_d AS overdue, strftime(lim_d, '%Y-%m-%d') AS lim
        FROM (SELECT c.*, CASE WHEN c.a_t IS NULL THEN NULL WHEN {n} = 0 THEN c.a_t::DATE
                               WHEN wd.d IS NULL THEN error({beyond} || c.a_t::DATE || ' + ' || {n})
                               ELSE wd.d END AS lim_d
              FROM {cand} c
              LEFT JOIN cal_days cd ON cd.cal_key = c.cal_key AND cd.d = c.a_t::DATE
              LEFT JOIN cal_workdays wd ON wd.cal_key = c.cal_key AND wd.wd_no = cd.wd_no + {n} AND {n} > 0) c)"""]
    if unit == "days":
        return [f"""bc AS (SELECT c.*, {bound} AS bound, c.b_t::DATE > lim_d AS late, c.as_of > lim_d AS overdue,
               strftime(lim_d, '%Y-%m-%d') AS lim
        FROM (SELECT c.*, c.a_t::DATE + CAST({n} AS INTEGER) AS lim_d FROM {cand} c) c)"""]
    if unit == "hours":
        return [f"""bc AS (SELECT c.*, {bound} AS bound, c.b_t > lim_ts AS late, c.as_of::TIMESTAMP > lim_ts AS overdue,
               {fmt_time('lim_ts')} AS lim
        FROM (SELECT c.*, c.a_t + to_microseconds(CAST(round({n} * {3600 * US}) AS BIGINT)) AS lim_ts FROM {cand} c) c)"""]
    return _working_hours_ctes(pack, n, bound, beyond, cand)


def _windows(settings: dict) -> list[tuple[int, int]]:
    return [(s * US, e * US) for s, e in parse_working_hours(settings["working_hours"])]


def _worked(tod: str, windows: list[tuple[int, int]]) -> str:
    """Microseconds worked on a working day before time-of-day `tod` (µs)."""
    return " + ".join(f"greatest(0, least({tod}, {e}) - {s})" for s, e in windows)


def _instant(r: str, windows: list[tuple[int, int]]) -> str:
    """Time of day (µs) at which `r` µs (0 < r ≤ the day's length) have been worked."""
    whens, done = [], 0
    for s, e in windows[:-1]:
        whens.append(f"WHEN {r} <= {done + e - s} THEN {s} + {r} - {done}")
        done += e - s
    last = f"{windows[-1][0]} + {r} - {done}"
    return f"CASE {' '.join(whens)} ELSE {last} END" if whens else last


def _working_hours_ctes(pack: Pack, n: str, bound: str, beyond: str, cand: str) -> list[str]:
    day = per_city(pack, _windows, lambda w: str(sum(e - s for s, e in w)))
    tod = "(epoch_us({t}) - epoch_us(date_trunc('day', {t})))"

    def cumulative(t: str, cal: str) -> str:
        worked = per_city(pack, _windows, lambda w: _worked(tod.format(t=t), w))
        return f"{cal}.wd_before * {day} + CASE WHEN {cal}.is_workday THEN {worked} ELSE 0 END"

    budget = f"CAST(round({n} * {3600 * US}) AS BIGINT)"
    instant = per_city(pack, _windows, lambda w: _instant("(c.x_us - (c.lim_no - 1) * c.day_us)", w))
    return [
        f"""bw AS (SELECT c.*, {day} AS day_us, {budget} AS budget_us, {bound} AS bound,
               {cumulative('c.a_t', 'ca')} AS wa, {cumulative('c.b_t', 'cb')} AS wb, co.wd_before * {day} AS wo
        FROM {cand} c
        LEFT JOIN cal_days ca ON ca.cal_key = c.cal_key AND ca.d = c.a_t::DATE
        LEFT JOIN cal_days cb ON cb.cal_key = c.cal_key AND cb.d = c.b_t::DATE
        LEFT JOIN cal_days co ON co.cal_key = c.cal_key AND co.d = c.as_of)""",
        # the limit instant: the first moment at which the bound has been worked (for the evidence)
        """bx AS (SELECT *, wa + budget_us AS x_us, greatest(1, (wa + budget_us + day_us - 1) // day_us) AS lim_no,
               wb - wa > budget_us AS late, wo - wa > budget_us AS overdue FROM bw)""",
        f"""bc AS (SELECT c.* EXCLUDE (day_us, budget_us, wa, wb, wo, x_us, lim_no),
               CASE WHEN c.a_t IS NULL THEN NULL
                    WHEN lw.d IS NULL THEN error({beyond} || c.a_t || ' + ' || {n} || ' h')
                    ELSE {fmt_time(f"lw.d + to_microseconds(CAST({instant} AS BIGINT))")} END AS lim
        FROM bx c LEFT JOIN cal_workdays lw ON lw.cal_key = c.cal_key AND lw.wd_no = c.lim_no)"""]
