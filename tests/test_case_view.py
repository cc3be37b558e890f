"""`audit case CASE_ID`: one case in one view, through the real CLI on a database built from CSV rows.

The deadline is checked against an oracle written here from contract §2 and §4 on `chinese_calendar`
(independent of the tool's calendar tables): the 代办 case below is suspended twice, over 清明 2026
(4–6 April) and 劳动节 2026 (1–5 May), so its suspended working days are not calendar days.
"""

from __future__ import annotations

import datetime as dt
import json

import chinese_calendar
import duckdb
import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import write_csv

HEADER = ["办件编号", "地市", "服务中心", "服务类型", "服务方式", "承诺时限", "收费金额", "到现场次数", "评价",
          "服务对象", "证件号码", "联系电话", "归档材料", "帮办代办员", "环节", "时间", "经办人", "备注"]
CASE = "YA2026040100001"
PROMISED = 10
ATTRS = [CASE, "延安", "宝塔区政务服务中心", "代办", "线下", str(PROMISED), "0", "1", "满意", "王小明",
         "610102199001011234", "13812345678", "委托书、办结单、中止单、续办委托书", "李四"]
# Written out of time order (the close first); 承办 and 中止 share a time: the file order decides.
EVENTS = [("办结", "2026-05-20 10:00", ""), ("资料归档", "2026-05-20 11:00", ""),
          ("咨询", "2026-04-01 09:00", ""), ("需求分析", "2026-04-01 10:00", ""), ("委托", "2026-04-01 11:00", ""),
          ("承办", "2026-04-02 09:00", "已电话联系 13812345678"), ("中止", "2026-04-02 09:00", "等待补正材料"),
          ("续办", "2026-04-08 09:00", ""), ("中止", "2026-04-29 10:00", ""), ("续办", "2026-05-07 10:00", "")]
SUSPENSIONS = [(dt.date(2026, 4, 2), dt.date(2026, 4, 8)), (dt.date(2026, 4, 29), dt.date(2026, 5, 7))]
# The same case id in two cities; a case of the database outside the run comes later.
TWIN = [["X100", city, "中心", "帮办", "线下", "3", "0", "1", "", "", "", "", "", "赵六", "咨询", "2026-05-29 09:00", "赵六", ""]
        for city in ("延安", "宝鸡")]
AS_OF = "2026-05-31"


def workdays(a: dt.date, b: dt.date) -> int:
    """Working days in [a, b) (contract §2), on chinese_calendar."""
    return sum(chinese_calendar.is_workday(a + dt.timedelta(days=i)) for i in range((b - a).days))


def add_workdays(d: dt.date, n: int) -> dt.date:
    """The n-th working day after d (d itself not counted); n = 0 is d (contract §2)."""
    while n > 0:
        d += dt.timedelta(days=1)
        n -= chinese_calendar.is_workday(d)
    return d


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("case")
    rows = [HEADER] + [ATTRS + [step, when, "李四", note] for step, when, note in EVENTS] + TWIN
    path = tmp / "export.csv"
    write_csv(path, rows)
    waivers = tmp / "waivers.yaml"
    waivers.write_text(f"- {{rule: REQ-TIME-LIMIT, case_id: {CASE}, reason: 等待省厅批复, approved_by: 延安市政务服务中心, "
                       "expires: 2026-12-31}\n", encoding="utf-8")
    database = tmp / "case.duckdb"
    assert invoke("ingest", path, "--db", database)[0] == 0
    code, out = invoke("check", "--db", database, "--as-of", AS_OF, "--waivers", waivers)
    assert code == 0, out
    return database


def view(db, *args) -> dict:
    code, out = invoke("case", CASE, "--db", db, "--format", "json", *args)
    assert code == 0, out
    return json.loads(out)


def test_events_in_judged_order_with_their_source_rows(db):
    got = view(db)["events"]
    # the file's line of each event: the header is line 1
    line = {(step, when + ":00"): i + 2 for i, (step, when, _) in enumerate(EVENTS)}
    assert [(e["step"], e["time"]) for e in got] == sorted(line, key=lambda k: (k[1], line[k]))
    assert [e["source_row"] for e in got] == [line[(e["step"], e["time"])] for e in got]
    assert {e["source_file"] for e in got} == {"export.csv"}
    assert [e["step"] for e in got[3:5]] == ["承办", "中止"]         # same time: file order
    assert got[3]["note"] == "已电话联系 138****5678"                  # masked in free text too


def test_the_deadline_counts_the_suspended_working_days_on_the_holiday_calendar(db):
    dates = view(db)["dates"]
    start = dt.date(2026, 4, 1)
    suspended = [workdays(a, b) for a, b in SUSPENSIONS]
    assert suspended == [3, 3]        # 清明 and 劳动节 fall inside: far fewer than the 6 and 8 calendar days
    deadline = dates["deadline"]
    assert deadline["start_date"] == str(start) and dates["start"] == {"step": "委托", "time": "2026-04-01 11:00:00"}
    assert deadline["promised_days"] == PROMISED and deadline["suspended_working_days"] == sum(suspended)
    assert deadline["working_days"] == PROMISED + sum(suspended)
    assert deadline["date"] == str(add_workdays(start, PROMISED + sum(suspended)))
    assert [(s["from"], s["to"], s["working_days"]) for s in deadline["suspensions"]] == \
        [(str(a), str(b), n) for (a, b), n in zip(SUSPENSIONS, suspended)]
    assert deadline["suspended"] is False
    assert dates["request"] == "2026-04-01 09:00:00" and dates["complete"] == "2026-05-20 10:00:00"
    assert dates["response"] == {"step": "需求分析", "time": "2026-04-01 10:00:00", "limit": str(add_workdays(start, 1))}
    assert dates["archive"]["limit"] == str(add_workdays(dt.date(2026, 5, 20), 5))
    assert dates["followup"]["limit"] == str(add_workdays(dt.date(2026, 5, 20), 5))


def test_findings_with_evidence_and_their_waiver(db):
    findings = view(db)["findings"]
    assert [f["rule_id"] for f in findings] == ["REQ-TIME-LIMIT"]      # late, and nothing else is wrong
    late = findings[0]
    assert late["evidence"]["deadline"] == str(add_workdays(dt.date(2026, 4, 1), PROMISED + 6))
    assert "办结时限" in late["evidence_text"]
    assert late["waiver"] == {"waiver_id": 1, "rule": "REQ-TIME-LIMIT", "line": 1, "reason": "等待省厅批复",
                              "approved_by": "延安市政务服务中心", "expires": "2026-12-31"}


def test_attributes_are_masked_unless_asked(db):
    attrs = view(db)["attributes"]
    assert (attrs["applicant"], attrs["id_number"], attrs["phone"]) == ("王**", "610***********1234", "138****5678")
    assert attrs["hall"] == "宝塔区政务服务中心" and attrs["promised_days"] == PROMISED and attrs["fee"] == "0.00"
    assert attrs["source_file"] == "export.csv" and attrs["source_row"] >= 2
    full = view(db, "--show-personal-data")
    assert (full["attributes"]["applicant"], full["attributes"]["phone"]) == ("王小明", "13812345678")
    assert full["events"][3]["note"] == "已电话联系 13812345678"


def test_the_table_shows_every_part(db):
    code, out = invoke("case", CASE, "--db", db)
    assert code == 0, out
    for text in ("办件 YA2026040100001 · 延安", "服务对象: 王**", "(export.csv 第 4 行)", "承诺 10 + 已结束中止 6",
                 "中止 2026-04-02 至 2026-04-08: 3 个工作日", "违规 (error) REQ-TIME-LIMIT",
                 "已豁免 (waived): 等待省厅批复 (批准人 延安市政务服务中心，有效期至 2026-12-31；豁免文件第 1 行)"):
        assert text in out, text
    assert "13812345678" not in out and "整改答复" not in out     # no answer read back yet


def test_unknown_and_ambiguous_case_ids(db, tmp_path):
    code, out = invoke("case", "YA2026040100010", "--db", db)
    assert code == 2 and "没有办件 YA2026040100010" in out and f"相近的办件编号: {CASE}" in out
    code, out = invoke("case", "X100", "--db", db)
    assert code == 2 and "X100 在多个地市 (宝鸡、延安)" in out and "--city" in out
    assert invoke("case", "X100", "--city", "宝鸡", "--db", db, "--format", "json")[0] == 0
    code, out = invoke("case", "X100", "--city", "榆林", "--db", db)
    assert code == 2 and "宝鸡、延安" in out
    code, out = invoke("case", CASE, "--db", db, "--format", "xml")
    assert code == 2
    code, out = invoke("case", CASE, "--db", db, "--run", 99)
    assert code == 2 and "没有编号为 99 的审计" in out


def test_a_case_ingested_after_the_run_and_the_halls_answers(db, tmp_path):
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    later = write_csv(tmp_path / "later.csv", [HEADER, ["NEW1", "榆林", "中心", "帮办", "线下", "3", "0", "1", "", "", "", "",
                                                         "", "赵六", "咨询", "2026-05-30 09:00", "赵六", ""]])
    assert invoke("ingest", later, "--db", copy)[0] == 0
    code, out = invoke("case", "NEW1", "--db", copy)
    assert code == 2 and "在数据库中 (榆林)，但不在审计" in out and "audit check" in out
    # the hall's answer to the finding, as `audit rectify import` records it
    con = duckdb.connect(str(copy))
    run_id = con.execute("SELECT max(run_id) FROM runs").fetchall()[0][0]
    con.execute("""INSERT INTO rectify_answers (run_id, city, case_id, rule_id, owner, status, action, done_on,
                                                import_id, file_id, file_name, sheet, source_row)
                   VALUES (?, '延安', ?, 'REQ-TIME-LIMIT', '张科长', '有异议', '已电话 13812345678 说明原因', NULL,
                           1, 0, '延安_宝塔区政务服务中心.xlsx', '整改清单', 2)""", [run_id, CASE])
    con.close()
    answer = view(copy)["findings"][0]["answer"]
    assert answer == {"status": "有异议", "owner": "张科长", "action": "已电话 138****5678 说明原因", "done_on": None,
                      "file_name": "延安_宝塔区政务服务中心.xlsx", "sheet": "整改清单", "source_row": 2}
    code, out = invoke("case", CASE, "--db", copy)
    assert "整改答复 (answer): 有异议 (责任人 张科长)：已电话 138****5678 说明原因 (延安_宝塔区政务服务中心.xlsx#整改清单 第 2 行)" in out
    assert view(db)["findings"][0]["answer"] is None


def test_a_run_stored_without_dates_still_shows_the_rest(db, tmp_path):
    import shutil

    copy = tmp_path / "old.duckdb"
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy))
    con.execute("DELETE FROM run_case_dates")
    con.close()
    got = view(copy)
    assert got["dates"] is None and got["findings"] and got["events"]
    code, out = invoke("case", CASE, "--db", copy)
    assert code == 0 and "没有保存逐件日期" in out
