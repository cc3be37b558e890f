"""`write_report`: the HTML report of one audit run, self-contained and reproducible.

One file, in Chinese, that opens offline: styles, script, charts (inline SVG, text as paths) and
a subset of the CJK font (WOFF data URI) are all inside it, and its Content-Security-Policy lets
it fetch nothing. The same database gives the same bytes: no clock, fixed SVG ids, ordered rows.
Templates (``reports/``, shipped as ``audit._templates``) are jinja2 with autoescape on; a
directory given as `template_dir` overrides any of them by name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from markupsafe import Markup

from audit.figures.metrics import FIGURES
from audit.report import (
    casetable,
    charts,
    comparison,
    compliance,
    conclusions,
    figures,
    halls,
    process,
    provenance,
    tracking,
)
from audit.report.fonts import PAGE_FAMILY, font_face_css
from audit.report.scope import ReportScope, open_scope
from audit.report.text import FIGURE_DEFINITIONS, SEVERITY_ZH, figure_zh
from audit.resources import templates_dir
from audit.rules.titles import fill_settings, rule_title

FONT_PLACEHOLDER = "/*@@report-font-face@@*/"
XLSX_HINT = "audit findings --format xlsx --out 整改清单.xlsx"
_CSS_UNSAFE = frozenset('"\\<>&\'')


@dataclass
class ReportInfo:
    """What `write_report` wrote."""

    path: Path
    bytes: int
    cases: int
    findings_shown: int
    findings_total: int
    run_id: int
    as_of: dt.date
    cities: list[str] = field(default_factory=list)
    month: str | None = None
    notices: list[str] = field(default_factory=list)
    base_run_id: int | None = None       # the run of the 整改跟踪 section (None: no section)


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """The jinja2 environment: package templates, overridable by `template_dir`; autoescape on;
    the filters ``css_string`` and ``keep_dates``."""
    loaders = [jinja2.FileSystemLoader(str(template_dir))] if template_dir else []
    loaders.append(jinja2.FileSystemLoader(str(templates_dir())))
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["css_string"] = css_string
    env.filters["keep_dates"] = casetable.keep_dates
    return env


def css_string(value) -> Markup:
    """`value` as a quoted CSS string for a ``<style>`` element (the page footer's title).

    Autoescape does not apply there (a style element is raw text), so quotes, backslashes,
    ``<``, ``>``, ``&`` and control characters become CSS escapes (``\\3c `` …): text from a case log
    can neither end the string nor the style element. Markup (an HTML-escaped block) is unescaped first.
    """
    text = value.unescape() if isinstance(value, Markup) else str(value)
    return Markup('"' + "".join(f"\\{ord(ch):x} " if ch in _CSS_UNSAFE or ord(ch) < 0x20 or ord(ch) == 0x7F else ch
                                for ch in text) + '"')


def write_report(con, out: Path, cities: list[str] | None = None, month: str | None = None,
                 as_of: dt.date | None = None, show_personal: bool = False,
                 template_dir: Path | None = None, run_id: int | None = None,
                 all_staff: bool = False, findings_limit: int | None = None,
                 base_run: int | None = None) -> ReportInfo:
    """Write the HTML report of a stored run (`run_id`, or the latest at `as_of`) for the chosen
    cities and month.

    `cities` and `month` (YYYY-MM, the month of request) restrict the scope; the monthly trend
    still shows every month of the chosen cities. Personal data is masked unless `show_personal`.
    Staff members with fewer than `min_cases` cases are folded into one line per hall unless
    `all_staff`.
    Everything comes from what `audit check` stored with the run (`audit.check.runstore`): the pack,
    settings and calendars as they were, the cases' figures and the findings.
    The page lists at most `findings_limit` findings (default `casetable.MAX_ROWS`), each severity
    with findings among them; the printed page has a digest per city instead of the list.
    The section 整改跟踪 compares the run with `base_run` (default: the run before it; none before
    it, no section), as `audit compare` does (`audit.report.tracking`).
    """
    html, info = render_report(con, cities, month, as_of, show_personal, template_dir, run_id, all_staff,
                               findings_limit, base_run)
    data = html.encode("utf-8")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    info.path, info.bytes = out, len(data)
    return info


def render_report(con, cities: list[str] | None = None, month: str | None = None,
                  as_of: dt.date | None = None, show_personal: bool = False,
                  template_dir: Path | None = None, run_id: int | None = None,
                  all_staff: bool = False, findings_limit: int | None = None,
                  base_run: int | None = None) -> tuple[str, ReportInfo]:
    """The report's HTML text and what it holds (see `write_report`)."""
    rs = open_scope(con, cities, month, as_of, run_id)
    notices = month_notice(rs.scope.month, rs.as_of, rs.run_id)
    limit = casetable.MAX_ROWS if findings_limit is None else findings_limit
    context = _context(con, rs, show_personal, all_staff, limit)
    context["notices"] = notices
    followup = tracking.tracking(con, rs.run_id, rs.scope.cities, rs.scope.month, base_run)
    context["tracking"] = followup
    context["numbers"] = section_numbers(followup is not None)
    html = environment(template_dir).get_template("report.html").render(**context)
    html = html.replace(FONT_PLACEHOLDER, font_face_css(html), 1)
    listed = context["findings"]["list"]
    info = ReportInfo(Path(), 0, rs.cases, len(listed.rows), listed.total,
                      rs.run_id, rs.as_of, rs.scope.cities, rs.scope.month, notices,
                      followup["base"].run_id if followup else None)
    return html, info


NUMERALS = "一二三四五六七八九十"


def section_numbers(with_tracking: bool) -> dict[str, str]:
    """The numbers of the sections after 七、问题办件清单: 整改跟踪 is 八 when the report has it, and
    the definitions and the provenance follow it."""
    after = (["tracking"] if with_tracking else []) + ["definitions", "provenance"]
    return {section: NUMERALS[7 + i] for i, section in enumerate(after)}


def month_notice(month: str | None, as_of: dt.date, run_id: int) -> list[str]:
    """A line when the run's audit date falls before the end of the chosen month: the month's
    cases are then judged as they stood on that date, not at the month's end."""
    if not month:
        return []
    year, mon = int(month[:4]), int(month[5:])
    end = (dt.date(year + mon // 12, mon % 12 + 1, 1) - dt.timedelta(days=1))
    if as_of >= end:
        return []
    return [f"审计 {run_id} 的审计日 {as_of} 早于 {month} 月末 ({end})：该月办件按 {as_of} 的状态判定；"
            f"按月末判定请运行 audit check --as-of {end}"]


def _context(con, rs: ReportScope, show_personal: bool, all_staff: bool, findings_limit: int) -> dict:
    run_id, scope, settings, min_cases = rs.run_id, rs.scope, rs.settings, rs.min_cases
    colors = charts.city_colors(scope.all_cities)
    city_df = comparison.city_frame(con, run_id, scope, min_cases)
    monthly = figures.monthly_by_city(con, run_id, scope)
    rules = compliance.rule_table(con, rs.rules, rs.cases)
    listed = casetable.findings_list(con, run_id, show_personal, limit=findings_limit, pack=rs.pack)
    _titles_in_force(listed.rows, rs.rules, settings)
    return {
        "font_face": FONT_PLACEHOLDER, "page_family": PAGE_FAMILY,
        "scope": {"cities": scope.cities, "all": scope.cities == scope.all_cities, "month": scope.month,
                  "months": scope.months, "cases": rs.cases},
        "prov": provenance.provenance(rs.meta), "show_personal": show_personal, "min_cases": min_cases,
        "conclusions": conclusions.conclusions(con, run_id, scope, rs.rules, min_cases, settings, rs.data_quality),
        "summary": figures.summary(con, run_id, scope),
        "severity_counts": compliance.severity_counts(con),
        "severity_zh": SEVERITY_ZH,
        "figure_names": [figure_zh(f) for f in FIGURES],
        "cities": comparison.city_table(city_df, min_cases),
        "ranked": len(city_df) >= 2,
        "city_chart": charts.city_comparison(city_df, colors, min_cases) if len(city_df) else None,
        "matrix": comparison.city_rule_matrix(con, rs.rules, scope.cities),
        "trends": (charts.trend_charts(monthly, scope.months, colors, scope.month, min_cases)
                   if len(monthly) else []),
        "clauses": compliance.clause_table(con, run_id, rs.cases, rs.pack),
        "rules": rules,
        "units": halls.unit_tables(con, run_id, scope.where, rs.rules, settings, min_cases, all_staff),
        "breakdowns": figures.breakdowns(con, run_id, scope),
        "process": process.section(con, run_id, scope.cities),
        "findings": {"list": listed, "json": casetable.script_json(casetable.table_data(listed.rows, listed.trails)),
                     "cities": casetable.options(listed.rows, "city"),
                     "rules": casetable.options(listed.rows, "rule_id"),
                     "per_city": casetable.DIGEST_PER_CITY, "xlsx_hint": XLSX_HINT},
        "definitions": [{"figure": f, "name": figure_zh(f),
                         "numerator": fill_settings(FIGURE_DEFINITIONS[f][0], settings, **rs.in_force),
                         "denominator": FIGURE_DEFINITIONS[f][1], "note": FIGURE_DEFINITIONS[f][2]}
                        for f in FIGURES],
        "rule_definitions": provenance.rule_definitions(rules, rs.pack, settings, **rs.in_force),
    }


def _titles_in_force(rows: list[list], catalog: dict[str, dict], settings) -> None:
    """The findings table's rule titles with the values in force for each finding's city."""
    t, c, r = (casetable.COLUMNS.index(k) for k in ("title", "city", "rule_id"))
    for row in rows:
        if row[r] in catalog:
            row[t] = rule_title(catalog[row[r]]["raw_title"], settings, city=row[c] or None)
