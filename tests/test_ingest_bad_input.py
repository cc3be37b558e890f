"""Every bad input gets one clear line and the documented exit code, never 内部错误 (issue 9).

Each test writes the real file and runs the real CLI (typer's runner) or `audit.ingest.ingest`,
and checks the database after: unchanged, or loaded with every record accounted for.
"""

from __future__ import annotations

import codecs
import json
import zipfile
from pathlib import Path

import pytest
import xlsxwriter

from audit.db import connect
from audit.ingest import ingest
from audit.ingest.textfile import MAX_CELL_CHARS
from tests.conftest import snapshot, table, write_csv

HEADER = "办件编号,地市,环节,时间,经办人,备注\n"
SEED = [["办件编号", "地市", "环节", "时间"], ["S1", "延安", "咨询", "2025-03-03 09:00"]]


def rows(n: int, start: int = 0) -> str:
    return "".join(f"K{i:06d},延安,咨询,2025-03-03 09:00:00,张三,备注{i}\n" for i in range(start, start + n))


def counts(report) -> tuple[int, int, int, int]:
    return report.rows_read, report.loaded, report.quarantined, report.duplicates


@pytest.fixture
def seeded(tmp_path: Path):
    """A database holding one earlier ingest, and its snapshot."""
    db = tmp_path / "audit.duckdb"
    con = connect(db)
    ingest(con, [write_csv(tmp_path / "seed.csv", SEED)])
    before = snapshot(con)
    con.close()
    return db, before


def unchanged(db: Path, before) -> bool:
    con = connect(db)
    try:
        return snapshot(con) == before
    finally:
        con.close()


# --- 1. bytes that are not in the file's encoding ---------------------------------------------
BAD_LINE = "K9,延安,咨询,2025-03-03 09:00:00,张三,坏".encode()


def _utf8_bom() -> tuple[bytes, int]:
    head = codecs.BOM_UTF8 + (HEADER + rows(5)).encode() + BAD_LINE
    return head + b"\xff\n" + rows(3, 100).encode(), len(head)


def _utf8_early() -> tuple[bytes, int]:
    head = (HEADER + rows(5)).encode() + BAD_LINE
    return head + b"\xff\n" + rows(3, 100).encode(), len(head)


def _utf8_late() -> tuple[bytes, int]:
    # past the first 64 KiB: only DuckDB, reading the whole file on the fast path, meets it
    head = (HEADER + rows(2000)).encode()
    assert len(head) > 1 << 16
    head += BAD_LINE
    return head + b"\xff\n" + rows(3, 5000).encode(), len(head)


def _utf16() -> tuple[bytes, int]:
    head = codecs.BOM_UTF16_LE + (HEADER + rows(5)).encode("utf-16-le") + BAD_LINE.decode().encode("utf-16-le")
    return head + b"\x00\xd8" + "\n".encode("utf-16-le") + rows(3, 100).encode("utf-16-le"), len(head)


@pytest.mark.parametrize("make, line", [(_utf8_bom, 7), (_utf8_early, 7), (_utf8_late, 2002), (_utf16, 7)],
                         ids=["utf-8-bom", "utf-8-first-64k", "utf-8-past-64k", "utf-16"])
def test_a_bad_byte_names_its_line_and_offset(tmp_path, cli, seeded, make, line):
    db, before = seeded
    data, offset = make()
    path = tmp_path / "ev.csv"
    path.write_bytes(data)
    code, out = cli("ingest", path, "--db", db)
    assert code == 3, out
    assert f"{path}: 第 {line} 行 (字节偏移 {offset}" in out and "不是合法的" in out and "内部错误" not in out
    assert len(out.strip().splitlines()) == 1
    assert unchanged(db, before)


def test_a_file_in_no_known_encoding_says_where_each_fails(tmp_path, cli, seeded):
    db, before = seeded
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + rows(5)).encode("gbk") + b"K9,\xff\xff\n" + rows(2, 50).encode("gbk"))
    code, out = cli("ingest", path, "--db", db)
    assert code == 3 and "无法识别文本编码" in out
    assert "按 UTF-8 读，第 1 行" in out and "按 GBK/GB18030 读，第 7 行" in out
    assert unchanged(db, before)


# --- 2. long cells --------------------------------------------------------------------------
NOTE = "长" * 1_000_000


@pytest.mark.parametrize("shape, reader", [("clean", "duckdb"), ("blank line", "exact"),
                                           ("line break in a cell", "exact")])
def test_a_million_character_note_loads_on_every_path(tmp_path, con, shape, reader):
    text = HEADER + rows(5) + f"L1,延安,咨询,2025-03-03 10:00:00,张三,{NOTE}\n" + rows(5, 10)
    if shape == "blank line":            # pyarrow reads it
        text += "\n" + rows(1, 20)
    elif shape == "line break in a cell":  # Python's csv module reads it
        text += 'L2,延安,咨询,2025-03-03 11:00:00,张三,"第一行\n第二行"\n'
    path = tmp_path / "long.csv"
    path.write_text(text, encoding="utf-8")
    report = ingest(con, [path])
    assert report.files[0].reader == reader
    read, loaded, quarantined, dups = counts(report)
    assert read == loaded + quarantined + dups and loaded == 11 + (shape != "clean")
    assert table(con, "SELECT length(note), source_row FROM events WHERE case_id = 'L1'") == [(1_000_000, 7)]


def test_a_cell_over_the_bound_quarantines_its_record_not_the_file(tmp_path, con):
    huge = "x" * (MAX_CELL_CHARS + 10)
    path = tmp_path / "huge.csv"
    path.write_text(HEADER + rows(3) + f"L1,延安,咨询,2025-03-03 10:00:00,张三,{huge}\n" + rows(3, 10),
                    encoding="utf-8")
    report = ingest(con, [path])
    assert counts(report) == (7, 6, 1, 0)
    assert table(con, "SELECT source_row, reason FROM quarantine") == [(5, f"单元格超过 {MAX_CELL_CHARS:,} 个字符，未载入")]
    raw = json.loads(table(con, "SELECT raw FROM quarantine")[0][0])
    assert raw["办件编号"] == "L1" and raw["备注"] == "x" * (200 - len("L1,延安,咨询,2025-03-03 10:00:00,张三,")) + "…"


def test_an_unclosed_quote_swallows_the_rest_as_one_quarantined_record(tmp_path, con):
    tail = rows(MAX_CELL_CHARS // 40, 100)          # more than the bound, all inside the quote
    path = tmp_path / "quote.csv"
    path.write_text(HEADER + rows(3) + 'L1,延安,咨询,2025-03-03 10:00:00,张三,"未闭合\n' + tail, encoding="utf-8")
    report = ingest(con, [path])
    assert counts(report) == (4, 3, 1, 0)
    last = 5 + tail.count("\n")
    assert table(con, "SELECT source_row, reason FROM quarantine") == [
        (5, f"单元格超过 {MAX_CELL_CHARS:,} 个字符，未载入 (到第 {last} 行文件末尾为止；引号没有闭合)")]


def test_a_long_cell_over_many_lines_is_passed_to_its_closing_quote(tmp_path, con):
    cell = ("x" * 999 + "\n") * (MAX_CELL_CHARS // 1000 + 1)
    path = tmp_path / "lines.csv"
    path.write_text(HEADER + rows(3) + f'L1,延安,咨询,2025-03-03 10:00:00,张三,"{cell}"\n' + rows(3, 10), encoding="utf-8")
    report = ingest(con, [path])
    assert counts(report) == (7, 6, 1, 0)
    last = 5 + cell.count("\n")
    assert table(con, "SELECT source_row, reason FROM quarantine") == [
        (5, f"单元格超过 {MAX_CELL_CHARS:,} 个字符，未载入 (到第 {last} 行为止)")]
    assert table(con, "SELECT min(source_row) FROM events WHERE case_id >= 'K000010'") == [(last + 1,)]


# --- 3. NUL bytes -----------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
@pytest.mark.parametrize("at", [100, 8 * 1024, 1 << 20])
def test_a_nul_byte_quarantines_its_record_wherever_it_is(tmp_path, cli, encoding, at):
    data = (HEADER + rows(20000)).encode(encoding)
    end = data.index(b"\n", at)              # the end of the record holding byte `at`
    data = data[:end] + b"\x00" + data[end:]
    line = data[:end].count(b"\n") + 1
    path = tmp_path / "nul.csv"
    path.write_bytes(data)
    code, out = cli("ingest", path, "--db", tmp_path / "x.duckdb")
    assert code == 0 and "读入 20000 行 = 载入 19999 + 隔离 1 + 重复 0" in out, out
    con = connect(tmp_path / "x.duckdb")
    assert table(con, "SELECT source_row, reason FROM quarantine") == [
        (line, "含有 NUL 字符 (\\x00)：文件可能在此处已损坏，请检查该行或重新导出")]
    assert table(con, "SELECT count(*) FROM events WHERE contains(note, chr(0))") == [(0,)]
    con.close()


@pytest.mark.parametrize("header, message", [
    ("办件编号,地市,环节,时\x00间,经办人,备注\n", "表头 (第 1 行) 含有 NUL 字符"),
    ("办件\x00编号,地市,环节,时间,经办人,备注\n", "第 1 行含有 NUL 字符 (\\x00)，前 50 行中找不到可识别的表头"),
])
def test_a_nul_byte_in_the_header_is_one_clear_error(tmp_path, cli, seeded, header, message):
    db, before = seeded
    path = tmp_path / "nulhead.csv"
    path.write_bytes((header + rows(10)).encode())
    code, out = cli("ingest", path, "--db", db)
    assert code == 3 and f"{path}: " in out and message in out, out
    assert unchanged(db, before)


def test_a_binary_file_is_still_refused(tmp_path, cli, seeded):
    db, before = seeded
    path = tmp_path / "zeros.csv"            # text whose first 8 KiB were zero-filled in places
    data = bytearray((HEADER + rows(500)).encode())
    data[1000:1400] = bytes(400)
    path.write_bytes(bytes(data))
    code, out = cli("ingest", path, "--db", db)
    assert code == 3 and "不支持的文件类型" in out
    assert unchanged(db, before)


# --- 4. white-space rows at the end of a sheet ------------------------------------------------
def test_white_space_rows_of_a_sheet_are_counted(tmp_path, con):
    path = tmp_path / "ws.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("台账")
    grey = wb.add_format({"bg_color": "#EEEEEE"})
    data = [["办件编号", "地市", "环节", "时间"], ["K1", "延安", "咨询", "2025-03-03 09:00"],
            ["K2", "延安", "咨询", "2025-03-03 10:00"], ["  ", "", "", ""], ["K3", "延安", "咨询", "2025-03-03 11:00"],
            ["", " ", "  ", ""]]
    for r, row in enumerate(data):
        for c, value in enumerate(row):
            if value:
                ws.write_string(r, c, value)
    for r in (6, 7):                         # formatted, empty: in Excel's used range, not records
        for c in range(4):
            ws.write_blank(r, c, None, grey)
    wb.close()
    report = ingest(con, [path])
    read, loaded, quarantined, dups = counts(report)
    assert (read, loaded, quarantined, dups) == (5, 3, 2, 0) and read == loaded + quarantined + dups
    assert [r[0] for r in table(con, "SELECT source_row FROM quarantine ORDER BY 1")] == [4, 6]


# --- other damaged files ----------------------------------------------------------------------
def _damaged_sheet(path: Path) -> None:
    good = path.with_suffix(".good.xlsx")
    wb = xlsxwriter.Workbook(str(good))
    ws = wb.add_worksheet("S")
    for r in range(200):
        for c, v in enumerate(["办件编号", "地市", "环节", "时间"] if r == 0 else [f"K{r}", "延安", "咨询", "2025-03-03"]):
            ws.write_string(r, c, v)
    wb.close()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            out.writestr(item, data[:len(data) // 2] if item.filename == "xl/worksheets/sheet1.xml" else data)


def _cut_short(path: Path) -> None:
    _damaged_sheet(path.with_suffix(".tmp.xlsx"))
    data = path.with_suffix(".tmp.good.xlsx").read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _other_zip(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "not a workbook")


@pytest.mark.parametrize("name, make, message", [
    ("sheet.xlsx", _damaged_sheet, "工作表 'S': 无法读取"),
    ("short.xlsx", _cut_short, "无法作为 Excel 文件读取"),
    ("other.xlsx", _other_zip, "无法作为 Excel 文件读取"),
    ("fake.parquet", lambda p: p.write_bytes(b"PAR1" + bytes(range(256)) * 4), "无法作为 Parquet 文件读取"),
])
def test_damaged_files_are_one_clear_line(tmp_path, cli, seeded, name, make, message):
    db, before = seeded
    path = tmp_path / name
    make(path)
    code, out = cli("ingest", path, "--db", db)
    assert code == 3 and f"{path}" in out and message in out and "内部错误" not in out, out
    assert unchanged(db, before)
