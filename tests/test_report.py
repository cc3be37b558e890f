"""`audit report`: the HTML report over the bundled sample, through the real CLI, parsed as HTML.

The page is checked by selecting elements (datasette-style), never by comparing whole files.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import Markup
from typer.testing import CliRunner

import audit.cli.report  # noqa: F401  registers `audit report` even before audit/cli/__init__ imports it
from audit.check.runstore import select_run
from audit.cli import app
from audit.db import connect
from audit.figures.metrics import FIGURES, compute_kpis, use_run_cases
from audit.ingest import ingest
from audit.report import casetable, write_report
from audit.report.build import css_string
from audit.report.casetable import severity_quotas
from tests.conftest import write_csv
from tests.test_check import ingest_sample

XSS = "<script>alert(1)</script>"
XSS_HALL = "<b>测试大厅</b>"
SECTIONS = {"summary": "总体情况", "cities": "地市对比", "trends": "月度趋势", "compliance": "规则与条款",
            "breakdowns": "分类统计", "cases": "问题办件", "definitions": "指标与规则定义", "provenance": "数据来源"}


# --- a small DOM from html.parser ---------------------------------------------------------
VOID = {"meta", "br", "input", "img", "link", "hr", "col", "source", "wbr", "area", "base"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(self, tag: str | None = None, **attrs) -> list[Node]:
        return [n for n in self.iter() if (tag is None or n.tag == tag)
                and all(n.attrs.get(k.rstrip("_")) == v for k, v in attrs.items())]

    def by_id(self, id_: str) -> Node:
        found = self.find_all(id=id_)
        assert len(found) == 1, f"expected one element #{id_}, found {len(found)}"
        return found[0]

    def rows(self) -> list[list[str]]:
        """Cell texts of the rows of a table's tbody."""
        body = self.find_all("tbody")[0]
        return [[c.text().strip() for c in tr.children if isinstance(c, Node)] for tr in body.find_all("tr")]


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.cur = Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, dict(attrs), self.cur))

    def handle_endtag(self, tag):
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.cur = node.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def parse(html: str) -> Node:
    b = _Builder()
    b.feed(html)
    b.close()
    return b.root


# --- fixtures -----------------------------------------------------------------------------
def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def write_xss_case(path: Path) -> Path:
    """A combined export with one 延安 case whose id, applicant and hall are markup; it charges a fee."""
    head = ["办件编号", "地市", "服务大厅", "服务类型", "服务方式", "服务对象类别", "服务对象", "证件号码", "联系电话",
            "帮办代办员", "承诺时限", "收费金额", "评价", "环节", "时间", "经办人"]
    attrs = [XSS, "延安", XSS_HALL, "帮办", "线下", "其他群众", XSS, "610102199001011234", "13812345678",
             "王帮办", 3, 50, "满意"]
    steps = [("咨询", "2026-03-02 09:00"), ("申请", "2026-03-02 09:10"), ("受理", "2026-03-02 09:20"),
             ("承办", "2026-03-02 10:00"), ("办结", "2026-03-03 16:00"), ("资料归档", "2026-03-04 10:00")]
    return write_csv(path, [head] + [attrs + [s, t, "王帮办"] for s, t in steps])


def build_report_db(db: Path) -> Path:
    """The bundled sample plus the markup case, ingested and checked."""
    ingest_sample(db)
    con = connect(db)
    ingest(con, [write_xss_case(db.parent / "xss.csv")])
    con.close()
    code, out = invoke("check", "--db", db)
    assert code == 0, out
    return db


@pytest.fixture(scope="module")
def report_db(tmp_path_factory) -> Path:
    return build_report_db(tmp_path_factory.mktemp("report") / "audit.duckdb")


def make_report(db: Path, out: Path, *args) -> str:
    code, output = invoke("report", "--out", out, "--db", db, *args)
    assert code == 0, output
    assert str(out) in output
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report(report_db, tmp_path_factory) -> tuple[str, Node]:
    html = make_report(report_db, tmp_path_factory.mktemp("out") / "报告.html")
    return html, parse(html)


def findings_json(doc: Node) -> dict:
    return json.loads(doc.by_id("findings-data").text())


def kpis(db: Path, by: list[str], where: str = "TRUE", params: list | None = None):
    con = connect(db)
    try:
        run_id = select_run(con).run_id
        use_run_cases(con, run_id)
        return compute_kpis(con, by, run_id, where, params)
    finally:
        con.close()


def pct(v) -> str:
    return "" if v is None or v != v else f"{v * 100:.1f}%"


# --- structure and figures ----------------------------------------------------------------
def test_sections_with_chinese_headings(report):
    html, doc = report
    assert html.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in html
    assert doc.find_all("h1")[0].text() == "帮办代办服务审计报告"
    for section_id, heading in SECTIONS.items():
        section = doc.by_id(section_id)
        assert section.tag == "section"
        assert heading in section.find_all("h2")[0].text()


def test_summary_equals_compute_kpis_with_change_in_pp(report, report_db):
    _, doc = report
    total = kpis(report_db, []).iloc[0]
    monthly = kpis(report_db, ["month"]).set_index("month")
    cards = {c.attrs["data-figure"]: c for c in doc.by_id("summary").find_all("div", class_="card")}
    assert list(cards) == list(FIGURES)
    for fig in FIGURES:
        value = cards[fig].find_all("div", class_="value")[0].text()
        if fig == "cases":
            assert value == f"{int(total[fig]):,}"
        elif fig == "mean_rating":
            assert value == f"{total[fig]:.2f}"
        else:
            assert value == pct(total[fig]), fig
    for fig in ("compliance_rate", "response_rate", "satisfaction_rate"):
        change = cards[fig].find_all("span", class_="change")[0].text()
        want = (monthly.at["2026-03", fig] - monthly.at["2026-02", fig]) * 100
        assert change == f"{want:+.1f} pp"
        assert f"2026-03：{pct(monthly.at['2026-03', fig])}" in cards[fig].text()


def test_cities_side_by_side_with_ranking(report, report_db):
    _, doc = report
    table = doc.by_id("city-table")
    by_city = kpis(report_db, ["city"]).set_index("city")
    rows = {tr.attrs["data-city"]: tr for tr in table.find_all("tr") if "data-city" in tr.attrs}
    assert set(rows) == {"延安", "宝鸡", "榆林"}
    for fig in ("compliance_rate", "response_rate"):
        ranks = {city: tr.find_all("td", **{"data-figure": fig})[0] for city, tr in rows.items()}
        best = by_city[fig].idxmax()
        assert ranks[best].find_all("span", class_="rank")[0].text() == "(1)"
        for city, cell in ranks.items():
            assert cell.find_all("span", class_="v")[0].text() == pct(by_city.at[city, fig])
    cases_cells = [tr.find_all("td", **{"data-figure": "cases"})[0] for tr in rows.values()]
    assert all(not c.find_all("span", class_="rank") for c in cases_cells)  # cases are not ranked


def test_per_rule_counts_equal_run_rules(report, report_db):
    _, doc = report
    con = connect(report_db)
    want = dict(con.execute("SELECT rule_id, findings FROM run_rules WHERE run_id = (SELECT max(run_id) FROM runs)").fetchall())
    n_cases = con.execute("SELECT count(*) FROM cases").fetchall()[0][0]
    con.close()
    got = {tr.attrs["data-rule"]: tr for tr in doc.by_id("rule-table").find_all("tr") if "data-rule" in tr.attrs}
    assert set(got) == set(want)
    for rule_id, n in want.items():
        cells = [c.text() for c in got[rule_id].find_all("td")]
        assert cells[-2] == f"{n:,}" and cells[-1] == f"{n / n_cases * 100:.1f}%"
    clauses = [tr.attrs["data-clause"] for tr in doc.by_id("clause-table").find_all("tr") if "data-clause" in tr.attrs]
    assert {"8", "9", "10", "11"} <= set(clauses)


def test_breakdowns_and_definitions(report):
    _, doc = report
    for table_id in ("by-hall", "by-service-type", "by-channel", "by-object-type", "by-staff"):
        assert doc.by_id(table_id).rows()
    assert {r[0] for r in doc.by_id("by-service-type").rows()} == {"帮办", "代办"}
    assert {r[0] for r in doc.by_id("by-channel").rows()} == {"线上", "线下"}
    defs = {tr.attrs["data-figure"]: tr.text() for tr in doc.by_id("figure-definitions").find_all("tr")
            if "data-figure" in tr.attrs}
    assert set(defs) == set(FIGURES) and "有评价的办件" in defs["satisfaction_rate"]
    rules = doc.by_id("rule-definitions").rows()
    assert any(r[0] == "REQ-TIME-LIMIT" and "限时" in r[3] for r in rules)


def test_provenance_lists_every_input_hash(report, report_db):
    html, doc = report
    con = connect(report_db)
    hashes = {r[0] for r in con.execute("SELECT DISTINCT sha256 FROM ingest_files").fetchall()}
    con.close()
    shown = {c.text() for c in doc.by_id("input-files").find_all("code", class_="hash")}
    assert hashes and hashes <= shown
    run = doc.by_id("run-table").text()
    assert "2026-03-31" in run and "陕西帮办代办服务规范 1.0.0" in run and "chinesecalendar" in run
    assert "bangban-audit" in run


def test_no_external_resources(report):
    html, doc = report
    for node in doc.iter():
        for attr in ("src", "href", "action", "poster", "data", "srcset"):
            value = node.attrs.get(attr)
            if value is not None:
                assert value.startswith(("#", "data:")), (node.tag, attr, value[:80])
        assert node.tag not in ("link", "img", "iframe", "object", "embed", "base")
    assert not re.search(r"https?://", re.sub(r'xmlns(:\w+)?="[^"]*"', "", html))
    assert not re.search(r"url\((?!data:|#)", html) and "@import" not in html
    assert "default-src 'none'" in html  # and the page's own CSP forbids any fetch
    assert "font/woff;base64," in html


# --- personal data and escaping -----------------------------------------------------------
def personal_data(db: Path) -> list[tuple[str, str, str]]:
    con = connect(db)
    rows = con.execute("""SELECT DISTINCT c.applicant, c.id_number, c.phone FROM cases c
                          JOIN findings f USING (city, case_id)""").fetchall()
    con.close()
    return rows


def test_personal_data_masked_by_default(report, report_db):
    html, doc = report
    rows = personal_data(report_db)
    for _, id_number, phone in rows:
        if id_number and re.fullmatch(r"\d{17}[\dX]", id_number):
            assert id_number not in html
        if phone:
            assert phone not in html
    data = findings_json(doc)
    col = {c: i for i, c in enumerate(data["columns"])}
    masked = [r for r in data["rows"] if r[col["id_number"]]]
    assert masked and all("*" in r[col["id_number"]] and "*" in r[col["phone"]] for r in masked)
    people = [r[col["applicant"]] for r in data["rows"] if "公司" not in r[col["applicant"]]]
    assert people and all(re.fullmatch(r".\*+", a) for a in people if len(a) > 1)
    assert "610***********1234" in html and "138****5678" in html


def test_show_personal_data(report_db, tmp_path):
    html = make_report(report_db, tmp_path / "full.html", "--show-personal-data")
    assert "610102199001011234" in html and "13812345678" in html
    assert any(i in html for _, i, _ in personal_data(report_db) if i)
    assert "未脱敏" in html


def test_markup_in_case_log_is_text(report_db, tmp_path):
    html = make_report(report_db, tmp_path / "xss.html", "--show-personal-data")
    assert XSS not in html and XSS_HALL not in html
    assert "&lt;b&gt;测试大厅&lt;/b&gt;" in html  # the hall, in the breakdown table
    doc = parse(html)
    data = findings_json(doc)
    col = {c: i for i, c in enumerate(data["columns"])}
    rows = [r for r in data["rows"] if r[col["case_id"]] == XSS]
    assert rows and all(r[col["applicant"]] == XSS for r in rows)
    assert "REQ-INTEGRITY" in {r[col["rule_id"]] for r in rows}
    block = html[html.index('id="findings-data">'):]
    assert "\\u003cscript\\u003e" in block[:block.index("</script>")]
    assert html.count("<script") == 2  # the JSON block and the page's own script


# --- reproducibility, scope, charts, cap, errors --------------------------------------------
def test_same_database_gives_same_bytes(report_db, tmp_path):
    a = make_report(report_db, tmp_path / "a.html")
    b = make_report(report_db, tmp_path / "b.html")
    assert a == b


def test_city_restricts_scope(report_db, tmp_path):
    doc = parse(make_report(report_db, tmp_path / "bj.html", "--city", "宝鸡"))
    assert [tr.attrs["data-city"] for tr in doc.by_id("city-table").find_all("tr") if "data-city" in tr.attrs] == ["宝鸡"]
    data = findings_json(doc)
    col = data["columns"].index("city")
    assert data["rows"] and {r[col] for r in data["rows"]} == {"宝鸡"}
    n = int(kpis(report_db, ["city"]).set_index("city").at["宝鸡", "cases"])
    assert doc.by_id("scope-cases").text() == f"{n:,} 件"
    assert "延安" not in doc.by_id("summary").text() and "榆林" not in doc.by_id("by-hall").text()


def test_month_restricts_scope(report_db, tmp_path):
    doc = parse(make_report(report_db, tmp_path / "m.html", "--month", "2026-02", "--city", "延安", "--city", "榆林"))
    total = kpis(report_db, [], "list_contains(?, city) AND month = ?", [["延安", "榆林"], "2026-02"]).iloc[0]
    assert doc.by_id("scope-cases").text() == f"{int(total['cases']):,} 件"
    card = [c for c in doc.by_id("summary").find_all("div", class_="card") if c.attrs["data-figure"] == "compliance_rate"][0]
    assert card.find_all("div", class_="value")[0].text() == pct(total["compliance_rate"])
    data = findings_json(doc)
    assert {r[data["columns"].index("month")] for r in data["rows"]} == {"2026-02"}
    # the trend still shows every month of the chosen cities
    assert len(doc.by_id("trends").find_all("svg")) == 7


def test_charts_are_inline_svg_with_text_as_paths(report_db, tmp_path, caplog):
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        html = make_report(report_db, tmp_path / "c.html")
    glyph = [str(w.message) for w in caught if "Glyph" in str(w.message) or "findfont" in str(w.message)]
    assert not glyph and not [r for r in caplog.records if "Glyph" in r.getMessage() or "findfont" in r.getMessage()]
    doc = parse(html)
    svgs = doc.find_all("svg", class_="chart-svg")
    assert len(svgs) == 8  # city comparison + 7 monthly trends (the process maps are drawn apart, as text)
    ids = [n.attrs["id"] for n in doc.iter() if "id" in n.attrs]
    assert len(ids) == len(set(ids)), "duplicate ids in the page"
    for svg in svgs:
        assert not svg.find_all("text")  # text drawn as glyph outlines
        glyphs = [p for p in svg.find_all("path") if "WenQuanYi" in p.attrs.get("id", "")]
        assert glyphs, "no glyph outlines from the CJK font"
    assert "matplotlib" not in html.lower().split("<svg", 1)[1][:500]


def severity_totals(db: Path) -> dict[str, int]:
    con = connect(db)
    try:
        return dict(con.execute("""SELECT severity, count(*) FROM findings
                                   WHERE run_id = (SELECT max(run_id) FROM runs) GROUP BY ALL""").fetchall())
    finally:
        con.close()


def first_findings(db: Path, where: str, params: list, n: int) -> list[tuple[str, str, str]]:
    """(severity, case, rule) of the first `n` findings matching `where`, in the page's order, by plain SQL."""
    con = connect(db)
    try:
        run_id = select_run(con).run_id
        use_run_cases(con, run_id)
        return con.execute(f"""
            SELECT f.severity, f.case_id, f.rule_id FROM findings f JOIN case_kpi c USING (city, case_id)
            WHERE f.run_id = ? AND {where}
            ORDER BY CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                     c.month DESC NULLS LAST, f.city, c.hall NULLS LAST, f.case_id, f.rule_id
            LIMIT ?""", [run_id, *params, n]).fetchall()
    finally:
        con.close()


def report_with_cap(db: Path, out: Path, limit: int) -> Node:
    con = connect(db)
    try:
        info = write_report(con, out, findings_limit=limit)
    finally:
        con.close()
    assert info.findings_shown == min(limit, info.findings_total)
    return parse(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize("limit", [40, 200])
def test_capped_list_keeps_every_severity_and_says_what_it_left_out(report_db, tmp_path, limit):
    totals = severity_totals(report_db)
    assert min(totals[s] for s in ("error", "warning", "info")) > 20  # many findings of each severity
    doc = report_with_cap(report_db, tmp_path / "cap.html", limit)
    data = findings_json(doc)
    col = {c: i for i, c in enumerate(data["columns"])}
    assert len(data["rows"]) == limit
    severities = [r[col["severity"]] for r in data["rows"]]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)  # errors first
    shown = {s: severities.count(s) for s in totals}
    share = limit // 3
    for s in totals:  # each severity its share, or all of its findings; what is left goes to errors
        assert shown[s] >= min(share, totals[s])
    assert shown["error"] == limit - shown["warning"] - shown["info"]
    for s in ("warning", "info"):
        assert shown[s] == min(share, totals[s])
    listed = [(r[col["severity"]], r[col["case_id"]], r[col["rule_id"]]) for r in data["rows"]]
    assert listed == [f for s in ("error", "warning", "info") for f in first_findings(report_db, "f.severity = ?", [s], shown[s])]
    note = doc.by_id("findings-capped")
    text = note.text()
    assert f"本页列出 {limit} 条 (共 {sum(totals.values()):,} 条)" in text
    assert "audit findings --format xlsx --out 整改清单.xlsx" in text
    lines = {n.attrs["data-severity"]: re.sub(r"\s+", " ", n.text()) for n in note.find_all("span", class_="left-out")}
    assert list(lines) == ["error", "warning", "info"]
    for s, line in lines.items():
        assert f"{shown[s]:,} / {totals[s]:,} 条" in line
        assert (f"未列出 {totals[s] - shown[s]:,} 条" in line) == (shown[s] < totals[s])


def test_severity_quotas():
    assert severity_quotas({"error": 30_000, "warning": 4_000, "info": 900}, 3000) == \
        {"error": 1100, "warning": 1000, "info": 900}
    assert severity_quotas({"error": 10, "warning": 5, "info": 1}, 3000) == {"error": 10, "warning": 5, "info": 1}
    assert severity_quotas({"error": 0, "warning": 5000, "info": 7000}, 3000) == {"warning": 1500, "info": 1500}
    assert severity_quotas({"warning": 5000}, 3000) == {"warning": 3000}
    assert severity_quotas({}, 3000) == {}


def test_uncapped_list_has_no_note(report_db, tmp_path):
    doc = report_with_cap(report_db, tmp_path / "all.html", 100_000)
    assert len(findings_json(doc)["rows"]) == sum(severity_totals(report_db).values())
    assert not doc.find_all(id="findings-capped")


def test_printed_digest_per_city(report, report_db):
    _, doc = report
    con = connect(report_db)
    by_city = dict(con.execute("""SELECT city, count(*) FROM findings
                                  WHERE run_id = (SELECT max(run_id) FROM runs) GROUP BY ALL""").fetchall())
    con.close()
    digest = doc.by_id("findings-digest")
    assert "print-only" in digest.attrs["class"] and "screen-only" in doc.by_id("findings-list").attrs["class"]
    assert "audit findings --format xlsx --out 整改清单.xlsx" in digest.text()
    blocks = {b.attrs["data-city"]: b for b in digest.find_all("div", class_="digest-city")}
    assert list(blocks) == sorted(by_city)
    for city, block in blocks.items():
        assert f"{city}：{by_city[city]:,} 条" in block.find_all("h3")[0].text()
        counts = [int(r[3].replace(",", "")) for r in block.find_all("table", class_="data compact digest-rules")[0].rows()]
        assert sum(counts) == by_city[city]
        table = block.find_all("table", class_="data compact digest-top")[0]
        rows = [tr for tr in table.find_all("tr") if "data-case" in tr.attrs]
        assert len(rows) == min(casetable.DIGEST_PER_CITY, by_city[city])
        top = [(tr.attrs["data-severity"], tr.attrs["data-case"], tr.find_all("code")[0].text()) for tr in rows]
        assert top == first_findings(report_db, "f.city = ?", [city], casetable.DIGEST_PER_CITY)
        assert "服务对象" not in table.text()  # no personal data column in print
    # a date in a message stays whole on its line
    spans = [n.text() for n in digest.find_all("span", class_="nowrap")]
    assert spans and all(re.fullmatch(r"\d{4}-\d{2}(-\d{2}( \d{1,2}:\d{2}(:\d{2})?)?)?", t) for t in spans)


def test_page_footer_title_is_a_safe_css_string(report):
    html, doc = report
    title = doc.find_all("title")[0].text()
    assert f"@page {{ @bottom-left {{ content: {css_string(title)}; }} }}" in html
    assert css_string('延安"</style><script>\\') == '"延安\\22 \\3c /style\\3e \\3c script\\3e \\5c "'
    assert css_string(Markup("&lt;b&gt;")) == '"\\3c b\\3e "'


@pytest.mark.parametrize("args, message", [
    (["--city", "西安"], "西安"), (["--month", "2026-13"], "YYYY-MM"), (["--month", "2024-01"], "2024-01"),
])
def test_bad_scope_is_a_usage_error(report_db, tmp_path, args, message):
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "x.html"), "--db", str(report_db), *args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "x.html").exists()


def test_calendar_fallback_years_are_prominent(tmp_path):
    head = ["办件编号", "地市", "服务类型", "承诺时限", "环节", "时间", "经办人"]
    steps = [("咨询", "2027-03-01 09:00"), ("申请", "2027-03-01 09:10"), ("受理", "2027-03-01 09:20"),
             ("承办", "2027-03-02 10:00"), ("办结", "2027-03-03 16:00")]
    csv_path = write_csv(tmp_path / "2027.csv", [head] + [["X2027-1", "延安", "帮办", 3, s, t, "李"] for s, t in steps])
    db = tmp_path / "fallback.duckdb"
    assert invoke("ingest", csv_path, "--db", db)[0] == 0
    code, out = invoke("check", "--calendar-fallback", "weekdays", "--db", db)
    assert code == 0, out
    doc = parse(make_report(db, tmp_path / "f.html"))
    banner = doc.by_id("calendar-fallback").text()
    assert "2027" in banner and "周一至周五" in banner
    assert "2027" in doc.by_id("run-table").text()


def test_each_listed_case_carries_its_trail(report, report_db):
    """Every case of the findings list carries its trail, as `audit case` shows it: the run's dates
    (the deadline as stored in run_case_dates) and every event of the case, in judged order, with
    its source file and row."""
    data = findings_json(report[1])
    c, k = data["columns"].index("city"), data["columns"].index("case_id")
    listed = {(r[c], r[k]) for r in data["rows"]}
    assert listed and set(data["trails"]) == {f"{city}\u0001{case}" for city, case in listed}
    con = connect(report_db)
    try:
        for city, case in sorted(listed)[:25]:
            trail = data["trails"][f"{city}\u0001{case}"]
            events = con.execute("""SELECT strftime("time", '%Y-%m-%d %H:%M'), step, source_file, source_row FROM events
                                    WHERE city = ? AND case_id = ? ORDER BY "time", seq""", [city, case]).fetchall()
            assert [(e[0], e[1], e[3]) for e in trail["events"]] == [(t, s, f"{f}:{r}") for t, s, f, r in events]
            deadline = con.execute("""SELECT deadline FROM run_case_dates WHERE city = ? AND case_id = ?
                                      AND run_id = (SELECT max(run_id) FROM runs)""", [city, case]).fetchall()[0][0]
            if deadline is None:
                assert not any(label == "办结时限" for label, _ in trail["dates"])
            else:
                assert ["办结时限", deadline.isoformat()] in trail["dates"]
    finally:
        con.close()
