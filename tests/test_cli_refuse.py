"""Filter values that would select nothing are refused (exit 2, the known values listed, nothing
stored), and `audit demo` keeps to its own folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.known import close_value, listing
from tests.conftest import write_csv

HEADER = ["办件编号", "地市", "服务中心", "服务类型", "服务方式", "承诺时限", "评价", "环节", "时间", "经办人"]
ROWS = [
    ["A1", "延安", "宝塔中心", "帮办", "线下", "3", "满意", "咨询", "2026-03-02 09:00", "张三"],
    ["A1", "延安", "宝塔中心", "帮办", "线下", "3", "满意", "受理", "2026-03-02 10:00", "张三"],
    ["A1", "延安", "宝塔中心", "帮办", "线下", "3", "满意", "办结", "2026-03-03 10:00", "张三"],
    ["B1", "宝鸡", "渭滨中心", "代办", "线下", "2", "", "咨询", "2026-02-02 09:00", "王五"],
    ["B1", "宝鸡", "渭滨中心", "代办", "线下", "2", "", "委托", "2026-02-03 09:00", "王五"],
    ["C1", "榆林", "榆阳中心", "帮办", "线上", "3", "", "咨询", "2026-03-20 09:00", "赵六"],
]
KNOWN_CITIES = "宝鸡、延安、榆林"
AS_OF = "2026-03-20"


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def run_count(db: Path) -> int:
    """Runs stored in `db` (0 before the first check made the table)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        if not con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'runs'").fetchall()[0][0]:
            return 0
        return con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def ingested(tmp_path) -> Path:
    """A database with cases of 延安, 宝鸡 and 榆林 and no run yet."""
    db = tmp_path / "refuse.duckdb"
    path = write_csv(tmp_path / "logs.csv", [HEADER] + ROWS)
    code, out = invoke("ingest", path, "--db", db)
    assert code == 0, out
    return db


@pytest.fixture
def checked(ingested) -> Path:
    """The same database with one run of the default pack."""
    code, out = invoke("check", "--db", ingested, "--as-of", AS_OF)
    assert code == 0, out
    return ingested


def test_check_refuses_a_city_of_no_case_before_running_anything(ingested):
    code, out = invoke("check", "--db", ingested, "--city", "西安")
    assert code == 2
    assert f"--city 西安 不在数据库中；已有: {KNOWN_CITIES}" in out
    assert run_count(ingested) == 0
    code, out = invoke("check", "--db", ingested, "--city", "延安", "--city", "延安市", "--city", "咸阳")
    assert code == 2
    assert "延安市 (是否指 延安？)、咸阳" in out and KNOWN_CITIES in out
    assert run_count(ingested) == 0


def test_check_with_a_known_city_run_count(ingested):
    code, out = invoke("check", "--db", ingested, "--city", "延安", "--as-of", AS_OF)
    assert code == 0, out
    assert "办件 1 件" in out
    assert run_count(ingested) == 1


def test_check_on_an_empty_database_says_to_ingest_first(tmp_path):
    code, out = invoke("check", "--db", tmp_path / "empty.duckdb", "--city", "西安")
    assert code == 2 and "请先运行 audit ingest" in out


def test_findings_refuses_an_unknown_rule_city_or_severity(checked):
    before = run_count(checked)
    code, out = invoke("findings", "--db", checked, "--rule", "NO-SUCH")
    assert code == 2
    assert "--rule NO-SUCH 不是审计" in out and "ARCHIVE-MATERIALS、ARCHIVE-TIMELY" in out and "…共 22 个" in out
    code, out = invoke("findings", "--db", checked, "--rule", "req-time-limt", "--city", "西安")
    assert code == 2
    assert "(是否指 REQ-TIME-LIMIT？)" in out, out           # both problems in one answer
    assert f"--city 西安 不在审计 1 的地市中；已有: {KNOWN_CITIES}" in out
    code, out = invoke("findings", "--db", checked, "--severity", "fatal")
    assert code == 2 and "error、warning 或 info" in out
    assert run_count(checked) == before


def test_findings_of_a_known_rule_or_city_without_findings_is_an_empty_answer(checked):
    code, out = invoke("findings", "--db", checked, "--rule", "req-integrity")   # letter case aside
    assert code == 0 and "没有符合条件的审计发现" in out
    code, out = invoke("findings", "--db", checked, "--city", "榆林", "--severity", "error")
    assert code == 0, out


def test_findings_city_is_checked_against_the_cities_the_run_judged(ingested):
    assert invoke("check", "--db", ingested, "--city", "延安", "--as-of", AS_OF)[0] == 0
    code, out = invoke("findings", "--db", ingested, "--city", "宝鸡")
    assert code == 2 and "--city 宝鸡 不在审计 1 的地市中；已有: 延安" in out


def test_report_refuses_a_city_or_month_without_cases(checked, tmp_path):
    out_file = tmp_path / "r.html"
    code, out = invoke("report", "--db", checked, "--out", out_file, "--city", "西安")
    assert code == 2 and f"--city 西安 不在数据库中；已有: {KNOWN_CITIES}" in out
    code, out = invoke("report", "--db", checked, "--out", out_file, "--month", "2026-05")
    assert code == 2 and "--month 2026-05 所选地市没有这个月受理的办件；已有: 2026-02、2026-03" in out
    code, out = invoke("report", "--db", checked, "--out", out_file, "--city", "延安", "--month", "2026-02")
    assert code == 2 and "已有: 2026-03" in out
    code, out = invoke("report", "--db", checked, "--out", out_file, "--month", "2026-5")
    assert code == 2 and "应为 YYYY-MM" in out
    assert not out_file.exists()
    assert run_count(checked) == 1


def test_report_refuses_an_unknown_city_before_a_run_is_made(ingested, tmp_path):
    code, out = invoke("report", "--db", ingested, "--out", tmp_path / "r.html", "--city", "延安、西安")
    assert code == 2 and "--city 西安 不在数据库中" in out
    assert run_count(ingested) == 0


def test_kpi_refuses_an_unknown_grouping_listing_the_keys(checked):
    code, out = invoke("kpi", "--db", checked, "--by", "city,cty")
    assert code == 2
    assert "--by cty (是否指 city？) 不是可用的分组；已有: city、county、hall、month、service_type、channel、object_type、staff" in out


def test_long_lists_are_cut_and_near_misses_suggested():
    assert listing([f"c{i}" for i in range(25)]) == "、".join(f"c{i}" for i in range(20)) + "…共 25 个"
    assert listing([]) == "(无)"
    assert close_value("延安市", ["宝鸡", "延安", "榆林"]) == "延安"
    assert close_value("西安", ["宝鸡", "延安", "榆林"]) is None
    assert close_value("rEq-Time-Limit", ["REQ-TIME-LIMIT"]) == "REQ-TIME-LIMIT"


# --- audit demo: its own folder, its own database ---------------------------------------------

def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_never_touches_the_users_database_and_runs_twice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "audit.duckdb"
    con = duckdb.connect(str(mine))
    con.execute("CREATE TABLE my_cases AS SELECT 'mine' AS note, 42 AS n")
    con.close()
    before = digest(mine)
    for _ in range(2):
        code, out = invoke("demo")
        assert code == 0, out
        assert digest(mine) == before
        assert (tmp_path / "demo_output" / "report.html").is_file()
        assert list((tmp_path / "demo_output" / "sample_data").glob("*.xlsx"))
        assert "demo_output/audit.duckdb" in out
    demo_db = duckdb.connect(str(tmp_path / "demo_output" / "audit.duckdb"), read_only=True)
    try:
        assert demo_db.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 1
    finally:
        demo_db.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.duckdb", "demo_output"]

    # Pointed at the user's database, or at one inside its folder that it did not make: refused.
    code, out = invoke("demo", "--db", "audit.duckdb")
    assert code == 2 and "不是 audit demo 生成的数据库" in out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "audit.duckdb").write_text("not a database")
    code, out = invoke("demo", "--out", "other")
    assert code == 2 and "other/audit.duckdb" in out
    assert (tmp_path / "other" / "audit.duckdb").read_text() == "not a database"
    assert not (tmp_path / "other" / "sample_data").exists()
    assert digest(mine) == before


def test_demo_refuses_its_database_once_the_user_ingested_into_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke("demo")[0] == 0
    demo_db = tmp_path / "demo_output" / "audit.duckdb"
    path = write_csv(tmp_path / "logs.csv", [HEADER] + ROWS)
    assert invoke("ingest", path, "--db", demo_db)[0] == 0
    before = digest(demo_db)
    code, out = invoke("demo")
    assert code == 2 and "不是 audit demo 生成的数据库" in out
    assert digest(demo_db) == before
