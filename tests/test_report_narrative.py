"""主要结论, the fair city comparison, the city × rule matrix, the hall and staff tables, and rule
titles with their values — on a small database whose answers are known by construction.

Three cities, 80 帮办 cases each, 40 requested in 2026-02 and 40 in 2026-03, every case complete
and on time; what differs is planted: a fee (REQ-INTEGRITY, error), three visits to a 线下 hall
(REQ-ONE-STOP, warning), no rating (EVAL-RATED, info) and a few bad ratings, followed up in time.
The pack extends the default one with 榆林's own max_visits 2 and response_days 2. Built through
the real CLI (ingest, check); the report is parsed with the small DOM of tests/test_report.py.

    city  hall        staff  month    cases  fee  3 visits  no rating  bad rating
    宝鸡  宝鸡大厅    孙五   2026-02     40    2         3          1           0
    宝鸡  宝鸡大厅    孙五   2026-03     40    2         3          1           0
    延安  延安大厅    周六   2026-02     40    8         2          3           0
    延安  延安大厅    吴七   2026-03     40    4         1          2           0
    榆林  榆林大厅A   王一   2026-02     30    5         1          0           0
    榆林  榆林大厅A   王一   2026-03      5    1         0          0           0
    榆林  榆林大厅A   李二   2026-03     15    8         0          0           3
    榆林  榆林大厅A   张三   2026-03     10    5         0          0           0
    榆林  榆林大厅B   赵四   2026-02     10    5         0          0           0
    榆林  榆林大厅B   赵四   2026-03     10   10         0          0           0

So compliance is 宝鸡 76/80, 延安 68/80, 榆林 46/80; month on month 宝鸡 38/40 → 38/40, 延安 32/40 →
36/40 (+10 pp), 榆林 30/40 → 16/40 (−35 pp); 榆林's satisfaction 40/40 → 37/40 (−7.5 pp).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from audit.db import connect
from audit.figures.fair import wilson
from audit.report import halls
from audit.report.conclusions import for_scope
from tests import test_report_browser as report_browser
from tests.conftest import write_csv
from tests.test_report import invoke, make_report, parse

HEAD = ["办件编号", "地市", "服务大厅", "服务类型", "服务方式", "服务对象类别", "帮办代办员", "承诺时限", "收费金额",
        "到现场次数", "评价", "评价时间", "归档材料", "环节", "时间", "经办人"]
DAYS = {"2026-02": ["2026-02-02", "2026-02-03", "2026-02-04", "2026-02-05", "2026-02-06"],
        "2026-03": ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06"]}
# (city, hall, staff, month, cases, with a fee, with 3 visits, without rating, with a bad rating)
GROUPS = [
    ("宝鸡", "宝鸡大厅", "孙五", "2026-02", 40, 2, 3, 1, 0),
    ("宝鸡", "宝鸡大厅", "孙五", "2026-03", 40, 2, 3, 1, 0),
    ("延安", "延安大厅", "周六", "2026-02", 40, 8, 2, 3, 0),
    ("延安", "延安大厅", "吴七", "2026-03", 40, 4, 1, 2, 0),
    ("榆林", "榆林大厅A", "王一", "2026-02", 30, 5, 1, 0, 0),
    ("榆林", "榆林大厅A", "王一", "2026-03", 5, 1, 0, 0, 0),
    ("榆林", "榆林大厅A", "李二", "2026-03", 15, 8, 0, 0, 3),
    ("榆林", "榆林大厅A", "张三", "2026-03", 10, 5, 0, 0, 0),
    ("榆林", "榆林大厅B", "赵四", "2026-02", 10, 5, 0, 0, 0),
    ("榆林", "榆林大厅B", "赵四", "2026-03", 10, 10, 0, 0, 0),
]
PACK = 'name: 测试包\nversion: "1"\nextends: default\ncities:\n  榆林:\n    max_visits: 2\n    response_days: 2\n'


def export_rows() -> list[list]:
    """The combined export of `GROUPS`: six steps a case on one day (a 回访 after a bad rating);
    the planted cases are the last ones of a group (fee, visits) or the first (rating)."""
    rows, n = [HEAD], 0
    for city, hall, staff, month, cases, fee, visits, unrated, bad in GROUPS:
        for i in range(cases):
            n += 1
            day = DAYS[month][i % 5]
            offline = i >= cases - visits
            rating = "" if i < unrated else ("不满意" if i < unrated + bad else "满意")
            attrs = [f"C{n:04d}", city, hall, "帮办", "线下" if offline else "线上", "其他群众", staff, 5,
                     50 if i >= cases - fee else 0, 3 if offline else 0, rating,
                     f"{day} 17:00" if rating else "", "受理单、办结单"]
            steps = [("咨询", "09:00"), ("申请", "09:10"), ("受理", "09:20"), ("承办", "10:00"), ("办结", "15:00"),
                     ("资料归档", "16:00")] + ([("回访", "18:00")] if rating == "不满意" else [])
            rows += [attrs + [step, f"{day} {t}", staff] for step, t in steps]
    rows.append(["", "榆林", "榆林大厅A", "帮办", "线上", "其他群众", "王一", 5, 0, 0, "", "", "", "咨询",
                 "2026-03-02 09:00", "王一"])  # no case id: quarantined, and the data-quality notice says so
    return rows


@pytest.fixture(scope="module")
def narrative_db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("narrative")
    csv_path = write_csv(root / "cases.csv", export_rows())
    pack = root / "pack"
    pack.mkdir()
    (pack / "pack.yaml").write_text(PACK, encoding="utf-8")
    db = root / "audit.duckdb"
    code, out = invoke("ingest", csv_path, "--db", db)
    assert code == 0, out
    code, out = invoke("check", "--db", db, "--pack", pack, "--as-of", "2026-03-31")
    assert code == 0, out
    return db


@pytest.fixture(scope="module")
def said(narrative_db):
    con = connect(narrative_db)
    try:
        return for_scope(con)
    finally:
        con.close()


@pytest.fixture(scope="module")
def page(narrative_db, tmp_path_factory):
    return parse(make_report(narrative_db, tmp_path_factory.mktemp("page") / "r.html"))


def rate(r) -> tuple[int, int]:
    return r.num, r.den


# --- the statements -----------------------------------------------------------------------
def test_best_and_worst_city_and_whether_they_differ(said):
    assert said.cities == ["宝鸡", "延安", "榆林"] and said.min_cases == 30
    got = {e.figure: e for e in said.extremes}
    # response, resolution and on-time are 100 % everywhere: no best, no worst; follow-up has one city
    assert list(got) == ["satisfaction_rate", "compliance_rate"]
    comp = got["compliance_rate"]
    assert (comp.best, rate(comp.best_rate), comp.worst, rate(comp.worst_rate)) == ("宝鸡", (76, 80), "榆林", (46, 80))
    assert wilson(76, 80)[0] > wilson(46, 80)[1] and comp.distinguishable
    sat = got["satisfaction_rate"]  # 宝鸡 and 延安 both 100 %: the first by name is named
    assert (sat.best, rate(sat.best_rate), sat.worst, rate(sat.worst_rate)) == ("宝鸡", (78, 78), "榆林", (77, 80))
    assert not sat.distinguishable
    assert "不宜据此排先后" in sat.text(30) and "可以区分" in comp.text(30)
    assert comp.small == () and comp.adjusted_best is None  # one stratum: adjusted = crude


def test_biggest_month_on_month_moves(said):
    assert (said.month, said.previous, said.has_previous) == ("2026-03", "2026-02", True)
    moves = [(m.city, m.figure, rate(m.before), rate(m.after), round(m.change_pp, 6)) for m in said.moves]
    assert moves == [
        ("榆林", "compliance_rate", (30, 40), (16, 40), round((16 / 40 - 30 / 40) * 100, 6)),    # −35.0
        ("延安", "compliance_rate", (32, 40), (36, 40), round((36 / 40 - 32 / 40) * 100, 6)),    # +10.0
        ("榆林", "satisfaction_rate", (40, 40), (37, 40), round((37 / 40 - 40 / 40) * 100, 6)),  # −7.5
    ]  # 宝鸡 38/40 → 38/40 did not move; every other rate is 100 % in both months
    assert said.moves_small == 0
    assert said.moves[0].distinguishable and not said.moves[1].distinguishable
    assert said.moves[0].text().startswith("榆林 合规率 下降 35.0 pp：2026-02 75.0% (30/40) → 2026-03 40.0% (16/40)")


def test_three_rules_with_most_cases_per_city(said):
    got = {c.city: [(r.rule_id, r.cases) for r in c.rules] for c in said.city_rules}
    assert got == {
        "宝鸡": [("REQ-ONE-STOP", 6), ("REQ-INTEGRITY", 4), ("EVAL-RATED", 2)],
        "延安": [("REQ-INTEGRITY", 12), ("EVAL-RATED", 5), ("REQ-ONE-STOP", 3)],
        "榆林": [("REQ-INTEGRITY", 34), ("REQ-ONE-STOP", 1)],
    }
    titles = {c.city: {r.rule_id: r.title for r in c.rules} for c in said.city_rules}
    assert titles["榆林"]["REQ-ONE-STOP"].endswith("不超过 2") and titles["宝鸡"]["REQ-ONE-STOP"].endswith("不超过 1")


def test_weakest_halls_among_those_with_enough_cases(said):
    # 榆林大厅B (5/20) is the worst of all but rests on 20 cases: left out and counted
    assert [(h.city, h.hall, rate(h.compliance), h.errors) for h in said.weak_halls] == [
        ("榆林", "榆林大厅A", (41, 60), 19), ("延安", "延安大厅", (68, 80), 12), ("宝鸡", "宝鸡大厅", (76, 80), 4)]
    assert said.halls_small == 1


def test_data_quality_notice(said):
    assert len(said.data_quality) == 1 and said.data_quality[0].startswith("隔离的行 1 行")


def test_one_month_and_one_city(narrative_db):
    con = connect(narrative_db)
    try:
        one = for_scope(con, ["延安"], "2026-03")
    finally:
        con.close()
    assert one.single_city and one.extremes == []
    assert [(m.city, m.figure, round(m.change_pp, 6)) for m in one.moves] == [("延安", "compliance_rate", 10.0)]
    assert [(c.city, c.cases) for c in one.city_rules] == [("延安", 40)]
    assert [(h.hall, rate(h.compliance)) for h in one.weak_halls] == [("延安大厅", (36, 40))]


# --- the page -----------------------------------------------------------------------------
def test_conclusions_open_the_report(page):
    main = page.find_all("main")[0]
    first = [n for n in main.children if not isinstance(n, str)][0]
    assert first.attrs["id"] == "conclusions" and first.find_all("h2")[0].text() == "主要结论"
    extremes = {li.attrs["data-figure"]: li.attrs for li in page.by_id("concl-extremes").find_all("li")}
    assert extremes["compliance_rate"]["data-best"] == "宝鸡" and extremes["compliance_rate"]["data-worst"] == "榆林"
    assert extremes["compliance_rate"]["data-distinguishable"] == "true"
    assert extremes["satisfaction_rate"]["data-distinguishable"] == "false"
    moves = [(li.attrs["data-city"], li.attrs["data-change"]) for li in page.by_id("concl-moves").find_all("li")]
    assert moves == [("榆林", "-35.0"), ("延安", "10.0"), ("榆林", "-7.5")]
    assert [li.attrs["data-hall"] for li in page.by_id("concl-halls").find_all("li")] == ["榆林大厅A", "延安大厅", "宝鸡大厅"]
    assert "隔离的行 1 行" in page.by_id("data-quality").text()


def city_cells(page, figure: str) -> dict:
    table = page.by_id("city-table")
    return {tr.attrs["data-city"]: tr.find_all("td", **{"data-figure": figure})[0]
            for tr in table.find_all("tr") if "data-city" in tr.attrs}


def marks(cell) -> set[str]:
    return {m.attrs["class"].split()[-1] for m in cell.iter() if "mark" in m.attrs.get("class", "").split()}


def test_city_table_rests_on_k_of_n_with_intervals_and_marked_ranks(page):
    comp = city_cells(page, "compliance_rate")
    assert {c: cell.attrs["data-rank"] for c, cell in comp.items()} == {"宝鸡": "1", "延安": "2", "榆林": "3"}
    assert comp["宝鸡"].find_all("span", class_="kn")[0].text() == "76/80"
    low, high = wilson(76, 80)
    assert comp["宝鸡"].find_all("span", class_="ci")[0].text() == f"{low * 100:.1f}%–{high * 100:.1f}%"
    assert comp["宝鸡"].find_all("span", class_="adj")[0].text() == "调整后 95.0%"
    # 宝鸡's and 延安's intervals overlap: neither rank can be told apart; 榆林's overlaps neither
    assert marks(comp["宝鸡"]) == marks(comp["延安"]) == {"mark-tie"} and marks(comp["榆林"]) == set()
    assert "best" in comp["宝鸡"].attrs["class"] and "worst" in comp["榆林"].attrs["class"]
    follow = city_cells(page, "followup_rate")  # only 榆林 has bad ratings: 3 of 3, far below min_cases
    assert follow["榆林"].attrs["data-rank"] == "1" and marks(follow["榆林"]) == {"mark-small"}
    assert "data-rank" not in follow["宝鸡"].attrs
    tied = city_cells(page, "response_rate")  # 100 % everywhere: all first, none best or worst
    assert {cell.attrs["data-rank"] for cell in tied.values()} == {"1"}
    assert not any({"best", "worst"} & set(cell.attrs["class"].split()) for cell in tied.values())


def test_city_rule_matrix(page):
    matrix = page.by_id("city-rule-matrix")
    rows = {tr.attrs["data-rule"]: {td.attrs["data-city"]: td for td in tr.find_all("td") if "data-city" in td.attrs}
            for tr in matrix.find_all("tr") if "data-rule" in tr.attrs}
    assert list(rows) == ["REQ-INTEGRITY", "REQ-ONE-STOP", "EVAL-RATED"]  # rules with findings, clause order
    cases = {rule: {c: int(td.attrs["data-cases"]) for c, td in cells.items()} for rule, cells in rows.items()}
    assert cases == {"REQ-INTEGRITY": {"宝鸡": 4, "延安": 12, "榆林": 34}, "REQ-ONE-STOP": {"宝鸡": 6, "延安": 3, "榆林": 1},
                     "EVAL-RATED": {"宝鸡": 2, "延安": 5, "榆林": 0}}
    levels = {rule: {c: int(td.attrs["data-level"]) for c, td in cells.items()} for rule, cells in rows.items()}
    # 榆林 34/80 against 50/240: its interval lies above → 2. 宝鸡 6/80 against 10/240 and 延安 5/80
    # against 7/240 are over a point above with intervals that still hold the all-city share → 1.
    assert wilson(34, 80)[0] > 50 / 240 and wilson(6, 80)[0] < 10 / 240 and wilson(5, 80)[0] < 7 / 240
    assert levels == {"REQ-INTEGRITY": {"宝鸡": 0, "延安": 0, "榆林": 2}, "REQ-ONE-STOP": {"宝鸡": 1, "延安": 0, "榆林": 0},
                      "EVAL-RATED": {"宝鸡": 0, "延安": 1, "榆林": 0}}
    yl = rows["REQ-INTEGRITY"]["榆林"].text()
    assert "▲" in yl and "42.5%" in yl and f"+{(34 / 80 - 50 / 240) * 100:.1f} pp" in yl


def test_single_city_has_no_ranking(narrative_db, tmp_path):
    doc = parse(make_report(narrative_db, tmp_path / "one.html", "--city", "延安", "--month", "2026-03"))
    cities = doc.by_id("cities")
    assert "排名" not in cities.find_all("h2")[0].text()
    assert not cities.find_all("span", class_="rank") and not [n for n in cities.iter() if "data-rank" in n.attrs]
    assert not doc.find_all(id="city-rule-matrix") and not doc.find_all(id="concl-extremes")
    assert "只有一个地市" in doc.by_id("concl-no-ranking").text() and "不排名" in doc.by_id("single-city-note").text()
    assert doc.by_id("city-table").rows()[0][0] == "延安"


def test_hall_table_worst_first_and_sortable(page):
    table = page.by_id("by-hall")
    rows = table.rows()
    assert [r[1] for r in rows] == ["榆林大厅A", "延安大厅", "宝鸡大厅", "榆林大厅B *"]
    first = rows[0]
    assert first[2:6] == ["60", "68.3%41/60", "19", "REQ-INTEGRITY廉洁服务：帮办代办服务不收取任何费用 · 19 件"]
    heads = table.find_all("th", scope="col")
    assert all("data-key" in th.attrs and th.attrs["aria-sort"] == "none" for th in heads)
    assert "sortable" in table.attrs["class"].split()
    tds = table.find_all("tbody")[0].find_all("td")
    assert tds and all("data-sort" in td.attrs for td in tds)


def test_staff_below_min_cases_folded_per_hall(page, narrative_db, tmp_path):
    rows = page.by_id("by-staff").rows()
    assert [r[2] for r in rows] == ["周六", "王一", "吴七", "孙五", "赵四 *", "其他 2 名帮办代办员，共 25 件"]
    assert rows[-1][:4] == ["榆林", "榆林大厅A", "其他 2 名帮办代办员，共 25 件", "25"]
    assert rows[-1][4] == "48.0%12/25"  # 李二 15 and 张三 10 cases summed: 7 + 5 compliant
    everyone = parse(make_report(narrative_db, tmp_path / "all.html", "--all-staff")).by_id("by-staff").rows()
    assert {r[2].rstrip(" *") for r in everyone} == {"周六", "王一", "吴七", "孙五", "赵四", "李二", "张三"}


def test_titles_show_values_in_force(page, narrative_db, tmp_path):
    titles = {r[0]: r[3] for r in page.by_id("rule-table").rows()}
    assert titles["REQ-RESPONSE"] == "及时响应：受理 (帮办) / 需求分析 (代办) 在 1 个工作日 (榆林: 2) 内"
    assert titles["REQ-ONE-STOP"].endswith("不超过 1 (榆林: 2)")
    assert titles["ARCHIVE-TIMELY"] == "办结或终止后 5 个工作日内资料归档"
    assert "response_days" not in page.by_id("figure-definitions").text()
    defs = {r[0]: r for r in page.by_id("rule-definitions").rows()}
    names = ("max_visits", "response_days", "archive_days", "followup_days", "rating_grace_days")
    assert not [r for r in defs.values() if any(n in r[3] for n in names)]  # titles and rationales
    assert "add_workdays(评价日期, 5)" in defs["EVAL-FOLLOWUP"][3]
    assert defs["REQ-RESPONSE"][4] == "response_days = 1 (榆林: 2)"  # the setting itself, by its name
    yulin = parse(make_report(narrative_db, tmp_path / "yl.html", "--city", "榆林"))
    titles = {r[0]: r[3] for r in yulin.by_id("rule-table").rows()}
    assert titles["REQ-RESPONSE"].endswith("在 2 个工作日内") and titles["REQ-ONE-STOP"].endswith("不超过 2")


def test_findings_table_titles_per_city(page):
    data = json.loads(page.by_id("findings-data").text())
    col = {c: i for i, c in enumerate(data["columns"])}
    seen = {(r[col["city"]], r[col["title"]]) for r in data["rows"] if r[col["rule_id"]] == "REQ-ONE-STOP"}
    assert {t[-5:] for c, t in seen if c == "榆林"} == {"不超过 2"}
    assert {t[-5:] for c, t in seen if c != "榆林"} == {"不超过 1"}


def test_charts_say_where_axes_start(page):
    caption = page.by_id("cities").find_all("figcaption")[0].text()
    assert "95% 区间" in caption and "不从 0 开始" in caption
    assert "不从 0 开始" in page.by_id("trends").text()
    assert len(page.by_id("trends").find_all("svg")) == 7


def test_hall_and_staff_tables_capped_worst_kept(narrative_db, tmp_path, monkeypatch):
    monkeypatch.setattr(halls, "MAX_ROWS", 2)
    doc = parse(make_report(narrative_db, tmp_path / "cap.html"))
    assert [r[1] for r in doc.by_id("by-hall").rows()] == ["榆林大厅A", "延安大厅"]
    note = doc.by_id("breakdowns").text()
    assert "共 4 行，仅列出排在最前 (最差) 的 2 行" in note and "audit kpi --by city,hall --detail" in note


# --- in a real browser --------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    exe = report_browser.browser_path()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI: apt-get install -y chromium")
        pytest.skip("chromium not installed (apt-get install -y chromium); runs in CI")
    b = report_browser.Browser(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_hall_and_staff_tables_sort_in_a_browser(chromium, narrative_db, tmp_path):
    out = tmp_path / "r.html"
    make_report(narrative_db, out)
    for domain in ("Runtime", "Page"):
        chromium.page(f"{domain}.enable")
    chromium.events.clear()
    chromium.page("Page.navigate", url=out.as_uri())
    chromium.wait_event("Page.loadEventFired")
    column = "[...document.querySelectorAll('#by-hall tbody tr')].map(tr => tr.cells[{}].textContent)".format
    chromium.click('#by-hall th[data-key="2"]')      # 办件数: smallest first, as numbers (20 < 60 < 80)
    assert chromium.js(column(2)) == ["20", "60", "80", "80"]
    assert chromium.js("document.querySelector('#by-hall th[data-key=\"2\"]').getAttribute('aria-sort')") == "ascending"
    chromium.click('#by-hall th[data-key="2"]')      # again: largest first, equal ones in the page's order
    assert chromium.js(column(1)) == ["延安大厅", "宝鸡大厅", "榆林大厅A", "榆林大厅B *"]
    chromium.click('#by-staff th[data-key="4"]')     # 合规率 of the staff table
    rates = chromium.js("[...document.querySelectorAll('#by-staff tbody tr')].map(tr => tr.cells[4].dataset.sort)")
    assert [float(r) for r in rates] == sorted(float(r) for r in rates)
    errors = [e for e in chromium.events if e.get("method") == "Runtime.exceptionThrown"]
    assert not errors
