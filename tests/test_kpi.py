"""The figures of contract §5 against values computed by hand on a small fixture."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import write_csv

HEADER = ["办件编号", "地市", "服务中心", "服务类型", "服务方式", "承诺时限", "收费金额", "到现场次数", "评价", "评价时间",
          "归档材料", "帮办代办员", "环节", "时间", "经办人"]


def case(cid, city, stype, days, rating, rtime, materials, staff, events):
    return [[cid, city, "中心", stype, "线下", days, "0", "1", rating, rtime, materials, staff, step, when, staff]
            for step, when in events]


# Audit date 2026-03-20 (a Friday; no holidays in March 2026).
ROWS = (
    # A: 帮办, complete flow, on time, 满意 → compliant.
    case("A", "延安", "帮办", "3", "满意", "", "受理单、办结单", "张三",
         [("咨询", "2026-03-02 09:00"), ("申请", "2026-03-02 09:30"), ("受理", "2026-03-02 10:00"),
          ("承办", "2026-03-03 10:00"), ("办结", "2026-03-04 10:00"), ("资料归档", "2026-03-04 11:00")])
    # B: 帮办, response late (受理 03-05 > 03-03), completed late (deadline 03-09), 不满意 followed up in time.
    + case("B", "延安", "帮办", "2", "不满意", "2026-03-16 12:00", "", "张三",
           [("咨询", "2026-03-02 09:00"), ("受理", "2026-03-05 10:00"), ("办结", "2026-03-16 10:00"),
            ("回访", "2026-03-18 10:00")])
    # C: 代办, open, past its deadline (委托 03-03 + 5 = 03-10) → overdue, unresolved.
    + case("C", "延安", "代办", "5", "", "", "", "李四",
           [("咨询", "2026-03-02 09:00"), ("需求分析", "2026-03-02 10:00"), ("委托", "2026-03-03 10:00")])
    # D: 代办, open and suspended → excluded from 解决率; compliant.
    + case("D", "延安", "代办", "1", "", "", "", "李四",
           [("咨询", "2026-03-16 09:00"), ("需求分析", "2026-03-16 10:00"), ("委托", "2026-03-16 11:00"),
            ("承办", "2026-03-17 10:00"), ("中止", "2026-03-18 10:00")])
    # E: 帮办, only 咨询 on the audit date → response pending.
    + case("E", "延安", "帮办", "3", "", "", "", "张三", [("咨询", "2026-03-20 09:00")])
    # F: 宝鸡, on time, 非常不满意 never followed up (limit 03-12) → EVAL-FOLLOWUP error.
    + case("F", "宝鸡", "帮办", "3", "非常不满意", "2026-03-05 12:00", "受理单；办结单", "王五",
           [("咨询", "2026-03-02 09:00"), ("申请", "2026-03-02 09:30"), ("受理", "2026-03-02 10:00"),
            ("承办", "2026-03-03 10:00"), ("办结", "2026-03-04 10:00"), ("资料归档", "2026-03-04 11:00")])
    # G: 榆林, a pending case only → every rate but 合规率 is empty.
    + case("G", "榆林", "帮办", "3", "", "", "", "赵六", [("咨询", "2026-03-20 10:00")])
)

EXPECTED = {
    "延安": dict(cases=5, response_rate=3 / 4, resolution_rate=2 / 3, on_time_rate=1 / 2, satisfaction_rate=1 / 2,
                mean_rating=3.0, followup_rate=1.0, compliance_rate=3 / 5),
    "宝鸡": dict(cases=1, response_rate=1.0, resolution_rate=1.0, on_time_rate=1.0, satisfaction_rate=0.0,
                mean_rating=1.0, followup_rate=0.0, compliance_rate=0.0),
    "榆林": dict(cases=1, response_rate=None, resolution_rate=None, on_time_rate=None, satisfaction_rate=None,
                mean_rating=None, followup_rate=None, compliance_rate=1.0),
}


@pytest.fixture
def kpi_db(tmp_path):
    db = tmp_path / "kpi.duckdb"
    path = write_csv(tmp_path / "kpi.csv", [HEADER] + ROWS, encoding="gbk")
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--db", str(db)]).exit_code == 0
    assert runner.invoke(app, ["check", "--db", str(db), "--as-of", "2026-03-20"]).exit_code == 0
    return db


def kpi(db, *args):
    result = CliRunner().invoke(app, ["kpi", "--db", str(db), "--as-of", "2026-03-20", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_figures_by_city_match_hand_computed_values(kpi_db):
    data = json.loads(kpi(kpi_db, "--by", "city", "--format", "json"))
    rows = {r["city"]: r for r in data["rows"]}
    assert set(rows) == set(EXPECTED)
    for city, want in EXPECTED.items():
        for fig, value in want.items():
            got = rows[city][fig]
            if value is None:
                assert got is None, (city, fig, got)
            else:
                assert got == pytest.approx(value), (city, fig, got)


def test_overall_and_csv_columns(kpi_db):
    text = kpi(kpi_db, "--format", "csv")
    header, row = text.strip().splitlines()
    assert header == "cases,response_rate,resolution_rate,on_time_rate,satisfaction_rate,mean_rating,followup_rate,compliance_rate"
    values = row.split(",")
    assert values[0] == "7"
    assert float(values[1]) == pytest.approx(4 / 5)          # A, C, D, F on time; B late; E, G pending
    assert float(values[7]) == pytest.approx(4 / 7)          # A, D, E, G compliant
    text = kpi(kpi_db, "--by", "city,service_type", "--format", "csv")
    assert text.splitlines()[0].startswith("city,service_type,cases,response_rate")
    empty = [line for line in text.splitlines() if line.startswith("榆林,帮办")][0]
    assert empty.split(",")[3:9] == ["", "", "", "", "", ""]  # empty denominators are empty, not 0


def test_grouping_keys_and_errors(kpi_db):
    for key in ("county", "hall", "month", "channel", "object_type", "staff"):
        data = json.loads(kpi(kpi_db, "--by", key, "--format", "json"))
        assert sum(r["cases"] for r in data["rows"]) == 7
    data = json.loads(kpi(kpi_db, "--by", "staff", "--format", "json"))
    assert {r["staff"] for r in data["rows"]} == {"张三", "李四", "王五", "赵六"}
    result = CliRunner().invoke(app, ["kpi", "--db", str(kpi_db), "--by", "planet"])
    assert result.exit_code == 2 and "planet" in result.output


def test_stored_cells_give_every_grouping_exactly(tmp_path):
    """`audit check` keeps the figures summed per combination of all keys; every grouping computed
    from those cells equals the same grouping computed case by case (the bundled sample)."""
    import itertools

    from audit.check.engine import run_check
    from audit.db import connect
    from audit.figures.metrics import GROUP_KEYS, compute_kpis, kpi_cells, use_run_cases
    from audit.ingest import ingest
    from audit.sample.writers import write_sample

    out = tmp_path / "s"
    manifest = write_sample(out, cases_per_city=120, seed=11)
    con = connect(tmp_path / "s.duckdb")
    for entry in manifest:
        ingest(con, [out / entry["file"]], city=entry.get("city"),
               profile=(out / entry["profile"]) if entry.get("profile") else None)
    run_id = run_check(con).run_id
    cells = kpi_cells(run_id)
    n_cells = con.execute(f"SELECT count(*) FROM {cells}").fetchall()[0][0]
    assert 0 < n_cells < con.execute("SELECT count(*) FROM cases").fetchall()[0][0]
    use_run_cases(con, run_id)
    assert con.execute("SELECT count(*) FROM case_kpi").fetchall()[0][0] == \
        con.execute("SELECT count(*) FROM cases").fetchall()[0][0]
    groupings = [[]] + [[k] for k in GROUP_KEYS] + [list(p) for p in itertools.combinations(GROUP_KEYS, 2)]
    for by in groupings:
        per_case = compute_kpis(con, by, run_id)
        from_cells = compute_kpis(con, by, run_id, source=cells)
        assert per_case.shape == from_cells.shape, by
        for a, b in zip(per_case.to_dict("records"), from_cells.to_dict("records")):
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], float) and a[k] == a[k]:
                    assert b[k] == pytest.approx(a[k], rel=1e-12), (by, k)
                else:
                    assert str(a[k]) == str(b[k]), (by, k)
    con.close()


def test_a_run_stored_without_its_cases_is_refused(kpi_db, tmp_path):
    """A run stored by an older version (no per-case results, no figures) cannot serve `kpi`:
    exit 2 with what to run — never figures rebuilt with whatever pack is at hand."""
    import shutil

    import duckdb

    db = tmp_path / "old.duckdb"
    shutil.copy(kpi_db, db)
    con = duckdb.connect(str(db))
    con.execute("DROP TABLE run_kpi_cells")
    con.execute("DROP TABLE run_cases")
    con.close()
    result = CliRunner().invoke(app, ["kpi", "--by", "city", "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert "旧版本" in result.output and "audit check" in result.output


def test_a_key_named_twice_groups_once(kpi_db):
    """`--by city,city` is `--by city` (it used to end in an internal error)."""
    assert json.loads(kpi(kpi_db, "--by", "city,city", "--format", "json")) == json.loads(kpi(kpi_db, "--by", "city", "--format", "json"))
