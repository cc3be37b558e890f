"""Cell-level problems (contract §1.5): only a key cell quarantines a row; any other unusable cell
is set aside and the row loads with that field empty. Footers and Excel-mangled ids get reasons of
their own. Exact duplicates of every kind are duplicates, and "loaded" is what the tables gained."""

from __future__ import annotations

import pytest

from audit.check.engine import run_check
from audit.ingest import ingest
from audit.outputs.kpi import run_kpis
from tests.conftest import snapshot, table, write_csv, write_xlsx

LEDGER = ["办件编号", "地市", "服务类型", "服务方式", "帮办代办员", "承诺时限", "收费金额", "到现场次数", "评价", "评价时间", "归档材料"]
GOOD = ["L1", "延安", "帮办", "线下", "张三", "5", "0", "1", "满意", "2026-03-06 10:00", "受理单;办结单"]


def ledger_row(case_id: str, **changes: str) -> list[str]:
    row = dict(zip(LEDGER, GOOD))
    row["办件编号"] = case_id
    row.update(changes)
    return [row[h] for h in LEDGER]


@pytest.mark.parametrize("column, raw, field, sql_field", [
    ("服务类型", "帮忙", "service_type", "service_type"),
    ("服务方式", "电话", "channel", "channel"),
    ("承诺时限", "五天", "promised_days", "promised_days"),
    ("收费金额", "一百", "fee", "fee"),
    ("到现场次数", "多次", "visits", "visits"),
    ("评价", "好极了", "rating", "rating"),
    ("评价时间", "2026-02-30", "rating_time", "rating_time"),
])
def test_one_bad_cell_is_set_aside_the_row_loads(tmp_path, con, column, raw, field, sql_field):
    rows = [LEDGER, ledger_row("L1", **{column: raw}), ledger_row("L2")]
    report = ingest(con, [write_csv(tmp_path / "t.csv", rows)])
    f = report.files[0]
    assert (f.rows_read, f.loaded, f.quarantined, f.duplicates, f.set_aside) == (2, 2, 0, 0, 1)
    # The row kept everything else; only that field is empty.
    got = table(con, f"SELECT {sql_field}, staff, materials FROM cases WHERE case_id = 'L1'")
    assert got == [(None, "张三", "受理单;办结单")]
    assert table(con, 'SELECT file_name, source_row, "column", field, raw FROM set_aside') == [
        ("t.csv", 2, column, field, raw)]
    reason = table(con, "SELECT reason FROM set_aside")[0][0]
    assert reason.startswith(f'{column} "{raw}"') and "已留空" in reason
    assert table(con, "SELECT set_aside FROM ingest_files") == [(1,)]


def test_haochaping_words_and_the_satisfaction_rate(tmp_path, con):
    """好评/中评/差评 are 满意/基本满意/不满意 (contract §1.3): ten cases, two 差评, one unknown word."""
    words = ["好评", "好评", "中评", "差评", "好评", "差评", "中评", "好评", "非常满意", "一星半"]
    rows = [LEDGER] + [ledger_row(f"H{i}", 评价=w) for i, w in enumerate(words)]
    events = [["办件编号", "地市", "环节", "时间", "经办人"]]
    for i in range(10):
        events += [[f"H{i}", "延安", "咨询", "2026-03-02 09:00", "张三"], [f"H{i}", "延安", "申请", "2026-03-02 09:10", "张三"],
                   [f"H{i}", "延安", "受理", "2026-03-02 09:20", "张三"], [f"H{i}", "延安", "承办", "2026-03-02 09:30", "张三"],
                   [f"H{i}", "延安", "办结", "2026-03-03 09:00", "张三"]]
    report = ingest(con, [write_xlsx(tmp_path / "台账.xlsx", rows), write_csv(tmp_path / "环节.csv", events)])
    assert (report.files[0].loaded, report.files[0].set_aside) == (10, 1)
    assert table(con, "SELECT rating, count(*) FROM cases GROUP BY 1 ORDER BY 1") == [
        ("不满意", 2), ("基本满意", 2), ("满意", 4), ("非常满意", 1), (None, 1)]
    run_check(con)
    kpi = run_kpis(con, None).table
    # 7 of the 9 rated cases are satisfied (满意/基本满意/非常满意); the unknown word is not a rating.
    assert kpi.loc[0, "satisfaction_rate"] == pytest.approx(7 / 9)
    assert table(con, "SELECT count(*) FROM findings WHERE rule_id = 'DATA-NO-SERVICE-TYPE'") == [(0,)]


def test_excel_scientific_ids_and_footers_are_quarantined_with_their_reasons(tmp_path, con):
    rows = [["办件编号", "地市", "环节", "时间", "经办人"],
            ["202603000001", "延安", "咨询", "2026-03-02 09:00", "张三"],
            ["2.02603E+11", "延安", "受理", "2026-03-02 10:00", "张三"],
            ["2.02603e+11", "延安", "承办", "2026-03-02 11:00", "张三"],
            ["合计", "", "", "", "3"],
            ["", "", "", "", ""],
            ["制表人：王五", "", "", "", ""],
            ["", "总计：3 件", "", "", ""],
            ["填表说明：时间为北京时间", "", "", "", ""]]
    report = ingest(con, [write_csv(tmp_path / "e.csv", rows)])
    f = report.files[0]
    assert (f.rows_read, f.loaded, f.quarantined) == (8, 1, 7)
    reasons = dict(table(con, "SELECT source_row, reason FROM quarantine"))
    assert reasons[3].startswith('办件编号 "2.02603E+11" 是 Excel 改成科学计数法的编号') and "文本" in reasons[3]
    assert reasons[4].startswith('办件编号 "2.02603e+11" 是 Excel')
    footer = "表尾行 (合计、制表人、填表说明等)，不是办件记录"
    assert [reasons[r] for r in (5, 7, 8, 9)] == [footer] * 4
    assert reasons[6] == "空行 (整行没有内容)"


def test_an_excel_number_too_long_for_its_digits_is_caught(tmp_path, con):
    """A 17-digit id stored by Excel as a number has lost its last digits: it reads as scientific
    notation and is quarantined, never loaded as a different id."""
    rows = [["办件编号", "地市", "环节", "时间"], [20260312000001234, "延安", "咨询", "2026-03-02 09:00"],
            [202603120001, "延安", "咨询", "2026-03-02 09:00"]]
    report = ingest(con, [write_xlsx(tmp_path / "e.xlsx", rows)])
    assert (report.files[0].loaded, report.files[0].quarantined) == (1, 1)
    assert table(con, "SELECT case_id FROM events") == [("202603120001",)]
    assert "科学计数法" in table(con, "SELECT reason FROM quarantine")[0][0]


def loaded_equals_gained(con, report) -> None:
    """Each file's "loaded" is the rows the tables hold from it (counted here by our own SQL)."""
    for f in report.files:
        tbl = "case_rows" if f.layout in ("cases", "wide") else None
        if tbl:
            n = table(con, f"""SELECT count(*) FROM case_rows c JOIN ingest_files i USING (ingest_id, file_id)
                               WHERE c.ingest_id = {report.ingest_id} AND i.file_name = '{f.name}'""")[0][0]
        else:
            n = table(con, f"""SELECT count(*) FROM (SELECT ingest_id, file_id FROM event_rows
                                                     UNION ALL SELECT ingest_id, file_id FROM waiting_events) e
                               JOIN ingest_files i USING (ingest_id, file_id)
                               WHERE e.ingest_id = {report.ingest_id} AND i.file_name = '{f.name}'""")[0][0]
        assert f.loaded == n, (f.name, f.loaded, n)
        assert f.rows_read == f.loaded + f.quarantined + f.duplicates


def test_exact_duplicates_of_every_kind(tmp_path, con):
    # The ledger: A1 twice, identical, and A2.
    ledger = write_csv(tmp_path / "a.csv", [["办件编号", "地市", "服务类型"], ["A1", "延安", "帮办"], ["A1", "延安", "帮办"],
                                            ["A2", "延安", "代办"]])
    r = ingest(con, [ledger])
    assert [(f.rows_read, f.loaded, f.quarantined, f.duplicates) for f in r.files] == [(3, 2, 0, 1)]
    loaded_equals_gained(con, r)
    # The same ledger in a second file of one ingest, and an event log with repeats inside it and
    # across its two files (one without a city).
    ledger2 = write_csv(tmp_path / "b.csv", [["办件编号", "地市", "服务类型"], ["A1", "延安", "帮办"], ["A3", "宝鸡", "帮办"]])
    ev1 = write_csv(tmp_path / "e1.csv", [["办件编号", "地市", "环节", "时间"], ["A1", "延安", "咨询", "2026-03-02 09:00"],
                                          ["A1", "延安", "咨询", "2026-03-02 09:00"], ["A3", "宝鸡", "咨询", "2026-03-02 09:00"]])
    ev2 = write_csv(tmp_path / "e2.csv", [["办件编号", "环节", "时间"], ["A1", "咨询", "2026-03-02 09:00"],
                                          ["A1", "受理", "2026-03-02 10:00"], ["A3", "咨询", "2026-03-02 09:00"]])
    r = ingest(con, [ledger2, ev1, ev2])
    counts = {f.name: (f.rows_read, f.loaded, f.quarantined, f.duplicates) for f in r.files}
    assert counts == {"b.csv": (2, 1, 0, 1),          # A1 as the database has it; A3 new
                      "e1.csv": (3, 2, 0, 1),         # the second A1 咨询 repeats the first
                      "e2.csv": (3, 1, 0, 2)}         # A1 咨询 and A3 咨询 are in e1.csv already
    loaded_equals_gained(con, r)
    before = snapshot(con)
    r = ingest(con, [ledger, ledger2, ev1, ev2])
    assert r.loaded == 0 and r.quarantined == 0 and r.duplicates == 11
    loaded_equals_gained(con, r)
    assert snapshot(con) == before


def test_case_rows_across_files_of_one_ingest(tmp_path, con):
    """Two case tables with different columns for the same case: both are merged into one row;
    the earlier one adds nothing the stored case lacks, so it counts as a duplicate."""
    a = write_csv(tmp_path / "a.csv", [["办件编号", "地市", "服务类型", "帮办代办员"], ["K1", "延安", "帮办", "张三"]])
    b = write_csv(tmp_path / "b.csv", [["办件编号", "地市", "服务类型", "收费金额"], ["K1", "延安", "帮办", "0"]])
    r = ingest(con, [a, b])
    assert [(f.loaded, f.duplicates, f.quarantined) for f in r.files] == [(0, 1, 0), (1, 0, 0)]
    assert table(con, "SELECT staff, fee, source_file FROM cases") == [("张三", 0, "b.csv")]
    loaded_equals_gained(con, r)
    c = write_csv(tmp_path / "c.csv", [["办件编号", "地市", "服务类型", "收费金额"], ["K1", "延安", "代办", "0"]])
    r = ingest(con, [b, c])          # b says 帮办, c (later) says 代办: b's row is quarantined
    assert [(f.loaded, f.duplicates, f.quarantined) for f in r.files] == [(0, 0, 1), (1, 0, 0)]
    assert table(con, "SELECT service_type, staff FROM cases") == [("代办", "张三")]
    loaded_equals_gained(con, r)
