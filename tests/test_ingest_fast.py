"""The fast path: DuckDB reads a CSV file itself, and row numbers, clean-up, repeats and
fallbacks to the exact reader behave exactly as with the exact reader."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from audit.db import connect
from audit.ingest import ingest
from tests.conftest import table, write_csv

HEADER = ["办件编号", "地市", "环节", "时间", "经办人", "备注"]
STEPS = ["咨询", "受理", "承办", "办结"]


def test_row_numbers_survive_a_parallel_read(tmp_path, con):
    """A file large enough for DuckDB to split between threads: every event keeps its own line
    number (written into its note), and bad rows are reported on their own lines."""
    path = tmp_path / "big.csv"
    bad_lines = {1_000, 250_001, 612_345}
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("延安市帮办代办环节明细\n" + ",".join(HEADER) + "\n")
        for line in range(3, 720_003):
            when = "2025-13-01 09:00:00" if line in bad_lines else f"2025-03-{1 + line % 28:02d} 09:{line % 60:02d}:00"
            fh.write(f"YA{line // 4:07d},延安,{STEPS[line % 4]},{when},张三,{line}\n")
    assert path.stat().st_size > 40_000_000   # several of DuckDB's CSV buffers
    report = ingest(con, [path])
    f = report.files[0]
    assert f.reader == "duckdb"
    assert (f.rows_read, f.loaded, f.quarantined, f.duplicates) == (720_000, 720_000 - 3, 3, 0)
    assert table(con, "SELECT count(*) FROM events WHERE note <> source_row::VARCHAR") == [(0,)]
    assert table(con, "SELECT count(*) FROM events WHERE seq <> (SELECT min(seq) FROM events) + "
                      "64 * (source_row - 3)") == [(0,)]
    assert [r[0] for r in table(con, "SELECT source_row FROM quarantine ORDER BY 1")] == sorted(bad_lines)
    assert table(con, "SELECT reason FROM quarantine WHERE source_row = 250001") == [
        ('时间 "2025-13-01 09:00:00" 无法识别',)]


@pytest.mark.parametrize("name, text, reader, lines", [
    # a blank line: DuckDB skips it, so line numbers would shift -> the exact reader
    ("blank.csv", "办件编号,地市,环节,时间\nA,延安,咨询,2025-03-03\n\nB,延安,受理,2025-13-03\n", "exact", [3, 4]),
    # a line break inside a quoted cell
    ("multiline.csv", '办件编号,地市,环节,时间,备注\nA,延安,咨询,2025-03-03,"第一行\n第二行"\nB,延安,受理,2025-13-03,\n',
     "exact", [4]),
    # \n and \r\n mixed: DuckDB reads nothing sensible
    ("mixed.csv", "标题\n办件编号,地市,环节,时间\r\nA,延安,咨询,2025-03-03\r\nB,延安,受理,2025-13-03\r\n", "exact", [4]),
    # a clean file, CRLF, no newline at the end
    ("crlf.csv", "办件编号,地市,环节,时间\r\nA,延安,咨询,2025-03-03\r\nB,延安,受理,2025-13-03", "duckdb", [3]),
    # glob characters in the name are not patterns
    ("导出[1].csv", "办件编号,地市,环节,时间\nA,延安,咨询,2025-03-03\nB,延安,受理,2025-13-03\n", "exact", [3]),
])
def test_fallback_to_the_exact_reader_keeps_line_numbers(tmp_path, con, name, text, reader, lines):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    report = ingest(con, [path])
    assert report.files[0].reader == reader
    blank = 1 if name == "blank.csv" else 0
    assert (report.files[0].loaded, report.files[0].quarantined) == (1, 1 + blank)
    assert [r[0] for r in table(con, "SELECT source_row FROM quarantine ORDER BY 1")] == lines
    assert table(con, "SELECT case_id, source_row FROM events") == [("A", 2 + (name in ("mixed.csv",)))]


def test_cleanup_only_where_needed(tmp_path, con):
    """Forced-text ids, edge white space, tabs and full-width spaces are cleaned on the fast path;
    typed cells with white space still parse."""
    path = tmp_path / "quirks.csv"
    path.write_text(
        "办件编号,地市,环节,时间,经办人,备注\n"
        '="0012",延安市, 受理 ,2025-03-05 09:00 ,\t张三\t,材料　齐全\n'
        "0013,延安,咨询,2025-03-05 10:00:00,李四, \n"
        "0014,榆林市,办结,2025/3/5 11:00,王五,正常\n", encoding="utf-8")
    report = ingest(con, [path])
    assert report.files[0].reader == "duckdb" and report.files[0].loaded == 3
    assert table(con, "SELECT case_id, city, step, time, staff, note FROM events ORDER BY case_id") == [
        ("0012", "延安", "受理", dt.datetime(2025, 3, 5, 9), "张三", "材料 齐全"),
        ("0013", "延安", "咨询", dt.datetime(2025, 3, 5, 10), "李四", None),
        ("0014", "榆林", "办结", dt.datetime(2025, 3, 5, 11), "王五", "正常"),
    ]


@pytest.mark.parametrize("cells, expected", [
    (["0012 ", "延安", "", ""], ("0012", "延安", None, None)),          # a trailing space alone
    (["0012", "延安", "\t张三", ""], ("0012", "延安", "张三", None)),    # a leading tab alone
    (["0012", "延安", "张三", "材料\u3000齐全"], ("0012", "延安", "张三", "材料 齐全")),  # a full-width space
    (['="0012"', "延安", "", ""], ("0012", "延安", None, None)),        # a forced-text id
    (["0012", "延安", "张 三", "材料 齐全"], ("0012", "延安", "张 三", "材料 齐全")),  # inner spaces: as written
    (["0012", "延安", "张三", "a=b"], ("0012", "延安", "张三", "a=b")),  # = inside a cell: as written
    (["0012", "延安", "张三", "\u3000"], ("0012", "延安", "张三", None)),  # only a full-width space: empty
])
def test_each_kind_of_dirt_alone_is_cleaned(tmp_path, con, cells, expected):
    """The row test (a quick character test, then the exact one) catches every kind of dirt the
    clean-up removes, each on its own in one row, and leaves other rows as written."""
    case_id, city, staff, note = cells
    path = write_csv(tmp_path / "one.csv", [HEADER, [case_id, city, "咨询", "2025-03-05 09:00:00", staff, note],
                                            ["0099", "延安", "受理", "2025-03-05 10:00:00", "李四", "x"]])
    report = ingest(con, [path])
    assert report.files[0].reader == "duckdb" and report.files[0].loaded == 2
    assert table(con, "SELECT case_id, city, staff, note FROM events WHERE step = '咨询'") == [expected]


def test_an_event_in_two_files_of_one_ingest_is_loaded_once(tmp_path, con):
    rows = [["A1", "延安", "咨询", "2025-03-03 09:00:00", "张三", ""],
            ["A1", "延安", "受理", "2025-03-03 10:00:00", "张三", ""]]
    a = write_csv(tmp_path / "a.csv", [HEADER] + rows)
    b = write_csv(tmp_path / "b.csv", [HEADER] + rows[1:] + [["A1", "延安", "办结", "2025-03-04 10:00:00", "张三", ""]]
                  + rows[1:])
    report = ingest(con, [a, b])
    assert [(f.loaded, f.duplicates) for f in report.files] == [(2, 0), (1, 2)]
    assert table(con, "SELECT source_file, step FROM events ORDER BY seq") == [
        ("a.csv", "咨询"), ("a.csv", "受理"), ("b.csv", "办结")]
    assert (report.new_cases, report.replaced_cases) == (1, 0)
    assert [(f.new_cases, f.replaced_cases) for f in report.files] == [(1, 0), (1, 0)]


def test_new_and_replaced_cases_are_counted_the_same_on_every_path(tmp_path):
    """The first events of a database from one file (counted without comparing) and the same
    events from two files (compared case by case) give the same counts; a later corrected export
    replaces one case and adds one."""
    rows = [["A1", "延安", "咨询", "2025-03-03 09:00:00", "张三", ""],
            ["A1", "延安", "受理", "2025-03-03 10:00:00", "张三", ""],
            ["A1", "延安", "受理", "2025-03-03 10:00:00", "张三", ""],     # a repeat
            ["B2", "延安市", "咨询", "2025-03-04 09:00:00", "李四", ""],
            ["C3", "榆林", "咨询", "2025-03-05 09:00:00", "王五", ""],
            ["D4", "榆林", "咨询", "2025-13-05 09:00:00", "王五", ""]]    # quarantined: no case
    one = connect(tmp_path / "one.duckdb")
    report = ingest(one, [write_csv(tmp_path / "all.csv", [HEADER] + rows)])
    assert (report.new_cases, report.replaced_cases) == (3, 0)
    assert [(f.new_cases, f.replaced_cases, f.duplicates, f.quarantined) for f in report.files] == [(3, 0, 1, 1)]
    assert table(one, "SELECT new_cases, replaced_cases FROM ingest_files") == [(3, 0)]
    two = connect(tmp_path / "two.duckdb")
    report = ingest(two, [write_csv(tmp_path / "a.csv", [HEADER] + rows[:3]),
                          write_csv(tmp_path / "b.csv", [HEADER] + rows[3:])])
    assert (report.new_cases, report.replaced_cases) == (3, 0)
    assert [(f.new_cases, f.replaced_cases) for f in report.files] == [(1, 0), (2, 0)]
    for con in (one, two):
        report = ingest(con, [write_csv(tmp_path / "fix.csv", [HEADER, rows[0], ["A1", "延安", "受理", "2025-03-03 11:00:00", "张三", ""],
                                                               ["E5", "宝鸡", "咨询", "2025-03-06 09:00:00", "赵六", ""]])])
        assert (report.new_cases, report.replaced_cases) == (1, 1)
        assert table(con, "SELECT count(DISTINCT (city, case_id)), count(*) FROM events") == [(4, 5)]


def test_database_from_before_the_provenance_change_is_migrated(tmp_path):
    """Rows of an old database (file name and SHA-256 on every row) keep their provenance."""
    db = tmp_path / "old.duckdb"
    old = duckdb.connect(str(db))
    old.execute("""
        CREATE SEQUENCE ingest_seq START 2;
        CREATE TABLE ingest_files (ingest_id BIGINT, file_id BIGINT, path VARCHAR, file_name VARCHAR, sha256 VARCHAR,
            size_bytes BIGINT, format VARCHAR, encoding VARCHAR, sheet VARCHAR, layout VARCHAR, header_row INTEGER,
            city_option VARCHAR, profile VARCHAR, unmapped_columns VARCHAR[], rows_read BIGINT, loaded BIGINT,
            quarantined BIGINT, duplicates BIGINT, replaced_cases BIGINT, new_cases BIGINT, PRIMARY KEY (ingest_id, file_id));
        CREATE TABLE case_rows (city VARCHAR NOT NULL, case_id VARCHAR NOT NULL, county VARCHAR, hall VARCHAR,
            service_type VARCHAR, channel VARCHAR, object_type VARCHAR, item VARCHAR, applicant VARCHAR,
            id_number VARCHAR, phone VARCHAR, staff VARCHAR, promised_days INTEGER, fee DECIMAL(12, 2),
            visits INTEGER, rating VARCHAR, rating_score TINYINT, rating_time TIMESTAMP, materials VARCHAR,
            source_file VARCHAR, source_sha256 VARCHAR, source_row BIGINT, ingest_id BIGINT);
        CREATE TABLE event_rows (city VARCHAR NOT NULL, case_id VARCHAR NOT NULL, step VARCHAR NOT NULL,
            step_code VARCHAR NOT NULL, "time" TIMESTAMP NOT NULL, staff VARCHAR, note VARCHAR, source_file VARCHAR,
            source_sha256 VARCHAR, source_row BIGINT, seq BIGINT, ingest_id BIGINT);
        INSERT INTO ingest_files (ingest_id, file_id, file_name, sha256, sheet) VALUES
            (1, 0, 'ev.csv', 'aa', NULL), (1, 1, 'cases.xlsx', 'bb', '台账');
        INSERT INTO event_rows VALUES ('延安', 'A', '受理', 'accept', '2025-03-03 09:00', NULL, NULL, 'ev.csv', 'aa', 2, 128, 1);
        INSERT INTO case_rows (city, case_id, service_type, source_file, source_sha256, source_row, ingest_id)
            VALUES ('延安', 'A', '帮办', 'cases.xlsx#台账', 'bb', 3, 1);
    """)
    old.close()
    con = connect(db)
    assert table(con, "SELECT case_id, step_code, source_file, source_sha256, source_row FROM events") == [
        ("A", "accept", "ev.csv", "aa", 2)]
    assert table(con, "SELECT case_id, service_type, source_file, source_sha256 FROM cases") == [
        ("A", "帮办", "cases.xlsx#台账", "bb")]
    cols = {r[0] for r in table(con, "SELECT column_name FROM duckdb_columns() WHERE table_name = 'event_rows'")}
    assert "source_sha256" not in cols and "step_code" not in cols and "file_id" in cols
    con.close()


@pytest.mark.parametrize("delim, encoding", [("\t", "utf-8"), (";", "utf-8"), ("|", "utf-8-sig"),
                                             (",", "utf-16"), (",", "gb18030")])
def test_fast_path_delimiters_and_encodings(tmp_path, con, delim, encoding):
    """Tab, semicolon and pipe files, a BOM, UTF-16 and GB18030 (through a UTF-8 copy) all take
    DuckDB's reader, with the same values and row numbers; the temporary copy is removed."""
    import os

    from audit.ingest.textfile import copies_dir

    def own_copies():      # this process's, whatever other processes do in the temp directory
        return set(copies_dir().glob(f"{os.getpid()}-*"))

    before = own_copies()
    rows = [HEADER, ["Z1", "宝鸡", "咨询", "2025-03-03 09:00:00", "王五", "备注 一"],
            ["Z1", "宝鸡", "受理", "2025-13-03 10:00:00", "王五", ""],
            ["Z1", "宝鸡", "办结", "2025/3/4 16:00", "王五", "已办结"]]
    path = tmp_path / "ev.csv"
    path.write_text("".join(delim.join(r) + "\r\n" for r in rows), encoding=encoding)
    report = ingest(con, [path])
    assert report.files[0].reader == "duckdb"
    assert (report.files[0].loaded, report.files[0].quarantined) == (2, 1)
    assert table(con, "SELECT step, source_row, note FROM events ORDER BY seq") == [
        ("咨询", 2, "备注 一"), ("办结", 4, "已办结")]
    assert table(con, "SELECT source_row FROM quarantine") == [(3,)]
    assert own_copies() == before


def test_empty_trailing_fields_stay_on_the_fast_path(tmp_path, con):
    """`…,,` after every line (empty header cells too) is read by DuckDB; a row with content
    there is quarantined in the exact reader's words."""
    path = tmp_path / "trailing.csv"
    path.write_text("办件编号,地市,环节,时间,,\n"
                    "T1,延安,咨询,2025-03-03 09:00:00,,\n"
                    "T1,延安,受理,2025-03-03 10:00:00,,多出来的\n"
                    "T1,延安,办结,2025-03-04 10:00:00,,\n", encoding="utf-8")
    report = ingest(con, [path])
    assert report.files[0].reader == "duckdb"
    assert (report.files[0].rows_read, report.files[0].loaded, report.files[0].quarantined) == (3, 2, 1)
    assert table(con, "SELECT source_row, reason FROM quarantine") == [(3, "本行有 6 个字段，表头只有 4 列")]
    exact = tmp_path / "trailing[exact].csv"          # the same file through the exact reader
    exact.write_bytes(path.read_bytes())
    con2 = connect(tmp_path / "exact.duckdb")
    report = ingest(con2, [exact])
    assert report.files[0].reader == "exact"
    assert table(con2, "SELECT source_row, reason FROM quarantine") == [(3, "本行有 6 个字段，表头只有 4 列")]
    con2.close()
