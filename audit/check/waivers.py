"""Waivers applied to a run (contract §5): findings covered by a waiver in force are kept, marked.

`store_findings` moves the findings a run gathered (temp table ``_run_findings``) into ``findings``;
with a waiver file (`audit.check.waiverfile`) it sets ``findings.waiver_id`` of each finding that a
waiver in force on the audit date covers — its rule among the waiver's rules and its case in the
waiver's scope (the case; or the city; or the city and hall of the case as the run judged it) — and
keeps every waiver of the file in ``run_waivers`` (status ``in_force`` or ``expired``, and how many
findings it covers: 0 is a waiver that matched nothing). A finding covered by several waivers names
the first of them in the file. Waived findings stay stored and listed; they do not count against
合规率 (`audit.figures.metrics.CASE_KPI_SQL`) nor for ``--fail-on``.

Without waivers the findings are inserted as before, at no extra cost; with them, the matching is a
few hash joins of the findings on (rule, case) and (rule, city), and the hall through ``case_facts``
only for the findings of a waived city.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from audit.check.waiverfile import Waiver, WaiverFile
from audit.db import insert_rows

IN_FORCE, EXPIRED = "in_force", "expired"


@dataclass(frozen=True)
class WaiverStatus:
    """A waiver as the run judged it: in force or expired on the audit date, findings it covers."""

    waiver: Waiver
    status: str
    matched: int


def store_findings(con, run_id: int, waivers: WaiverFile | None, as_of: dt.date) -> list[WaiverStatus]:
    """Insert ``_run_findings`` into ``findings`` (waived ones marked) and the waivers into
    ``run_waivers``; call inside the run's transaction, with ``case_facts`` built. Returns the
    status of every waiver, in file order (empty without a waiver file)."""
    in_force = [w for w in (waivers.waivers if waivers else ()) if w.in_force(as_of)]
    if not in_force:
        con.execute("INSERT INTO findings BY NAME FROM _run_findings")
        matched: dict[int, int] = {}
    else:
        _match(con, in_force)
        con.execute("""INSERT INTO findings BY NAME
                       SELECT f.* EXCLUDE (waiver_id), m.waiver_id FROM _run_findings f
                       LEFT JOIN (SELECT rule_id, city, case_id, min(waiver_id) AS waiver_id
                                  FROM _waived GROUP BY ALL) m USING (rule_id, city, case_id)""")
        matched = dict(con.execute("""SELECT waiver_id, count(DISTINCT (rule_id, city, case_id)) FROM _waived
                                      GROUP BY waiver_id""").fetchall())
        con.execute("DROP TABLE _waived; DROP TABLE _waiver_rules")
    statuses = [WaiverStatus(w, IN_FORCE if w.in_force(as_of) else EXPIRED, matched.get(w.waiver_id, 0))
                for w in (waivers.waivers if waivers else ())]
    insert_rows(con, "run_waivers", [
        (run_id, s.waiver.waiver_id, s.waiver.line, s.waiver.rule, list(s.waiver.rules), s.waiver.case_id,
         s.waiver.city, s.waiver.hall, s.waiver.reason, s.waiver.approved_by, s.waiver.expires, s.status,
         s.matched) for s in statuses])
    return statuses



def _match(con, in_force: list[Waiver]) -> None:
    """Temp table ``_waived`` (rule_id, city, case_id, waiver_id): each finding of
    ``_run_findings`` with each waiver in force that covers it."""
    con.execute("""CREATE OR REPLACE TEMP TABLE _waiver_rules
                   (waiver_id INTEGER, rule_id VARCHAR, case_id VARCHAR, city VARCHAR, hall VARCHAR)""")
    insert_rows(con, "_waiver_rules", [(w.waiver_id, r, w.case_id, w.city, w.hall) for w in in_force for r in w.rules])
    parts = [
        # a case (of its city, when the waiver names one)
        """SELECT f.rule_id, f.city, f.case_id, w.waiver_id FROM _run_findings f JOIN _waiver_rules w
             ON w.rule_id = f.rule_id AND w.case_id = f.case_id WHERE w.city IS NULL OR w.city = f.city""",
        # a whole city
        """SELECT f.rule_id, f.city, f.case_id, w.waiver_id FROM _run_findings f JOIN _waiver_rules w
             ON w.rule_id = f.rule_id AND w.city = f.city WHERE w.case_id IS NULL AND w.hall IS NULL""",
    ]
    if any(w.hall for w in in_force):
        # a hall of a city: the case's hall as the run judged it
        parts.append("""SELECT f.rule_id, f.city, f.case_id, w.waiver_id FROM _run_findings f JOIN _waiver_rules w
                          ON w.rule_id = f.rule_id AND w.city = f.city
                        JOIN case_facts c ON c.city = f.city AND c.case_id = f.case_id AND c.hall = w.hall
                        WHERE w.case_id IS NULL""")
    con.execute("CREATE OR REPLACE TEMP TABLE _waived AS " + " UNION ALL ".join(parts))


def waived_by_rule(con, run_id: int) -> dict[str, int]:
    """Waived findings of a run per rule id."""
    return dict(con.execute("""SELECT rule_id, count(*) FROM findings WHERE run_id = ? AND waiver_id IS NOT NULL
                               GROUP BY rule_id""", [run_id]).fetchall())
