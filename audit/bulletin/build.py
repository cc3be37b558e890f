"""The monthly bulletin (通报) of a stored run, as bureaus write it (`audit bulletin`).

The bulletin is assembled into a plain structure first (`Bulletin`: title, issuing line, the
sections' paragraphs and tables), then written as an editable Word document by
`audit.bulletin.officedoc`; tests check the structure and the document read back.

Shape (domain brief, "The monthly bulletin"): title 关于YYYY年M月…帮办代办服务情况的通报 (a pack
for other steps names its own service: `audit.report.text.subject`), the 文号, the addressee and
the basis; 一、基本情况 (the month's figures with their change against the month
before in 百分点 and the numbers of cases, the city table with k/n, rates and ranks, the 红榜/黑榜 of
halls); 二、存在问题 (the rules broken in the month, typical cases with their evidence); 三、整改要求
with its deadline; the issuing unit and date.

Everything comes from what `audit check` stored with the run (`audit.check.runstore`): the figures
(``run_kpi_cells``), the cases (``run_cases``), the findings, the pack and the calendars. The month's
cases are those requested in that month (the ``month`` key). No clock is read: the issuing date
defaults to the run's audit date, and the same database and options give the same text.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from audit.bulletin import text as words
from audit.check.runstore import require_cases, select_run, stored_pack
from audit.db import ensure_schema
from audit.errors import UsageError
from audit.figures import fair
from audit.figures.metrics import compute_kpis, kpi_cells, use_run_cases
from audit.known import listing
from audit.outputs.findings import evidence_text, rule_labels, run_metadata
from audit.outputs.mask import mask_name, scrub
from audit.rectify.lists import rectify_days
from audit.report.build import month_notice
from audit.report.figures import Scope, make_scope, previous_month, require_month_format
from audit.report.text import Subject, subject
from audit.rules.titles import rule_title

HALL_LIST_MAX = 5                   # halls on each of the 红榜 and 黑榜
TYPICAL_MAX = 10                    # typical cases: one per city, at most this many


@dataclass
class Table:
    """A table of the bulletin: its caption, header cells, rows of cell texts, notes below it."""

    caption: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class TypicalCase:
    """One typical case (典型案例): a finding of the month with its evidence, personal data masked."""

    city: str
    hall: str
    case_id: str
    rule_id: str
    text: str


@dataclass
class Bulletin:
    """The monthly bulletin as data: every text the document holds (`blocks` gives their order)."""

    title: str
    number: str
    addressee: str
    basis: str
    notices: list[str]
    overview: list[str]
    city_table: Table
    halls: list[str]
    red_list: Table | None
    black_list: Table | None
    problems: list[str]
    typical_cases: list[TypicalCase]
    requirements: list[str]
    issuer: str
    date: dt.date
    deadline: dict[str, dt.date]
    # what it was made from
    run_id: int
    as_of: dt.date
    month: str
    cities: list[str]
    cases: int
    about: Subject    # the service the text names (`audit.report.text.subject`)

    def blocks(self) -> list[tuple[str, object]]:
        """The document in order as (kind, content): kinds title, number, addressee, body, notice,
        h1, h2, table (a `Table`), signature, date."""
        out: list[tuple[str, object]] = [("title", self.title)]
        if self.number:
            out.append(("number", self.number))
        out += [("addressee", self.addressee), ("body", self.basis)]
        out += [("notice", f"说明：{n}") for n in self.notices]
        out += [("h1", words.HEADING_OVERVIEW), ("h2", words.SUB_FIGURES)]
        out += [("body", p) for p in self.overview]
        out += [("h2", words.SUB_CITIES), ("table", self.city_table), ("h2", words.SUB_HALLS)]
        out += [("body", p) for p in self.halls]
        out += [("table", t) for t in (self.red_list, self.black_list) if t is not None]
        out += [("h1", words.HEADING_PROBLEMS), ("h2", words.SUB_PROBLEMS)]
        out += [("body", p) for p in self.problems or [words.NO_PROBLEMS]]
        out.append(("h2", words.SUB_CASES))
        out += [("body", c.text) for c in self.typical_cases] or [("body", words.NO_CASES)]
        out.append(("h1", words.HEADING_REQUIREMENTS))
        out += [("body", p) for p in self.requirements]
        if self.issuer:
            out.append(("signature", self.issuer))
        out.append(("date", words.chinese_date(self.date)))
        return out

    def texts(self) -> list[str]:
        """Every paragraph and table cell in document order, as a reader of the document sees them."""
        out = []
        for kind, content in self.blocks():
            if kind == "table":
                out += [content.caption, *content.headers, *(c for row in content.rows for c in row), *content.notes]
            else:
                out.append(content)
        return out


def build_bulletin(con, month: str, cities: list[str] | None = None, issuer: str = "", number: str = "",
                   date: dt.date | None = None, deadline_days: int | None = None, run_id: int | None = None,
                   as_of: dt.date | None = None) -> Bulletin:
    """The bulletin of `month` (YYYY-MM, the month of request) for the chosen cities (all when
    none), from the stored run `run_id` (default the latest, or the latest at `as_of`).

    A city or month without cases in the run is a UsageError listing the known ones. `date` (the
    issuing date) defaults to the run's audit date; the rectification deadline is the audit date
    plus `deadline_days` working days on the calendar stored with the run for each city; by default
    the pack's `rectify_days` as the run stored it (its default value: the bulletin states one
    number for every city), as on the halls' rectification lists.
    """
    if deadline_days is not None and deadline_days < 0:
        raise UsageError(f"--deadline-days 应为非负整数，而不是 {deadline_days}")
    require_month_format(month)
    ensure_schema(con)
    run = select_run(con, run_id, as_of)
    require_cases(con, run)
    pack = stored_pack(con, run.run_id)
    about = subject(pack.vocabulary if pack else None, pack.name if pack else None)
    use_run_cases(con, run.run_id)
    scope = make_scope(con, cities, month)
    days = (rectify_days(json.loads(run_metadata(con, run.run_id).get("settings") or "{}"), "")
            if deadline_days is None else deadline_days)
    deadline = rectification_deadlines(con, run.run_id, run.as_of, scope.cities, days)
    area = words.area_name(scope.cities, scope.all_cities)
    period = words.period_name(month)
    now = _figures(con, run.run_id, scope, month)
    before = _figures(con, run.run_id, scope, previous_month(month))
    problems, typical = _problems(con, run.run_id, scope, pack, about)
    least = fair.min_cases(pack.settings if pack else {})
    halls, red, black = _hall_lists(con, run.run_id, scope, period, least)
    return Bulletin(
        title=words.title(period, area, about),
        number=number,
        addressee=words.addressee(scope.cities, scope.all_cities),
        basis=words.basis(words.standard_name(pack.standard if pack else None, pack.name if pack else None),
                          period, area, run.as_of, about),
        notices=month_notice(month, run.as_of, run.run_id),
        overview=[words.overview(period, area, now, before, about)],
        city_table=_city_table(con, run.run_id, scope, now, period, area, least, about),
        halls=halls,
        red_list=red,
        black_list=black,
        problems=problems,
        typical_cases=typical,
        requirements=words.requirements(deadline, days, run.as_of, issuer, has_black_list=black is not None,
                                        about=about),
        issuer=issuer,
        date=date or run.as_of,
        deadline=deadline,
        run_id=run.run_id, as_of=run.as_of, month=month, cities=scope.cities, cases=int(now["cases"] or 0),
        about=about,
    )


def write_bulletin(con, out: Path, month: str, **options) -> Bulletin:
    """Build the bulletin (`build_bulletin` takes the `options`) and write it to `out` as .docx."""
    from audit.bulletin.officedoc import write_docx

    bulletin = build_bulletin(con, month, **options)
    write_docx(bulletin, Path(out))
    return bulletin


def parse_date(text: str | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD option value as a date (None when not given); a UsageError otherwise."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} 不是日期 (应为 YYYY-MM-DD)") from None


# --- figures ------------------------------------------------------------------------------------
def _figures(con, run_id: int, scope: Scope, month: str, by: list[str] | None = None):
    """The figures (with numerators and denominators) of the scope's cities in `month`: one row
    (a dict) without `by`, else a frame by `by`. A month without cases gives cases = 0."""
    where, params = scope.city_where
    df = compute_kpis(con, by or [], run_id, f"{where} AND month = ?", params + [month], with_counts=True,
                      source=kpi_cells(run_id))
    if by:
        return df
    return df.iloc[0].to_dict()


def _city_table(con, run_id: int, scope: Scope, total: dict, period: str, area: str, least: int,
                about: Subject) -> Table:
    """Each city's figures in the month with k/n and ranks marked as `audit.figures.fair` says
    (≈ indistinguishable, † fewer than `least` in the denominator), best 合规率 first; the total
    row last."""
    df = _figures(con, run_id, scope, scope.month, ["city"])
    df = fair.add_intervals(df, words.TABLE_FIGURES)
    for fig in words.TABLE_FIGURES:
        df = fair.rank_with_marks(df, fig, least)
    df = df.sort_values(["compliance_rate_rank", "city"], na_position="last", kind="stable")
    rows = [[rec["city"], words.count(rec["cases"]),
             *(words.share(rec, f, "\n") + words.rank_line(rec, f) for f in words.TABLE_FIGURES)]
            for rec in df.to_dict("records")]
    rows.append([words.total_label(area), words.count(total["cases"]),
                 *(words.share(total, f, "\n") for f in words.TABLE_FIGURES)])
    headers = ["地市", "办件数", *(words.figure_name(f) for f in words.TABLE_FIGURES)]
    return Table(words.city_table_caption(period, about), headers, rows, words.rank_notes(least, "地市"))


def _hall_lists(con, run_id: int, scope: Scope, period: str, least: int) -> tuple[list[str], Table | None, Table | None]:
    """The 红榜 and 黑榜: the halls with at least `least` cases in the month ranked by 合规率 (ties:
    more cases first, then city and hall); at most `HALL_LIST_MAX` on each, and never more than half
    of the ranked halls, so that no hall is on both; a hall on the 黑榜 has a lower 合规率 than every
    hall on the 红榜. Returns the paragraph introducing them (naming the halls left out) and the two
    tables (None when there is no ranking to make)."""
    df = _figures(con, run_id, scope, scope.month, ["city", "hall"])
    named = df["hall"].notna() & (df["hall"].astype(str).str.strip() != "")
    eligible = df[named & (df["cases"] >= least)]
    left_out = df[~(named & (df["cases"] >= least))].sort_values(["city", "hall"], na_position="last")
    ranked = fair.rank_with_marks(fair.add_intervals(eligible, ["compliance_rate"]), "compliance_rate", least)
    ranked = ranked.sort_values(["compliance_rate_rank", "cases", "city", "hall"],
                                ascending=[True, False, True, True], kind="stable").to_dict("records")
    each = min(HALL_LIST_MAX, len(ranked) // 2)
    red = ranked[:each]
    floor = min((r["compliance_rate"] for r in red), default=None)
    black = [r for r in reversed(ranked[each:]) if floor is not None and r["compliance_rate"] < floor][:each]
    intro = words.halls_intro(period, least, len(ranked), len(red), len(black),
                              [(r["city"], r["hall"], r["cases"]) for r in left_out.to_dict("records")])
    if not red or not black:
        return [intro], None, None
    headers = ["地市", "服务大厅", "办件数", "合规率", "名次"]

    def table(caption: str, recs: list[dict]) -> Table:
        rows = [[r["city"], r["hall"], words.count(r["cases"]), words.share(r, "compliance_rate"),
                 words.rank_line(r, "compliance_rate").strip()] for r in recs]
        return Table(caption, headers, rows, [])

    notes = words.rank_notes(least, "服务大厅")
    red_table, black_table = table(words.red_caption(period), red), table(words.black_caption(period), black)
    black_table.notes = notes
    return [intro], red_table, black_table


# --- problems and typical cases -----------------------------------------------------------------
def _problems(con, run_id: int, scope: Scope, pack, about: Subject) -> tuple[list[str], list[TypicalCase]]:
    """The rules broken by the month's cases (DATA-* describe the data, not the service: left
    out), most serious and most frequent first, and one typical case per city. Rule titles carry
    the values in force (`rule_title` over the run's stored settings): for the scope's cities in
    the list, for the case's city in a typical case."""
    where, params = scope.where
    con.execute(f"""CREATE OR REPLACE TEMP TABLE bulletin_findings AS
        SELECT f.rule_id, f.severity, f.clause, f.city, f.case_id, f.message, CAST(f.evidence AS VARCHAR) AS evidence,
               c.hall, c.service_type, c.applicant, c.staff, r.title
        FROM findings f
        JOIN (SELECT * FROM case_kpi WHERE {where}) c ON c.city = f.city AND c.case_id = f.case_id
        LEFT JOIN run_rules r ON r.run_id = f.run_id AND r.rule_id = f.rule_id
        WHERE f.run_id = ? AND f.severity IN ('error', 'warning') AND f.rule_id NOT LIKE 'DATA-%'
          AND f.waiver_id IS NULL""",
                [*params, run_id])
    rules = con.execute("""
        SELECT rule_id, min(severity) AS sev, min(clause), min(title), count(DISTINCT (city, case_id)) AS n
        FROM bulletin_findings GROUP BY rule_id
        ORDER BY CASE sev WHEN 'error' THEN 0 ELSE 1 END, n DESC, rule_id""").fetchall()
    per_city: dict[str, list[tuple[str, int]]] = {}
    for rule_id, city, n in con.execute("""SELECT rule_id, city, count(DISTINCT case_id) FROM bulletin_findings
                                           GROUP BY ALL ORDER BY rule_id, city""").fetchall():
        per_city.setdefault(rule_id, []).append((city, n))
    by_id = {r.id: r for r in pack.rules} if pack else {}
    raw = {rule_id: by_id[rule_id].title if rule_id in by_id else title or rule_id
           for rule_id, _, _, title, _ in rules}
    settings = con.execute("SELECT settings FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    problems = [words.problem_line(i, rule_title(raw[rule_id], settings, cities=scope.cities), clause, rule_id, n,
                                   per_city[rule_id])
                for i, (rule_id, _, clause, _, n) in enumerate(rules)]
    return problems, _typical_cases(con, pack, raw, settings, about)


def _typical_cases(con, pack, titles: dict[str, str], settings, about: Subject) -> list[TypicalCase]:
    """One case per city: of its error-severity rules in the month, the one with the most cases
    (then by rule id); of that rule's cases, the first by case id. The same run always picks the
    same cases. `titles` are the rules' titles as the pack writes them, `settings` the run's."""
    rows = con.execute(f"""
        WITH ranked AS (
            SELECT city, rule_id,
                   row_number() OVER (PARTITION BY city ORDER BY count(DISTINCT case_id) DESC, rule_id) AS k
            FROM bulletin_findings WHERE severity = 'error' GROUP BY city, rule_id)
        SELECT f.city, f.hall, f.case_id, f.rule_id, f.message, f.evidence, f.service_type, f.applicant, f.staff
        FROM ranked q JOIN bulletin_findings f ON f.city = q.city AND f.rule_id = q.rule_id
        WHERE q.k = 1
        QUALIFY row_number() OVER (PARTITION BY f.city ORDER BY f.case_id) = 1
        ORDER BY f.city LIMIT {TYPICAL_MAX}""").fetchall()
    labels = rule_labels(pack)
    out = []
    for i, (city, hall, case_id, rule_id, message, evidence, service_type, applicant, staff) in enumerate(rows):
        detail = scrub(evidence_text(evidence, labels.get(rule_id)))
        text = words.typical_case(i, city, hall, case_id, service_type, mask_name(applicant), staff,
                                  rule_title(titles[rule_id], settings, city=city), scrub(message), detail, about)
        out.append(TypicalCase(city, hall or "", case_id, rule_id, text))
    return out


# --- deadline -----------------------------------------------------------------------------------
def rectification_deadlines(con, run_id: int, as_of: dt.date, cities: list[str], days: int) -> dict[str, dt.date]:
    """Per city: `as_of` + `days` working days (contract §2 `add_workdays`) on the calendar the run
    stored for that city (``run_calendar`` / ``run_city_calendar``; a city without its own is on
    the run's default calendar, key 0)."""
    rows = con.execute("""
        WITH chosen AS (SELECT unnest(?::VARCHAR[]) AS city),
        keyed AS (SELECT ch.city, coalesce(cc.cal_key, 0) AS cal_key FROM chosen ch
                  LEFT JOIN run_city_calendar cc ON cc.run_id = ? AND cc.city = ch.city),
        later AS (SELECT cal_key, d, row_number() OVER (PARTITION BY cal_key ORDER BY d) AS n
                  FROM run_calendar WHERE run_id = ? AND d > ? AND is_workday)
        SELECT k.city, CASE WHEN ? = 0 THEN ?::DATE ELSE l.d END
        FROM keyed k LEFT JOIN later l ON l.cal_key = k.cal_key AND l.n = ?
        ORDER BY k.city""", [cities, run_id, run_id, as_of, days, as_of, days]).fetchall()
    missing = [city for city, d in rows if d is None]
    if missing:
        raise UsageError(f"审计 {run_id} 保存的工作日历不足以推算 {as_of} 之后 {days} 个工作日 "
                         f"({listing(missing)})；请减少 --deadline-days，或重新运行 audit check")
    return dict(rows)
