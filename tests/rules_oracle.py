"""An oracle of the default pack written from contract §4 alone: plain Python over the rows the
sample generator produced, with working days from `chinese_calendar`. It imports nothing of
audit's facts, engine or rules, so a finding it agrees with was reached twice, independently.

`judge(cases, events, as_of)` returns rule id -> the case ids that violate it. `cases` and
`events` are the generator's canonical frames of one city (`audit.sample.generate.generate_cases`); the
events of a case are taken in time order, ties in the order of their rows (the order the export
files carry them in).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

import chinese_calendar
import pandas as pd

# Pack settings (rules/pack.yaml defaults, contract §4).
MAX_VISITS, RESPONSE_DAYS, ARCHIVE_DAYS, RATING_GRACE_DAYS, FOLLOWUP_DAYS = 1, 1, 5, 7, 5
BAD_RATINGS = {"不满意", "非常不满意"}
SEPARATORS = ";；、,"
RULE_STAFF_STEPS = {"受理", "需求分析", "委托", "承办", "中止", "续办", "办结"}
FLOW = {"帮办": ["咨询", "申请", "受理", "承办", "办结"], "代办": ["咨询", "需求分析", "委托", "承办", "办结"]}
START = {"帮办": "受理", "代办": "委托"}
RESPONSE = {"帮办": "受理", "代办": "需求分析"}
FIRST_DOC = {"帮办": "受理单", "代办": "委托书"}


@functools.cache
def is_workday(d: dt.date) -> bool:
    return chinese_calendar.is_workday(d)


# The working day of the template tests and the online pack ("09:00-12:00,13:30-17:30").
WINDOWS = [(dt.time(9, 0), dt.time(12, 0)), (dt.time(13, 30), dt.time(17, 30))]


def working_seconds(t1: dt.datetime, t2: dt.datetime) -> float:
    """Working time between two instants: the overlap with the windows of every working day between them."""
    total, day = 0.0, t1.date()
    while day <= t2.date():
        if is_workday(day):
            for s, e in WINDOWS:
                lo, hi = max(t1, dt.datetime.combine(day, s)), min(t2, dt.datetime.combine(day, e))
                total += max(0.0, (hi - lo).total_seconds())
        day += dt.timedelta(days=1)
    return total


def add_workdays(d: dt.date, n: int) -> dt.date:
    """Contract §2: add_workdays(d, 0) = d; else the n-th working day after d."""
    while n > 0:
        d += dt.timedelta(days=1)
        n -= is_workday(d)
    return d


def workdays(a: dt.date, b: dt.date) -> int:
    """Working days in [a, b)."""
    return sum(is_workday(a + dt.timedelta(days=i)) for i in range((b - a).days))


@dataclass
class Case:
    """One case: its attributes and its events in order, as (time, step, staff)."""

    row: dict
    events: list = field(default_factory=list)

    def first(self, step: str) -> dt.datetime | None:
        return next((t for t, s, _ in self.events if s == step), None)

    def has(self, step: str) -> bool:
        return any(s == step for _, s, _ in self.events)

    def dates(self, step: str) -> list[dt.date]:
        return [t.date() for t, s, _ in self.events if s == step]

    @property
    def kind(self) -> str:
        return self.row["service_type"]

    @property
    def closed(self) -> bool:
        return self.has("办结") or self.has("终止")


def cases_of(cases: pd.DataFrame, events: pd.DataFrame) -> dict[str, Case]:
    """The generator's frames as Case objects keyed by case id."""
    out = {r["case_id"]: Case(r) for r in cases.to_dict("records")}
    ev = events.reset_index(drop=True)
    ev = ev.assign(_row=range(len(ev))).sort_values(["case_id", "time", "_row"], kind="stable")
    for cid, step, when, staff in zip(ev.case_id, ev.step, ev.time, ev.staff):
        out[cid].events.append((when.to_pydatetime(), step, staff if isinstance(staff, str) else None))
    return out


def missing(x) -> bool:
    """An empty cell of the generated frames (None, NaN, NaT)."""
    return x is None or bool(pd.isna(x))


# --- one function per rule: True when the case violates it ---------------------------------
def flow_steps(c: Case, kind: str) -> bool:
    return c.kind == kind and c.has("办结") and any(not c.has(s) for s in FLOW[kind][:4])


def flow_order(c: Case, kind: str) -> bool:
    if c.kind != kind:
        return False
    times = [c.first(s) for s in FLOW[kind] if c.has(s)]
    return any(a > b for a, b in zip(times, times[1:]))


def db_entrust(c: Case) -> bool:
    undertake = c.first("承办")
    if c.kind != "代办" or undertake is None:
        return False
    return not any(s == "委托" and t <= undertake for t, s, _ in c.events)


def db_suspend(c: Case) -> bool:
    if c.kind != "代办":
        return False
    steps = [s for _, s, _ in c.events]
    open_ = False
    for i, s in enumerate(steps):
        if s == "中止":
            open_ = True
            nxt = next((x for x in steps[i + 1:] if x in {"承办", "办结", "资料归档", "续办", "终止"}), None)
            if nxt in {"承办", "办结", "资料归档"}:
                return True
        elif s == "续办":
            if not open_:
                return True
            open_ = False
    return False


def one_to_one(c: Case) -> bool:
    on_events = [st for _, s, st in c.events if s in RULE_STAFF_STEPS and st]
    if missing(c.row["staff"]) and not on_events:
        return True
    return len(set(on_events)) > 1 + sum(s == "移交" for _, s, _ in c.events)


def one_stop(c: Case) -> bool:
    return c.row["channel"] == "线下" and c.row["visits"] > MAX_VISITS


def suspended_now(c: Case) -> bool:
    """An open case whose last 中止 has no 续办 or 终止 after it."""
    steps = [s for _, s, _ in c.events]
    if c.closed or "中止" not in steps:
        return False
    last = len(steps) - 1 - steps[::-1].index("中止")
    return not any(s in {"续办", "终止"} for s in steps[last + 1:])


def suspended_workdays(c: Case) -> int:
    total, opened = 0, None
    for t, s, _ in c.events:
        if s == "中止" and opened is None:
            opened = t.date()
        elif s == "续办" and opened is not None:
            total += workdays(opened, t.date())
            opened = None
    return total


def deadline(c: Case) -> dt.date | None:
    start = c.first(START[c.kind])
    if start is None or missing(c.row["promised_days"]):
        return None
    return add_workdays(start.date(), int(c.row["promised_days"]) + suspended_workdays(c))


def time_limit(c: Case, as_of: dt.date) -> bool:
    limit = deadline(c)
    if limit is None:
        return False
    done = c.first("办结")
    if done is not None:
        return done.date() > limit
    return not c.closed and not suspended_now(c) and as_of > limit


def response(c: Case, as_of: dt.date) -> bool:
    if not c.events:
        return False
    limit = add_workdays(c.events[0][0].date(), RESPONSE_DAYS)
    answered = c.first(RESPONSE[c.kind])
    return answered.date() > limit if answered else as_of > limit


def close_date(c: Case) -> dt.date | None:
    return next((t.date() for t, s, _ in c.events if s in {"办结", "终止"}), None)


def archive_timely(c: Case, as_of: dt.date) -> bool:
    closed_on = close_date(c)
    if closed_on is None:
        return False
    limit = add_workdays(closed_on, ARCHIVE_DAYS)
    return as_of > limit and not any(d <= limit for d in c.dates("资料归档"))


def archive_materials(c: Case) -> bool:
    """By name containment only: the pack's extra aliases (e.g. 办结(终止)单) never occur in the
    generated materials."""
    if not c.closed or not c.has("资料归档"):
        return False
    text = c.row["materials"] if isinstance(c.row["materials"], str) else ""
    for sep in SEPARATORS:
        text = text.replace(sep, "\n")
    items = [x.strip() for x in text.split("\n") if x.strip()]
    required = [FIRST_DOC[c.kind]]
    required += ["办结单"] * c.has("办结") + ["终止单"] * c.has("终止")
    required += ["中止单"] * c.has("中止") + ["续办委托书"] * c.has("续办")
    return any(not any(doc in item for item in items) for doc in required)


def eval_rated(c: Case, as_of: dt.date) -> bool:
    done = c.first("办结")
    return done is not None and missing(c.row["rating"]) and (as_of - done.date()).days > RATING_GRACE_DAYS


def rating_date(c: Case) -> dt.date | None:
    """The rating's date: its rating_time, else (contract §1.3) the 办结 time; None without both."""
    if not missing(c.row["rating_time"]):
        return c.row["rating_time"].date()
    return c.first("办结").date() if c.has("办结") else None


def eval_followup(c: Case, as_of: dt.date) -> bool:
    if c.row["rating"] not in BAD_RATINGS:
        return False
    rated_on = rating_date(c)
    if rated_on is None:
        return False
    limit = add_workdays(rated_on, FOLLOWUP_DAYS)
    return as_of > limit and not any(rated_on <= d <= limit for d in c.dates("回访"))


def judge(cases: pd.DataFrame, events: pd.DataFrame, as_of: dt.date) -> dict[str, set[str]]:
    """Rule id -> ids of the cases that violate it on `as_of` (contract §4)."""
    tests = {
        "FLOW-BB-STEPS": lambda c: flow_steps(c, "帮办"),
        "FLOW-BB-ORDER": lambda c: flow_order(c, "帮办"),
        "FLOW-DB-STEPS": lambda c: flow_steps(c, "代办"),
        "FLOW-DB-ORDER": lambda c: flow_order(c, "代办"),
        "FLOW-DB-ENTRUST": db_entrust,
        "FLOW-DB-SUSPEND": db_suspend,
        "REQ-ONE-TO-ONE": one_to_one,
        "REQ-ONE-STOP": one_stop,
        "REQ-TIME-LIMIT": lambda c: time_limit(c, as_of),
        "REQ-INTEGRITY": lambda c: c.row["fee"] > 0,
        "REQ-RESPONSE": lambda c: response(c, as_of),
        "ARCHIVE-TIMELY": lambda c: archive_timely(c, as_of),
        "ARCHIVE-MATERIALS": archive_materials,
        "EVAL-RATED": lambda c: eval_rated(c, as_of),
        "EVAL-FOLLOWUP": lambda c: eval_followup(c, as_of),
    }
    all_cases = cases_of(cases, events)
    return {rule: {cid for cid, c in all_cases.items() if test(c)} for rule, test in tests.items()}
