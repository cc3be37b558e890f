"""Realistic synthetic 帮办代办 case logs (cases + events in canonical form) for demos and tests.

`generate_cases` builds the data step by step with numpy (no per-case Python loop), so a million
cases take seconds. Cases follow the standard's flows on working days (2025/2026 national holiday
schedule via `chinese_calendar`); a seed-controlled share of 2-8 % of the eligible cases breaks
each rule of the default pack (contract §4). `audit.sample.writers.write_sample` writes three
cities in three export shapes.

Time model: every step lies on a working day (an index into the working-day array) at an office
minute; offsets are counted in working days, so the limits of §4 are met or broken by
construction. Events later than the end of the period are cut off, which leaves realistic open,
suspended and unarchived cases near the end.
"""

from __future__ import annotations

import zlib
from datetime import date, timedelta

import numpy as np
import pandas as pd

from audit.sample import docs as D
from audit.sample import people as P
from audit.sample import vocab as V
from audit.sample.docs import (
    S_ACCEPT,
    S_ANALYSE,
    S_APPLY,
    S_ARCHIVE,
    S_CLOSE,
    S_CONSULT,
    S_ENTRUST,
    S_FOLLOWUP,
    S_HANDOVER,
    S_RESUME1,
    S_RESUME2,
    S_SUSP1,
    S_SUSP2,
    S_UNDERTAKE,
    S_UNDERTAKE2,
    SLOTS,
)

RULES = ["FLOW-BB-STEPS", "FLOW-BB-ORDER", "FLOW-DB-STEPS", "FLOW-DB-ORDER", "FLOW-DB-ENTRUST",
         "FLOW-DB-SUSPEND", "REQ-ONE-TO-ONE", "REQ-ONE-STOP", "REQ-TIME-LIMIT", "REQ-INTEGRITY",
         "REQ-RESPONSE", "ARCHIVE-TIMELY", "ARCHIVE-MATERIALS", "EVAL-RATED", "EVAL-FOLLOWUP"]
MINUTES_PER_DAY = 1440
# The period the sample's requests are spread over. Events after its end are cut off, so the end
# is the audit date the sample assumes (the default audit date of the bundled sample, too).
PERIOD_START, PERIOD_END = date(2025, 9, 1), date(2026, 3, 31)


def working_days(lo: date, hi: date) -> np.ndarray:
    """Working days in [lo, hi] as datetime64[D]: the national schedule where `chinese_calendar`
    knows the year, Monday-Friday otherwise (only reached far beyond the sample period)."""
    import chinese_calendar

    days = np.arange(np.datetime64(lo, "D"), np.datetime64(hi, "D") + 1)
    keep = np.zeros(len(days), dtype=bool)
    for i, d64 in enumerate(days):
        d = d64.astype(object)
        try:
            keep[i] = chinese_calendar.is_workday(d)
        except NotImplementedError:
            keep[i] = d.weekday() < 5
    return days[keep]


class _Gen:
    """State of one generation run: the random stream and the working-day array."""

    def __init__(self, seed: int, city: str, start: date, end: date):
        self.rng = np.random.default_rng([seed, zlib.crc32(city.encode("utf-8"))])
        self.wd = working_days(start - timedelta(days=40), end + timedelta(days=400))
        self.wd_int = self.wd.astype(np.int64)                 # days since 1970-01-01

    def choice(self, values, p, n):
        return np.asarray(values)[self.rng.choice(len(values), n, p=p)]

    def office_minute(self, n):
        """Minute of day in office hours: 09:00-11:55 or 14:30-17:50."""
        r = self.rng
        return np.where(r.random(n) < 0.6, r.integers(540, 716, n), r.integers(870, 1071, n))

    def workday_after(self, day, k):
        """Index of add_workdays(day, k) for k >= 1 (`day` in days since epoch, any day)."""
        return np.searchsorted(self.wd_int, day, side="right") + k - 1


def _pick(g: _Gen, rate: float, eligible: np.ndarray) -> np.ndarray:
    return eligible & (g.rng.random(len(eligible)) < rate)


def generate_cases(n_cases: int, city: str, seed: int, start: date = PERIOD_START,
                   end: date = PERIOD_END, *, wide: bool = False,
                   with_truth: bool = False):
    """Generate `n_cases` synthetic cases of `city` with requests spread over [start, end].

    Returns ``(cases, events)`` in canonical form (contract §1): ``cases`` has one row per case
    (case_id, city, county, hall, service_type, channel, object_type, item, applicant,
    id_number, phone, staff, promised_days, fee, visits, rating, rating_time, materials) and
    ``events`` one row per step (case_id, step, time, staff, note), sorted by case and time.
    The same arguments always give the same data.

    ``wide=True`` restricts the data to what a wide ledger can hold (at most one 中止/续办, no
    移交, no staff on events). ``with_truth=True`` also returns a dict rule id -> case ids into
    which a violation of that rule was injected (an injection cut off by the end of the period,
    or one into a case that an unrelated gap keeps from being judged, may not show; and one may
    break another rule too, e.g. a dropped 委托 breaks FLOW-DB-STEPS: tests/sample_explain.py
    names each such difference, and tests/test_sample_oracle.py holds the findings to them).
    """
    if n_cases < 0:
        raise ValueError("n_cases must be >= 0")
    g = _Gen(seed, city, start, end)
    rng, n = g.rng, n_cases
    rate = {rule: float(rng.uniform(0.02, 0.08)) for rule in RULES}

    # --- request day, case order and id -------------------------------------------------
    lo = np.searchsorted(g.wd, np.datetime64(start))
    hi = np.searchsorted(g.wd, np.datetime64(end), "right")
    monday = (g.wd_int[lo:hi] + 3) % 7 == 0                   # 1970-01-01 was a Thursday
    weight = rng.gamma(6.0, 1.0, hi - lo) * np.where(monday, 1.3, 1.0)
    r0 = lo + rng.choice(hi - lo, n, p=weight / weight.sum())
    m0 = g.office_minute(n)
    order = np.lexsort((m0, r0))
    r0, m0 = r0[order], m0[order]
    serial = np.arange(n) - np.searchsorted(r0, r0, side="left") + 1
    ymd = pd.DatetimeIndex(g.wd).strftime("%Y%m%d").to_numpy().astype(np.int64)[r0]
    prefix, counties = V.city_places(city)
    case_ids = np.char.add(prefix, (ymd * 10**6 + serial).astype("<U14")).astype(object)

    # --- places, staff, people ----------------------------------------------------------
    hall_names = [f"{city}市政务服务中心"] + [f"{c}政务服务中心" for c, _ in counties]
    hall_county = np.array([0] + list(range(len(counties))))
    hall = g.choice(np.arange(len(hall_names)), [0.3] + [0.7 / len(counties)] * len(counties), n)
    county = hall_county[hall]
    roster_size = rng.integers(3, 8, len(hall_names))
    roster_start = np.concatenate([[0], np.cumsum(roster_size)[:-1]])
    staff_names = P.unique_person_names(rng, int(roster_size.sum()) + len(hall_names))
    supervisor = roster_size.sum() + np.arange(len(hall_names))   # one 回访 supervisor per hall
    staff_names_arr = np.array(staff_names + [None], dtype=object)  # index -1 -> None

    obj = rng.choice(len(V.OBJECT_TYPES), n, p=V.OBJECT_WEIGHTS)
    is_db = rng.random(n) < np.array(V.DAIBAN_SHARE)[obj]
    online = rng.random(n) < np.array(V.ONLINE_SHARE)[obj]
    item_names = [it for items in V.ITEMS for it, _ in items]
    item_days = np.array([d for items in V.ITEMS for _, d in items])
    item_count = np.array([len(items) for items in V.ITEMS])
    item_off = np.concatenate([[0], np.cumsum(item_count)[:-1]])
    item = item_off[obj] + (rng.random(n) * item_count[obj]).astype(np.int64)
    promised = item_days[item].copy()
    cut = rng.random(n) < 0.15                                  # halls promising less than the law
    promised[cut] = (promised[cut] * rng.uniform(0.4, 0.9, cut.sum())).astype(np.int64)

    term = rng.random(n) < 0.03
    n_susp = np.where(is_db & (promised >= 3), (rng.random(n) < 0.18).astype(np.int64), 0)
    if not wide:
        n_susp[(n_susp == 1) & (rng.random(n) < 0.15)] = 2
    handover = (rng.random(n) < 0.03) & (not wide)

    # --- which cases break which rule ---------------------------------------------------
    alln = np.ones(n, dtype=bool)
    v = {
        "FLOW-BB-STEPS": _pick(g, rate["FLOW-BB-STEPS"], ~is_db & ~term),
        "FLOW-BB-ORDER": _pick(g, rate["FLOW-BB-ORDER"], ~is_db),
        "FLOW-DB-STEPS": _pick(g, rate["FLOW-DB-STEPS"], is_db & ~term),
        "FLOW-DB-ORDER": _pick(g, rate["FLOW-DB-ORDER"], is_db),
        "FLOW-DB-ENTRUST": _pick(g, rate["FLOW-DB-ENTRUST"], is_db),
        "FLOW-DB-SUSPEND": _pick(g, rate["FLOW-DB-SUSPEND"], is_db & ~term),
        "REQ-ONE-TO-ONE": _pick(g, rate["REQ-ONE-TO-ONE"], alln),
        "REQ-ONE-STOP": _pick(g, rate["REQ-ONE-STOP"], ~online),
        "REQ-TIME-LIMIT": _pick(g, rate["REQ-TIME-LIMIT"], ~term),
        "REQ-INTEGRITY": _pick(g, rate["REQ-INTEGRITY"], alln),
        "REQ-RESPONSE": _pick(g, rate["REQ-RESPONSE"], alln),
        "ARCHIVE-TIMELY": _pick(g, rate["ARCHIVE-TIMELY"], alln),
        "ARCHIVE-MATERIALS": _pick(g, rate["ARCHIVE-MATERIALS"], alln),
        "EVAL-RATED": _pick(g, rate["EVAL-RATED"], ~term),
    }
    v["EVAL-FOLLOWUP"] = _pick(g, rate["EVAL-FOLLOWUP"], ~term & ~v["EVAL-RATED"])
    v["FLOW-BB-ORDER"] &= ~v["FLOW-BB-STEPS"]        # keep each injection visible on its own
    v["FLOW-DB-ORDER"] &= ~v["FLOW-DB-STEPS"] & ~v["FLOW-DB-ENTRUST"]
    n_susp[v["FLOW-DB-SUSPEND"] & (n_susp == 0)] = 1

    # --- times: a cursor (working-day index, minute) walks through the slots --------------
    ns = len(SLOTS)
    present = np.zeros((ns, n), dtype=bool)
    day = np.zeros((ns, n), dtype=np.int64)
    minute = np.zeros((ns, n), dtype=np.int64)
    cur_d, cur_m = r0.copy(), m0.copy()

    def put(slot, mask, dd):
        nonlocal cur_d, cur_m
        dd = np.broadcast_to(np.asarray(dd, dtype=np.int64), (n,))
        same = dd == 0
        step_m = np.where(cur_m > 1050, rng.integers(1, 6, n), rng.integers(3, 40, n))
        same_m = cur_m + step_m
        same_m = np.where((same_m >= 720) & (same_m < 870), same_m + 150, same_m)  # lunch break
        new_m = np.where(same, np.minimum(same_m, 1439), g.office_minute(n))
        cur_d = np.where(mask, cur_d + dd, cur_d)
        cur_m = np.where(mask, new_m, cur_m)
        present[slot], day[slot], minute[slot] = mask, cur_d, cur_m

    present[S_CONSULT], day[S_CONSULT], minute[S_CONSULT] = True, r0, m0
    resp = np.where(rng.random(n) < 0.7, 0, 1)
    resp[v["REQ-RESPONSE"]] = rng.integers(2, 7, v["REQ-RESPONSE"].sum())
    bb = ~is_db
    apply_dd = np.where((resp >= 1) & (rng.random(n) < 0.3), 1, 0)
    put(S_APPLY, bb, apply_dd)
    put(S_ACCEPT, bb, resp - apply_dd)
    put(S_ANALYSE, is_db, resp)
    put(S_ENTRUST, is_db, g.choice([0, 1, 2], [0.6, 0.3, 0.1], n))

    budget = np.minimum(np.floor(rng.random(n) ** 1.6 * (promised + 1)).astype(np.int64), promised)
    late = v["REQ-TIME-LIMIT"]
    budget[late] = promised[late] + rng.integers(1, 7, late.sum())
    first = np.minimum(budget, g.choice([0, 1, 2], [0.5, 0.35, 0.15], n))
    rest = budget - first
    put(S_UNDERTAKE, alln, first)

    def spend(mask):
        nonlocal rest
        part = np.where(mask, (rng.random(n) * (rest + 1)).astype(np.int64), 0)
        rest = rest - part
        return part

    extra = (rng.random(n) < 0.3) & (not wide)               # a second 承办 (progress) event
    put(S_UNDERTAKE2, extra, spend(extra))
    for s_susp, s_res, k in ((S_SUSP1, S_RESUME1, 1), (S_SUSP2, S_RESUME2, 2)):
        m = n_susp >= k
        put(s_susp, m, spend(m))
        put(s_res, m, np.minimum(rng.geometric(0.12, n), 40))
    put(S_HANDOVER, handover, spend(handover))
    put(S_CLOSE, alln, rest)
    arch_dd = g.choice(np.arange(6), [0.1, 0.35, 0.25, 0.15, 0.1, 0.05], n)
    late_arch = v["ARCHIVE-TIMELY"]
    arch_dd[late_arch] = rng.integers(6, 21, late_arch.sum())
    put(S_ARCHIVE, alln & ~(late_arch & (rng.random(n) < 0.3)), arch_dd)

    t = g.wd_int[day] * MINUTES_PER_DAY + minute           # minutes since epoch, per slot
    day = minute = None   # free them (the closure above holds them)
    # An online request may come in outside office hours before the first working day.
    prev = g.wd_int[r0 - 1]
    c = prev + (rng.random(n) * (g.wd_int[r0] - prev)).astype(np.int64)
    start_day = np.datetime64(start, "D").astype(np.int64)
    shift = online & (resp == 0) & (rng.random(n) < 0.35) & (c >= start_day)
    shifted_min = np.where(c == prev, rng.integers(1110, 1380, n), rng.integers(480, 1320, n))
    t[S_CONSULT] = np.where(shift, c * MINUTES_PER_DAY + shifted_min, t[S_CONSULT])

    # --- rating and follow-up -----------------------------------------------------------
    rated = ~term & ~v["EVAL-RATED"]
    bad = rated & (v["EVAL-FOLLOWUP"] | (rng.random(n) < 0.02))
    # Rated minutes after 办结 (SMS / on-site pad) or on one of the next 7 days, 08:00-22:00.
    close_day = t[S_CLOSE] // MINUTES_PER_DAY
    days_later = g.choice(np.arange(1, 8), [.35, .2, .15, .1, .08, .07, .05], n)
    later = (close_day + days_later) * MINUTES_PER_DAY
    t_rating = np.where(rng.random(n) < 0.65, t[S_CLOSE] + rng.integers(5, 180, n),
                        later + rng.integers(480, 1320, n))
    level = np.where(bad, g.choice([3, 4], [0.7, 0.3], n), g.choice([0, 1, 2], [0.72, 0.21, 0.07], n))
    k = rng.integers(1, 6, n)
    no_fu = v["EVAL-FOLLOWUP"] & (rng.random(n) < 0.6)
    k[v["EVAL-FOLLOWUP"]] = rng.integers(6, 13, v["EVAL-FOLLOWUP"].sum())
    fu_day = g.workday_after(t_rating // MINUTES_PER_DAY, k)
    present[S_FOLLOWUP] = bad & ~no_fu
    t[S_FOLLOWUP] = g.wd_int[fu_day] * MINUTES_PER_DAY + g.office_minute(n)
    rating_time_blank = rated & ~bad & (rng.random(n) < 0.05)

    D.inject_flow(g, v, t, present, n_susp, term, is_db)

    end_min = (np.datetime64(end, "D").astype(np.int64) + 1) * MINUTES_PER_DAY
    present &= t < end_min
    rated &= present[S_CLOSE] & (t_rating < end_min)

    # --- staff and notes per event --------------------------------------------------------
    k0 = (rng.random(n) * roster_size[hall]).astype(np.int64)
    staff0 = roster_start[hall] + k0
    size = roster_size[hall]
    other = roster_start[hall] + (k0 + 1 + (rng.random(n) * (size - 1)).astype(np.int64)) % size
    staff_final = np.where(handover, other, staff0)
    staff = np.tile(staff0, (ns, 1))
    staff[S_CLOSE:S_FOLLOWUP] = staff_final
    staff[S_APPLY] = -1
    staff[S_CONSULT] = np.where(online & (rng.random(n) < 0.5), -1, staff0)
    staff[S_FOLLOWUP] = supervisor[hall]
    no_staff = v["REQ-ONE-TO-ONE"] & (wide | (rng.random(n) < 0.5) | handover)
    staff[S_UNDERTAKE] = np.where(v["REQ-ONE-TO-ONE"] & ~no_staff, other, staff[S_UNDERTAKE])
    staff[:, no_staff] = -1
    case_staff = np.where(no_staff, -1, staff_final)
    if wide:
        staff[:] = -1

    # --- assemble events ----------------------------------------------------------------
    slot_of, case_of = np.nonzero(present)
    ev_time = t[slot_of, case_of]
    ev_staff = staff[slot_of, case_of]
    del staff, t
    order = np.lexsort((slot_of, ev_time, case_of))
    slot_of, case_of, ev_time, ev_staff = slot_of[order], case_of[order], ev_time[order], ev_staff[order]
    del order
    step = np.array(SLOTS, dtype=object)[slot_of]
    is_term = (slot_of == S_CLOSE) & term[case_of]
    step[is_term] = "终止"
    note = D.notes(g, slot_of, case_of, is_term, online, other, staff_names_arr)
    events = pd.DataFrame({
        "case_id": _obj(case_ids[case_of]),
        "step": _obj(step),
        "time": pd.to_datetime(ev_time * 60, unit="s"),
        "staff": _obj(staff_names_arr[ev_staff]),
        "note": _obj(note),
    })
    del slot_of, case_of, ev_time, ev_staff, step, note, is_term

    # --- case table -----------------------------------------------------------------------
    archived = present[S_ARCHIVE]
    materials = D.materials(g, v["ARCHIVE-MATERIALS"], archived, is_db, term & present[S_CLOSE],
                           present[S_SUSP1] | present[S_SUSP2], present[S_RESUME1] | present[S_RESUME2],
                           obj)
    company = np.isin(obj, list(V.COMPANY_OBJECTS))
    region = np.array([code for _, code in counties])[county]
    place = np.where(rng.random(n) < 0.5, np.array([c for c, _ in counties])[county], f"{city}市")
    applicant = np.empty(n, dtype=object)
    id_number = np.empty(n, dtype=object)
    applicant[company] = P.company_names(rng, int(company.sum()), place[company])
    applicant[~company] = P.person_names(rng, int((~company).sum()))
    id_number[company] = P.credit_codes(rng, region[company])
    id_number[~company] = P.id_numbers(rng, region[~company], obj[~company] == 3)
    fee = np.zeros(n)
    charged = v["REQ-INTEGRITY"]
    fee[charged] = g.choice([20.0, 50.0, 100.0, 200.0, 300.0, 500.0], None, int(charged.sum()))
    visits = np.where(online, 0, np.where(rng.random(n) < 0.92, 1, 0))
    visits[v["REQ-ONE-STOP"]] = rng.integers(2, 5, v["REQ-ONE-STOP"].sum())
    ratings = np.array(V.RATINGS + [None], dtype=object)
    rt = pd.to_datetime(t_rating * 60, unit="s").to_numpy().copy()
    rt[~rated | rating_time_blank] = np.datetime64("NaT")
    cases = pd.DataFrame({
        "case_id": _obj(case_ids),
        "city": _obj(np.full(n, city, dtype=object)),
        "county": _obj(np.array([c for c, _ in counties], dtype=object)[county]),
        "hall": _obj(np.array(hall_names, dtype=object)[hall]),
        "service_type": _obj(np.array(["帮办", "代办"], dtype=object)[is_db.astype(np.int8)]),
        "channel": _obj(np.array(["线下", "线上"], dtype=object)[online.astype(np.int8)]),
        "object_type": _obj(np.array(V.OBJECT_TYPES, dtype=object)[obj]),
        "item": _obj(np.array(item_names, dtype=object)[item]),
        "applicant": _obj(applicant),
        "id_number": _obj(id_number),
        "phone": _obj(P.mobile_numbers(rng, n).astype(object)),
        "staff": _obj(staff_names_arr[case_staff]),
        "promised_days": promised.astype(np.int64),
        "fee": fee,
        "visits": visits.astype(np.int64),
        "rating": _obj(ratings[np.where(rated, level, -1)]),
        "rating_time": pd.to_datetime(rt),
        "materials": _obj(materials),
    })
    if with_truth:
        return cases, events, {rule: case_ids[mask] for rule, mask in v.items()}
    return cases, events


def _obj(values: np.ndarray) -> pd.Series:
    """A string column kept as object dtype: strings shared between rows cost one pointer each
    (pandas 3 would otherwise copy every value into an Arrow string column)."""
    return pd.Series(values, dtype=object, copy=False)
