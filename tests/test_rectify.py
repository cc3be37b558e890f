"""`audit rectify export` and `audit rectify import`: rectification lists per hall, read back.

A real database: the generated sample (three cities) plus a few 延安 cases without a hall whose
applicant, ID and phone a local rule quotes, checked through the CLI with a pack that gives 榆林 its
own `rectify_days` and a calendar file that gives 宝鸡 a local rest day. The workbooks are opened
with openpyxl; answers are filled in as a hall would (rows sorted, a column added, rows deleted),
saved and read back. 整改期限 is computed here on `chinese_calendar`, independently of the tool.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import chinese_calendar
import duckdb
import openpyxl
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import PackError
from audit.rectify.keys import FindingKey, KeyProblem, make_key, read_key
from audit.rules.pack import load_pack
from audit.sample.writers import write_sample
from audit.spreadsheet import file_names
from tests.conftest import query, write_csv

AS_OF = dt.date(2026, 3, 31)
BAOJI_REST_DAY = dt.date(2026, 4, 1)           # a Wednesday: 宝鸡's own calendar file makes it a rest day
HEADER = ["序号", "地市", "服务大厅", "办件编号", "事项名称", "开始日期", "帮办代办员", "级别", "规则编号", "条款",
          "规则名称", "问题", "证据", "整改期限", "责任人", "整改状态", "整改情况", "整改完成日期", "审计键 (请勿修改)"]
STATUSES = ["已整改", "整改中", "申请豁免", "有异议"]
SEVERITY_RANK = {"违规 (error)": 0, "警告 (warning)": 1, "提示 (info)": 2}
# 延安 cases without a hall (no hall column): fee charged (REQ-INTEGRITY) and quoted by LOCAL-QUOTE.
EXTRA_HEADER = ["办件编号", "地市", "服务类型", "服务对象", "证件号码", "联系电话", "收费金额", "承诺时限", "环节", "时间",
                "经办人", "备注"]
PEOPLE = [("YAX1", "王小明", "610102199001011234", "13812345678"),
          ("YAX2", "李建国", "61010219850203123X", "029-88886666")]
PACK = """name: 整改测试规则包
extends: default
version: "9.9"
cities:
  榆林:
    rectify_days: 5
"""
QUOTE_RULE = """id: LOCAL-QUOTE
clause: "10 一对一服务"
severity: warning
title: 测试用：问题与证据引用服务对象
rationale: 测试用：问题原样引用服务对象姓名和电话，证据引用证件号码。
settings: []
sql: |
  SELECT city, case_id, '服务对象 ' || applicant || ' 电话 ' || phone || ' 未回访' AS message,
         {'id_number': id_number} AS evidence
  FROM case_facts WHERE case_id LIKE 'YAX%'
evidence:
  id_number: 证件号码
examples:
  fail:
    - name: 引用
      case: {service_type: 帮办, applicant: 张三}
      events: [[咨询, 2026-03-02 09:00]]
  pass:
    - name: 不引用
      case: {service_type: 帮办}
      events: []
"""


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def extra_rows() -> list[list[str]]:
    rows = [EXTRA_HEADER]
    for case_id, name, id_number, phone in PEOPLE:
        for step, time in (("咨询", "2026-03-02 09:00"), ("申请", "2026-03-02 09:10"), ("受理", "2026-03-03 10:00"),
                           ("承办", "2026-03-04 10:00"), ("办结", "2026-03-05 10:00")):
            rows.append([case_id, "延安", "帮办", name, id_number, phone, "50", "5", step, time, "赵帮办",
                         f"{name}来电 {phone}"])
    return rows


def ingest_extra(db: Path, tmp: Path) -> None:
    code, out = invoke("ingest", write_csv(tmp / "extra.csv", extra_rows()), "--db", db)
    assert code == 0, out


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> Path:
    """The sample (120 cases per city) and the extra cases, checked with the test pack."""
    tmp = tmp_path_factory.mktemp("rectify")
    sample = tmp / "sample"
    db = tmp / "audit.duckdb"
    for entry in write_sample(sample, cases_per_city=120):
        args = ["--city", entry["city"]] if entry.get("city") else []
        args += ["--profile", sample / entry["profile"]] if entry.get("profile") else []
        code, out = invoke("ingest", sample / entry["file"], "--db", db, *args)
        assert code == 0, out
    ingest_extra(db, tmp)
    pack = tmp / "pack"
    (pack / "checks").mkdir(parents=True)
    (pack / "pack.yaml").write_text(PACK, encoding="utf-8")
    (pack / "checks" / "LOCAL-QUOTE.yaml").write_text(QUOTE_RULE, encoding="utf-8")
    (tmp / "宝鸡.csv").write_text(f"date,is_workday,note\n{BAOJI_REST_DAY},0,地方休息日\n", encoding="utf-8")
    code, out = invoke("check", "--db", db, "--pack", pack, "--as-of", AS_OF, "--calendar", f"宝鸡={tmp / '宝鸡.csv'}")
    assert code == 0, out
    return db


@pytest.fixture(scope="module")
def exported(checked, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lists")
    code, text = invoke("rectify", "export", "--out", out, "--db", checked)
    assert code == 0, text
    return out


def table(path: Path) -> tuple[list[str], list[dict]]:
    """The header and the data rows (with their sheet row) of a list's table."""
    ws = openpyxl.load_workbook(path)["整改清单"]
    rows = list(ws.iter_rows(values_only=True))
    header = list(rows[0])
    return header, [dict(zip(header, r), _row=i) for i, r in enumerate(rows[1:], start=2) if any(r)]


def add_workdays(day: dt.date, n: int, rest: set[dt.date] = frozenset()) -> dt.date:
    """The n-th working day after `day` on the national calendar (chinese_calendar), minus `rest`."""
    while n:
        day += dt.timedelta(days=1)
        if chinese_calendar.is_workday(day) and day not in rest:
            n -= 1
    return day


# --- export -------------------------------------------------------------------------------------
def test_a_workbook_per_hall_with_every_finding_but_data(checked, exported):
    halls = query(checked, """
        SELECT f.city, nullif(trim(c.hall), ''), count(*) FROM findings f
        JOIN run_cases c USING (run_id, city, case_id)
        WHERE f.rule_id NOT LIKE 'DATA-%' AND f.run_id = (SELECT max(run_id) FROM runs) GROUP BY ALL""")
    expected = {f"{city}_{hall or '(未填写服务大厅)'}.xlsx": n for city, hall, n in halls}
    assert "延安_(未填写服务大厅).xlsx" in expected
    assert sorted(p.name for p in exported.iterdir()) == sorted(expected)
    for name, n in expected.items():
        header, rows = table(exported / name)
        assert header == HEADER
        assert len(rows) == n
        assert not any(r["规则编号"].startswith("DATA-") for r in rows)
        assert [r["序号"] for r in rows] == [str(i).zfill(len(str(n))) for i in range(1, n + 1)]
        # worst first, then rule, then case
        order = [(SEVERITY_RANK[r["级别"]], r["规则编号"], r["办件编号"]) for r in rows]
        assert order == sorted(order)
        city, _, hall = name[:-5].partition("_")
        assert {r["地市"] for r in rows} == {city}
        assert {r["服务大厅"] for r in rows} == ({None} if hall == "(未填写服务大厅)" else {hall})


def test_table_is_flat_filtered_frozen_and_prints_landscape(checked, exported):
    path = max(exported.iterdir(), key=lambda p: p.stat().st_size)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["说明", "整改清单"]
    ws = wb["整改清单"]
    n = ws.max_row
    assert not ws.merged_cells.ranges and not wb["说明"].merged_cells.ranges
    assert ws.auto_filter.ref == f"A1:S{n}"
    assert ws.freeze_panes == "A2"
    assert ws.print_title_rows == "$1:$1"
    assert ws.page_setup.orientation == "landscape" and int(ws.page_setup.paperSize) == 9     # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert int(ws.page_setup.fitToWidth or 1) == 1 and int(ws.page_setup.fitToHeight) == 0  # one page wide
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1 and lists[0].formula1 == '"' + ",".join(STATUSES) + '"'
    assert str(lists[0].sqref) == f"P2:P{n}"                                                 # 整改状态, every row
    for sheet in wb.worksheets:
        cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
        assert cells and all(c.data_type == "s" for c in cells)                               # text only
    # The answer columns are there to fill in, and empty.
    for row in ws.iter_rows(min_row=2, min_col=15, max_col=18, values_only=True):
        assert row == (None, None, None, None)


def test_cover_names_run_pack_and_database(checked, exported):
    run_id, as_of, name, version, sha = query(checked, """SELECT run_id, as_of, pack_name, pack_version, pack_sha256
                                                          FROM runs ORDER BY run_id DESC LIMIT 1""")[0]
    database_id = query(checked, "SELECT value FROM db_meta WHERE name = 'database_id'")[0][0]
    cover = openpyxl.load_workbook(exported / "延安_(未填写服务大厅).xlsx")["说明"]
    facts = {r[0]: r[1] for r in cover.iter_rows(values_only=True) if r[0]}
    assert facts["审计编号"] == str(run_id) and facts["审计日"] == str(as_of) == str(AS_OF)
    assert facts["规则包"] == name == "整改测试规则包" and facts["规则包版本"] == version == "9.9"
    assert facts["规则包 SHA-256"] == sha and len(sha) == 64
    assert facts["数据库标识"] == database_id
    text = "\n".join(str(v) for row in cover.iter_rows(values_only=True) for v in row if v)
    assert "audit rectify import" in text and all(s in text for s in STATUSES) and "请勿修改" in text


def test_case_columns_come_from_the_run(checked, exported):
    """事项名称 and 帮办代办员 are the case's as the run judged it; 开始日期 is the date of the first
    受理 (帮办) or 委托 (代办), read here from the events."""
    starts = dict(((c, k), d) for c, k, d in query(checked, """
        SELECT c.city, c.case_id, min(e."time")::DATE::VARCHAR FROM cases c JOIN events e USING (city, case_id)
        WHERE e.step = CASE c.service_type WHEN '帮办' THEN '受理' ELSE '委托' END GROUP BY ALL"""))
    items = dict(((c, k), i) for c, k, i in query(checked, "SELECT city, case_id, item FROM cases"))
    seen = 0
    for path in exported.iterdir():
        for r in table(path)[1]:
            key = (r["地市"], r["办件编号"])
            assert r["开始日期"] == starts.get(key)
            assert r["事项名称"] == items[key]
            seen += r["开始日期"] is not None
    assert seen > 100


def test_evidence_reads_in_the_rules_own_words(exported):
    rows = [r for p in exported.iterdir() for r in table(p)[1]]
    archive = [r for r in rows if r["规则编号"] == "ARCHIVE-TIMELY"]
    assert archive and all("归档时限 (工作日): 5" in r["证据"] for r in archive)
    assert not any(r["证据"] and r["证据"].lstrip().startswith("{") for r in rows)


def test_deadline_counts_working_days_on_each_citys_calendar(exported):
    """整改期限 = audit date + rectify_days working days on the city's stored calendar: 延安 the
    national one (10 days), 宝鸡 with its own rest day (10 days), 榆林 the national one (its own 5)."""
    want = {"延安": add_workdays(AS_OF, 10), "宝鸡": add_workdays(AS_OF, 10, {BAOJI_REST_DAY}),
            "榆林": add_workdays(AS_OF, 5)}
    assert want["宝鸡"] == want["延安"] + dt.timedelta(days=1)
    for path in exported.iterdir():
        rows = table(path)[1]
        city = rows[0]["地市"]
        assert {r["整改期限"] for r in rows} == {str(want[city])}, path.name
        cover = {r[0]: r[1] for r in openpyxl.load_workbook(path)["说明"].iter_rows(values_only=True) if r[0]}
        assert cover["整改期限"].startswith(str(want[city]))


def test_personal_data_is_masked(exported):
    path = exported / "延安_(未填写服务大厅).xlsx"
    rows = table(path)[1]
    quoted = {r["办件编号"]: r for r in rows if r["规则编号"] == "LOCAL-QUOTE"}
    assert quoted["YAX1"]["问题"] == "服务对象 王** 电话 138****5678 未回访"
    assert quoted["YAX1"]["证据"] == "证件号码: 610***********1234"
    assert quoted["YAX2"]["问题"] == "服务对象 李** 电话 029-****6666 未回访"
    assert quoted["YAX2"]["证据"] == "证件号码: 610***********123X"
    everything = "\n".join(str(c.value) for ws in openpyxl.load_workbook(path).worksheets
                           for row in ws.iter_rows() for c in row if c.value)
    for _, name, id_number, phone in PEOPLE:
        assert name not in everything and id_number not in everything and phone not in everything
    assert {r["规则编号"] for r in rows} >= {"LOCAL-QUOTE", "REQ-INTEGRITY"}


def test_same_database_gives_the_same_bytes(checked, exported, tmp_path):
    code, out = invoke("rectify", "export", "--out", tmp_path, "--db", checked, "--city", "延安")
    assert code == 0, out
    for path in tmp_path.iterdir():
        assert path.read_bytes() == (exported / path.name).read_bytes()
    assert {p.name.split("_")[0] for p in tmp_path.iterdir()} == {"延安"}


def test_severity_filter(checked, tmp_path):
    code, out = invoke("rectify", "export", "--out", tmp_path, "--db", checked, "--severity", "info,warning")
    assert code == 0, out
    levels = {r["级别"] for p in tmp_path.iterdir() for r in table(p)[1]}
    assert levels == {"警告 (warning)", "提示 (info)"}


# --- import -------------------------------------------------------------------------------------
def fill_like_a_hall(source: Path, target: Path, drop: int = 3) -> dict[tuple, tuple]:
    """Sort the rows by case (descending), add a column, delete `drop` rows, answer about two rows
    in three; return the answers by (city, case_id, rule_id) with the sheet row they ended on."""
    wb = openpyxl.load_workbook(source)
    ws = wb["整改清单"]
    rows = [list(r) for r in ws.iter_rows(min_row=2, values_only=True)]
    rows.sort(key=lambda r: r[3], reverse=True)
    rows = rows[drop:]
    ws.delete_rows(2, ws.max_row)
    for r in rows:
        ws.append(r)
    ws.insert_cols(3)
    ws.cell(1, 3, "大厅备注")
    col = {v: j for j, v in enumerate(next(ws.iter_rows(max_row=1, values_only=True)), start=1)}
    answers = {}
    for i in range(2, ws.max_row + 1):
        ws.cell(i, 3, "内部备注")
        if i % 3 == 0:
            continue
        status = STATUSES[i % 4]
        done = dt.datetime(2026, 4, 8) if status == "已整改" else None
        ws.cell(i, col["责任人"], f"责任人{i}")
        ws.cell(i, col["整改状态"], status)
        ws.cell(i, col["整改情况"], f"第 {i} 行的整改情况")
        if done:
            ws.cell(i, col["整改完成日期"], done)
        key = read_key(ws.cell(i, col["审计键 (请勿修改)"]).value)[0]
        answers[(key.city, key.case_id, key.rule_id)] = (f"责任人{i}", status, f"第 {i} 行的整改情况",
                                                         done and done.date(), i)
    wb.save(target)
    return answers


def counts(out: str, name: str) -> tuple[int, int, int, int]:
    m = re.search(re.escape(name) + r" .*读入 (\d+) 行 = 记录 (\d+) \+ 拒绝 (\d+) \+ 未变 (\d+)", out)
    assert m, out
    return tuple(map(int, m.groups()))


def stored(db: Path) -> dict[tuple, tuple]:
    return {r[:3]: r[3:] for r in query(db, """SELECT city, case_id, rule_id, owner, status, action, done_on,
                                                     file_name, sha256, sheet, source_row FROM rectify_answers""")}


@pytest.fixture
def db(checked, tmp_path) -> Path:
    copy = tmp_path / "audit.duckdb"
    shutil.copy(checked, copy)
    return copy


def test_answers_read_back_and_again_change_nothing(db, exported, tmp_path):
    import hashlib

    source = exported / "宝鸡_宝鸡市政务服务中心.xlsx"
    returned = tmp_path / "宝鸡市政务服务中心_已填.xlsx"
    answers = fill_like_a_hall(source, returned)
    n = len(table(source)[1]) - 3
    code, out = invoke("rectify", "import", returned, "--db", db)
    assert code == 0, out
    read, recorded, rejected, unchanged = counts(out, returned.name)
    assert (read, recorded, rejected, unchanged) == (n, len(answers), 0, n - len(answers))
    assert read == recorded + rejected + unchanged
    sha = hashlib.sha256(returned.read_bytes()).hexdigest()
    assert stored(db) == {k: (*a[:4], returned.name, sha, "整改清单", a[4]) for k, a in answers.items()}
    run_id = query(db, "SELECT max(run_id) FROM runs")[0][0]
    assert query(db, "SELECT DISTINCT run_id FROM rectify_answers") == [(run_id,)]

    before = query(db, "SELECT * FROM rectify_answers ORDER BY ALL")
    code, out = invoke("rectify", "import", returned, "--db", db)
    assert code == 0, out
    assert counts(out, returned.name) == (n, 0, 0, n)
    assert query(db, "SELECT * FROM rectify_answers ORDER BY ALL") == before
    assert query(db, "SELECT count(*) FROM rectify_superseded") == [(0,)]


def test_a_later_file_supersedes_and_says_so(db, exported, tmp_path):
    first = tmp_path / "第一次.xlsx"
    answers = fill_like_a_hall(exported / "榆林_榆林市政务服务中心.xlsx", first)
    assert invoke("rectify", "import", first, "--db", db)[0] == 0
    wb = openpyxl.load_workbook(first)
    ws = wb["整改清单"]
    col = {v: j for j, v in enumerate(next(ws.iter_rows(max_row=1, values_only=True)), start=1)}
    changed = []
    for i in range(2, ws.max_row + 1):
        if ws.cell(i, col["整改状态"]).value == "整改中" and len(changed) < 2:
            ws.cell(i, col["整改状态"], "已整改")
            ws.cell(i, col["整改完成日期"], "2026/4/9")
            changed.append(read_key(ws.cell(i, col["审计键 (请勿修改)"]).value)[0])
    assert len(changed) == 2
    second = tmp_path / "第二次.xlsx"
    wb.save(second)
    code, out = invoke("rectify", "import", second, "--db", db)
    assert code == 0, out
    n = counts(out, second.name)
    assert n[1:] == (2, 0, n[0] - 2)
    assert "其中 2 条覆盖了较早的答复" in out and "第一次.xlsx (导入 1) 2 条" in out
    now = stored(db)
    for key in changed:
        k = (key.city, key.case_id, key.rule_id)
        assert now[k][1:4] == ("已整改", answers[k][2], dt.date(2026, 4, 9)) and now[k][4] == second.name
    old = query(db, "SELECT city, case_id, rule_id, status, file_name, superseded_by FROM rectify_superseded ORDER BY ALL")
    assert old == sorted((k.city, k.case_id, k.rule_id, "整改中", first.name, 2) for k in changed)


def test_bad_rows_are_rejected_with_row_column_and_reason(db, exported, tmp_path, checked):
    # A list of another database: the extra cases alone, checked with the default pack.
    other = tmp_path / "other.duckdb"
    ingest_extra(other, tmp_path)
    assert invoke("check", "--db", other, "--as-of", AS_OF)[0] == 0
    assert invoke("rectify", "export", "--out", tmp_path / "other", "--db", other)[0] == 0
    foreign = table(tmp_path / "other" / "延安_(未填写服务大厅).xlsx")[1][0]["审计键 (请勿修改)"]

    wb = openpyxl.load_workbook(exported / "延安_延安市政务服务中心.xlsx")
    ws = wb["整改清单"]
    col = {v: j for j, v in enumerate(next(ws.iter_rows(max_row=1, values_only=True)), start=1)}
    for i in range(2, 9):
        ws.cell(i, col["整改状态"], "整改中")
        ws.cell(i, col["整改情况"], "处理中")
    key = ws.cell(2, col["审计键 (请勿修改)"]).value
    fields = key.split("/")
    fields[4] = fields[4][:-1] + ("9" if fields[4][-1] != "9" else "8")      # one character of the case id
    ws.cell(2, col["审计键 (请勿修改)"], "/".join(fields))
    ws.cell(3, col["审计键 (请勿修改)"], foreign)
    ws.cell(4, col["整改状态"], "已完成")
    ws.cell(5, col["整改完成日期"], "2026-02-30")
    ws.cell(6, col["审计键 (请勿修改)"]).value = None
    ws.cell(7, col["办件编号"], "YA-OTHER")
    ws.cell(8, col["审计键 (请勿修改)"], key[:40])
    path = tmp_path / "有问题的清单.xlsx"
    wb.save(path)
    before = query(db, "SELECT count(*) FROM rectify_answers")
    code, out = invoke("rectify", "import", path, "--db", db)
    assert code == 0, out
    read, recorded, rejected, unchanged = counts(out, path.name)
    assert rejected == 7 and recorded == 0 and read == recorded + rejected + unchanged, out
    expect = {2: ("审计键 (请勿修改)", "审计键被改动"), 3: ("审计键 (请勿修改)", "另一个数据库"),
              4: ("整改状态", "'已完成' 不是"), 5: ("整改完成日期", "'2026-02-30' 不是日期"),
              6: ("审计键 (请勿修改)", "没有审计键"), 7: ("办件编号", "与审计键中的"),
              8: ("审计键 (请勿修改)", "格式不对")}
    for row, (column, reason) in expect.items():
        line = next((x for x in out.splitlines() if f"工作表 整改清单 第 {row} 行 [{column}]" in x), None)
        assert line and path.name in line and reason in line, (row, out)
    assert query(db, "SELECT count(*) FROM rectify_answers") == before


def test_same_finding_twice_with_different_answers(db, exported, tmp_path):
    wb = openpyxl.load_workbook(exported / "延安_延安市政务服务中心.xlsx")
    ws = wb["整改清单"]
    copy = wb.copy_worksheet(ws)
    copy.title = "副本"
    ws.cell(2, 16, "已整改")
    copy.cell(2, 16, "有异议")
    ws.cell(3, 16, "整改中")
    copy.cell(3, 16, "整改中")
    path = tmp_path / "两个工作表.xlsx"
    wb.save(path)
    code, out = invoke("rectify", "import", path, "--db", db)
    assert code == 0, out
    n = len(table(exported / "延安_延安市政务服务中心.xlsx")[1])
    assert counts(out, path.name) == (2 * n, 1, 2, 2 * n - 3)
    assert "同一条发现在本文件中出现多次且答复不同 (整改清单 第 2 行、副本 第 2 行)" in out


def test_a_run_made_again_keeps_its_answers(db, exported, tmp_path, checked):
    returned = tmp_path / "已填.xlsx"
    answers = fill_like_a_hall(exported / "延安_延安市政务服务中心.xlsx", returned)
    assert invoke("rectify", "import", returned, "--db", db)[0] == 0
    old_run = query(db, "SELECT max(run_id) FROM runs")[0][0]
    args = json.loads(query(db, "SELECT calendar_spec FROM runs WHERE run_id = ?", [old_run])[0][0])
    pack = query(db, "SELECT pack_path FROM runs WHERE run_id = ?", [old_run])[0][0]
    code, out = invoke("check", "--db", db, "--pack", pack, "--as-of", AS_OF,
                       "--calendar", f"宝鸡={args['per_city']['宝鸡'][0]}")
    assert code == 0, out
    new_run = query(db, "SELECT max(run_id) FROM runs")[0][0]
    assert new_run != old_run and query(db, "SELECT count(*) FROM runs") == [(1,)]      # replaced
    assert query(db, "SELECT DISTINCT run_id FROM rectify_answers") == [(new_run,)]
    assert len(stored(db)) == len(answers)
    code, out = invoke("rectify", "import", returned, "--db", db)
    assert code == 0, out
    n = counts(out, returned.name)
    assert n[1:3] == (0, 0) and f"审计 {old_run} 已由审计 {new_run} 替换" in out


# --- refusals and exit codes ----------------------------------------------------------------------
def test_files_that_are_not_lists_exit_3_and_store_nothing(db, exported, tmp_path):
    good = exported / "延安_延安市政务服务中心.xlsx"
    text = tmp_path / "not.xlsx"
    text.write_text("办件编号,整改状态\n", encoding="utf-8")
    plain = tmp_path / "plain.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["办件编号", "整改状态"])
    wb.active.append(["A1", "已整改"])
    wb.save(plain)
    ole2 = tmp_path / "旧版.xls"
    ole2.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    for bad, reason in ((text, "不是可读的 XLSX"), (plain, "没有整改清单工作表"), (tmp_path / "missing.xlsx", "无法读取"),
                        (ole2, "另存为 .xlsx")):
        code, out = invoke("rectify", "import", good, bad, "--db", db)
        assert code == 3 and reason in out and str(bad) in out, out
        assert "Traceback" not in out
    assert query(db, "SELECT count(*) FROM rectify_imports") == [(0,)]
    renamed = tmp_path / "交回.xls"                     # the content decides, not the extension
    shutil.copy(good, renamed)
    code, out = invoke("rectify", "import", renamed, "--db", db)
    assert code == 0 and "交回.xls" in out, out


def test_commands_are_documented():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for command in ("export", "import"):
        assert f"`audit rectify {command}" in readme
        code, out = invoke("rectify", command, "--help")
        assert code == 0 and "--db" in out and "Example" in out
    for table_name in ("db_meta", "rectify_imports", "rectify_answers", "rectify_superseded"):
        assert f"| `{table_name}` |" in readme


def test_usage_errors_exit_2(db, tmp_path):
    assert invoke("rectify", "export", "--db", db)[0] == 2                               # --out is required
    code, out = invoke("rectify", "export", "--out", tmp_path / "x", "--city", "西安", "--db", db)
    assert code == 2 and "西安" in out and "延安" in out
    code, out = invoke("rectify", "export", "--out", tmp_path / "x", "--severity", "fatal", "--db", db)
    assert code == 2 and "fatal" in out
    code, out = invoke("rectify", "export", "--out", tmp_path / "x", "--run", 99, "--db", db)
    assert code == 2 and "99" in out
    code, out = invoke("rectify", "export", "--out", tmp_path / "x", "--db", tmp_path / "empty.duckdb")
    assert code == 2 and "audit check" in out
    assert not (tmp_path / "x").exists()


def test_an_older_database_opens_and_exports(db, tmp_path):
    """A database whose run_cases has no start date (stored before it) gets the column on open; its
    lists leave 开始日期 empty."""
    con = duckdb.connect(str(db))
    con.execute("ALTER TABLE run_cases DROP COLUMN start_date")
    con.execute("DROP TABLE db_meta")
    con.close()
    code, out = invoke("rectify", "export", "--out", tmp_path / "old", "--db", db, "--city", "榆林")
    assert code == 0, out
    rows = [r for p in (tmp_path / "old").iterdir() for r in table(p)[1]]
    assert rows and all(r["开始日期"] is None for r in rows) and all(r["整改期限"] for r in rows)


# --- the key, the setting, file names -------------------------------------------------------------
def test_key_round_trip_and_escapes():
    secret = bytes(range(32))
    key = FindingKey("0123456789abcdef", 12, "ab" * 32, "延/安%", "A/B 1", "REQ-X")
    text = make_key(secret, key)
    assert text.startswith("BB1/0123456789abcdef/12.abababababab/延%2F安%25/A%2FB 1/REQ-X/")
    fields, mac = read_key(text)
    assert fields == FindingKey("0123456789abcdef", 12, "ab" * 6, "延/安%", "A/B 1", "REQ-X")
    for bad in (text.replace("%2F", "%2f"), text.replace("BB1", "BB2"), text + "x", text.replace("/12.", "/12x")):
        with pytest.raises(KeyProblem):
            read_key(bad)


@pytest.mark.parametrize("value", [0, -1, "10", 2.5, True])
def test_rectify_days_is_validated(tmp_path, value):
    pack = tmp_path / "pack"
    (pack / "checks").mkdir(parents=True)
    (pack / "pack.yaml").write_text(PACK.replace("rectify_days: 5", f"rectify_days: {json.dumps(value)}"),
                                    encoding="utf-8")
    with pytest.raises(PackError) as exc:
        load_pack(pack)
    assert any(p.startswith(f"{pack / 'pack.yaml'}:") and "rectify_days" in p for p in exc.value.problems)


def test_rectify_days_default_and_per_city(tmp_path):
    assert load_pack().settings["rectify_days"] == 10
    pack = tmp_path / "pack"
    (pack / "checks").mkdir(parents=True)
    (pack / "pack.yaml").write_text(PACK, encoding="utf-8")
    loaded = load_pack(pack)
    assert loaded.settings_for("榆林")["rectify_days"] == 5 and loaded.settings_for("延安")["rectify_days"] == 10


def test_file_names_are_valid_and_unique():
    names = file_names(["延安_政务/服务:中心", "延安_政务_服务_中心", "CON", " .隐藏. ", "", "a" * 300, "A" * 300], ".xlsx")
    assert names[:5] == ["延安_政务_服务_中心.xlsx", "延安_政务_服务_中心 (2).xlsx", "CON_.xlsx", "隐藏.xlsx", "(空).xlsx"]
    assert len(names[5].encode()) <= 205 and names[6] != names[5] and names[6].lower() != names[5].lower()
