"""Template rules (Declare) judged by the engine against an oracle written here from the semantics
table of the README ("模板规则 (Declare)"), through the real CLI: a CSV written by the test, `audit
ingest`, a pack written by the test, `audit check --pack DIR`.

- `test_engine_equals_the_oracle_on_random_traces`: all 16 templates (and the bounded variants) on a
  seeded random set of traces with ties in time, repeated activities and one-event traces;
- the bounds (workdays over 2026 劳动节 and its make-up Saturday, days, hours, working hours over lunch,
  a weekend and a holiday) with the limits worked out by hand below, pending against the audit date;
- ``when``, bad pack files (every problem with file:line:column, exit 2), the refusal of a pack for
  other steps, the names of the shipped packs, the figures of a run with a non-canonical pack.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from audit.check.examples import run_examples
from audit.cli import app
from audit.db import connect
from audit.errors import PackError
from audit.resources import PACK_NAMES, pack_dir, resolve_pack
from audit.rules.pack import load_pack
from audit.rules.templates import BOUNDED, TEMPLATES, UNARY
from tests import rules_oracle as O
from tests.conftest import REPO, write_csv


def cli(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


# -- the oracle: the semantics table, in plain Python --------------------------------------------

WINDOWS, working_seconds = O.WINDOWS, O.working_seconds


def late(within: tuple[str, float] | None, t1: dt.datetime, t2: dt.datetime) -> bool:
    """Whether `t2` is beyond the bound counted from `t1`."""
    if within is None:
        return False
    unit, n = within
    if unit == "workdays":
        return t2.date() > O.add_workdays(t1.date(), int(n))
    if unit == "days":
        return (t2.date() - t1.date()).days > n
    if unit == "hours":
        return t2 - t1 > dt.timedelta(hours=n)
    return working_seconds(t1, t2) > n * 3600


def violations(name: str, steps: list[str], times: list[dt.datetime], a: str, b: str | None,
               within=None, as_of: dt.date | None = None) -> int:
    """How many times the trace breaks the template (0: it holds). Sequence templates count their
    violating activations; the others 1 or 0 (unary: see `count_of`)."""
    n = len(steps)
    ia = [i for i in range(n) if steps[i] == a]
    ib = [j for j in range(n) if steps[j] == b]
    if name == "existence":
        return int(not ia)
    if name == "absence":
        return int(bool(ia))
    if name == "exactly_one":
        return int(len(ia) != 1)
    if name == "init":
        return int(steps[0] != a)
    if name == "end":
        return int(steps[-1] != a)
    if name == "responded_existence":
        return int(bool(ia) and not ib)
    if name == "coexistence":
        return int(bool(ia) != bool(ib))
    if name == "not_coexistence":
        return int(bool(ia) and bool(ib))

    def missing(i: int) -> int:       # no target yet: a violation once a target at the audit date would be late
        return int(within is None or late(within, times[i], dt.datetime.combine(as_of, dt.time())))

    count = 0
    if name in ("response", "succession"):
        for i in ia:
            after = [j for j in ib if j > i]
            count += late(within, times[i], times[after[0]]) if after else missing(i)
    if name in ("precedence", "succession"):
        for j in ib:
            before = [i for i in ia if i < j]
            count += late(within, times[before[-1]], times[j]) if before else 1
    if name == "alternate_response":
        for i in ia:
            next_a = [k for k in ia if k > i]
            after = [j for j in ib if j > i]
            if after and (not next_a or after[0] < next_a[0]):
                count += late(within, times[i], times[after[0]])
            else:
                count += missing(i) if not next_a else 1
    if name == "alternate_precedence":
        for j in ib:
            prev_b = [k for k in ib if k < j]
            before = [i for i in ia if i < j]
            if before and (not prev_b or before[-1] > prev_b[-1]):
                count += late(within, times[before[-1]], times[j])
            else:
                count += 1
    if name == "chain_response":
        for i in ia:
            if i + 1 == n:
                count += missing(i)
            else:
                count += 1 if steps[i + 1] != b else late(within, times[i], times[i + 1])
    if name == "chain_precedence":
        for j in ib:
            count += 1 if j == 0 or steps[j - 1] != a else late(within, times[j - 1], times[j])
    if name == "not_succession":
        count = sum(any(j > i for j in ib) for i in ia)
    return count


# -- writing packs and data ----------------------------------------------------------------------

def write_pack(root: Path, rules: list[dict], settings: dict | None = None, vocabulary=None,
               cities: dict | None = None) -> Path:
    """A pack directory: pack.yaml and one file per rule (clause "T")."""
    (root / "checks").mkdir(parents=True, exist_ok=True)
    meta = {"name": "模板测试包", "standard": "测试", "version": "1", "clauses": {"T": "模板"},
            "settings": settings or {}}
    if vocabulary is not None:
        meta["vocabulary"] = vocabulary
    if cities:
        meta["cities"] = cities
    (root / "pack.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), encoding="utf-8")
    for rule in rules:
        body = {"clause": "T", "severity": "error", "title": rule["id"], "rationale": "测试", **rule}
        (root / "checks" / f"{rule['id']}.yaml").write_text(
            yaml.safe_dump(body, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return root


HEADER = ["办件编号", "地市", "事项名称", "服务类型", "服务方式", "承诺时限", "环节", "时间"]


def ingest_rows(tmp: Path, rows: list[list], db: Path) -> None:
    code, out = cli("ingest", write_csv(tmp / "events.csv", [HEADER, *rows]), "--db", db)
    assert code == 0, out


def findings(db: Path) -> list[tuple[str, str, str, str, dict]]:
    """(rule, city, case, message, evidence) of the latest run."""
    con = connect(db)
    try:
        rows = con.execute("""SELECT rule_id, city, case_id, message, evidence FROM findings
                              WHERE run_id = (SELECT max(run_id) FROM runs) ORDER BY ALL""").fetchall()
    finally:
        con.close()
    return [(r, c, i, m, json.loads(e)) for r, c, i, m, e in rows]


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


# -- the random comparison -----------------------------------------------------------------------

ALPHABET = ["受理", "承办", "办结", "回访"]
DAYS = [dt.date(2026, 4, 24) + dt.timedelta(days=i) for i in range(15)]       # over 劳动节 2026
CLOCK = [dt.time(8, 30), dt.time(9, 0), dt.time(11, 30), dt.time(12, 45), dt.time(13, 30), dt.time(17, 0),
         dt.time(20, 0)]
AS_OF = dt.date(2026, 5, 8)
BOUNDS = [("workdays", 1), ("days", 2), ("hours", 30), ("working_hours", 4.5)]


def random_trace(rng: random.Random) -> list[tuple[str, dt.datetime]]:
    """Events in file order: a few days and clock times (ties), repeated steps, one-event traces; no
    two events of a case with the same step and time (ingest would count the second a duplicate)."""
    length = rng.choice([1, 1, 2, 2, 3, 4, 5, 6, 8])
    days = rng.sample(DAYS, 2)
    events: list[tuple[str, dt.datetime]] = []
    while len(events) < length:
        ev = (rng.choice(ALPHABET), dt.datetime.combine(rng.choice(days), rng.choice(CLOCK)))
        if ev not in events:
            events.append(ev)
    return events


def in_order(events, rename: dict[str, str] | None = None):
    """The trace: ordered by time, ties in file order (a stable sort), steps under the pack's names."""
    ordered = sorted(events, key=lambda e: e[1])
    return [(rename or {}).get(s, s) for s, _ in ordered], [t for _, t in ordered]


def rule_id(*parts) -> str:
    return "T-" + "-".join(str(p).upper().replace("_", "-").replace(".", "") for p in parts)


def random_rules(rename: dict[str, str]) -> list[dict]:
    """One rule per template and pair (both directions), the bounded ones with each unit, and rules
    with a list of pairs; steps renamed by `rename` (the pack's name of a step)."""
    rules = []
    for name in TEMPLATES:
        if name in UNARY:
            for i, a in enumerate(["受理", "办结"]):
                rules.append({"id": rule_id(name, i), "template": name, "activities": [a]})
            continue
        for i, pair in enumerate([["受理", "办结"], ["办结", "受理"], ["承办", "回访"]]):
            rules.append({"id": rule_id(name, i), "template": name, "activities": pair})
        if name in BOUNDED:
            for unit, n in BOUNDS:
                rules.append({"id": rule_id(name, unit), "template": name, "activities": ["受理", "办结"],
                              "within": {unit: n}})
    rules.append({"id": "T-PAIRS-RE", "template": "responded_existence",
                  "activities": [["办结", "受理"], ["办结", "承办"], ["回访", "办结"]]})
    rules.append({"id": "T-PAIRS-RESPONSE", "template": "response", "activities": [["受理", "办结"], ["承办", "回访"]],
                  "within": {"workdays": 2}})
    rules.append({"id": "T-WHEN", "template": "exactly_one", "activities": ["受理"], "when": {"service_type": "帮办"}})

    def named(acts):
        return [named(a) if isinstance(a, list) else rename.get(a, a) for a in acts]

    return [{**r, "activities": named(r["activities"])} for r in rules]


def rule_pairs(rule: dict) -> list[tuple[str, str | None]]:
    acts = rule["activities"]
    if isinstance(acts[0], list):
        return [tuple(p) for p in acts]
    return [(acts[0], acts[1] if len(acts) > 1 else None)]


def judge(rule: dict, steps, times, service_type, as_of) -> list[tuple[str, str | None, int]]:
    """The violated pairs of `rule` on a trace, with their counts."""
    if "when" in rule and service_type != rule["when"]["service_type"]:
        return []
    within = next(iter(rule["within"].items())) if "within" in rule else None
    out = []
    for a, b in rule_pairs(rule):
        n = violations(rule["template"], steps, times, a, b, within, as_of)
        if n:
            out.append((a, b, n))
    return out


def with_examples(rule: dict, rng: random.Random, rename: dict[str, str]) -> dict:
    """The rule with a failing and a passing example found by the oracle (they run in the example runner)."""
    found: dict[str, dict] = {}
    while len(found) < 2:
        events = random_trace(rng)
        steps, times = in_order(events, rename)
        as_of = max(times).date()
        kind = "fail" if judge(rule, steps, times, "帮办", as_of) else "pass"
        if kind not in found:
            found[kind] = {"name": f"随机 {kind}", "case": {"service_type": "帮办"}, "as_of": str(as_of),
                           "events": [[s, stamp(t)] for s, t in events]}
    return {**rule, "examples": {"fail": [found["fail"]], "pass": [found["pass"]]}}


# The same comparison for a pack of the canonical steps (existence templates read case_facts) and for a
# pack with its own list of steps, one of them reached through an alias (every template reads the events).
VOCABULARIES = {"canonical": ("canonical", {}),
                "list": ({"steps": ["受理", "承办", "结案", "回访"], "aliases": {"办结": "结案"}}, {"办结": "结案"})}


@pytest.fixture(scope="module", params=list(VOCABULARIES))
def random_run(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("random")
    rng = random.Random(20260501)
    vocabulary, rename = VOCABULARIES[request.param]
    rules = [with_examples(r, rng, rename) for r in random_rules(rename)]
    pack = write_pack(tmp / "pack", rules, settings={"working_hours": "09:00-12:00,13:30-17:30"},
                      vocabulary=vocabulary)
    traces, rows = {}, []
    for i in range(2400):
        city = "西安" if i % 2 else "延安"
        case_id = f"R{i:05d}"
        service_type = rng.choice(["帮办", "代办", ""])
        events = random_trace(rng)
        traces[city, case_id] = (service_type, events)
        rows += [[case_id, city, "", service_type, "", "", s, stamp(t)] for s, t in events]
    db = tmp / "audit.duckdb"
    ingest_rows(tmp, rows, db)
    con = connect(db)
    assert con.execute("SELECT count(*) FROM event_rows").fetchall()[0][0] == len(rows)   # nothing dropped
    con.close()
    code, out = cli("check", "--pack", pack, "--db", db, "--as-of", AS_OF)
    assert code == 0, out
    return {"rules": rules, "traces": traces, "found": findings(db), "pack": pack, "rename": rename}


def test_engine_equals_the_oracle_on_random_traces(random_run):
    """Rule by rule, the cases found are the oracle's; for each finding the violated pairs (evidence
    ``violated``) and the number of violations (``count``) are the oracle's too."""
    found: dict[str, dict] = {}
    for rule, city, case_id, message, evidence in random_run["found"]:
        assert message.strip()
        found.setdefault(rule, {})[city, case_id] = evidence
    wrong = []
    for rule in random_run["rules"]:
        want = {}
        for key, (service_type, events) in random_run["traces"].items():
            steps, times = in_order(events, random_run["rename"])
            pairs = judge(rule, steps, times, service_type, AS_OF)
            if pairs:
                want[key] = pairs
        got = found.get(rule["id"], {})
        assert 0 < len(want) < len(random_run["traces"]), f"{rule['id']}: the data does not exercise it"
        if set(got) != set(want):
            wrong.append(f"{rule['id']}: extra {sorted(set(got) - set(want))[:3]} missing {sorted(set(want) - set(got))[:3]}")
            continue
        for key, pairs in want.items():
            ev = got[key]
            if rule["template"] in UNARY:
                steps, _ = in_order(random_run["traces"][key][1], random_run["rename"])
                assert ev["activity"] == pairs[0][0] and (
                    rule["template"] in ("init", "end") or ev["count"] == steps.count(pairs[0][0])), (rule["id"], ev)
                continue
            assert ev["violated"] == [f"{a} → {b}" for a, b, _ in pairs], (rule["id"], key, ev)
            if "count" in ev:
                assert ev["count"] == sum(n for *_, n in pairs), (rule["id"], key, ev, pairs)
    assert not wrong, "\n".join(wrong)


def test_random_pack_examples_run_in_the_example_runner(random_run):
    """The oracle's examples, one rule of each template, pass in the example runner (`audit rules --verify`)."""
    pack = load_pack(random_run["pack"])
    chosen = {}
    for rule in pack.rules:
        chosen.setdefault(rule.template["template"], rule)
    assert len(chosen) == 16
    for rule in chosen.values():
        bad = [o.example.name for o in run_examples(rule, pack) if not o.ok]
        assert not bad, (rule.id, bad)


# -- bounds, worked by hand ------------------------------------------------------------------------

# Each rule judges the cases of one group (``when: {item: …}``); 2026: 5 月 1–5 日 劳动节 (Fri–Tue), 5 月 9 日
# (Sat) is a make-up working day; working hours 09:00-12:00, 13:30-17:30 (7 h a day).
BOUND_RULES = [
    ("B-WD", "response", {"workdays": "reply_days"}, "wd"),     # 2 working days, 延安 1
    ("B-WD1", "response", {"workdays": 1}, "wd1"),
    ("B-DAYS", "response", {"days": 1}, "days"),
    ("B-HOURS", "response", {"hours": 4}, "hours"),
    ("B-HALF", "response", {"hours": 0.5}, "half"),
    ("B-WH", "response", {"working_hours": 2}, "wh"),
    ("B-WH1", "response", {"working_hours": 1}, "wh1"),
    ("B-PREC", "precedence", {"workdays": 2}, "prec"),
    ("B-PEND-WD", "response", {"workdays": 2}, "pend-wd"),
    ("B-PEND-H", "response", {"hours": 4}, "pend-h"),
    ("B-PEND-WH", "response", {"working_hours": 1}, "pend-wh"),
    ("B-PEND-NONE", "response", None, "pend-none"),
]
# case: (group, city, events) — 受理 then 办结 unless said otherwise
BOUND_CASES = {
    "WD1": ("wd", "西安", [("受理", "2026-04-30 10:00"), ("办结", "2026-05-07 16:00")]),   # limit 05-07: on time
    "WD2": ("wd", "西安", [("受理", "2026-04-30 10:00"), ("办结", "2026-05-08 09:00")]),   # late
    "WD3": ("wd", "延安", [("受理", "2026-04-30 10:00"), ("办结", "2026-05-07 09:00")]),   # 1 day: limit 05-06
    "M1": ("wd1", "西安", [("受理", "2026-05-08 15:00"), ("办结", "2026-05-09 10:00")]),   # the make-up Saturday
    "M2": ("wd1", "西安", [("受理", "2026-05-08 15:00"), ("办结", "2026-05-11 09:00")]),   # limit 05-09
    "D1": ("days", "西安", [("受理", "2026-03-02 23:00"), ("办结", "2026-03-03 23:59")]),
    "D2": ("days", "西安", [("受理", "2026-03-02 23:00"), ("办结", "2026-03-04 00:01")]),
    "H1": ("hours", "西安", [("受理", "2026-03-02 10:00"), ("办结", "2026-03-02 14:00")]),
    "H2": ("hours", "西安", [("受理", "2026-03-02 10:00"), ("办结", "2026-03-02 14:01")]),
    "F1": ("half", "西安", [("受理", "2026-03-02 10:00"), ("办结", "2026-03-02 10:30")]),
    "F2": ("half", "西安", [("受理", "2026-03-02 10:00"), ("办结", "2026-03-02 10:31")]),
    "W1": ("wh", "西安", [("受理", "2026-03-02 11:00"), ("办结", "2026-03-02 14:30")]),    # 1 h + lunch + 1 h
    "W2": ("wh", "西安", [("受理", "2026-03-02 11:00"), ("办结", "2026-03-02 14:31")]),
    "W3": ("wh", "西安", [("受理", "2026-03-06 16:30"), ("办结", "2026-03-09 10:05")]),    # Fri 1 h, Mon 1 h
    "W4": ("wh", "西安", [("受理", "2026-03-06 16:30"), ("办结", "2026-03-09 10:00")]),
    "W5": ("wh", "西安", [("受理", "2026-04-30 17:00"), ("办结", "2026-05-06 10:31")]),    # 0.5 h, holiday, 1.5 h
    "W6": ("wh", "西安", [("受理", "2026-03-07 10:00"), ("办结", "2026-03-09 11:00")]),    # from a Saturday: Mon 9-11
    "W7": ("wh", "西安", [("受理", "2026-03-02 12:30"), ("办结", "2026-03-02 15:31")]),    # from lunch: 13:30 + 2 h
    "S1": ("wh1", "西安", [("受理", "2026-05-08 17:00"), ("办结", "2026-05-09 09:31")]),   # Fri 0.5 h, Sat 0.5 h
    "P1": ("prec", "西安", [("受理", "2026-04-30 10:00"), ("办结", "2026-05-08 10:00")]),
    "P2": ("prec", "西安", [("办结", "2026-05-08 10:00")]),
    "P3": ("prec", "西安", [("受理", "2026-04-30 10:00"), ("办结", "2026-05-07 10:00")]),
    "Q1": ("pend-wd", "西安", [("受理", "2026-04-30 10:00")]),      # limit 05-07
    "Q2": ("pend-h", "西安", [("受理", "2026-05-06 22:00")]),       # limit 05-07 02:00
    "Q3": ("pend-wh", "西安", [("受理", "2026-05-06 17:00")]),      # limit 05-07 09:30
    "Q4": ("pend-none", "西安", [("受理", "2026-05-06 10:00")]),
}
# (rule, case) → (limit, bound) in the evidence; pending ones only at the later audit date
LATE = {
    ("B-WD", "WD2"): ("2026-05-07", "2 个工作日"), ("B-WD", "WD3"): ("2026-05-06", "1 个工作日"),
    ("B-WD1", "M2"): ("2026-05-09", "1 个工作日"), ("B-DAYS", "D2"): ("2026-03-03", "1 天"),
    ("B-HOURS", "H2"): ("2026-03-02 14:00", "4 小时"), ("B-HALF", "F2"): ("2026-03-02 10:30", "0.5 小时"),
    ("B-WH", "W2"): ("2026-03-02 14:30", "2 个工作小时"), ("B-WH", "W3"): ("2026-03-09 10:00", "2 个工作小时"),
    ("B-WH", "W5"): ("2026-05-06 10:30", "2 个工作小时"), ("B-WH", "W7"): ("2026-03-02 15:30", "2 个工作小时"),
    ("B-WH1", "S1"): ("2026-05-09 09:30", "1 个工作小时"), ("B-PREC", "P1"): ("2026-05-07", "2 个工作日"),
    ("B-PREC", "P2"): (None, "2 个工作日"),
}
PENDING = {("B-PEND-WD", "Q1"): ("2026-05-07", "2 个工作日"), ("B-PEND-H", "Q2"): ("2026-05-07 02:00", "4 小时"),
           ("B-PEND-WH", "Q3"): ("2026-05-07 09:30", "1 个工作小时")}


@pytest.fixture(scope="module")
def bound_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bounds")
    rules = []
    flagged = {**LATE, **PENDING, ("B-PEND-NONE", "Q4"): None}
    for rid, name, within, group in BOUND_RULES:
        rule = {"id": rid, "template": name, "activities": ["受理", "办结"], "when": {"item": group}}
        if within:
            rule["within"] = within
        fail = next(k for r, k in flagged if r == rid)
        rule["examples"] = {
            "fail": [{"name": fail, "case": {"item": group}, "city": BOUND_CASES[fail][1], "as_of": "2026-05-20",
                      "events": [list(e) for e in BOUND_CASES[fail][2]]}],
            "pass": [{"name": "十分钟内", "case": {"item": group}, "as_of": "2026-05-20",
                      "events": [["受理", "2026-03-02 09:00"], ["办结", "2026-03-02 09:10"]]}]}
        rules.append(rule)
    pack = write_pack(tmp / "pack", rules, settings={"working_hours": "09:00-12:00,13:30-17:30", "reply_days": 2},
                      cities={"延安": {"reply_days": 1}})
    rows = [[cid, city, group, "", "", "", s, t] for cid, (group, city, events) in BOUND_CASES.items()
            for s, t in events]
    db = tmp / "audit.duckdb"
    ingest_rows(tmp, rows, db)
    return db, pack


@pytest.mark.parametrize("as_of, pending_due", [("2026-05-07", False), ("2026-05-08", True)])
def test_bounds_worked_by_hand(bound_db, as_of, pending_due):
    """Workdays over 劳动节 and its make-up Saturday (and a city's own setting), days, hours (also 0.5),
    working hours over lunch, a weekend, a holiday and from outside working time; a missing target is
    pending until a target at the audit date's first instant would be late, then a violation."""
    db, pack = bound_db
    code, out = cli("check", "--pack", pack, "--db", db, "--as-of", as_of)
    assert code == 0, out
    got = {(r, i): (m, e) for r, _, i, m, e in findings(db)}
    want = dict(LATE)
    if pending_due:
        want.update(PENDING)
    want[("B-PEND-NONE", "Q4")] = (None, None)                   # no bound: missing is a violation at once
    assert set(got) == set(want)
    for key, (limit, bound) in want.items():
        message, evidence = got[key]
        if bound:
            assert evidence["limit"] == limit and evidence["bound"] == bound, (key, evidence)
            assert limit is None or (bound in message and f"时限 {limit}" in message), (key, message)
    message, evidence = got[("B-WD", "WD2")]
    assert message == "受理 (2026-04-30 10:00) 之后 2 个工作日内没有 办结：时限 2026-05-07，办结 2026-05-08 09:00"
    assert evidence == {"violated": ["受理 → 办结"], "a_at": "2026-04-30 10:00", "b_at": "2026-05-08 09:00",
                        "count": 1, "bound": "2 个工作日", "limit": "2026-05-07"}
    assert got[("B-PREC", "P2")][0] == "办结 (2026-05-08 10:00) 之前没有 受理"
    assert "与之前的 受理 (2026-04-30 10:00) 相隔超过 2 个工作日" in got[("B-PREC", "P1")][0]
    if pending_due:
        assert got[("B-PEND-WD", "Q1")][0] == ("受理 (2026-04-30 10:00) 之后 2 个工作日内没有 办结：时限 2026-05-07 已过，"
                                                "截至审计日 2026-05-08 仍没有 办结")
        assert got[("B-PEND-WD", "Q1")][1]["b_at"] is None


def test_bound_examples_and_settings_shown(bound_db):
    """The rules' own examples pass, and a setting bound is one of the rule's settings."""
    pack = load_pack(bound_db[1])
    assert pack.rule("B-WD").settings == ["reply_days"]
    for rule in pack.rules:
        assert all(o.ok for o in run_examples(rule, pack)), rule.id


# -- when ------------------------------------------------------------------------------------------

def test_when_restricts_the_cases(tmp_path):
    """One value, a list (IN), several keys (AND), a number; a NULL field, or a case with no events, is
    not judged."""
    example = {"fail": [{"name": "无回访", "case": {"service_type": "帮办", "channel": "线下", "promised_days": 3,
                                                   "item": "w"}, "events": [["受理", "2026-03-02 09:00"]]}],
               "pass": [{"name": "有回访", "case": {"service_type": "帮办", "channel": "线下", "promised_days": 3,
                                                   "item": "w"},
                         "events": [["受理", "2026-03-02 09:00"], ["回访", "2026-03-03 09:00"]]}]}
    rules = [{"id": "W-ONE", "template": "existence", "activities": ["回访"],
              "when": {"item": "w", "service_type": "帮办"}, "examples": example},
             {"id": "W-LIST", "template": "existence", "activities": ["回访"],
              "when": {"item": "w", "service_type": ["帮办", "代办"], "channel": "线下"}, "examples": example},
             {"id": "W-NUM", "template": "existence", "activities": ["回访"],
              "when": {"item": "w", "promised_days": [3, 4]}, "examples": example}]
    pack = write_pack(tmp_path / "pack", rules)
    rows = [["N1", "西安", "w", "帮办", "线下", 3, "受理", "2026-03-02 09:00"],
            ["N2", "西安", "w", "代办", "线上", 5, "受理", "2026-03-02 09:00"],
            ["N3", "西安", "w", "", "线下", "", "受理", "2026-03-02 09:00"],
            ["N4", "西安", "w", "帮办", "线下", 3, "回访", "2026-03-02 09:00"],
            ["N5", "西安", "w", "代办", "线下", 4, "受理", "2026-03-02 09:00"],
            ["N6", "西安", "w", "帮办", "线下", 3, "", ""],             # a case row only: no events
            ["N7", "西安", "x", "帮办", "线下", 3, "受理", "2026-03-02 09:00"]]
    db = tmp_path / "audit.duckdb"
    ingest_rows(tmp_path, rows, db)
    code, out = cli("check", "--pack", pack, "--db", db)
    assert code == 0, out
    got = {(r, i) for r, _, i, *_ in findings(db)}
    assert got == {("W-ONE", "N1"), ("W-LIST", "N1"), ("W-LIST", "N5"), ("W-NUM", "N1"), ("W-NUM", "N5")}


# -- vocabularies, aliases, quoting, the refusal ---------------------------------------------------

def test_open_vocabulary_examples_with_any_names_and_quotes(tmp_path):
    """An open pack's rules may name any step (a quote in a name is only text); their examples run."""
    odd = "Send 'O''Brien' letter"
    rules = [{"id": "O-RESP", "template": "response", "activities": ["Application received", odd],
              "within": {"days": 3},
              "examples": {"fail": [{"name": "late", "events": [["Application received", "2026-03-02 09:00"],
                                                                 [odd, "2026-03-06 09:00"]]}],
                           "pass": [{"name": "in time", "events": [["Application received", "2026-03-02 09:00"],
                                                                    [odd, "2026-03-05 09:00"]]}]}}]
    pack = load_pack(write_pack(tmp_path / "pack", rules, vocabulary="open"))
    outcomes = run_examples(pack.rules[0], pack)
    assert [o.ok for o in outcomes] == [True, True]
    assert any(odd in m for o in outcomes for m in o.messages)
    code, out = cli("rules", "O-RESP", "--pack", tmp_path / "pack", "--verify")
    assert code == 0 and "✓" in out


def aliased_pack(tmp_path: Path) -> Path:
    example = {"fail": [{"name": "无答复", "events": [["登记", "2026-03-02 09:00"]]}],
               "pass": [{"name": "有答复", "events": [["受理", "2026-03-02 09:00"], ["办结", "2026-03-03 09:00"]]}]}
    return write_pack(tmp_path / "aliased", [
        {"id": "A-REPLY", "template": "response", "activities": ["登记", "答复"], "examples": example},
        {"id": "A-VISIT", "template": "existence", "activities": ["回访"], "examples": {
            "fail": [{"name": "无", "events": [["登记", "2026-03-02 09:00"]]}],
            "pass": [{"name": "有", "events": [["回访", "2026-03-02 09:00"]]}]}}],
        vocabulary={"steps": ["登记", "答复", "回访"], "aliases": {"受理": "登记", "办结": "答复"}})


def small_db(tmp_path: Path) -> Path:
    db = tmp_path / "audit.duckdb"
    ingest_rows(tmp_path, [["C1", "西安", "", "帮办", "线上", "", "受理", "2026-03-02 09:00"],
                           ["C1", "西安", "", "帮办", "线上", "", "办结", "2026-03-03 09:00"],
                           ["C2", "西安", "", "帮办", "线上", "", "受理", "2026-03-02 09:00"]], db)
    return db


def test_aliases_map_the_database_steps_and_unused_steps_are_a_warning(tmp_path):
    """A list vocabulary's aliases rename the database's steps at check time; a step a rule names that the
    database never uses (回访) is a warning line, not a refusal."""
    db = small_db(tmp_path)
    code, out = cli("check", "--pack", aliased_pack(tmp_path), "--db", db)
    assert code == 0, out
    assert "注意: 规则用到的环节在数据库中没有出现" in out and "A-VISIT: 回访" in out
    got = {(r, i): m for r, _, i, m, _ in findings(db)}
    assert got[("A-REPLY", "C2")] == "登记 (2026-03-02 09:00) 之后没有 答复"
    assert ("A-REPLY", "C1") not in got and {("A-VISIT", "C1"), ("A-VISIT", "C2")} <= set(got)


def test_a_pack_for_other_steps_is_refused(tmp_path):
    db = small_db(tmp_path)
    pack = write_pack(tmp_path / "other", [
        {"id": "X-REPLY", "template": "response", "activities": ["投诉登记", "答复"], "examples": {
            "fail": [{"name": "f", "events": [["投诉登记", "2026-03-02 09:00"]]}],
            "pass": [{"name": "p", "events": [["投诉登记", "2026-03-02 09:00"], ["答复", "2026-03-02 10:00"]]}]}}],
        vocabulary={"steps": ["投诉登记", "答复"]})
    code, out = cli("check", "--pack", pack, "--db", db)
    assert code == 2
    line = out.strip().splitlines()[-1]
    assert "投诉登记、答复" in line and "受理" in line and "办结" in line and "都没有出现" in line
    con = connect(db)
    assert con.execute("SELECT count(*) FROM runs").fetchall() == [(0,)]   # nothing stored
    con.close()


def test_step_figures_are_not_applicable_for_a_non_canonical_pack(tmp_path):
    """响应率 and the other step-based figures are empty (—) for a run with a pack of other steps; the
    count and 合规率 stay. The default pack on the same data gives numbers."""
    db = small_db(tmp_path)
    assert cli("check", "--pack", aliased_pack(tmp_path), "--db", db)[0] == 0
    code, out = cli("kpi", "--db", db, "--format", "json")
    assert code == 0, out
    row = json.loads(out)["rows"][0] if "rows" in json.loads(out) else json.loads(out)[0]
    assert row["cases"] == 2 and row["compliance_rate"] == 0.0      # A-VISIT (error) flags both
    for figure in ("response_rate", "resolution_rate", "on_time_rate", "followup_rate"):
        assert row[figure] is None, figure
    assert cli("check", "--db", db)[0] == 0                            # the default pack
    row = json.loads(cli("kpi", "--db", db, "--format", "json")[1])
    row = row["rows"][0] if "rows" in row else row[0]
    assert row["response_rate"] is not None


# -- bad pack files --------------------------------------------------------------------------------

BAD_RULES = {
    "E-NAME.yaml": ("id: E-NAME\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                    "template: responce\nactivities: [受理, 办结]\n", "6:11", "未知的模板 'responce'"),
    "E-ARITY.yaml": ("id: E-ARITY\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                     "template: response\nactivities: [受理, 办结, 回访]\n", "7:13", "有两个环节"),
    "E-STEP.yaml": ("id: E-STEP\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                    "template: existence\nactivities: [办理]\n", "7:14", "请写规范环节名 '承办'"),
    "E-WITHIN.yaml": ("id: E-WITHIN\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                      "template: coexistence\nactivities: [受理, 办结]\nwithin: {days: 2}\n", "8:9",
                      "模板 coexistence 不能有 within"),
    "E-SETTING.yaml": ("id: E-SETTING\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                       "template: response\nactivities: [受理, 办结]\nwithin: {workdays: label}\n", "8:20",
                       "within 使用的设置 label 应为非负整数"),
    "E-NOSET.yaml": ("id: E-NOSET\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                     "template: response\nactivities: [受理, 办结]\nwithin: {days: nosuch}\n", "8:16",
                     "within 使用的设置 'nosuch' 不在 pack.yaml 的 settings 中"),
    "E-WHEN.yaml": ("id: E-WHEN\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                    "template: existence\nactivities: [受理]\nwhen: {colour: red}\n", "8:8",
                    "when 中的 'colour' 不是办件字段"),
    "E-BOTH.yaml": ("id: E-BOTH\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                    "template: existence\nactivities: [受理]\nsql: SELECT 1\n", "1:1", "规则应有 sql 或 template 之一"),
    "E-EVID.yaml": ("id: E-EVID\nclause: T\nseverity: error\ntitle: t\nrationale: r\n"
                    "template: existence\nactivities: [受理]\nevidence:\n  n: {from: cnt, label: 次数}\n", "9:6",
                    "'cnt' 不是模板 existence 的证据字段"),
}


def test_bad_template_rules_are_all_reported_with_file_line_and_column(tmp_path):
    pack = tmp_path / "bad"
    (pack / "checks").mkdir(parents=True)
    (pack / "pack.yaml").write_text(
        "name: 坏包\nstandard: s\nversion: '1'\nclauses: {T: t}\nsettings:\n  label: abc\n"
        "  working_hours: \"09:00-12:00,11:30-17:30\"\ncities:\n  延安:\n    working_hours: \"9-17\"\n",
        encoding="utf-8")
    examples = ("examples:\n  fail: [{name: f, events: [[受理, 2026-03-02 09:00]]}]\n"
                "  pass: [{name: p, events: [[受理, 2026-03-02 09:00]]}]\n")
    for name, (text, _, _) in BAD_RULES.items():
        (pack / "checks" / name).write_text(text + examples, encoding="utf-8")
    with pytest.raises(PackError) as err:
        load_pack(pack)
    problems = err.value.problems
    for name, (_, where, expected) in BAD_RULES.items():
        assert any(p.startswith(f"{pack / 'checks' / name}:{where}: ") and expected in p for p in problems), \
            (name, [p for p in problems if name in p])
    meta = pack / "pack.yaml"
    assert any(p.startswith(f"{meta}:7:18: ") and "09:00-12:00 与 11:30-17:30 重叠" in p for p in problems)
    assert any(p.startswith(f"{meta}:10:20: ") and "'9-17' 应为 HH:MM-HH:MM" in p for p in problems)
    assert "existence, absence, exactly_one, init, end, responded_existence" in str(err.value)   # the 16 listed
    code, out = cli("check", "--pack", pack, "--db", tmp_path / "x.duckdb")
    assert code == 2 and "未知的模板 'responce'" in out and "Traceback" not in out


def test_list_vocabulary_checks_activities_and_aliases(tmp_path):
    pack = write_pack(tmp_path / "p", [{"id": "V-ONE", "template": "existence", "activities": ["受理"], "examples": {
        "fail": [{"name": "f", "events": [["登记", "2026-03-02 09:00"]]}],
        "pass": [{"name": "p", "events": [["受理", "2026-03-02 09:00"]]}]}}],
        vocabulary={"steps": ["登记", "答复"], "aliases": {"收件": "归档"}})
    with pytest.raises(PackError) as err:
        load_pack(pack)
    text = str(err.value)
    assert "环节 '受理' 不在规则包的词表中 (list)" in text and "别名 '收件' 指向的 '归档' 不在 vocabulary.steps 中" in text
    assert "环节 '受理' 不在规则包的词表中 (示例将落空)" in text


def test_non_default_pack_needs_no_bangban_settings(tmp_path):
    """A pack without the 帮办代办 settings runs: case_facts and cfg get the contract's defaults."""
    db = small_db(tmp_path)
    pack = write_pack(tmp_path / "p", [{"id": "V-ONE", "template": "init", "activities": ["受理"], "examples": {
        "fail": [{"name": "f", "events": [["办结", "2026-03-02 09:00"]]}],
        "pass": [{"name": "p", "events": [["受理", "2026-03-02 09:00"]]}]}}])
    assert load_pack(pack).settings == {}
    code, out = cli("check", "--pack", pack, "--db", db)
    assert code == 0 and "V-ONE" in out


# -- shipped packs by name -------------------------------------------------------------------------

def test_pack_names_resolve_and_unknown_names_are_refused(tmp_path):
    assert list(PACK_NAMES) == ["default", "complaints", "online", "bpic15"]
    assert resolve_pack("default") == pack_dir() and resolve_pack(None) is None
    assert resolve_pack("complaints") == REPO / "packs" / "complaints"
    assert resolve_pack("online") == REPO / "packs" / "online"
    assert resolve_pack("bpic15") == REPO / "examples" / "bpic15" / "pack"
    assert resolve_pack(tmp_path) == tmp_path                       # a directory still works
    code, out = cli("check", "--pack", "nosuch", "--db", tmp_path / "x.duckdb")
    assert code == 2 and "default, complaints, online, bpic15" in out
    code, out = cli("rules", "--pack", "default")
    assert code == 0 and "FLOW-BB-STEPS" in out
    code, out = cli("rules", "--pack", "nosuch")
    assert code == 2 and "内置规则包" in out


def test_a_pack_extending_the_default_may_add_settings_for_its_own_template_rules(tmp_path):
    """`extends: default` with a new setting used by a template rule's bound loads (its cities may override
    it); a new setting no rule uses is still an unknown setting (a misspelt override)."""
    pack = tmp_path / "ext"
    (pack / "checks").mkdir(parents=True)
    meta = ("name: 扩展\nversion: '1'\nextends: default\nclauses: {'X': 扩展}\nsettings:\n  reply_days: 3\n"
            "  respons_days: 0\ncities:\n  榆林:\n    reply_days: 2\n")
    (pack / "pack.yaml").write_text(meta, encoding="utf-8")
    rule = {"id": "X-REPLY", "template": "response", "activities": ["受理", "办结"], "within": {"workdays": "reply_days"},
            "clause": "X", "severity": "warning", "title": "受理后 reply_days 个工作日内办结", "rationale": "r",
            "examples": {"fail": [{"name": "f", "events": [["受理", "2026-03-02 09:00"], ["办结", "2026-03-10 09:00"]]}],
                         "pass": [{"name": "p", "events": [["受理", "2026-03-02 09:00"], ["办结", "2026-03-03 09:00"]]}]}}
    (pack / "checks" / "X-REPLY.yaml").write_text(yaml.safe_dump(rule, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PackError) as err:
        load_pack(pack)
    assert err.value.problems == [f"{pack / 'pack.yaml'}:7:17: 未知的设置 'respons_days' (没有规则使用它)"]
    (pack / "pack.yaml").write_text(meta.replace("  respons_days: 0\n", ""), encoding="utf-8")
    loaded = load_pack(pack)
    assert loaded.rule("X-REPLY").settings == ["reply_days"] and "FLOW-BB-STEPS" in [r.id for r in loaded.rules]
    assert all(o.ok for o in run_examples(loaded.rule("X-REPLY"), loaded))
    assert "WHEN '榆林' THEN 2" in loaded.rule("X-REPLY").sql


def test_text_from_the_pack_is_only_ever_a_literal(tmp_path):
    """A ``when`` value with a quote, a newline and SQL in it is a value to compare, nothing more: the pack
    loads, the generated SQL passes the read-only guard, its header comments stay one line each, and the rule
    matches the case whose field holds exactly that text."""
    odd = "x'); DROP TABLE findings; --\nSELECT 1"
    rule = {"id": "Q-ODD", "template": "existence", "activities": ["回访"], "when": {"item": odd},
            "examples": {"fail": [{"name": "f", "case": {"item": odd}, "events": [["受理", "2026-03-02 09:00"]]}],
                         "pass": [{"name": "p", "case": {"item": "y"}, "events": [["受理", "2026-03-02 09:00"]]}]}}
    pack = load_pack(write_pack(tmp_path / "p", [rule], vocabulary="open"))
    sql = pack.rules[0].sql
    lines = sql.splitlines()     # the header comment, the trace characters' legend, then the query
    assert lines[0].startswith("-- 模板 (template) existence(回访)") and lines[1] == "-- 环节串中的字符 (trace characters): 回访 = A"
    assert lines[2].startswith("WITH")
    assert [o.ok for o in run_examples(pack.rules[0], pack)] == [True, True]


def test_steps_beyond_the_letters_are_judged_the_same(tmp_path):
    """A pack of 60 steps and data with steps outside it: the trace strings then use private-use
    characters (after A–Z, a–z) for the pack's last steps and for the others. Every sequence template
    (and init, end, exactly_one, a bounded response) on pairs of those steps, against the oracle;
    the messages name the neighbour's step, whatever its character."""
    steps = [f"环节{i:02d}" for i in range(60)]
    others = ["额外甲", "额外乙"]                         # in the data, not in the pack
    alphabet = steps[54:60] + others + steps[:2]
    a, b = steps[55], steps[57]
    rng = random.Random(20261202)

    def trace(names: list[str] = alphabet) -> list[tuple[str, dt.datetime]]:
        events: list[tuple[str, dt.datetime]] = []
        while len(events) < rng.choice([1, 2, 3, 4, 6, 9]):
            ev = (rng.choice(names), dt.datetime.combine(rng.choice(DAYS[:6]), rng.choice(CLOCK)))
            if ev not in events:
                events.append(ev)
        return events

    def count(rule: dict, events) -> int:
        within = next(iter(rule["within"].items())) if "within" in rule else None
        ordered, times = in_order(events)
        pair_b = None if rule["template"] in UNARY else b
        return violations(rule["template"], ordered, times, a, pair_b, within, max(times).date())

    rules = []
    for name in TEMPLATES:
        rules.append({"id": rule_id("far", name), "template": name, "activities": [a] if name in UNARY else [a, b]})
    rules.append({"id": "T-FAR-RESPONSE-DAYS", "template": "response", "activities": [a, b], "within": {"days": 2}})
    for rule in rules:       # a failing and a passing example (of the pack's steps), found by the oracle
        found: dict[str, dict] = {}
        while len(found) < 2:
            events = trace([s for s in alphabet if s in steps])
            kind = "fail" if count(rule, events) else "pass"
            found.setdefault(kind, {"name": kind, "as_of": str(max(t for _, t in events).date()),
                                    "events": [[s, stamp(t)] for s, t in events]})
        rule["examples"] = {"fail": [found["fail"]], "pass": [found["pass"]]}
    pack = write_pack(tmp_path / "pack", rules, vocabulary={"steps": steps})
    traces, rows = {}, []
    for i in range(900):
        case_id = f"F{i:04d}"
        events = trace()
        traces["延安", case_id] = events
        rows += [[case_id, "延安", "", "帮办", "", "", s, stamp(t)] for s, t in events]
    db = tmp_path / "audit.duckdb"
    code, out = cli("ingest", write_csv(tmp_path / "events.csv", [HEADER, *rows]), "--vocabulary", "open", "--db", db)
    assert code == 0, out
    code, out = cli("check", "--pack", pack, "--db", db, "--as-of", AS_OF)
    assert code == 0, out
    got: dict[str, dict] = {}
    for rule, _city, case_id, message, evidence in findings(db):
        got.setdefault(rule, {})[case_id] = (message, evidence)
    for rule in rules:
        within = next(iter(rule["within"].items())) if "within" in rule else None
        want = {}
        for (_, case_id), events in traces.items():
            ordered, times = in_order(events)
            n = violations(rule["template"], ordered, times, a, None if rule["template"] in UNARY else b, within, AS_OF)
            if n:
                want[case_id] = (n, ordered, times)
        mine = got.get(rule["id"], {})
        assert 0 < len(want) < len(traces), f"{rule['id']}: the data does not exercise it"
        assert set(mine) == set(want), (rule["id"], sorted(set(mine) ^ set(want))[:5])
        for case_id, (n, ordered, times) in want.items():
            message, evidence = mine[case_id]
            if rule["template"] in ("init", "end"):
                i = 0 if rule["template"] == "init" else -1
                assert message == f"{'第一个' if i == 0 else '最后一个'}环节是 {ordered[i]} ({stamp(times[i])})，而不是 {a}"
            elif "count" in evidence and rule["template"] not in UNARY:
                assert evidence["count"] == n, (rule["id"], case_id, evidence)
            if rule["template"] == "chain_response" and "紧接着的是" in message:
                first = next(j for j, s in enumerate(ordered) if s == a and j + 1 < len(ordered) and ordered[j + 1] != b)
                assert f"紧接着的是 {ordered[first + 1]} ({stamp(times[first + 1])})" in message, message
