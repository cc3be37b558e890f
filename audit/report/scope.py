"""What a report (or a bulletin) reads of a stored run: the run, the chosen cities and month.

`open_scope` chooses the run (`audit.check.runstore.select_run`), checks the cities and month
against its cases, and prepares the temp tables every part of the report reads: ``case_kpi`` (the
run's cases), ``report_scope`` (city, case_id of the cases in scope) and ``report_findings`` (the
run's findings of those cases). It also gathers the run's pack, settings in force, its rules with
their titles (`audit.report.compliance.rule_catalog`) and the pack's ``min_cases``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from audit.check.dataquality import notice_lines
from audit.check.runstore import require_cases, select_run, stored_pack
from audit.db import ensure_schema
from audit.figures.fair import min_cases as pack_min_cases
from audit.figures.metrics import use_run_cases
from audit.report import compliance, figures, provenance
from audit.rules.pack import Pack


@dataclass
class ReportScope:
    """A stored run restricted to the chosen cities and month, ready to be read."""

    run_id: int
    as_of: dt.date
    scope: figures.Scope
    cases: int                 # cases in scope
    findings: int              # (rule, case) findings in scope
    meta: dict                 # the run's stored row
    pack: Pack | None          # the pack as the run used it
    settings: dict             # settings in force: {"default": {…}, city: {…}}
    rules: dict[str, dict]     # `compliance.rule_catalog`
    min_cases: int

    @property
    def in_force(self) -> dict:
        """How values in force are written: one city's own, or the default with the cities of
        the scope whose values differ (keyword arguments of `audit.report.text.rule_title`)."""
        cities = self.scope.cities
        return {"city": cities[0]} if len(cities) == 1 else {"cities": cities}

    @property
    def data_quality(self) -> list[str]:
        """The run's data-quality notice, one line per kind of problem (empty when none)."""
        return notice_lines(self.meta.get("data_quality"))


def open_scope(con, cities: list[str] | None = None, month: str | None = None, as_of: dt.date | None = None,
               run_id: int | None = None) -> ReportScope:
    """Choose the run (`run_id`, or the latest at `as_of`) and the scope (`cities`, all when
    None; `month` YYYY-MM of request), and prepare ``case_kpi``, ``report_scope`` and
    ``report_findings``. A UsageError when there is no such run, city or month."""
    ensure_schema(con)
    run = select_run(con, run_id, as_of)
    require_cases(con, run)
    pack = stored_pack(con, run.run_id)
    use_run_cases(con, run.run_id)
    scope = figures.make_scope(con, cities, month)
    where, params = scope.where
    con.execute(f"CREATE OR REPLACE TEMP TABLE report_scope AS SELECT city, case_id FROM case_kpi WHERE {where}",
                params)
    n_cases = con.execute("SELECT count(*) FROM report_scope").fetchall()[0][0]
    n_findings = compliance.scope_findings(con, run.run_id)
    meta = provenance.load_meta(con, run.run_id)
    settings = json.loads(meta.get("settings") or "{}") or {"default": {}}
    rs = ReportScope(run.run_id, run.as_of, scope, n_cases, n_findings, meta, pack, settings, {},
                     pack_min_cases(pack.settings if pack else {}))
    rs.rules = compliance.rule_catalog(con, run.run_id, pack, settings, **rs.in_force)
    return rs
