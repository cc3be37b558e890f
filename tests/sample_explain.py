"""Why the findings over the sample differ from the generator's record of injected violations.

The generator (`audit.sample.generate`) breaks each rule in a chosen share of the cases and records them
(`with_truth`). The findings differ from that record in a few ways that follow from how the data
is made, and each is named here as a property of the generated rows (plus, where it says so, the
record of another rule's injection), written from contract §4 without audit's facts or rules:

- MISSED[rule]: why an injected case may not be found (its break lies after the period end,
  so the case is pending or the rule does not apply; or another injection removed what the break
  was put on);
- EXTRA[rule]: why a case not injected with the rule may still break it (another rule's
  injection breaks it too, as contract §4 says one gap may).

A difference that no named reason covers fails the test: either the generator or the rules
changed, and the test says which case and rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from tests.rules_oracle import (
    ARCHIVE_DAYS,
    FOLLOWUP_DAYS,
    RATING_GRACE_DAYS,
    RESPONSE,
    RESPONSE_DAYS,
    RULE_STAFF_STEPS,
    START,
    Case,
    add_workdays,
    close_date,
    deadline,
    missing,
    rating_date,
    suspended_now,
)

# A reason: (case, rules injected into it, audit date) -> does the reason hold for the case?
Reason = Callable[[Case, set, dt.date], bool]


def _before(c: Case, a: str, b: str) -> bool:
    """Both steps present and the first `a` strictly before the first `b`."""
    ta, tb = c.first(a), c.first(b)
    return ta is not None and tb is not None and ta < tb


def _lacks_any(*steps: str) -> Reason:
    return lambda c, inj, as_of: any(not c.has(s) for s in steps)


def _not_completed(c: Case, inj: set, as_of: dt.date) -> bool:
    return not c.has("办结")


def _ends_suspended(c: Case, inj: set, as_of: dt.date) -> bool:
    """The broken suspension lies at the period end: the last of 中止/承办/办结/资料归档/续办/终止
    is a 中止 (nothing followed it yet), or the case has neither 中止 nor 续办 (the orphan 续办
    was cut off)."""
    relevant = [s for _, s, _ in c.events if s in {"中止", "承办", "办结", "资料归档", "续办", "终止"}]
    return (bool(relevant) and relevant[-1] == "中止") or not (c.has("中止") or c.has("续办"))


def _time_limit_pending(c: Case, inj: set, as_of: dt.date) -> bool:
    limit = deadline(c)
    return not c.has("办结") and limit is not None and as_of <= limit


def _suspended_at_as_of(c: Case, inj: set, as_of: dt.date) -> bool:
    return not c.has("办结") and suspended_now(c)


def _start_moved_earlier(c: Case, inj: set, as_of: dt.date) -> bool:
    """An injected order swap put the start step before its predecessor (受理 before 申请,
    委托 before 需求分析): the deadline counts from the earlier date."""
    return bool(inj & {"FLOW-BB-ORDER", "FLOW-DB-ORDER"}) and (
        _before(c, "受理", "申请") if c.kind == "帮办" else _before(c, "委托", "需求分析"))


def _start_moved_later(c: Case, inj: set, as_of: dt.date) -> bool:
    return bool(inj & {"FLOW-BB-ORDER", "FLOW-DB-ENTRUST"}) and _before(c, "承办", START[c.kind])


def _response_limit(c: Case) -> dt.date:
    return add_workdays(c.events[0][0].date(), RESPONSE_DAYS)


def _response_pending(c: Case, inj: set, as_of: dt.date) -> bool:
    return not c.has(RESPONSE[c.kind]) and as_of <= _response_limit(c)


def _response_moved_earlier(c: Case, inj: set, as_of: dt.date) -> bool:
    """An injected order swap gave the response step its predecessor's time (受理 before 申请,
    or 申请, which then took the later time, after the period end / 需求分析 before 咨询)."""
    if not inj & {"FLOW-BB-ORDER", "FLOW-DB-ORDER"}:
        return False
    if c.kind == "帮办":
        return (c.has("受理") and not c.has("申请")) or _before(c, "受理", "申请")
    return _before(c, "需求分析", "咨询")


def _response_moved_later(c: Case, inj: set, as_of: dt.date) -> bool:
    """An injected order swap gave the response step the later time of its successor (受理 after
    承办 / 需求分析 after 委托)."""
    return bool(inj & {"FLOW-BB-ORDER", "FLOW-DB-ORDER"}) and (
        _before(c, "承办", "受理") if c.kind == "帮办" else _before(c, "委托", "需求分析"))


def _response_dropped(c: Case, inj: set, as_of: dt.date) -> bool:
    """An injected FLOW-*-STEPS removed the response step, and its limit has passed."""
    return (bool(inj & {"FLOW-BB-STEPS", "FLOW-DB-STEPS"}) and not c.has(RESPONSE[c.kind])
            and as_of > _response_limit(c))


def _archive_pending(c: Case, inj: set, as_of: dt.date) -> bool:
    closed = close_date(c)
    return closed is None or as_of <= add_workdays(closed, ARCHIVE_DAYS)


def _within_rating_grace(c: Case, inj: set, as_of: dt.date) -> bool:
    return c.has("办结") and (as_of - c.first("办结").date()).days <= RATING_GRACE_DAYS


def _unrated(c: Case, inj: set, as_of: dt.date) -> bool:
    return missing(c.row["rating"])


def _followup_pending(c: Case, inj: set, as_of: dt.date) -> bool:
    rated = rating_date(c)
    return rated is not None and as_of <= add_workdays(rated, FOLLOWUP_DAYS)


AFTER_END = "its break lies after the period end"

MISSED: dict[str, dict[str, Reason]] = {
    "FLOW-BB-STEPS": {"not completed in the period (no 办结): the rule does not apply": _not_completed},
    "FLOW-BB-ORDER": {f"{AFTER_END}: one of the swapped steps is missing": _lacks_any("咨询", "申请", "受理", "承办")},
    "FLOW-DB-STEPS": {"not completed in the period (no 办结): the rule does not apply": _not_completed},
    "FLOW-DB-ORDER": {f"{AFTER_END}: one of the swapped steps is missing": _lacks_any("咨询", "需求分析", "委托")},
    "FLOW-DB-ENTRUST": {"no 承办 (removed by an injected FLOW-DB-STEPS, or after the period end)": _lacks_any("承办")},
    "FLOW-DB-SUSPEND": {f"{AFTER_END}: the case ends suspended, or the orphan 续办 is cut off": _ends_suspended},
    "REQ-ONE-TO-ONE": {
        "the second staff member was put on the 承办, and the case lacks it or every other step the rule "
        "counts (removed by an injected FLOW-*-STEPS, or after the period end)":
            lambda c, inj, as_of: not c.has("承办") or not any(c.has(s) for s in RULE_STAFF_STEPS - {"承办"}),
    },
    "REQ-ONE-STOP": {},
    "REQ-TIME-LIMIT": {
        "no start step (removed by an injected FLOW-*-STEPS / FLOW-DB-ENTRUST, or after the period end): "
        "no deadline": lambda c, inj, as_of: not c.has(START[c.kind]),
        "an injected swap moved the start step after the 承办 (FLOW-BB-ORDER 受理/承办, FLOW-DB-ENTRUST 委托/承办): "
        "the deadline counts from the later date": _start_moved_later,
        "not completed and the deadline has not passed on the audit date: pending": _time_limit_pending,
        "suspended on the audit date: not judged": _suspended_at_as_of,
    },
    "REQ-INTEGRITY": {},
    "REQ-RESPONSE": {
        "an injected order swap moved the response step onto the request date": _response_moved_earlier,
        "an injected FLOW-*-STEPS removed the 咨询: the request is a later event":
            lambda c, inj, as_of: bool(inj & {"FLOW-BB-STEPS", "FLOW-DB-STEPS"}) and not c.has("咨询"),
        "no response step and its limit has not passed on the audit date: pending": _response_pending,
    },
    "ARCHIVE-TIMELY": {"not closed, or the archive limit has not passed on the audit date: pending": _archive_pending},
    "ARCHIVE-MATERIALS": {
        "no 资料归档 (after the period end, or dropped by an injected ARCHIVE-TIMELY): pending":
            _lacks_any("资料归档"),
    },
    "EVAL-RATED": {
        "not completed in the period": _not_completed,
        "completed within rating_grace_days of the audit date": _within_rating_grace,
    },
    "EVAL-FOLLOWUP": {
        "the rating falls after the period end: the case is unrated": _unrated,
        "the follow-up limit has not passed on the audit date: pending": _followup_pending,
    },
}

EXTRA: dict[str, dict[str, Reason]] = {
    "FLOW-BB-STEPS": {},
    "FLOW-BB-ORDER": {},
    "FLOW-DB-STEPS": {
        "an injected FLOW-DB-ENTRUST removed the 委托 of a completed case":
            lambda c, inj, as_of: "FLOW-DB-ENTRUST" in inj and not c.has("委托") and c.has("办结"),
    },
    "FLOW-DB-ORDER": {
        "an injected FLOW-DB-ENTRUST swapped 委托 and 承办":
            lambda c, inj, as_of: "FLOW-DB-ENTRUST" in inj and _before(c, "承办", "委托"),
    },
    "FLOW-DB-ENTRUST": {
        "an injected FLOW-DB-STEPS removed the 委托 of a case with 承办":
            lambda c, inj, as_of: "FLOW-DB-STEPS" in inj and not c.has("委托") and c.has("承办"),
    },
    "FLOW-DB-SUSPEND": {},
    "REQ-ONE-TO-ONE": {},
    "REQ-ONE-STOP": {},
    "REQ-TIME-LIMIT": {
        "an injected order swap moved the start step earlier": _start_moved_earlier,
        "an injected FLOW-DB-SUSPEND broke a suspension, whose days then do not extend the deadline":
            lambda c, inj, as_of: "FLOW-DB-SUSPEND" in inj,
    },
    "REQ-INTEGRITY": {},
    "REQ-RESPONSE": {
        "an injected FLOW-*-STEPS removed the response step and its limit has passed": _response_dropped,
        "an injected order swap moved the response step later": _response_moved_later,
    },
    "ARCHIVE-TIMELY": {},
    "ARCHIVE-MATERIALS": {},
    "EVAL-RATED": {},
    "EVAL-FOLLOWUP": {},
}


def explain(reasons: dict[str, Reason], c: Case, inj: set, as_of: dt.date) -> list[str]:
    """The names of the reasons that hold for the case."""
    return [name for name, holds in reasons.items() if holds(c, inj, as_of)]
