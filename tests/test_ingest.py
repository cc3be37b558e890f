"""Ingestion: formats, encodings, layouts, timestamp styles, accounting, idempotence, replacement."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from audit.errors import InputError, PackError
from audit.ingest import ingest
from tests.conftest import snapshot, table, write_csv, write_xlsx

EVENT_HEADER = ["办件编号", "地市", "环节", "时间", "经办人", "备注"]
EVENTS = [
    ["YA001", "延安", "咨询", "2025-03-03 09:00:00", "张三", ""],
    ["YA001", "延安", "申请", "2025-03-03 09:30:00", "张三", ""],
    ["YA001", "延安", "受理", "2025-03-03 10:00:00", "张三", "材料齐全"],
    ["YA001", "延安", "承办", "2025-03-04 10:00:00", "张三", ""],
    ["YA001", "延安", "办结", "2025-03-05 16:00:00", "张三", ""],
    ["YA002", "延安", "服务咨询", "2025-03-03 11:00:00", "李四", ""],
    ["YA002", "延安", "签订委托书", "2025-03-04 11:00:00", "李四", ""],
]


def counts(report):
    f = report.files[0]
    return f.rows_read, f.loaded, f.quarantined, f.duplicates


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_event_log_in_each_encoding(tmp_path, con, encoding):
    path = write_csv(tmp_path / "events.csv", [EVENT_HEADER] + EVENTS, encoding=encoding, newline="\r\n")
    report = ingest(con, [path])
    assert counts(report) == (7, 7, 0, 0)
    assert report.files[0].layout == "events"
    steps = [r[0] for r in table(con, "SELECT step FROM events WHERE case_id = 'YA002' ORDER BY seq")]
    assert steps == ["咨询", "委托"]  # aliases stored under the canonical vocabulary
    assert table(con, "SELECT DISTINCT staff FROM events WHERE case_id='YA002'") == [("李四",)]


def test_gbk_is_detected_not_assumed(tmp_path, con):
    """A GBK file whose first bytes are pure ASCII is still read as GBK."""
    rows = [["case_id", "city", "step", "time", "note"]] + [[f"X{i}", "Baoji", "consult", "2025-03-03", ""] for i in range(200)]
    rows.append(["X999", "宝鸡", "受理", "2025-03-04", "窗口受理"])
    path = write_csv(tmp_path / "late_gbk.csv", rows, encoding="gbk")
    report = ingest(con, [path])
    assert report.files[0].encoding == "gb18030"
    assert table(con, "SELECT note FROM events WHERE case_id = 'X999'") == [("窗口受理",)]


@pytest.mark.parametrize("text, expected", [
    ("2025-03-05 14:30:00", dt.datetime(2025, 3, 5, 14, 30)),
    ("2025/3/5 14:30", dt.datetime(2025, 3, 5, 14, 30)),
    ("2025-03-05", dt.datetime(2025, 3, 5)),
    ("2025年3月5日 14:30", dt.datetime(2025, 3, 5, 14, 30)),
    ("2025年3月5日", dt.datetime(2025, 3, 5)),
    ("2025-03-05T14:30:00", dt.datetime(2025, 3, 5, 14, 30)),
    ("2025-03-05T06:30:00Z", dt.datetime(2025, 3, 5, 14, 30)),
    ("2025-03-05T14:30:00+08:00", dt.datetime(2025, 3, 5, 14, 30)),
    ("45721.6041666667", dt.datetime(2025, 3, 5, 14, 30)),  # an Excel serial that became text
    ("2025-03-05 14:30:00.0", dt.datetime(2025, 3, 5, 14, 30)),  # database exports
    ("20250305", dt.datetime(2025, 3, 5)),
    ("2025.3.5", dt.datetime(2025, 3, 5)),
])
def test_timestamp_styles(tmp_path, con, text, expected):
    path = write_csv(tmp_path / "t.csv", [EVENT_HEADER, ["A", "延安", "咨询", text, "", ""]])
    report = ingest(con, [path])
    assert counts(report) == (1, 1, 0, 0)
    assert table(con, "SELECT time FROM events") == [(expected,)]


def test_xlsx_case_ledger_with_title_and_excel_dates(tmp_path, con):
    header = ["服务编号", "城市", "服务类型", "服务方式", "评价等级", "评价时间", "承诺时限", "收费", "身份证号"]
    rows = [header,
            ["BJ1", "宝鸡市", "帮办", "线下", 5, dt.datetime(2025, 3, 8, 10, 0), 3, 0, "610102199001011234"],
            ["BJ2", "宝鸡", "代办服务", "网上", "不满意", None, "5个工作日", "0.00", None],
            [None] * 9,
            ["BJ3", "宝鸡", "代办", "线下", 2, "2025年3月9日", "即办", "免费", None]]
    path = write_xlsx(tmp_path / "ledger.xlsx", rows, sheet="办件台账", title="宝鸡市帮办代办服务台账", blank_rows=1)
    report = ingest(con, [path])
    f = report.files[0]
    assert (f.layout, f.sheet, f.header_row) == ("cases", "办件台账", 3)
    assert counts(report) == (4, 3, 1, 0)  # the blank row is accounted for in the quarantine
    got = table(con, "SELECT case_id, city, service_type, channel, rating, rating_score, rating_time, promised_days, fee FROM cases ORDER BY case_id")
    assert got == [
        ("BJ1", "宝鸡", "帮办", "线下", "非常满意", 5, dt.datetime(2025, 3, 8, 10, 0), 3, 0),
        ("BJ2", "宝鸡", "代办", "线上", "不满意", 2, None, 5, 0),
        ("BJ3", "宝鸡", "代办", "线下", "不满意", 2, dt.datetime(2025, 3, 9), 0, 0),
    ]
    assert table(con, "SELECT source_row FROM cases ORDER BY case_id") == [(4,), (5,), (7,)]


def test_combined_export_gives_cases_and_events(tmp_path, con):
    header = ["办件编号", "地市", "服务类型", "承诺时限(工作日)", "评价", "环节", "时间", "经办人"]
    rows = [header,
            ["C1", "榆林", "帮办", "3", "", "咨询", "2025-03-03 09:00", "周七"],
            ["C1", "榆林", "帮办", "3", "", "受理", "2025-03-03 10:00", "周七"],
            ["C1", "榆林", "帮办", "3", "满意", "办结", "2025-03-05 10:00", "周七"]]
    report = ingest(con, [write_csv(tmp_path / "combined.csv", rows, encoding="gbk")])
    assert report.files[0].layout == "combined"
    assert counts(report) == (3, 3, 0, 0)
    assert table(con, "SELECT case_id, city, service_type, promised_days, rating FROM cases") == [("C1", "榆林", "帮办", 3, "满意")]
    assert table(con, "SELECT count(*) FROM events") == [(3,)]


def test_separate_files_in_any_order(tmp_path, con):
    ev = write_csv(tmp_path / "ev.csv", [["办件编号", "环节", "时间"], ["Q1", "咨询", "2025-03-03"]])
    cs = write_csv(tmp_path / "cs.csv", [["办件编号", "服务类型"], ["Q1", "代办"]])
    ingest(con, [ev], city="延安")
    assert table(con, "SELECT case_id, service_type FROM cases") == [("Q1", None)]  # known from events
    ingest(con, [cs], city="延安")
    assert table(con, "SELECT case_id, service_type FROM cases") == [("Q1", "代办")]
    assert table(con, "SELECT count(*) FROM events") == [(1,)]


def test_parquet(tmp_path, con):
    t = pa.table({"case_id": ["P1", "P1"], "city": ["延安", "延安"], "step": ["consult", "accept"],
                  "time": pa.array([dt.datetime(2025, 3, 3, 9), dt.datetime(2025, 3, 3, 10)], pa.timestamp("us")),
                  "staff": ["张三", "张三"]})
    pq.write_table(t, tmp_path / "ev.parquet")
    report = ingest(con, [tmp_path / "ev.parquet"])
    assert counts(report) == (2, 2, 0, 0)
    assert table(con, "SELECT step, time FROM events ORDER BY seq") == [
        ("咨询", dt.datetime(2025, 3, 3, 9)), ("受理", dt.datetime(2025, 3, 3, 10))]


def test_wide_ledger_through_profile(tmp_path, con):
    profile = tmp_path / "p.yaml"
    profile.write_text("""
name: 榆林台账
city: 榆林
columns:
  受理编号: case_id
  办理类型: service_type
  时限: promised_days
wide:
  咨询日期: 咨询
  受理日期: 受理
  办结日期: 办结
values:
  service_type: {帮办服务: 帮办}
""", encoding="utf-8")
    rows = [["受理编号", "办理类型", "时限", "咨询日期", "受理日期", "办结日期"],
            ["W1", "帮办服务", 3, "2025-03-03 09:00", "2025-03-03 10:00", ""],
            ["W2", "帮办服务", 3, "2025-03-03 09:00", "2025-13-03", ""]]
    path = write_xlsx(tmp_path / "wide.xlsx", rows, title="榆林市台账")
    report = ingest(con, [path], profile=profile)
    assert report.files[0].layout == "wide"
    # An unreadable time column is a cell set aside (contract §1.5): the case loads without that step.
    assert counts(report) == (2, 2, 0, 0) and report.files[0].set_aside == 1
    assert table(con, "SELECT case_id, step FROM events ORDER BY case_id, time") == [
        ("W1", "咨询"), ("W1", "受理"), ("W2", "咨询")]
    assert table(con, "SELECT case_id, city, service_type, promised_days FROM cases ORDER BY 1") == [
        ("W1", "榆林", "帮办", 3), ("W2", "榆林", "帮办", 3)]
    assert table(con, 'SELECT source_row, "column", raw, reason FROM set_aside') == [
        (4, "受理日期", "2025-13-03", '受理日期 "2025-13-03" 无法识别，该行的 受理 环节未载入')]
    assert table(con, "SELECT count(*) FROM quarantine") == [(0,)]


def test_dirty_file_accounting(tmp_path, con):
    rows = [EVENT_HEADER,
            ["D1", "延安", "咨询", "2025-03-03 09:00", "张三", ""],
            ["D1", "延安", "受理", "2025-13-01", "张三", ""],        # bad date
            ["D1", "延安", "喝茶", "2025-03-03 10:00", "张三", ""],   # unknown step
            ["", "延安", "受理", "2025-03-03 10:00", "张三", ""],     # missing case id
            ["D1", "延安", "咨询", "2025-03-03 09:00", "张三", ""],   # duplicate
            ["", "", "", "", "", ""],                                   # blank
            ["D2", "延安", "咨询", "2025/3/3 9:00", "李四", ""]]
    path = write_csv(tmp_path / "dirty.csv", rows, title="延安市帮办代办明细表（导出）")
    report = ingest(con, [path])
    read, loaded, quarantined, dups = counts(report)
    assert (read, loaded, quarantined, dups) == (7, 2, 4, 1)
    assert read == loaded + quarantined + dups
    reasons = [r[0] for r in table(con, "SELECT reason FROM quarantine ORDER BY source_row")]
    assert reasons[0] == '时间 "2025-13-01" 无法识别'
    assert "喝茶" in reasons[1] and "环节" in reasons[1]
    assert reasons[2] == "办件编号 为空"
    assert "空行" in reasons[3]
    assert table(con, "SELECT \"column\" FROM quarantine WHERE source_row = 4") == [("时间",)]
    stored = table(con, "SELECT rows_read, loaded, quarantined, duplicates FROM ingest_files")
    assert stored == [(7, 2, 4, 1)]


def test_ragged_rows_are_quarantined_not_truncated(tmp_path, con):
    path = tmp_path / "ragged.csv"
    path.write_text("办件编号,地市,环节,时间\nR1,延安,咨询,2025-03-03\nR1,延安,受理,2025-03-04,多出来的\nR2,延安,咨询\n", encoding="utf-8")
    report = ingest(con, [path])
    assert counts(report) == (3, 1, 2, 0)
    reasons = [r[0] for r in table(con, "SELECT reason FROM quarantine ORDER BY source_row")]
    assert table(con, "SELECT source_row FROM quarantine ORDER BY 1") == [(3,), (4,)]
    assert reasons[0] == "本行有 5 个字段，表头只有 4 列"
    assert reasons[1] == "时间 为空"


def test_same_file_twice_changes_nothing(tmp_path, con):
    path = write_csv(tmp_path / "ev.csv", [EVENT_HEADER] + EVENTS + [["", "延安", "咨询", "x", "", ""]])
    ingest(con, [path])
    before = snapshot(con)
    report = ingest(con, [path])
    assert counts(report) == (8, 0, 1, 7)
    assert snapshot(con) == before


def test_corrected_reexport_replaces_cases(tmp_path, con):
    ingest(con, [write_csv(tmp_path / "jan.csv", [EVENT_HEADER] + EVENTS)])
    corrected = [r[:] for r in EVENTS]
    corrected[4][3] = "2025-03-06 16:00:00"     # YA001's 办结 time corrected
    report = ingest(con, [write_csv(tmp_path / "jan_fixed.csv", [EVENT_HEADER] + corrected)])
    assert report.replaced_cases == 1 and report.new_cases == 0
    assert counts(report) == (7, 5, 0, 2)        # YA002 unchanged: its rows are duplicates
    assert table(con, "SELECT time FROM events WHERE step = '办结'") == [(dt.datetime(2025, 3, 6, 16),)]
    assert table(con, "SELECT count(*) FROM events") == [(7,)]
    assert table(con, "SELECT DISTINCT source_file FROM events WHERE case_id = 'YA001'") == [("jan_fixed.csv",)]


def test_append_mode_adds_new_events(tmp_path, con):
    ingest(con, [write_csv(tmp_path / "a.csv", [EVENT_HEADER] + EVENTS[:3])])
    report = ingest(con, [write_csv(tmp_path / "b.csv", [EVENT_HEADER] + EVENTS[2:5])], append=True)
    assert counts(report) == (3, 2, 0, 1)
    assert table(con, "SELECT count(*) FROM events WHERE case_id = 'YA001'") == [(5,)]


def test_case_table_conflict_inside_one_file(tmp_path, con):
    rows = [["办件编号", "地市", "服务类型", "收费金额"], ["K1", "延安", "帮办", "0"], ["K1", "延安", "帮办", "0"],
            ["K1", "延安", "帮办", "50"]]
    report = ingest(con, [write_csv(tmp_path / "k.csv", rows)])
    # The last row wins; both earlier rows say otherwise (收费金额 0), so both are quarantined.
    assert counts(report) == (3, 1, 2, 0)
    assert table(con, "SELECT fee FROM cases") == [(50,)]
    assert table(con, 'SELECT source_row, "column", reason FROM quarantine ORDER BY 1') == [
        (2, "收费金额", "办件 K1 在本次导入中后面再次出现且 收费金额 不同，以后出现的一行为准"),
        (3, "收费金额", "办件 K1 在本次导入中后面再次出现且 收费金额 不同，以后出现的一行为准")]



def test_case_table_with_fewer_columns_changes_only_its_fields(tmp_path, con):
    """A later case table that gives some fields (a case table always has 服务类型): the same
    values are duplicates and change nothing; a different value replaces that field only, the
    other fields stay."""
    full = [["办件编号", "地市", "服务类型", "收费金额", "经办人"], ["K1", "延安", "帮办", "0", "张三"],
            ["K2", "延安", "代办", "0", "李四"]]
    ingest(con, [write_csv(tmp_path / "full.csv", full)])
    before = snapshot(con)
    report = ingest(con, [write_csv(tmp_path / "fee.csv", [["办件编号", "地市", "服务类型", "收费金额"], ["K1", "延安", "帮办", "0"]])])
    assert counts(report) == (1, 0, 0, 1) and (report.new_cases, report.replaced_cases) == (0, 0)
    assert snapshot(con)["cases"] == before["cases"]
    report = ingest(con, [write_csv(tmp_path / "fee2.csv", [["办件编号", "地市", "服务类型", "收费金额"], ["K1", "延安", "帮办", "20"]])])
    assert counts(report) == (1, 1, 0, 0) and (report.new_cases, report.replaced_cases) == (0, 1)
    assert table(con, "SELECT case_id, service_type, fee, staff, source_file FROM cases ORDER BY case_id") == [
        ("K1", "帮办", 20, "张三", "fee2.csv"), ("K2", "代办", 0, "李四", "full.csv")]

@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\x02binary", "不支持的文件类型"),
    ("随便,什么\n1,2\n".encode(), "表头"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le"), "密码"),
    (b"", "为空"),
])
def test_unreadable_file_is_one_clear_error(tmp_path, con, content, message):
    path = tmp_path / "bad.xlsx"
    path.write_bytes(content)
    before = snapshot(con)
    with pytest.raises(InputError) as exc:
        ingest(con, [path])
    assert message in str(exc.value) and str(path) in str(exc.value)
    assert snapshot(con) == before


def test_profile_errors_name_file_line_column(tmp_path, con):
    profile = tmp_path / "bad.yaml"
    profile.write_text("columns:\n  编号: case_idd\nwide:\n  日期: 喝茶\nbogus: 1\n", encoding="utf-8")
    with pytest.raises(PackError) as exc:
        ingest(con, [tmp_path / "x.csv"], profile=profile)
    text = str(exc.value)
    assert f"{profile}:2:" in text and f"{profile}:4:" in text and f"{profile}:5:" in text


def test_cli_ingest_prints_accounting_and_exit_codes(tmp_path, cli):
    path = write_csv(tmp_path / "ev.csv", [EVENT_HEADER] + EVENTS)
    code, out = cli("ingest", path, "--db", tmp_path / "x.duckdb")
    assert code == 0 and "读入 7 行 = 载入 7 + 隔离 0 + 重复 0" in out
    (tmp_path / "junk.bin").write_bytes(b"\x00\x00junk")
    code, out = cli("ingest", tmp_path / "junk.bin", "--db", tmp_path / "x.duckdb")
    assert code == 3 and "junk.bin" in out and "Traceback" not in out


def test_xls_event_log(tmp_path, con):
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("环节")
    sheet.write(0, 0, "延安市环节日志")
    date_style = xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm")
    for j, h in enumerate(EVENT_HEADER):
        sheet.write(2, j, h)
    for j, value in enumerate(["X1", "延安", "咨询"]):
        sheet.write(3, j, value)
    sheet.write(3, 3, dt.datetime(2025, 3, 3, 9, 30), date_style)
    sheet.write(3, 4, "张三")
    path = tmp_path / "old.xls"
    book.save(str(path))
    report = ingest(con, [path])
    assert report.files[0].format == "xls" and counts(report) == (1, 1, 0, 0)
    assert table(con, "SELECT time, staff FROM events") == [(dt.datetime(2025, 3, 3, 9, 30), "张三")]


def test_password_protected_xlsx_is_refused(tmp_path, con):
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = write_xlsx(tmp_path / "plain.xlsx", [EVENT_HEADER] + EVENTS)
    locked = tmp_path / "locked.xlsx"
    with open(plain, "rb") as src, open(locked, "wb") as out:
        OOXMLFile(src).encrypt("secret", out)
    with pytest.raises(InputError) as exc:
        ingest(con, [locked])
    assert "密码" in str(exc.value) and "locked.xlsx" in str(exc.value)


def test_export_quirks_forced_text_and_tabs(tmp_path, con):
    path = tmp_path / "quirks.csv"
    path.write_text('办件编号,地市,环节,时间,经办人\n="0012",延安,咨询,2025-03-05 09:00,\t张三\t\n', encoding="utf-8")
    ingest(con, [path])
    assert table(con, "SELECT case_id, staff FROM events") == [("0012", "张三")]
