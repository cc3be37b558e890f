"""`audit bulletin`: the monthly 通报 as a Word document, read back with python-docx and checked
against figures, ranks, lists and a deadline computed by hand on a small database of two months and
three cities."""

from __future__ import annotations

import shutil

import docx
import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import write_csv

HEADER = ["办件编号", "地市", "服务中心", "服务类型", "服务方式", "服务对象", "证件号码", "联系电话", "承诺时限", "收费金额",
          "到现场次数", "评价", "评价时间", "归档材料", "帮办代办员", "环节", "时间", "经办人"]
APPLICANT, ID_NUMBER, PHONE = "欧阳娜娜", "610102199001011234", "13812345678"


def case(cid: str, city: str, hall: str, day: str, fee: bool = False, rated: bool = True,
         visits: int = 1) -> list[list[str]]:
    """A 帮办 case requested, handled, closed and archived on `day` (on time, responded the same day).
    `fee`: a fee is charged (REQ-INTEGRITY, an error) and the applicant rates 不满意, followed up the
    same day (in time); otherwise rated 满意 when `rated`, unrated when not (EVAL-RATED: info only).
    More than `max_visits` visits break REQ-ONE-STOP, a warning: no figure changes."""
    rating = "不满意" if fee else "满意" if rated else ""
    steps = [("咨询", "09:00"), ("申请", "09:30"), ("受理", "10:00"), ("承办", "11:00"), ("办结", "14:00"),
             ("资料归档", "15:00")] + ([("回访", "17:00")] if fee else [])
    return [[cid, city, hall, "帮办", "线下", APPLICANT, ID_NUMBER, PHONE, "3", "200" if fee else "0", str(visits), rating,
             f"{day} 16:00" if rating else "", "受理单、办结单", "张三", step, f"{day} {time}", "张三"]
            for step, time in steps]


def hall_cases(prefix: str, city: str, hall: str, day: str, good: int, paid: int, rated: bool = True,
               visits: int = 1) -> list:
    rows = []
    for i in range(good):
        rows += case(f"{prefix}G{i}", city, hall, day, rated=rated, visits=visits)
    for i in range(paid):
        rows += case(f"{prefix}F{i}", city, hall, day, fee=True)
    return rows


# March 2026 (the month before): 8 cases, 5 compliant, 3 of 6 rated satisfied.
MARCH = (hall_cases("YA3A", "延安", "延安甲大厅", "2026-03-03", good=2, paid=0, rated=False)
         + hall_cases("YA3B", "延安", "延安乙大厅", "2026-03-03", good=0, paid=2)
         + hall_cases("BJ3A", "宝鸡", "宝鸡甲大厅", "2026-03-04", good=2, paid=0)
         + hall_cases("YL3A", "榆林", "榆林甲大厅", "2026-03-05", good=1, paid=1))
# April 2026 (the bulletin's month): 26 cases, 17 compliant; 延安甲's cases are unrated.
APRIL = (hall_cases("YA4A", "延安", "延安甲大厅", "2026-04-08", good=6, paid=0, rated=False)   # 6/6
         + hall_cases("YA4B", "延安", "延安乙大厅", "2026-04-08", good=3, paid=2, visits=2)   # 3/5; 3 × 2 visits
         + hall_cases("BJ4A", "宝鸡", "宝鸡甲大厅", "2026-04-09", good=1, paid=5)             # 1/6
         + hall_cases("BJ4B", "宝鸡", "宝鸡乙大厅", "2026-04-09", good=4, paid=1)             # 4/5
         + hall_cases("YL4A", "榆林", "榆林甲大厅", "2026-04-10", good=3, paid=1))            # 3/4: fewer than min_cases
AS_OF = "2026-04-30"        # a Thursday before the 劳动节 holiday (05-01…05-05; Saturday 05-09 is a working day)
MIN_CASES = 5


@pytest.fixture(scope="module")
def bulletin_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bulletin")
    db = tmp / "b.duckdb"
    pack = tmp / "pack"
    pack.mkdir()
    (pack / "pack.yaml").write_text(f"name: 测试规则包\nversion: '1'\nextends: default\nsettings:\n  min_cases: {MIN_CASES}\n"
                                    "cities:\n  榆林:\n    max_visits: 2\n", encoding="utf-8")
    path = write_csv(tmp / "cases.csv", [HEADER] + MARCH + APRIL, encoding="gbk")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["check", "--db", str(db), "--as-of", AS_OF, "--pack", str(pack)])
    assert result.exit_code == 0, result.output
    return db


def bulletin(db, out, *args):
    result = CliRunner().invoke(app, ["bulletin", "--db", str(db), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return result


def read_back(path) -> tuple[list[str], list[list[list[str]]]]:
    """The document's paragraph texts, and its tables as rows of cell texts."""
    document = docx.Document(str(path))
    paragraphs = [p.text for p in document.paragraphs]
    tables = [[[c.text for c in row.cells] for row in t.rows] for t in document.tables]
    return paragraphs, tables


def all_text(path) -> str:
    paragraphs, tables = read_back(path)
    return "\n".join(paragraphs + [c for t in tables for row in t for c in row])


@pytest.fixture(scope="module")
def april(bulletin_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("doc") / "通报.docx"
    bulletin(bulletin_db, out, "--month", "2026-04", "--issuer", "陕西省政务服务中心", "--number", "陕政服办〔2026〕5号")
    return out


def test_title_issuing_line_and_date(april):
    paragraphs, _ = read_back(april)
    assert paragraphs[0] == "关于2026年4月全省帮办代办服务情况的通报"
    assert paragraphs[1] == "陕政服办〔2026〕5号"
    assert paragraphs[-2:] == ["陕西省政务服务中心", "2026年4月30日"]      # default date: the audit date
    assert "一、基本情况" in paragraphs and "二、存在问题" in paragraphs and "三、整改要求" in paragraphs


def test_overview_figures_and_change_against_the_month_before(april):
    paragraphs, _ = read_back(april)
    overview = next(p for p in paragraphs if p.startswith("2026年4月，全省共受理"))
    assert "共受理帮办代办办件26件，较上月（8件）增加18件" in overview
    assert "响应率100.0%（26/26），较上月持平" in overview
    assert "满意率55.0%（11/20），较上月上升5.0个百分点" in overview        # 11/20 against 3/6
    assert "合规率65.4%（17/26），较上月上升2.9个百分点" in overview        # 17/26 − 5/8 = +2.88 pp
    assert "差评回访率100.0%（9/9）" in overview


def test_city_table_rates_counts_and_ranks(april):
    _, tables = read_back(april)
    city = tables[0]
    header = city[0]
    rows = {r[0]: dict(zip(header, r)) for r in city[1:]}
    assert set(rows) == {"延安", "宝鸡", "榆林", "合计"}
    assert rows["延安"]["办件数"] == "11" and rows["宝鸡"]["办件数"] == "11" and rows["榆林"]["办件数"] == "4"
    assert rows["合计"]["办件数"] == "26"
    assert rows["延安"]["合规率"].startswith("81.8%\n（9/11）\n第1名")
    assert rows["榆林"]["合规率"].startswith("75.0%\n（3/4）\n第2名")
    assert rows["宝鸡"]["合规率"].startswith("45.5%\n（5/11）\n第3名")
    assert rows["榆林"]["满意率"].startswith("75.0%\n（3/4）\n第1名")
    assert rows["延安"]["满意率"].startswith("60.0%\n（3/5）\n第2名")
    # 榆林's 4 cases are fewer than min_cases (5): its rank is marked; n = 11 or fewer give
    # overlapping intervals: every rank here is marked indistinguishable.
    assert "†" in rows["榆林"]["合规率"] and "†" not in rows["延安"]["合规率"]
    assert all("≈" in rows[c]["合规率"] for c in ("延安", "宝鸡", "榆林"))
    assert "第" not in rows["合计"]["合规率"]
    # The rows go best first by 合规率.
    assert [r[0] for r in city[1:]] == ["延安", "榆林", "宝鸡", "合计"]


def test_red_and_black_lists_of_halls(april):
    paragraphs, tables = read_back(april)
    red, black = tables[1], tables[2]
    assert [r[1] for r in red[1:]] == ["延安甲大厅", "宝鸡乙大厅"]        # 6/6, 4/5
    assert [r[1] for r in black[1:]] == ["宝鸡甲大厅", "延安乙大厅"]      # 1/6, 3/5: worst first
    assert red[1][3].startswith("100.0%（6/6）") and black[1][3].startswith("16.7%（1/6）")
    text = "\n".join(paragraphs)
    assert "榆林甲大厅" in text and "榆林甲大厅" not in "".join(c for r in red + black for c in r)


def test_typical_cases_mask_personal_data(april):
    text = all_text(april)
    paragraphs, _ = read_back(april)
    cases = [p for p in paragraphs if p.startswith(("一是", "二是", "三是"))]
    assert len(cases) == 3                                 # one per city
    assert cases[0].startswith("一是宝鸡甲大厅办件BJ4AF0")      # 宝鸡 first; REQ-INTEGRITY, first case id
    assert all("收取帮办代办服务费" in c and "服务对象欧***" in c for c in cases)
    for secret in (APPLICANT, ID_NUMBER, PHONE):
        assert secret not in text


def test_rectification_deadline_counts_working_days_on_the_stored_calendar(bulletin_db, april, tmp_path):
    # 2026-04-30 + 10 working days: 05-01…05-05 are the 劳动节 holiday, 05-06, 05-07, 05-08 (1–3),
    # Saturday 05-09 is a make-up working day (4), 05-11…05-15 (5–9), 05-18 (10). Counting Monday to
    # Friday only would give 05-14.
    paragraphs, _ = read_back(april)
    requirement = next(p for p in paragraphs if p.startswith("（一）逐件整改"))
    assert "于2026年5月18日前" in requirement and "报送陕西省政务服务中心" in requirement
    out = tmp_path / "4.docx"
    bulletin(bulletin_db, out, "--month", "2026-04", "--deadline-days", "4")
    assert "于2026年5月9日前" in all_text(out)



def test_the_default_deadline_is_the_runs_rectify_days(bulletin_db, tmp_path):
    """Without --deadline-days the bulletin gives the halls the pack's `rectify_days` as the run
    stored it, as their rectification lists do: here 4 (Saturday 05-09, see above), not 10."""
    import json
    import shutil

    import duckdb

    db = tmp_path / "copy.duckdb"
    shutil.copy(bulletin_db, db)
    con = duckdb.connect(str(db))
    (run_id, settings), = con.execute("SELECT run_id, settings FROM runs ORDER BY run_id DESC LIMIT 1").fetchall()
    settings = json.loads(settings)
    settings["default"]["rectify_days"] = 4
    con.execute("UPDATE runs SET settings = ? WHERE run_id = ?", [json.dumps(settings, ensure_ascii=False), run_id])
    con.close()
    out = tmp_path / "default.docx"
    bulletin(db, out, "--month", "2026-04")
    assert "于2026年5月9日前" in all_text(out)


def test_same_text_on_a_second_run(bulletin_db, april, tmp_path):
    again = tmp_path / "again.docx"
    bulletin(bulletin_db, again, "--month", "2026-04", "--issuer", "陕西省政务服务中心", "--number", "陕政服办〔2026〕5号")
    assert all_text(again) == all_text(april)


def test_unknown_month_city_and_date_exit_2(bulletin_db, tmp_path):
    runner = CliRunner()
    out = tmp_path / "x.docx"
    result = runner.invoke(app, ["bulletin", "--db", str(bulletin_db), "--out", str(out), "--month", "2026-05"])
    assert result.exit_code == 2 and "2026-05" in result.output and "2026-03、2026-04" in result.output
    result = runner.invoke(app, ["bulletin", "--db", str(bulletin_db), "--out", str(out), "--month", "2026-04",
                                 "--city", "西安"])
    assert result.exit_code == 2 and "西安" in result.output and "宝鸡" in result.output
    result = runner.invoke(app, ["bulletin", "--db", str(bulletin_db), "--out", str(out), "--month", "2026-04",
                                 "--date", "2026-13-01"])
    assert result.exit_code == 2
    assert not out.exists()


def test_a_month_the_run_does_not_cover_is_said_in_the_document_and_on_stderr(bulletin_db, tmp_path):
    db = tmp_path / "early.duckdb"
    shutil.copy(bulletin_db, db)           # a run of its own, not seen by the other tests
    runner = CliRunner()
    out = tmp_path / "early.docx"
    assert runner.invoke(app, ["check", "--db", str(db), "--as-of", "2026-04-20"]).exit_code == 0
    result = runner.invoke(app, ["bulletin", "--db", str(db), "--out", str(out), "--month", "2026-04",
                                 "--as-of", "2026-04-20", "--city", "延安"])
    assert result.exit_code == 0, result.output
    assert "早于 2026-04 月末" in result.stderr
    paragraphs, _ = read_back(out)
    assert paragraphs[0] == "关于2026年4月延安帮办代办服务情况的通报"
    assert any("早于 2026-04 月末" in p for p in paragraphs)


def test_the_structure_before_the_document(bulletin_db):
    """`build_bulletin` gives the plain structure the writer lays out: blocks in order, the deadline
    per city, the lists' rows."""
    import datetime as dt

    from audit.bulletin.build import build_bulletin
    from audit.db import connect

    con = connect(bulletin_db)
    try:
        b = build_bulletin(con, "2026-04", deadline_days=0)
    finally:
        con.close()
    kinds = [kind for kind, _ in b.blocks()]
    assert kinds[:3] == ["title", "addressee", "body"] and kinds[-1] == "date"     # no 文号, no issuer given
    assert [c for k, c in b.blocks() if k == "h1"] == ["一、基本情况", "二、存在问题", "三、整改要求"]
    assert kinds.count("table") == 3
    assert b.deadline == {c: dt.date(2026, 4, 30) for c in ("宝鸡", "延安", "榆林")}   # 0 working days: the audit date
    assert (b.cases, b.run_id, b.as_of) == (26, 1, dt.date(2026, 4, 30))
    assert [r[1] for r in b.red_list.rows] == ["延安甲大厅", "宝鸡乙大厅"]
    assert [c.city for c in b.typical_cases] == ["宝鸡", "延安", "榆林"]
    assert all(c.rule_id == "REQ-INTEGRITY" for c in b.typical_cases)
    # The rules broken in April (errors first, then warnings; EVAL-RATED is info): the fee, 9 cases;
    # the visits, 3 cases, its title with the values in force (榆林's own).
    assert len(b.problems) == 2 and b.problems[0].startswith("1．") and b.problems[1].startswith("2．")
    assert "共9件，其中宝鸡6件、延安2件、榆林1件" in b.problems[0] and "REQ-INTEGRITY" in b.problems[0]
    assert "不超过 1 (榆林: 2)" in b.problems[1] and "共3件，均在延安" in b.problems[1] and "REQ-ONE-STOP" in b.problems[1]


def test_a_pack_for_other_steps_names_its_own_service(tmp_path):
    """A complaints register audited with the complaints pack: the bulletin is about that service —
    its title, basis, figures, table, typical case (the staff as 经办人) and the document's keywords
    name it, and nothing calls its cases 帮办代办."""
    log = write_csv(tmp_path / "投诉.csv", [
        ["办件编号", "环节", "时间", "经办人"],
        ["T1", "投诉登记", "2026-03-02 09:00", "王五"], ["T1", "受理", "2026-03-02 10:00", "王五"],
        ["T1", "答复", "2026-03-04 09:00", "王五"], ["T1", "办结", "2026-03-05 10:00", "王五"],
        # T2: closed before the reply (an error of the pack)
        ["T2", "投诉登记", "2026-03-02 09:00", "赵六"], ["T2", "受理", "2026-03-02 10:00", "赵六"],
        ["T2", "办结", "2026-03-03 09:00", "赵六"], ["T2", "答复", "2026-03-04 09:00", "赵六"],
    ])
    db = tmp_path / "audit.duckdb"
    runner = CliRunner()
    for args in (["ingest", str(log), "--city", "示例市", "--vocabulary", "open"],
                 ["check", "--pack", "complaints", "--as-of", "2026-03-31"]):
        result = runner.invoke(app, [*args, "--db", str(db)])
        assert result.exit_code in (0, 1), result.output
    out = tmp_path / "通报.docx"
    result = bulletin(db, out, "--month", "2026-03")
    assert result.exit_code == 0, result.output
    paragraphs, tables = read_back(out)
    text = all_text(out)
    assert paragraphs[0] == "关于2026年3月全省政务服务中心服务投诉处置情况的通报"
    assert "对2026年3月全省受理的办件进行了审计" in text and "共受理办件2件" in text
    assert tables[0][0][0] == "地市" and "表1　2026年3月各市政务服务中心服务投诉处置指标" in text
    assert "整改结果纳入政务服务中心服务投诉处置考核" in text
    typical = [p for p in paragraphs if p.startswith("一是")]
    assert len(typical) == 1 and "办件T2（经办人赵六）答复投诉人之后才能办结" in typical[0], typical
    assert "帮办代办" not in text and "（）" not in text
    assert docx.Document(str(out)).core_properties.keywords == "政务服务中心服务投诉处置 通报"
