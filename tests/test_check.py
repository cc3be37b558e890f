"""`audit check`, `audit findings`, `audit rules`: runs, outputs, packs, calendars, the golden sample."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from pathlib import Path

import openpyxl
import pytest
import yaml
from typer.testing import CliRunner

from audit.check.engine import run_check
from audit.cli import app
from audit.db import connect
from audit.errors import PackError
from audit.ingest import ingest
from audit.resources import pack_dir, sample_dir
from audit.rules.pack import load_pack
from audit.sample.writers import write_sample
from tests.conftest import REPO, table, write_csv

GOLDEN = Path(__file__).parent / "golden" / "sample_findings.json"


def ingest_sample(db: Path) -> None:
    """Ingest the bundled sample exactly as its manifest says."""
    data = sample_dir()
    manifest = yaml.safe_load((data / "manifest.yaml").read_text(encoding="utf-8"))["files"]
    con = connect(db)
    for entry in manifest:
        ingest(con, [data / entry["file"]], city=entry["city"],
               profile=data / entry["profile"] if entry["profile"] else None)
    con.close()


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("sample") / "audit.duckdb"
    ingest_sample(db)
    return db


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def test_bundled_sample_is_the_generators_output(tmp_path):
    write_sample(tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(p.name for p in sample_dir().iterdir() if p.suffix in (".csv", ".xlsx", ".yaml"))
    match, mismatch, errors = filecmp.cmpfiles(tmp_path, sample_dir(), names, shallow=False)
    assert not mismatch and not errors, "sample_data/ is stale: run `audit sample --out sample_data`"


# What the golden file keeps of each finding: what was found and the facts it rests on, not the
# wording of its message or title (a message edit must not need a new golden file).
GOLDEN_FIELDS = ("rule_id", "city", "case_id", "severity", "clause", "evidence")


def test_default_pack_over_sample_matches_golden(sample_db, tmp_path):
    """The findings of the default pack over the bundled sample, compared with
    tests/golden/sample_findings.json on their structure: rule, city, case, severity, clause and
    every evidence value (dates, limits, counts, missing items), in output order.

    This proves the findings and their evidence have not changed since the file was last
    reviewed; it does not by itself prove them right. That is test_sample_oracle's job: it checks
    the (rule, city, case) set against the generator's record of injected violations and against
    an independent oracle of contract §4, checks the main evidence values against that oracle,
    and checks that this golden file names exactly the oracle's cases (so UPDATE_GOLDEN=1 cannot
    bless a wrong set). Message wording is not compared: every finding must have one.
    """
    db = tmp_path / "copy.duckdb"
    shutil.copy(sample_db, db)
    code, out = invoke("check", "--db", db)
    assert code == 0 and "审计日 2026-03-31" in out
    code, out = invoke("findings", "--format", "json", "--db", db)
    findings = json.loads(out)["findings"]
    for f in findings:
        assert set(GOLDEN_FIELDS) | {"message", "title"} <= set(f) and f["message"].strip()
    got = [{k: f[k] for k in GOLDEN_FIELDS} for f in findings]
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got == want, "findings differ from tests/golden/sample_findings.json (UPDATE_GOLDEN=1 to accept)"
    rules_hit = {f["rule_id"] for f in got}
    contract_rules = {"FLOW-BB-STEPS", "FLOW-BB-ORDER", "FLOW-DB-STEPS", "FLOW-DB-ORDER", "FLOW-DB-ENTRUST",
                      "FLOW-DB-SUSPEND", "REQ-ONE-TO-ONE", "REQ-ONE-STOP", "REQ-TIME-LIMIT", "REQ-INTEGRITY",
                      "REQ-RESPONSE", "ARCHIVE-TIMELY", "ARCHIVE-MATERIALS", "EVAL-RATED", "EVAL-FOLLOWUP"}
    assert contract_rules <= rules_hit  # the sample breaks every rule of contract §4
    assert {f["city"] for f in got} == {"延安", "宝鸡", "榆林"}


def test_rerun_replaces_and_other_runs_stay(sample_db, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(sample_db, db)
    con = connect(db)
    first = run_check(con)
    again = run_check(con)
    assert table(con, "SELECT count(*) FROM runs") == [(1,)]   # replaced, not added
    assert table(con, f"SELECT count(*) FROM findings WHERE run_id = {first.run_id}") == [(0,)]
    n = table(con, f"SELECT count(*) FROM findings WHERE run_id = {again.run_id}")[0][0]
    assert n == sum(r.findings for r in first.results)
    first = again
    import datetime as dt
    earlier = run_check(con, as_of=dt.date(2026, 1, 31))
    assert earlier.run_id != first.run_id
    assert table(con, "SELECT count(*) FROM runs") == [(2,)]
    assert table(con, f"SELECT count(*) FROM findings WHERE run_id = {first.run_id}") == [(n,)]
    con.close()


def test_fail_on_exit_code_and_summary(sample_db, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(sample_db, db)
    code, out = invoke("check", "--db", db, "--fail-on", "error")
    assert code == 1 and "REQ-TIME-LIMIT" in out and "合计" in out
    code, _ = invoke("check", "--db", db, "--city", "宝鸡", "--fail-on", "bogus")
    assert code == 2


def test_findings_formats_filters_and_formula_safety(tmp_path):
    db = tmp_path / "f.duckdb"
    rows = [["办件编号", "地市", "服务大厅", "服务类型", "收费金额", "环节", "时间", "经办人"],
            ["=1+1", "延安", "宝塔区中心", "帮办", "10", "咨询", "2026-03-02 09:00", "张三"],
            ["@SUM(A1)", "宝鸡", "+大厅", "帮办", "20", "咨询", "2026-03-02 09:00", "李四"],
            ["OK1", "宝鸡", "渭滨区中心", "帮办", "0", "咨询", "2026-03-02 09:00", "李四"]]
    con = connect(db)
    ingest(con, [write_csv(tmp_path / "x.csv", rows)])
    run_check(con)
    con.close()
    code, out = invoke("findings", "--db", db, "--rule", "REQ-INTEGRITY", "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("case_id,city,rule_id,severity,clause,message")
    assert any(line.startswith("'=1+1,延安,REQ-INTEGRITY,error") for line in lines)
    assert any(line.startswith("'@SUM(A1),宝鸡") for line in lines)
    code, out = invoke("findings", "--db", db, "--city", "宝鸡", "--severity", "error", "--format", "json")
    data = json.loads(out)
    assert {f["city"] for f in data["findings"]} == {"宝鸡"} and {f["severity"] for f in data["findings"]} == {"error"}
    assert data["findings"][0]["evidence"] is not None
    xlsx = tmp_path / "整改清单.xlsx"
    code, out = invoke("findings", "--db", db, "--format", "xlsx", "--out", xlsx)
    assert code == 0
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames == ["宝鸡", "延安"]
    ws = wb["宝鸡"]
    assert ws.freeze_panes == "A3"
    assert ws.cell(2, 1).value == "服务大厅" and ws.column_dimensions["I"].width > 30
    values = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type == "s" for c in values)  # never a formula
    assert any(c.value == "'@SUM(A1)" for c in values) and any(str(c.value).startswith("'+大厅") for c in values)


def test_rules_catalogue_and_explain():
    code, out = invoke("rules")
    assert code == 0
    for rule in load_pack().rules:
        assert rule.id in out
    assert "max_visits" in out
    code, out = invoke("rules", "REQ-TIME-LIMIT", "--verify")
    assert code == 0 and "10 限时办结" in out and "✓" in out and "✗" not in out


def test_pack_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "pack"
    shutil.copytree(pack_dir(), bad, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    rule = bad / "checks" / "REQ-INTEGRITY.yaml"
    rule.write_text(rule.read_text(encoding="utf-8").replace("severity: error", "severity: fatal"), encoding="utf-8")
    (bad / "checks" / "DATA-NO-EVENTS.yaml").write_text("id: DATA-NO-EVENTS\nclause: DATA\nseverity: error\n", encoding="utf-8")
    meta = bad / "pack.yaml"
    meta.write_text(meta.read_text(encoding="utf-8").replace("max_visits: 1", "max_visits: -1"), encoding="utf-8")
    with pytest.raises(PackError) as exc:
        load_pack(bad)
    problems = exc.value.problems
    assert any(p.startswith(f"{rule}:3:11:") and "fatal" in p for p in problems)
    assert any(str(bad / "checks" / "DATA-NO-EVENTS.yaml") + ":3:" in p and "DATA-*" in p for p in problems)
    assert any(p.startswith(f"{meta}:") and "max_visits" in p for p in problems)
    code, out = invoke("check", "--pack", bad, "--db", tmp_path / "x.duckdb")
    assert code == 2 and "fatal" in out and "Traceback" not in out


def test_custom_pack_worked_example(sample_db, tmp_path):
    custom = REPO / "examples" / "custom_pack"
    pack = load_pack(custom)
    assert pack.settings["response_days"] == 0 and pack.settings_for("榆林")["max_visits"] == 2
    assert pack.settings_for("延安")["max_visits"] == 1
    ids = [r.id for r in pack.rules]
    assert "LOCAL-ONLINE-ZERO-VISIT" in ids and "REQ-TIME-LIMIT" in ids
    db = tmp_path / "copy.duckdb"
    shutil.copy(sample_db, db)
    con = connect(db)
    extra = [["办件编号", "地市", "服务类型", "服务方式", "到现场次数", "环节", "时间"],
             ["ONLINE1", "宝鸡", "帮办", "线上", "1", "咨询", "2026-03-02 09:00"]]
    ingest(con, [write_csv(tmp_path / "online.csv", extra)])
    strict = run_check(con, pack)
    default = run_check(con)
    count = {r.rule.id: r.findings for r in strict.results}
    base = {r.rule.id: r.findings for r in default.results}
    assert count["REQ-RESPONSE"] > base["REQ-RESPONSE"]  # same-day response is stricter
    assert "LOCAL-ONLINE-ZERO-VISIT" not in base
    flagged = table(con, f"SELECT case_id FROM findings WHERE run_id = {strict.run_id} AND rule_id = 'LOCAL-ONLINE-ZERO-VISIT'")
    assert count["LOCAL-ONLINE-ZERO-VISIT"] == 1 and flagged == [("ONLINE1",)]
    con.close()


def test_uncovered_year_is_an_error_unless_fallback(tmp_path):
    db = tmp_path / "y.duckdb"
    rows = [["办件编号", "地市", "服务类型", "承诺时限", "环节", "时间"],
            ["Y1", "延安", "帮办", "3", "受理", "2027-03-02 09:00"]]
    con = connect(db)
    ingest(con, [write_csv(tmp_path / "y.csv", rows)])
    con.close()
    code, out = invoke("check", "--db", db)
    assert code == 2 and "2027" in out and "--calendar" in out
    code, out = invoke("check", "--db", db, "--calendar-fallback", "weekdays")
    assert code == 0 and "2027" in out and "周一至周五" in out
    con = connect(db)
    assert 2027 in table(con, "SELECT calendar_fallback_years FROM runs")[0][0]
    con.close()


def test_rule_sql_is_validated_before_anything_runs(sample_db, tmp_path):
    bad = tmp_path / "pack"
    shutil.copytree(pack_dir(), bad, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    for name in ("REQ-INTEGRITY", "REQ-ONE-STOP"):
        rule = bad / "checks" / f"{name}.yaml"
        rule.write_text(rule.read_text(encoding="utf-8").replace("FROM case_facts", "FROM case_factz"), encoding="utf-8")
    db = tmp_path / "copy.duckdb"
    shutil.copy(sample_db, db)
    code, out = invoke("check", "--pack", bad, "--db", db)
    assert code == 2 and "REQ-INTEGRITY.yaml:" in out and "REQ-ONE-STOP.yaml:" in out and "case_factz" in out
    con = connect(db)
    assert table(con, "SELECT count(*) FROM runs") == [(0,)]  # nothing ran
    con.close()


def _two_city_db(tmp_path):
    rows = [["办件编号", "地市", "服务类型", "承诺时限", "环节", "时间", "经办人"]]
    for city in ("延安", "榆林"):
        rows += [[f"{city}1", city, "帮办", "1", step, when, "张三"]
                 for step, when in (("受理", "2026-03-02 10:00"), ("办结", "2026-03-04 10:00"))]
    db = tmp_path / "cal.duckdb"
    con = connect(db)
    ingest(con, [write_csv(tmp_path / "two.csv", rows)])
    con.close()
    override = tmp_path / "榆林.csv"
    override.write_text("date,is_workday,note\n2026-03-03,0,榆林地方假日\n", encoding="utf-8")
    return db, override


def late_cities(db):
    con = connect(db)
    rows = table(con, "SELECT city FROM findings WHERE rule_id = 'REQ-TIME-LIMIT' AND run_id = (SELECT max(run_id) FROM runs) ORDER BY city")
    con.close()
    return [r[0] for r in rows]


def test_per_city_calendar_from_the_command_line(tmp_path):
    db, override = _two_city_db(tmp_path)
    assert invoke("check", "--db", db)[0] == 0
    assert late_cities(db) == ["延安", "榆林"]          # due 03-03 in both
    code, out = invoke("check", "--db", db, "--calendar", f"榆林={override}")
    assert code == 0 and "榆林.csv" in out
    assert late_cities(db) == ["延安"]                  # 榆林's own holiday moves its deadline to 03-04


def test_per_city_calendar_named_by_the_pack(tmp_path):
    db, override = _two_city_db(tmp_path)
    pack = tmp_path / "pack"
    (pack / "checks").mkdir(parents=True)
    shutil.copy(override, pack / "榆林.csv")
    (pack / "pack.yaml").write_text("name: 榆林日历\nversion: '1'\nextends: default\ncities:\n  榆林:\n    calendar: [榆林.csv]\n",
                                    encoding="utf-8")
    assert invoke("check", "--db", db, "--pack", pack)[0] == 0
    assert late_cities(db) == ["延安"]
    (pack / "pack.yaml").write_text("name: x\nversion: '1'\nextends: default\nsettings:\n  calendar: [nope.csv]\n", encoding="utf-8")
    code, out = invoke("check", "--db", db, "--pack", pack)
    assert code == 2 and "nope.csv" in out and "pack.yaml:5:" in out


def test_every_evidence_key_of_the_default_pack_reads_in_chinese():
    """The rectification list and the report show evidence as `名称: 值`; each field the default
    pack's rules put in their evidence has a Chinese label in the rule's own file (`evidence:`)."""
    from audit.outputs.findings import evidence_text, rule_labels
    from audit.rules.pack import load_pack
    from audit.rules.sqltree import evidence_fields

    pack = load_pack()
    for rule in pack.rules:
        assert rule.evidence and list(rule.evidence) == evidence_fields(rule.sql), rule.id
    labels = rule_labels(pack)
    text = evidence_text('{"deadline": "2026-03-09", "overdue_workdays": 2, "extra": 1}', labels["REQ-TIME-LIMIT"])
    assert text == "办结时限: 2026-03-09；超期 (工作日): 2；extra: 1"
    assert evidence_text('{"has_case_row": true}', labels["DATA-NO-SERVICE-TYPE"]) == "台账中有此办件: 是"
    # A run stored before labels lived in the rule files (or without its pack) borrows the default's.
    old_run = load_pack()
    old_run.rules[0].evidence = {}
    assert rule_labels(old_run) == rule_labels(None) == labels
