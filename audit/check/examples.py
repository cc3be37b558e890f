"""Run a rule's example cases through the real engine, on a real DuckDB database.

Each example becomes one case (city 示例市 unless it names one) in a scratch database; the rule
runs over it exactly as `audit check` would (same calendar, facts and settings), and the result
says whether the example case was flagged. The test suite runs every example of every rule, and
`audit rules RULE-ID --verify` does the same for a user's own pack.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from audit.calendar.workcalendar import WorkCalendar
from audit.check.engine import execute_rule, prepare
from audit.db import connect, ensure_schema
from audit.rules.example_format import parse_time
from audit.rules.pack import Example, Pack, Rule
from audit.vocabulary import CASE_ATTRIBUTES, RATINGS

# The attributes an example's `case:` may set (checked when the pack loads: audit.rules.example_format).
CASE_COLUMNS = tuple(CASE_ATTRIBUTES)


@dataclass
class ExampleOutcome:
    """One example and what the rule made of it."""

    example: Example
    flagged: bool
    messages: list[str]
    unlabelled: list[str] = field(default_factory=list)   # evidence fields the rule gives no label

    @property
    def ok(self) -> bool:
        """Flagged exactly when expected to fail, and every evidence field has its label."""
        return self.flagged == (self.example.expect == "fail") and not self.unlabelled


def _load(con, examples: list[Example]) -> None:
    seq = 0
    for i, ex in enumerate(examples):
        case_id = f"EX{i + 1:03d}"
        row = {c: ex.case.get(c) for c in CASE_COLUMNS}
        if row["rating_time"] is not None:
            row["rating_time"] = parse_time(row["rating_time"])
        score = RATINGS.get(row["rating"]) if row["rating"] else None
        if ex.case or not ex.events:
            con.execute(f"""INSERT INTO case_rows (city, case_id, {', '.join(CASE_COLUMNS)}, rating_score)
                            VALUES (?, ?, {', '.join('?' for _ in CASE_COLUMNS)}, ?)""",
                        [ex.city, case_id] + [row[c] for c in CASE_COLUMNS] + [score])
        for ev in ex.events:
            seq += 1
            step, when = str(ev[0]), parse_time(ev[1])
            staff = str(ev[2]) if len(ev) > 2 and ev[2] is not None else None
            con.execute("""INSERT INTO event_rows (city, case_id, step, "time", staff, seq, source_row)
                           VALUES (?, ?, ?, ?, ?, ?, ?)""",
                        [ex.city, case_id, step, when, staff, seq, seq])


def run_examples(rule: Rule, pack: Pack, calendar: WorkCalendar | None = None) -> list[ExampleOutcome]:
    """Run every example of `rule`; group by audit date so each example is judged on its own as_of."""
    calendar = calendar or WorkCalendar.load()
    outcomes: list[ExampleOutcome] = []
    with tempfile.TemporaryDirectory(prefix="audit-examples-") as tmp:
        for i, ex in enumerate(rule.examples):
            con = connect(Path(tmp) / f"ex{i}.duckdb")
            try:
                ensure_schema(con)
                _load(con, [ex])
                as_of = parse_time(ex.as_of).date() if ex.as_of else max(
                    (parse_time(e[1]).date() for e in ex.events), default=dt.date(2026, 1, 5))
                prepare(con, pack, as_of, calendar)
                execute_rule(con, rule, 0)
                rows = con.execute("SELECT message, evidence FROM findings WHERE rule_id = ?", [rule.id]).fetchall()
            finally:
                con.close()
            outcomes.append(ExampleOutcome(ex, bool(rows), [r[0] for r in rows], _unlabelled(rule, [r[1] for r in rows])))
    return outcomes


def _unlabelled(rule: Rule, evidence: list[str | None]) -> list[str]:
    """Evidence fields without a label, for a rule that gives labels. Run time complements the
    check at load time (audit.rules.pack), which reads the fields only from a struct literal."""
    if not rule.evidence:
        return []
    keys = {k for e in evidence if e for k in (json.loads(e) or {})}
    return sorted(keys - set(rule.evidence))
