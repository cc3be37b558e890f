"""Findings over the sample checked against two things the code under test did not write (issue 10).

1. The generator's own record of the violations it injected (`generate_cases(with_truth=True)`):
   rule by rule, the set of (city, case_id) found is the set injected, except for differences
   that each have a named reason in `tests.sample_explain` (an injection cut off by the period
   end, or another rule's injection that breaks this rule too). An unexplained difference fails.
2. An oracle of contract §4 in plain Python over the generated rows (`tests.rules_oracle`, working
   days from `chinese_calendar`): the findings are exactly its verdicts, case by case, and the
   limits and missing items a finding's evidence states are the ones it computes.

Both run over the bundled sample and over a freshly generated one of another seed, each ingested
from its export files and checked through the real CLI at the audit date the generator assumes
(the end of its period).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.db import connect
from audit.resources import sample_dir
from audit.sample.generate import PERIOD_END, RULES
from audit.sample.writers import sample_frames
from tests import rules_oracle as O
from tests.sample_explain import EXTRA, MISSED, explain

FRESH = (400, 20260401)          # cases per city, seed: a sample nobody has looked at


def _cli(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module", params=["bundled", "fresh"])
def judged(request, tmp_path_factory):
    """The sample's findings, the generator's record and frames, and the oracle's verdicts."""
    tmp = tmp_path_factory.mktemp(request.param)
    data = sample_dir()
    if request.param == "fresh":
        data = tmp / "sample"
        _cli("sample", "--out", data, "--cases", FRESH[0], "--seed", FRESH[1])
    manifest = yaml.safe_load((data / "manifest.yaml").read_text(encoding="utf-8"))
    db = tmp / "audit.duckdb"
    for entry in manifest["files"]:
        _cli("ingest", data / entry["file"], "--db", db, *(["--city", entry["city"]] if entry["city"] else []),
             *(["--profile", data / entry["profile"]] if entry["profile"] else []))
    assert f"审计日 {PERIOD_END}" in _cli("check", "--db", db, "--as-of", PERIOD_END)
    con = connect(db)
    rows = con.execute("""SELECT rule_id, city, case_id, evidence FROM findings
                          WHERE run_id = (SELECT max(run_id) FROM runs)""").fetchall()
    con.close()
    found, evidence = defaultdict(set), {}
    for rule, city, case_id, ev in rows:
        found[rule].add((city, case_id))
        evidence[rule, city, case_id] = json.loads(ev)
    injected, oracle, cases, injected_into = defaultdict(set), defaultdict(set), {}, defaultdict(set)
    for city, (case_rows, events, truth) in sample_frames(manifest["cases_per_city"], manifest["seed"],
                                                          with_truth=True):
        for rule, ids in truth.items():
            injected[rule] |= {(city, i) for i in ids}
            for i in ids:
                injected_into[city, i].add(rule)
        for rule, ids in O.judge(case_rows, events, PERIOD_END).items():
            oracle[rule] |= {(city, i) for i in ids}
        cases.update({(city, i): c for i, c in O.cases_of(case_rows, events).items()})
    return {"found": found, "evidence": evidence, "injected": injected, "oracle": oracle, "cases": cases,
            "injected_into": injected_into, "sample": request.param}


def comparison(j) -> tuple[list[str], list[str]]:
    """The per-rule table (injected, found, both, missed and extra with their reasons) and the
    differences no named reason explains."""
    lines = [f"{'rule':18} {'injected':>8} {'found':>5} {'both':>4} {'missed':>6} {'extra':>5}  reasons"]
    unexplained = []
    for rule in RULES:
        inj, got = j["injected"][rule], j["found"][rule]
        why = defaultdict(int)
        for kind, keys, reasons in (("missed", inj - got, MISSED[rule]), ("extra", got - inj, EXTRA[rule])):
            for key in sorted(keys):
                names = explain(reasons, j["cases"][key], j["injected_into"][key], PERIOD_END)
                if not names:
                    unexplained.append(f"{rule} {kind} {key} (injected: {sorted(j['injected_into'][key])})")
                for name in names:
                    why[f"{kind}: {name}"] += 1
        lines.append(f"{rule:18} {len(inj):8} {len(got):5} {len(inj & got):4} {len(inj - got):6} "
                     f"{len(got - inj):5}  " + "; ".join(f"{n} × {w}" for w, n in sorted(why.items())))
    return lines, unexplained


def test_findings_are_the_injected_violations_up_to_named_reasons(judged):
    """Every injected violation is found unless a named reason (MISSED) holds for its case; every
    finding beyond the injected ones has a named reason (EXTRA). Rules without reasons (REQ-ONE-STOP,
    REQ-INTEGRITY, ...) must match the record exactly. The table: pytest -rP (or -s)."""
    lines, unexplained = comparison(judged)
    print(f"[{judged['sample']} sample, audit date {PERIOD_END}]\n" + "\n".join(lines))
    assert not unexplained, "differences without a named reason:\n" + "\n".join(unexplained) + "\n" + "\n".join(lines)
    for rule in RULES:
        assert judged["injected"][rule] & judged["found"][rule], f"no injected {rule} is found"
    assert judged["found"]["REQ-INTEGRITY"] == judged["injected"]["REQ-INTEGRITY"]
    assert judged["found"]["REQ-ONE-STOP"] == judged["injected"]["REQ-ONE-STOP"]


def test_findings_are_the_oracles_verdicts(judged):
    """Case by case, each rule flags exactly the cases contract §4 says break it, judged in plain
    Python from the generated rows."""
    wrong = []
    for rule in RULES:
        got, want = judged["found"][rule], judged["oracle"][rule]
        if got != want:
            wrong.append(f"{rule}: found but not a violation {sorted(got - want)[:5]}; "
                         f"a violation not found {sorted(want - got)[:5]}")
    assert not wrong, "\n".join(wrong)


def _expected_evidence(rule: str, c: O.Case) -> dict:
    """The evidence values the oracle computes for a finding of `rule` on case `c`."""
    as_of = PERIOD_END
    if rule in ("FLOW-BB-STEPS", "FLOW-DB-STEPS"):
        return {"missing_steps": [s for s in O.FLOW[c.kind][:4] if not c.has(s)]}
    if rule == "REQ-TIME-LIMIT":
        return {"deadline": str(O.deadline(c)), "suspended_workdays": O.suspended_workdays(c),
                "promised_days": int(c.row["promised_days"])}
    if rule == "REQ-RESPONSE":
        return {"limit": str(O.add_workdays(c.events[0][0].date(), O.RESPONSE_DAYS)),
                "response_step": O.RESPONSE[c.kind]}
    if rule == "ARCHIVE-TIMELY":
        return {"limit": str(O.add_workdays(O.close_date(c), O.ARCHIVE_DAYS))}
    if rule == "EVAL-RATED":
        return {"days": (as_of - c.first("办结").date()).days}
    if rule == "EVAL-FOLLOWUP":
        rated = O.rating_date(c)
        return {"rating_date": str(rated), "limit": str(O.add_workdays(rated, O.FOLLOWUP_DAYS))}
    if rule == "REQ-ONE-STOP":
        return {"visits": int(c.row["visits"])}
    if rule == "REQ-INTEGRITY":
        return {"fee": float(c.row["fee"])}
    return {}


def test_evidence_states_the_oracles_limits(judged):
    """The deadlines, limits, day counts and missing steps a finding's evidence states are the
    ones the oracle computes with `chinese_calendar` (wording is not compared)."""
    wrong = []
    for (rule, city, case_id), ev in judged["evidence"].items():
        if rule not in RULES:
            continue
        want = _expected_evidence(rule, judged["cases"][city, case_id])
        got = {k: ev.get(k) for k in want}
        if got != want:
            wrong.append(f"{rule} {city} {case_id}: evidence {got}, oracle {want}")
    assert not wrong, "\n".join(wrong[:20])


def test_golden_file_holds_the_oracles_findings(judged):
    """tests/golden/sample_findings.json (the bundled sample's findings, compared by
    test_check) names exactly the oracle's (rule, city, case) set: regenerating it with
    UPDATE_GOLDEN=1 cannot bless a wrong set."""
    if judged["sample"] != "bundled":
        pytest.skip("the golden file is of the bundled sample")
    golden = json.loads((Path(__file__).parent / "golden" / "sample_findings.json").read_text(encoding="utf-8"))
    keys = defaultdict(set)
    for f in golden:
        keys[f["rule_id"]].add((f["city"], f["case_id"]))
    for rule in RULES:
        assert keys[rule] == judged["oracle"][rule], rule


def test_oracle_calendar_is_the_national_schedule():
    """The oracle's working days are `chinese_calendar`'s: the 2025 National Day week and its
    make-up Saturday, and contract §2's add_workdays / workdays."""
    assert not O.is_workday(dt.date(2025, 10, 3)) and O.is_workday(dt.date(2025, 9, 28))
    assert O.add_workdays(dt.date(2025, 9, 30), 1) == dt.date(2025, 10, 9)
    assert O.add_workdays(dt.date(2025, 9, 30), 0) == dt.date(2025, 9, 30)
    assert O.workdays(dt.date(2025, 9, 29), dt.date(2025, 10, 9)) == 2
