"""Waivers (`audit check --waivers FILE`, contract §5–§6): accepted deviations on a small fixture
whose findings and 合规率 are known by hand (tests/test_kpi.py), through the real CLI.

Findings of the fixture on 2026-03-20 without waivers — errors: B (FLOW-BB-STEPS, REQ-TIME-LIMIT),
C (REQ-TIME-LIMIT), F (EVAL-FOLLOWUP), H (REQ-INTEGRITY); warning: B (REQ-RESPONSE). Cases: 延安 A, B,
C, D, E, H (C and H in the hall 新区中心, the others in 宝塔中心), 宝鸡 F, 榆林 G. 合规率 = compliant ÷
cases: 4/8 overall (A, D, E, G), 延安 3/6, 宝鸡 0/1, 榆林 1/1.
"""

from __future__ import annotations

import hashlib
import json

import duckdb
import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import write_csv
from tests.test_kpi import HEADER, ROWS, case

AS_OF = "2026-03-20"


def in_hall(rows: list[list], case_id: str, hall: str) -> list[list]:
    return [r[:2] + [hall] + r[3:] if r[0] == case_id else r for r in rows]


# H: a complete 帮办 case that charged a fee (REQ-INTEGRITY), in 新区中心 like C.
H = [r[:6] + ["50"] + r[7:] for r in case(
    "H", "延安", "帮办", "3", "满意", "", "受理单、办结单", "张三",
    [("咨询", "2026-03-09 09:00"), ("申请", "2026-03-09 09:30"), ("受理", "2026-03-09 10:00"),
     ("承办", "2026-03-10 10:00"), ("办结", "2026-03-11 10:00"), ("资料归档", "2026-03-11 11:00")])]
FIXTURE = in_hall(in_hall([r[:2] + ["宝塔中心"] + r[3:] if r[1] == "延安" else r for r in ROWS + H], "C", "新区中心"),
                  "H", "新区中心")
ERRORS = {("B", "FLOW-BB-STEPS"), ("B", "REQ-TIME-LIMIT"), ("C", "REQ-TIME-LIMIT"), ("F", "EVAL-FOLLOWUP"),
          ("H", "REQ-INTEGRITY")}


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "w.duckdb"
    code, out = invoke("ingest", write_csv(tmp_path / "cases.csv", [HEADER] + FIXTURE), "--db", path)
    assert code == 0, out
    return path


def write_yaml(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def check(db, *args) -> tuple[int, str]:
    return invoke("check", "--db", db, "--as-of", AS_OF, *args)


def findings(db, *args) -> list[dict]:
    code, out = invoke("findings", "--db", db, "--format", "json", *args)
    assert code == 0, out
    return json.loads(out)["findings"]


def compliance(db) -> dict[str, float]:
    code, out = invoke("kpi", "--db", db, "--by", "city", "--format", "json")
    assert code == 0, out
    rows = {r["city"]: r["compliance_rate"] for r in json.loads(out)["rows"]}
    code, out = invoke("kpi", "--db", db, "--format", "json")
    rows["*"] = json.loads(out)["rows"][0]["compliance_rate"]
    return rows


def table(db, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_without_waivers_the_fixture_is_as_computed_by_hand(db):
    assert check(db)[0] == 0
    got = findings(db)
    assert {(f["case_id"], f["rule_id"]) for f in got if f["severity"] == "error"} == ERRORS
    assert not any(f["waived"] for f in got)
    assert compliance(db) == pytest.approx({"*": 4 / 8, "延安": 3 / 6, "宝鸡": 0 / 1, "榆林": 1 / 1})


def test_a_waiver_in_force_keeps_the_finding_marked_and_lifts_compliance(db, tmp_path):
    waivers = write_yaml(tmp_path / "w.yaml", """\
# accepted deviations, 2026
- rule: REQ-TIME-LIMIT
  case_id: C
  city: 延安
  reason: 等待上级部门批复，经市政务办同意延期
  approved_by: 延安市政务服务中心 王主任
  expires: 2026-06-30
- rule: EVAL-FOLLOWUP
  city: 宝鸡市          # the trailing 市 is dropped, as the ingest does
  reason: 回访记录在纸质台账
  approved_by: 宝鸡市政务服务局
""")
    code, out = check(db, "--waivers", waivers)
    assert code == 0, out
    assert "豁免" in out and "另有 2 条已豁免" in out
    rows = {(f["case_id"], f["rule_id"]): f for f in findings(db)}
    assert {k for k, f in rows.items() if f["severity"] == "error"} == ERRORS       # still stored and listed
    c = rows[("C", "REQ-TIME-LIMIT")]
    assert c["waived"] is True and c["waiver_reason"].startswith("等待上级部门批复")
    assert c["waiver_approved_by"] == "延安市政务服务中心 王主任" and c["waiver_expires"] == "2026-06-30"
    assert rows[("F", "EVAL-FOLLOWUP")]["waived"] is True and rows[("F", "EVAL-FOLLOWUP")]["waiver_expires"] is None
    assert {k for k, f in rows.items() if f["waived"]} == {("C", "REQ-TIME-LIMIT"), ("F", "EVAL-FOLLOWUP")}
    errors = [f["waived"] for f in findings(db, "--severity", "error")]
    assert errors == [False, False, False, True, True]        # open violations first
    # By hand: C and F no longer count as violations; B and H do.
    assert compliance(db) == pytest.approx({"*": 6 / 8, "延安": 4 / 6, "宝鸡": 1 / 1, "榆林": 1 / 1})
    # the per-rule waived counts are stored and shown
    assert dict(table(db, "SELECT rule_id, waived FROM run_rules WHERE waived > 0")) == \
        {"REQ-TIME-LIMIT": 1, "EVAL-FOLLOWUP": 1}
    line = next(ln for ln in out.splitlines() if ln.startswith("REQ-TIME-LIMIT"))
    assert line.split()[-2:] == ["2", "1"]        # 办件数 2, 豁免 1


def test_findings_filters_and_marks_waived_findings(db, tmp_path):
    waivers = write_yaml(tmp_path / "w.yaml", "- {rule: REQ-INTEGRITY, case_id: H, reason: 退费已完成, approved_by: 李科长}\n")
    assert check(db, "--waivers", waivers)[0] == 0
    assert [(f["case_id"], f["rule_id"]) for f in findings(db, "--status", "waived")] == [("H", "REQ-INTEGRITY")]
    assert ("H", "REQ-INTEGRITY") not in {(f["case_id"], f["rule_id"]) for f in findings(db, "--status", "open")}
    code, out = invoke("findings", "--db", db)
    assert "[已豁免: 退费已完成]" in next(ln for ln in out.splitlines() if "REQ-INTEGRITY" in ln)
    assert "其中已豁免 1 条" in out
    code, out = invoke("findings", "--db", db, "--format", "csv", "--status", "waived")
    header, row = out.splitlines()
    assert header.endswith(",waived,waiver_reason,waiver_approved_by,waiver_expires")
    assert row.endswith(",True,退费已完成,李科长,")
    code, out = invoke("findings", "--db", db, "--status", "closed")
    assert code == 2 and "--status" in out


def test_expired_waivers_apply_to_nothing_and_are_listed(db, tmp_path):
    """expires is the last day a waiver holds: on the audit date itself it is still in force."""
    waivers = write_yaml(tmp_path / "w.yaml", """\
- {rule: REQ-TIME-LIMIT, case_id: C, reason: 到期前一天, approved_by: 甲, expires: 2026-03-19}
- {rule: EVAL-FOLLOWUP, case_id: F, reason: 审计日当天到期, approved_by: 乙, expires: 2026-03-20}
""")
    code, out = check(db, "--waivers", waivers)
    assert code == 0
    assert "已过期、不适用 (expired) 1 条" in out and "第 1 行 REQ-TIME-LIMIT 办件 C" in out
    waived = {(f["case_id"], f["rule_id"]) for f in findings(db, "--status", "waived")}
    assert waived == {("F", "EVAL-FOLLOWUP")}
    assert table(db, "SELECT waiver_id, line, status, matched, expires::VARCHAR FROM run_waivers ORDER BY 1") == [
        (1, 1, "expired", 0, "2026-03-19"), (2, 2, "in_force", 1, "2026-03-20")]
    # a day later both have expired
    code, out = invoke("check", "--db", db, "--as-of", "2026-03-21", "--waivers", waivers)
    assert code == 0 and "已过期、不适用 (expired) 2 条" in out


def test_waivers_that_match_nothing_are_listed(db, tmp_path):
    waivers = write_yaml(tmp_path / "w.yaml", """\
- {rule: REQ-TIME-LIMIT, case_id: NOSUCH, reason: 编号写错, approved_by: 甲}
- {rule: ARCHIVE-*, city: 榆林, reason: 榆林没有归档问题, approved_by: 乙}
- {rule: REQ-TIME-LIMIT, case_id: C, city: 宝鸡, reason: C 是延安的办件, approved_by: 丙}
""")
    code, out = check(db, "--waivers", waivers)
    assert code == 0
    assert "没有匹配任何发现 (matched nothing) 3 条" in out
    for text in ("第 1 行 REQ-TIME-LIMIT 办件 NOSUCH", "第 2 行 ARCHIVE-* 榆林", "第 3 行 REQ-TIME-LIMIT 宝鸡 办件 C"):
        assert text in out
    assert table(db, "SELECT count(*) FROM run_waivers WHERE status = 'in_force' AND matched = 0") == [(3,)]
    assert not any(f["waived"] for f in findings(db))


def test_a_glob_names_every_rule_it_matches(db, tmp_path):
    """`req-*` (any letter case) waives B's REQ-TIME-LIMIT and REQ-RESPONSE, not its FLOW-BB-STEPS:
    B stays non-compliant."""
    waivers = write_yaml(tmp_path / "w.yaml", "- {rule: 'req-*', case_id: B, reason: 系统停机, approved_by: 甲}\n")
    code, out = check(db, "--waivers", waivers)
    assert code == 0
    b = {f["rule_id"]: f["waived"] for f in findings(db) if f["case_id"] == "B"}
    assert b == {"FLOW-BB-STEPS": False, "REQ-TIME-LIMIT": True, "REQ-RESPONSE": True}
    assert compliance(db)["延安"] == pytest.approx(3 / 6)
    rules = table(db, "SELECT rules FROM run_waivers")[0][0]
    assert set(rules) == {"REQ-ONE-TO-ONE", "REQ-ONE-STOP", "REQ-TIME-LIMIT", "REQ-INTEGRITY", "REQ-RESPONSE"}


def test_a_hall_waiver_covers_that_hall_of_that_city_only(db, tmp_path):
    """REQ-TIME-LIMIT in 延安 新区中心 covers C, not B (宝塔中心); REQ-INTEGRITY there covers H."""
    waivers = write_yaml(tmp_path / "w.yaml", """\
- {rule: REQ-TIME-LIMIT, city: 延安, hall: 新区中心, reason: 新区中心搬迁期间, approved_by: 甲, expires: 2026-04-30}
- {rule: REQ-INTEGRITY, city: 延安, hall: 新区中心, reason: 搬迁期间代收, approved_by: 乙, expires: 2026-04-30}
""")
    assert check(db, "--waivers", waivers)[0] == 0
    waived = {(f["case_id"], f["rule_id"]) for f in findings(db, "--status", "waived")}
    assert waived == {("C", "REQ-TIME-LIMIT"), ("H", "REQ-INTEGRITY")}
    assert compliance(db)["延安"] == pytest.approx(5 / 6)       # only B violates


def test_fail_on_error_ignores_waived_findings(db, tmp_path):
    assert check(db, "--fail-on", "error")[0] == 1
    every_error = write_yaml(tmp_path / "all.yaml", "\n".join(
        f"- {{rule: {rule}, case_id: {cid}, reason: 已整改待复核, approved_by: 督查科}}" for cid, rule in sorted(ERRORS)))
    code, out = check(db, "--fail-on", "error", "--waivers", every_error)
    assert code == 0, out
    assert "合计: error 0 (另有 5 条已豁免)，warning 1" in out
    assert check(db, "--fail-on", "warning", "--waivers", every_error)[0] == 1     # B's REQ-RESPONSE is open
    assert compliance(db)["*"] == 1.0


def test_the_waiver_file_is_part_of_the_stored_run_and_of_its_key(db, tmp_path):
    one = write_yaml(tmp_path / "one.yaml", "- {rule: REQ-INTEGRITY, case_id: H, reason: 甲, approved_by: 乙}\n")
    assert check(db, "--waivers", one)[0] == 0
    assert check(db, "--waivers", one)[0] == 0          # the same run again replaces it
    assert table(db, "SELECT count(*) FROM runs") == [(1,)]
    run_id = table(db, "SELECT run_id FROM runs")[0][0]
    stored = table(db, f"SELECT name, sha256, content FROM run_files WHERE run_id = {run_id} AND kind = 'waivers'")
    assert stored == [(str(one), hashlib.sha256(one.read_bytes()).hexdigest(), one.read_text(encoding="utf-8"))]
    other = write_yaml(tmp_path / "other.yaml", "- {rule: REQ-INTEGRITY, case_id: H, reason: 丙, approved_by: 乙}\n")
    assert check(db, "--waivers", other)[0] == 0        # another waiver file: another run
    assert check(db)[0] == 0                            # and none at all: another again
    assert table(db, "SELECT count(*) FROM runs") == [(3,)]
    by_run = table(db, """SELECT r.run_id, count(w.waiver_id), any_value(w.reason) FROM runs r
                          LEFT JOIN run_waivers w USING (run_id) GROUP BY 1 ORDER BY 1""")
    assert [row[1:] for row in by_run] == [(1, "甲"), (1, "丙"), (0, None)]
    # every table of a replaced run is gone, the waivers included
    assert table(db, "SELECT count(DISTINCT run_id) FROM run_waivers") == [(2,)]


def test_a_csv_waiver_file_with_chinese_headers_in_gbk(db, tmp_path):
    path = write_csv(tmp_path / "豁免.csv", [
        ["规则", "办件编号", "地市", "服务大厅", "原因", "批准人", "有效期至"],
        ["REQ-INTEGRITY", "'H", "延安", "", "退费已完成", "李科长", "2026-12-31"],
        [],
        ["EVAL-FOLLOWUP", "", "宝鸡", "", "纸质回访", "王局长", ""],
    ], encoding="gbk")
    code, out = check(db, "--waivers", path)
    assert code == 0, out
    assert {(f["case_id"], f["rule_id"]) for f in findings(db, "--status", "waived")} == \
        {("H", "REQ-INTEGRITY"), ("F", "EVAL-FOLLOWUP")}
    assert table(db, "SELECT waiver_id, line FROM run_waivers ORDER BY 1") == [(1, 2), (2, 4)]


BAD_YAML = [
    ("unknown rule", "- {rule: REQ-TIME-LIMT, case_id: C, reason: r, approved_by: a}\n", "1:10",
     "不是规则包 陕西帮办代办服务规范 中的规则，也不匹配其中任何规则 (是否指 REQ-TIME-LIMIT？)"),
    ("glob matching no rule", "- {rule: 'XYZ-*', city: 延安, reason: r, approved_by: a}\n", "1:10", "不匹配其中任何规则"),
    ("missing reason", "- rule: REQ-TIME-LIMIT\n  case_id: C\n  approved_by: a\n", "1:3", "缺少 reason"),
    ("empty approved_by", "- rule: REQ-TIME-LIMIT\n  case_id: C\n  reason: r\n  approved_by: ''\n", "4:16",
     "缺少 approved_by"),
    ("bad date", "- {rule: REQ-TIME-LIMIT, case_id: C, reason: r, approved_by: a, expires: 2026-02-30}\n", "1:74",
     "'2026-02-30' 不是日期"),
    ("date not ISO", "- {rule: REQ-TIME-LIMIT, case_id: C, reason: r, approved_by: a, expires: 2026/6/30}\n", "1:74",
     "不是日期"),
    ("only a rule", "- {rule: REQ-TIME-LIMIT, reason: r, approved_by: a}\n", "1:3", "没有范围"),
    ("hall without city", "- {rule: REQ-TIME-LIMIT, hall: 新区中心, reason: r, approved_by: a}\n", "1:32", "须与地市一起给出"),
    ("case and hall", "- {rule: REQ-TIME-LIMIT, case_id: C, city: 延安, hall: 新区中心, reason: r, approved_by: a}\n",
     "1:54", "不能同时给出"),
    ("unknown key", "- {rule: REQ-TIME-LIMIT, case_id: C, reason: r, approved_by: a, until: 2026-12-31}\n", "1:65",
     "未知的键 'until'"),
    ("not a list", "rule: REQ-TIME-LIMIT\ncase_id: C\n", "1:1", "应为豁免的列表"),
    ("syntax", "- {rule: REQ-TIME-LIMIT, case_id: [C\n", "2:1", "YAML 语法错误"),
    ("a list value", "- {rule: REQ-TIME-LIMIT, case_id: [C, B], reason: r, approved_by: a}\n", "1:35", "应为单个值"),
]


def _nothing_stored(db):
    assert table(db, "SELECT (SELECT count(*) FROM runs) + (SELECT count(*) FROM findings)") == [(0,)]


@pytest.mark.parametrize("text, where, message", [b[1:] for b in BAD_YAML], ids=[b[0] for b in BAD_YAML])
def test_a_bad_yaml_waiver_is_refused_with_file_line_and_column(db, tmp_path, text, where, message):
    path = write_yaml(tmp_path / "w.yaml", text)
    code, out = check(db, "--waivers", path)
    assert code == 2, out
    assert f"{path}:{where}: " in out and message in out, out
    assert "Traceback" not in out
    _nothing_stored(db)


def test_every_problem_of_a_csv_waiver_file_is_reported_at_once(db, tmp_path):
    path = write_csv(tmp_path / "w.csv", [
        ["rule", "case_id", "city", "hall", "reason", "approved_by", "expires"],
        ["REQ-TIME-LIMIT", "C", "延安", "", "r", "a", "2026-12-31"],          # fine
        ["NOPE", "", "延安", "", "r", "a", ""],                               # line 3: unknown rule
        ["REQ-TIME-LIMIT", "", "", "", "r", "a", ""],                         # line 4: no scope
        ["REQ-TIME-LIMIT", "C", "", "", "", "a", "31/12/2026"],               # line 5: reason, date
        ["REQ-TIME-LIMIT", "C", "", "", "r", "a", "", "extra"],               # line 6: extra cell
    ])
    code, out = check(db, "--waivers", path)
    assert code == 2
    for where, message in (("3:1", "rule: 'NOPE'"), ("4:1", "没有范围"), ("5:5", "reason: 缺少 reason"),
                           ("5:7", "expires: '31/12/2026' 不是日期"), ("6:8", "本行有 8 个单元格")):
        assert f"{path}:{where}: {message}" in out, (where, out)
    assert "有 5 处错误" in out
    _nothing_stored(db)


def test_a_csv_without_the_required_columns_is_refused(db, tmp_path):
    path = write_csv(tmp_path / "w.csv", [["rule", "case", "reason"], ["REQ-TIME-LIMIT", "C", "r"]])
    code, out = check(db, "--waivers", path)
    assert code == 2
    assert f"{path}:1:2: 未知的列 'case'" in out and "表头缺少列 approved_by" in out
    missing = tmp_path / "missing.yaml"
    code, out = check(db, "--waivers", missing)
    assert code == 2 and f"{missing}:1:1: 无法读取豁免文件" in out
    _nothing_stored(db)


def test_a_yaml_case_id_is_read_as_written(db, tmp_path):
    """`case_id: 0012` stays 0012 (YAML would read an octal number); an empty file waives nothing."""
    from audit.check.waiverfile import load_waivers
    from audit.rules.pack import load_pack

    path = write_yaml(tmp_path / "w.yaml", "- {rule: REQ-TIME-LIMIT, case_id: 0012, reason: r, approved_by: a}\n")
    assert load_waivers(path, load_pack()).waivers[0].case_id == "0012"
    assert load_waivers(write_yaml(tmp_path / "e.yaml", "# none yet\n"), load_pack()).waivers == ()


def test_an_older_database_gets_the_waiver_columns(tmp_path):
    """A database whose findings and run_rules predate waivers opens with the new columns."""
    from audit.db import connect

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("""CREATE TABLE findings (run_id BIGINT, rule_id VARCHAR, severity VARCHAR, clause VARCHAR,
                   city VARCHAR, case_id VARCHAR, message VARCHAR, evidence JSON)""")
    con.execute("CREATE TABLE run_rules (run_id BIGINT, rule_id VARCHAR, severity VARCHAR, clause VARCHAR, "
                "title VARCHAR, findings BIGINT)")
    con.execute("INSERT INTO findings VALUES (1, 'REQ-FEE', 'error', '10', '延安', 'A', 'm', NULL)")
    con.close()
    con = connect(path)
    cols = {r[0] for r in con.execute("DESCRIBE findings").fetchall()}
    assert "waiver_id" in cols and "waived" in {r[0] for r in con.execute("DESCRIBE run_rules").fetchall()}
    assert con.execute("SELECT waiver_id FROM findings").fetchall() == [(None,)]
    con.close()


def test_the_reports_clause_compliance_leaves_waived_errors_out(db, tmp_path):
    """The report's compliance per clause agrees with 合规率: clause 10 has violations in B
    (REQ-TIME-LIMIT), C (REQ-TIME-LIMIT) and H (REQ-INTEGRITY); waiving C's leaves B and H."""
    from audit.db import connect
    from audit.report.compliance import clause_table, scope_findings

    waivers = write_yaml(tmp_path / "w.yaml", "- {rule: REQ-TIME-LIMIT, case_id: C, reason: 甲, approved_by: 乙}\n")
    assert check(db, "--waivers", waivers)[0] == 0
    con = connect(db)
    run_id = con.execute("SELECT max(run_id) FROM runs").fetchall()[0][0]
    con.execute("CREATE TEMP TABLE report_scope AS SELECT city, case_id FROM run_cases WHERE run_id = ?", [run_id])
    scope_findings(con, run_id)
    chapter = {row["clause"]: row for row in clause_table(con, run_id, 8, None)}["10"]
    con.close()
    assert chapter["cases"] == "3" and chapter["error_cases"] == "2"    # B, C, H flagged; C waived
    assert chapter["compliance"] == "75.0%"                              # 1 - 2/8


def test_a_waived_finding_is_not_on_a_halls_rectification_list(db, tmp_path):
    """An accepted deviation needs no rectification: `audit rectify export` leaves it out, and
    the open findings of the same hall stay."""
    import openpyxl

    waivers = write_yaml(tmp_path / "w.yaml", """\
- rule: REQ-TIME-LIMIT
  case_id: C
  city: 延安
  reason: 等待上级部门批复
  approved_by: 延安市政务服务中心
""")
    assert check(db, "--waivers", waivers)[0] == 0
    code, out = invoke("rectify", "export", "--db", db, "--out", tmp_path / "lists")
    assert code == 0, out
    listed = set()
    for path in (tmp_path / "lists").glob("*.xlsx"):
        wb = openpyxl.load_workbook(path, read_only=True)
        for ws in wb.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            head = next((i for i, r in enumerate(rows) if r and "办件编号" in r), None)
            if head is None:
                continue
            ci, ri = rows[head].index("办件编号"), rows[head].index("规则编号")
            listed |= {(r[ci], r[ri]) for r in rows[head + 1:] if r and r[ci]}
    assert ("C", "REQ-TIME-LIMIT") not in listed
    assert ("B", "REQ-TIME-LIMIT") in listed
