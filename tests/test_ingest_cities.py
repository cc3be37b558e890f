"""City resolution (contract §1.2): an event row without a city takes its case's city, from case
rows of the same ingest or of the database, in any order; an ambiguous case id is quarantined;
an event whose case is unknown waits for its case row and joins it when it arrives."""

from __future__ import annotations

import pytest

from audit.check.engine import run_check
from audit.ingest import ingest
from tests.conftest import snapshot, table, write_csv

EVENTS_ZH = [["办件编号", "环节", "时间", "经办人", "备注"],
             ["A1", "咨询", "2026-03-02 09:00:00", "张三", ""],
             ["A1", "申请", "2026-03-02 09:30:00", "张三", ""],
             ["A1", "受理", "2026-03-02 10:00:00", "张三", "材料齐全"],
             ["B1", "咨询", "2026-03-02 09:00:00", "李四", ""],
             ["B1", "需求分析", "2026-03-03 11:00:00", "李四", ""],
             ["C1", "咨询", "2026-03-04 09:00:00", "王五", ""]]
EVENTS_EN = [["case_id", "step", "time", "staff", "note"], *EVENTS_ZH[1:]]
CASES = [["办件编号", "地市", "服务类型"], ["A1", "延安", "帮办"], ["B1", "宝鸡", "代办"], ["C1", "榆林", "帮办"]]
# What every order must end with: (city, case_id, step, staff, row of the event file).
EXPECTED = [("宝鸡", "B1", "咨询", "李四", 5), ("宝鸡", "B1", "需求分析", "李四", 6),
            ("延安", "A1", "咨询", "张三", 2), ("延安", "A1", "申请", "张三", 3), ("延安", "A1", "受理", "张三", 4),
            ("榆林", "C1", "咨询", "王五", 7)]


def events_of(con):
    return table(con, "SELECT city, case_id, step, staff, source_row FROM events ORDER BY city, case_id, time")


@pytest.mark.parametrize("header", [EVENTS_ZH, EVENTS_EN], ids=["zh", "en"])
@pytest.mark.parametrize("order", ["one_ingest", "one_ingest_cases_first", "events_then_cases", "cases_then_events"])
def test_city_less_events_take_their_cases_city_in_any_order(tmp_path, con, header, order):
    ev = write_csv(tmp_path / "环节.csv", header)
    cs = write_csv(tmp_path / "台账.csv", CASES)
    if order == "one_ingest":
        reports = [ingest(con, [ev, cs])]
    elif order == "one_ingest_cases_first":
        reports = [ingest(con, [cs, ev])]
    elif order == "events_then_cases":
        reports = [ingest(con, [ev]), ingest(con, [cs])]
        first = reports[0].files[0]
        # Loaded, but waiting for the case table: nothing is quarantined, nothing is judged yet.
        assert (first.rows_read, first.loaded, first.quarantined, first.waiting) == (6, 6, 0, 6)
        assert reports[1].joined == 6 and reports[1].waiting_total == 0
    else:
        reports = [ingest(con, [cs]), ingest(con, [ev])]
    assert events_of(con) == EXPECTED
    assert table(con, "SELECT count(*) FROM waiting_events") == [(0,)]
    assert table(con, "SELECT count(*) FROM quarantine") == [(0,)]
    for r in reports:
        for f in r.files:
            assert f.rows_read == f.loaded + f.quarantined + f.duplicates
    # Every order gives the same database: the same file again is all duplicates.
    before = snapshot(con)
    again = ingest(con, [ev, cs])
    assert again.loaded == 0 and again.duplicates == 9
    assert snapshot(con)["events"] == before["events"]


def test_ambiguous_case_id_is_quarantined_naming_the_cities(tmp_path, con):
    ingest(con, [write_csv(tmp_path / "c.csv", [["办件编号", "地市", "服务类型"], ["A1", "延安", "帮办"],
                                                ["A1", "宝鸡", "代办"], ["B1", "宝鸡", "代办"]])])
    report = ingest(con, [write_csv(tmp_path / "e.csv", [["办件编号", "环节", "时间"], ["A1", "咨询", "2026-03-02 09:00"],
                                                         ["B1", "咨询", "2026-03-02 09:00"]])])
    f = report.files[0]
    assert (f.rows_read, f.loaded, f.quarantined, f.city_resolved) == (2, 1, 1, 1)
    assert table(con, 'SELECT source_row, "column", reason FROM quarantine') == [
        (2, "办件编号", "办件编号 A1 在多个地市 (宝鸡、延安) 都有，无法确定本行属于哪个地市；请在文件中加 地市 列")]
    assert events_of(con) == [("宝鸡", "B1", "咨询", None, 3)]


def test_waiting_events_are_listed_by_check_and_join_later(tmp_path, con):
    ingest(con, [write_csv(tmp_path / "c.csv", CASES[:2])])
    report = ingest(con, [write_csv(tmp_path / "e.csv", EVENTS_ZH)])
    assert report.files[0].waiting == 3 and report.waiting_total == 3      # B1 and C1 are not known yet
    assert table(con, "SELECT case_id, step, source_row FROM waiting_events ORDER BY source_row") == [
        ("B1", "咨询", 5), ("B1", "需求分析", 6), ("C1", "咨询", 7)]
    result = run_check(con)
    dq = result.data_quality
    assert (dq["waiting_events"], dq["waiting_cases"], dq["waiting_sample"]) == (3, 2, ["B1", "C1"])
    assert result.cases == 1                       # only A1 is judged
    stored = table(con, "SELECT data_quality->>'waiting_events' FROM runs")
    assert stored == [("3",)]
    # B1's case table arrives: its events join it, with their own rows and file.
    joined = ingest(con, [write_csv(tmp_path / "c2.csv", [CASES[0], CASES[2]])])
    assert (joined.joined, joined.waiting_total) == (2, 1)
    assert table(con, "SELECT city, case_id, step, source_file, source_row FROM events WHERE case_id = 'B1' ORDER BY time") == [
        ("宝鸡", "B1", "咨询", "e.csv", 5), ("宝鸡", "B1", "需求分析", "e.csv", 6)]
    assert table(con, "SELECT case_id FROM waiting_events") == [("C1",)]


def test_waiting_events_are_replaced_by_a_corrected_export(tmp_path, con):
    first = write_csv(tmp_path / "e1.csv", [["办件编号", "环节", "时间"], ["X1", "咨询", "2026-03-02 09:00"],
                                            ["X1", "受理", "2026-03-02 10:00"]])
    ingest(con, [first])
    again = ingest(con, [first])
    assert (again.loaded, again.duplicates, again.waiting_total) == (0, 2, 2)
    corrected = write_csv(tmp_path / "e2.csv", [["办件编号", "环节", "时间"], ["X1", "咨询", "2026-03-02 09:00"],
                                                ["X1", "受理", "2026-03-02 11:00"]])
    report = ingest(con, [corrected])
    assert (report.loaded, report.waiting_total) == (2, 2)
    assert table(con, "SELECT strftime(time, '%H:%M') FROM waiting_events ORDER BY time") == [("09:00",), ("11:00",)]


def test_city_option_only_fills_empty_cities_and_says_how_many(tmp_path, con, cli):
    path = write_csv(tmp_path / "e.csv", [["办件编号", "地市", "环节", "时间"], ["A1", "宝鸡", "咨询", "2026-03-02 09:00"],
                                          ["A2", "", "咨询", "2026-03-02 09:00"], ["A3", "", "受理", "2026-03-02 09:00"]])
    code, out = cli("ingest", path, "--city", "延安")
    assert code == 0 and "--city 填补了 2 行的地市" in out
    from audit.db import connect
    c = connect(tmp_path / "audit.duckdb")
    try:
        assert table(c, "SELECT case_id, city FROM events ORDER BY case_id") == [("A1", "宝鸡"), ("A2", "延安"), ("A3", "延安")]
        assert table(c, "SELECT city_filled, city_option FROM ingest_files") == [(2, "延安")]
    finally:
        c.close()


def test_case_table_without_city_is_placed_or_quarantined(tmp_path, con):
    ingest(con, [write_csv(tmp_path / "e.csv", [["办件编号", "地市", "环节", "时间"], ["A1", "延安", "咨询", "2026-03-02 09:00"]])])
    report = ingest(con, [write_csv(tmp_path / "c.csv", [["办件编号", "服务类型"], ["A1", "帮办"], ["Z9", "代办"]])])
    f = report.files[0]
    assert (f.rows_read, f.loaded, f.quarantined, f.city_resolved) == (2, 1, 1, 1)
    assert table(con, "SELECT city, case_id, service_type FROM cases") == [("延安", "A1", "帮办")]
    assert table(con, "SELECT source_row, reason FROM quarantine") == [
        (3, "缺少地市：文件没有 地市 列 (或本行为空)，库中和本次导入中也没有办件 Z9；请用 --city 指定，或在文件中加 地市 列")]


def test_city_option_on_a_file_of_other_cities_is_flagged(tmp_path, cli):
    """--city on a file that spans cities makes copies of the other cities' cases: the ingest
    does what it is told (fills the empty cities) but says which case ids belong elsewhere."""
    cases = write_csv(tmp_path / "c.csv", CASES)
    code, _ = cli("ingest", cases)
    code, out = cli("ingest", write_csv(tmp_path / "e.csv", EVENTS_ZH), "--city", "延安")
    assert code == 0 and "--city 填补了 6 行的地市" in out
    assert "其中 2 个办件编号在库中属于其他地市 (宝鸡、榆林)" in out
