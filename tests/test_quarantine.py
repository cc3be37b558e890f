"""`audit quarantine`: every quarantined row and set-aside cell, listed for a clerk.

Real files ingested through the CLI give the quarantined rows; set-aside cells (and quarantine
rows of the shapes older versions wrote) are inserted with SQL into the same DuckDB file. Every
expected value below is written out by hand.
"""

from __future__ import annotations

import csv
import io
import unicodedata

import openpyxl
import pytest

import audit.outputs.quarantine
from audit.db import connect
from audit.outputs.mask import mask_unlabelled
from tests.conftest import write_csv, write_xlsx

EVENT_HEADER = ["办件编号", "地市", "环节", "时间", "经办人", "服务对象", "证件号码", "联系电话"]
HEADINGS = ["导入批次", "类型", "文件", "行", "列", "原始值", "原因"]
Q, S = "隔离行", "搁置单元格"

# (ingest, kind, file, row, column, raw, reason): personal data masked / shown.
MASKED = [
    (1, Q, "a_cases.csv", 3, "办件编号", "地市=延安；服务类型=帮办", "办件编号 为空"),
    (1, Q, "events.csv", 3, "", "", "空行 (整行没有内容)"),
    (1, Q, "events.csv", 4, "环节", "XX", '环节 "XX" 不在环节词表中 (见 README 环节)'),
    (1, Q, "events.csv", 5, "办件编号",
     "地市=延安；环节=咨询；时间=2026-03-02 10:00；经办人=王五；服务对象=赵*；证件号码=610***********5678；"
     "联系电话=139****5678", "办件编号 为空"),
    (1, Q, "events.csv", 6, "环节", "=1+1", '环节 "=1+1" 不在环节词表中 (见 README 环节)'),
    (2, S, "ledger.xlsx#台账", 2, "联系电话", "137***0111", '联系电话 "137***0111" 不是 11 位手机号'),
    (2, Q, "ledger.xlsx#台账", 3, "办件编号", "地市=宝鸡；服务类型=代办；服务对象=周*；联系电话=137****2222；评价=满意",
     "办件编号 为空"),
    (2, S, "ledger.xlsx#台账", 3, "评价", "@SUM(A1)", '评价 "@SUM(A1)" 无法识别'),
    (2, S, "ledger.xlsx#台账", 4, "评价", "好评吧", '评价 "好评吧" 无法识别'),
    (2, Q, "ledger.xlsx#台账", 5, "", "办件编号=合计；评价=3", "合计行 (表尾)"),
    (2, Q, "ledger.xlsx#台账", 6, "", "列1=B9；列2=宝*；列3=代*；列4=郑**；列5=137****9999；列6=满*；列7=多*",
     "本行在表头之外的列 (7 列) 有内容"),
]
SHOWN = {
    (1, "events.csv", 5): "地市=延安；环节=咨询；时间=2026-03-02 10:00；经办人=王五；服务对象=赵六；证件号码=610102199001015678；"
                          "联系电话=13912345678",
    (2, "ledger.xlsx#台账", 2): ("1370000111", '联系电话 "1370000111" 不是 11 位手机号'),
    (2, "ledger.xlsx#台账", 3): "地市=宝鸡；服务类型=代办；服务对象=周九；联系电话=13700002222；评价=满意",
    (2, "ledger.xlsx#台账", 6): "列1=B9；列2=宝鸡；列3=代办；列4=郑十一；列5=13700009999；列6=满意；列7=多余",
}


def shown() -> list[tuple]:
    """The listing with --show-personal-data."""
    out = []
    for entry in MASKED:
        full = SHOWN.get((entry[0], entry[2], entry[3]))
        if isinstance(full, tuple) and entry[1] == S:
            entry = entry[:5] + full
        elif isinstance(full, str) and entry[1] == Q:
            entry = entry[:5] + (full, entry[6])
        out.append(entry)
    return out


@pytest.fixture
def qdb(tmp_path, cli):
    """Ingest 1 (two CSV files, one command) and ingest 2 (a workbook sheet) through the CLI, then
    set-aside cells and quarantine rows of older shapes written with SQL."""
    db = tmp_path / "q.duckdb"
    events = write_csv(tmp_path / "events.csv", [
        EVENT_HEADER,                                                                                     # line 1
        ["A1", "延安", "咨询", "2026-03-02 09:00", "王五", "张三", "610102199001011234", "13812345678"],   # 2 loaded
        [],                                                                                               # 3 blank
        ["A2", "延安", "XX", "2026-03-02 09:00", "王五", "李四", "", ""],                                   # 4 step
        ["", "延安", "咨询", "2026-03-02 10:00", "王五", "赵六", "610102199001015678", "13912345678"],      # 5 no id
        ["A3", "延安", "=1+1", "2026-03-02 11:00", "王五", "", "", ""],                                     # 6 step
    ])
    cases = write_csv(tmp_path / "a_cases.csv", [["办件编号", "地市", "服务类型"],
                                                 ["A1", "延安", "帮办"],
                                                 ["", "延安", "帮办"]])                                   # 3 no id
    ledger = write_xlsx(tmp_path / "ledger.xlsx", [
        ["办件编号", "地市", "服务类型", "服务对象", "联系电话", "评价"],
        ["B1", "宝鸡", "帮办", "孙八", "13700001111", "满意"],
        [None, "宝鸡", "代办", "周九", "13700002222", "满意"],                                              # 3 no id
        ["B3", "宝鸡", "代办", "吴十", "13700003333", "满意"],
    ], sheet="台账")
    code, out = cli("ingest", "--db", db, events, cases)
    assert code == 0, out
    code, out = cli("ingest", "--db", db, ledger)
    assert code == 0, out
    con = connect(db)
    assert con.execute("SELECT file_name, sheet FROM ingest_files WHERE ingest_id = 2").fetchall() == [
        ("ledger.xlsx", "台账")]
    sha = con.execute("SELECT sha256 FROM ingest_files WHERE ingest_id = 2").fetchall()[0][0]
    # Set-aside cells, in no particular order; one reason in the old `第 N 行 ` form.
    con.executemany("INSERT INTO set_aside VALUES (2, 'ledger.xlsx', ?, ?, ?, ?, ?, ?)", [
        [sha, 4, "评价", "rating", "好评吧", '第 4 行 评价 "好评吧" 无法识别'],
        [sha, 2, "联系电话", "phone", "1370000111", '联系电话 "1370000111" 不是 11 位手机号'],
        [sha, 3, "评价", "rating", "@SUM(A1)", '评价 "@SUM(A1)" 无法识别'],
    ])
    # A footer row stored the new way (no row number in the reason) under the bare workbook name,
    # and a ragged row whose cells were stored as a list (no headers).
    con.executemany("INSERT INTO quarantine VALUES (2, 'ledger.xlsx', ?, ?, NULL, ?, ?)", [
        [sha, 5, "合计行 (表尾)",
         '{"办件编号": "合计", "地市": "", "服务类型": "", "服务对象": "", "联系电话": "", "评价": "3"}'],
        [sha, 6, "第 6 行 本行在表头之外的列 (7 列) 有内容",
         '["B9", "宝鸡", "代办", "郑十一", "13700009999", "满意", "多余"]'],
    ])
    con.close()
    return db


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def as_csv(entries: list[tuple]) -> list[list[str]]:
    kinds = {Q: "quarantined", S: "set_aside"}
    return [[str(e[0]), kinds[e[1]], e[2], str(e[3]), e[4], e[5], e[6]] for e in entries]


def test_csv_lists_every_column_sorted_and_masked(qdb, cli):
    code, out = cli("quarantine", "--db", qdb, "--format", "csv")
    assert code == 0
    rows = csv_rows(out)
    assert rows[0] == ["ingest_id", "kind", "file", "row", "column", "raw", "reason"]
    expected = as_csv(MASKED)
    # Formula-like cells are made safe exactly as `audit findings --format csv` does.
    expected[4][5] = "'=1+1"
    expected[7][5] = "'@SUM(A1)"
    assert rows[1:] == expected
    assert not any(r[6].startswith("第") for r in rows[1:])  # the old `第 N 行 ` prefix is dropped


def test_show_personal_data(qdb, cli):
    code, out = cli("quarantine", "--db", qdb, "--format", "csv", "--show-personal-data")
    assert code == 0
    expected = as_csv(shown())
    expected[4][5] = "'=1+1"
    expected[7][5] = "'@SUM(A1)"
    assert csv_rows(out)[1:] == expected
    assert "赵六" in out and "610102199001015678" in out and "13912345678" in out and "郑十一" in out


def test_personal_data_masked_by_default_everywhere(qdb, cli, tmp_path):
    for args in ([], ["--format", "csv"]):
        code, out = cli("quarantine", "--db", qdb, *args)
        assert code == 0
        for secret in ("赵六", "周九", "郑十一", "610102199001015678", "13912345678", "13700002222", "1370000111"):
            assert secret not in out
    code, _ = cli("quarantine", "--db", qdb, "--format", "xlsx", "--out", tmp_path / "m.xlsx")
    values = [c.value for row in openpyxl.load_workbook(tmp_path / "m.xlsx").active.iter_rows() for c in row]
    assert code == 0 and not any(v and ("周九" in v or "1370000111" in v) for v in values)


def test_csv_file_has_bom_and_the_same_rows(qdb, cli, tmp_path):
    path = tmp_path / "隔离清单.csv"
    code, out = cli("quarantine", "--db", qdb, "--format", "csv", "--out", path)
    assert code == 0 and str(path) in out and "隔离行 8，搁置单元格 3" in out
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\r\n") == data.count(b"\n") == 12          # CRLF records (RFC 4180)
    code, stdout = cli("quarantine", "--db", qdb, "--format", "csv")
    assert data.decode("utf-8-sig").replace("\r\n", "\n") == stdout   # the runner's output has LF


def test_ingest_filter_and_unknown_ingest(qdb, cli):
    code, out = cli("quarantine", "--db", qdb, "--ingest", "2", "--format", "csv")
    assert code == 0
    expected = as_csv([e for e in MASKED if e[0] == 2])
    expected[2][5] = "'@SUM(A1)"
    assert csv_rows(out)[1:] == expected
    code, out = cli("quarantine", "--db", qdb, "--ingest", "9")
    assert code == 2
    assert "9" in out and "已有的导入批次: 1–2" in out and "Traceback" not in out


def test_table_is_aligned_and_cuts_long_values(qdb, cli):
    code, out = cli("quarantine", "--db", qdb)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == HEADINGS
    assert lines[-1].startswith("共 11 条：隔离行 8，搁置单元格 3") and "…" in lines[-1]
    data = lines[1:-1]
    assert len(data) == len(MASKED)
    # Every reason starts in the same display column, after the raw value column.
    starts = {display_width(line[:line.rindex(e[6])]) for line, e in zip(data, MASKED)}
    assert len(starts) == 1
    for line, (ingest, kind, file, row, _column, raw, reason) in zip(data, MASKED):
        cells = line[:line.rindex(reason)].split()
        assert cells[:4] == [str(ingest), kind, file, str(row)]
        assert line.endswith(reason)
        if display_width(raw) <= 30:
            assert raw in line
    long_line = data[3]
    assert "地市=延安；环节=咨询；" in long_line and "…" in long_line and "联系电话=139****5678" not in long_line


def test_table_in_chunks_is_the_same(qdb, cli, monkeypatch):
    _, whole = cli("quarantine", "--db", qdb)
    monkeypatch.setattr(audit.outputs.quarantine, "CHUNK_ROWS", 2)
    _, chunked = cli("quarantine", "--db", qdb)
    assert chunked == whole


def test_xlsx_read_back(qdb, cli, tmp_path):
    path = tmp_path / "隔离清单.xlsx"
    code, out = cli("quarantine", "--db", qdb, "--format", "xlsx", "--out", path)
    assert code == 0 and "隔离行 8，搁置单元格 3" in out
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["隔离清单"]
    ws = wb["隔离清单"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:G12"
    assert ws.page_setup.orientation == "landscape"
    assert ws.column_dimensions["F"].width > 40 and ws.column_dimensions["G"].width > 40
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == HEADINGS
    expected = [[str(e[0]), e[1], e[2], str(e[3]), e[4] or None, e[5] or None, e[6]] for e in MASKED]
    expected[4][5], expected[7][5] = "'=1+1", "'@SUM(A1)"     # the same apostrophe as in the CSV
    assert rows[1:] == expected
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type == "s" for c in cells)  # text only: =1+1 and @SUM(A1) are never formulas
    again = tmp_path / "again.xlsx"
    assert cli("quarantine", "--db", qdb, "--format", "xlsx", "--out", again)[0] == 0
    assert again.read_bytes() == path.read_bytes()    # the same database gives the same bytes


def test_xlsx_needs_out_and_format_is_checked(qdb, cli):
    code, out = cli("quarantine", "--db", qdb, "--format", "xlsx")
    assert code == 2 and "--out" in out
    code, out = cli("quarantine", "--db", qdb, "--format", "json")
    assert code == 2 and "json" in out


def test_no_problems_is_one_line(tmp_path, cli):
    db = tmp_path / "clean.duckdb"
    path = write_csv(tmp_path / "ok.csv", [EVENT_HEADER[:5], ["A1", "延安", "咨询", "2026-03-02 09:00", "王五"]])
    assert cli("ingest", "--db", db, path)[0] == 0
    code, out = cli("quarantine", "--db", db)
    assert code == 0 and out.splitlines() == ["没有被隔离的行，也没有被搁置的单元格 (no quarantined rows or set-aside cells)"]
    code, out = cli("quarantine", "--db", db, "--ingest", "1")
    assert code == 0 and out.splitlines() == ["导入批次 1 没有被隔离的行，也没有被搁置的单元格 (no quarantined rows or set-aside cells)"]
    code, out = cli("quarantine", "--db", db, "--format", "csv")
    assert code == 0 and out.splitlines() == ["ingest_id,kind,file,row,column,raw,reason"]


def test_missing_database(tmp_path, cli):
    code, out = cli("quarantine", "--db", tmp_path / "none.duckdb")
    assert code == 2 and "不存在" in out and "audit ingest" in out
    assert not (tmp_path / "none.duckdb").exists()


def test_a_database_without_the_set_aside_table(tmp_path, cli):
    """A database written before set_aside existed: its quarantine is listed all the same."""
    db = tmp_path / "old.duckdb"
    con = connect(db)
    con.execute("DROP TABLE set_aside")
    con.execute("""INSERT INTO quarantine VALUES (1, 'old.csv', 'x', 7, '环节', '第 7 行 环节 "喝茶" 不在环节词表中',
                   '{"办件编号": "D1", "环节": "喝茶"}')""")
    con.execute("INSERT INTO ingests (ingest_id) VALUES (1)")
    con.close()
    code, out = cli("quarantine", "--db", db, "--format", "csv")
    assert code == 0
    assert csv_rows(out)[1:] == [["1", "quarantined", "old.csv", "7", "环节", "喝茶", '环节 "喝茶" 不在环节词表中']]


def test_csv_written_in_parts_has_one_header(tmp_path, cli, monkeypatch):
    """More entries than one part: one header, every row once, in row order."""
    db = tmp_path / "many.duckdb"
    con = connect(db)
    con.execute("INSERT INTO ingests (ingest_id) VALUES (1)")
    con.execute("""INSERT INTO set_aside SELECT 1, 'big.csv', 'x', 5000 - i, '收费', 'fee', '-' || i, '收费 不是金额'
                   FROM range(5000) t(i)""")
    con.close()
    monkeypatch.setattr(audit.outputs.quarantine, "FRAME_VECTORS", 1)    # parts of 2,048 rows
    code, out = cli("quarantine", "--db", db, "--format", "csv")
    assert code == 0
    rows = csv_rows(out)
    assert rows[0][0] == "ingest_id" and len(rows) == 5001
    assert [int(r[3]) for r in rows[1:]] == list(range(1, 5001))
    assert rows[1][5] == "'-4999"     # a leading - is made formula-safe too


@pytest.mark.parametrize("value, expected", [
    ("张三", "张*"), ("欧阳娜娜", "欧***"), ("买买提·艾力", "买*****"), ("宝塔区政务服务中心", "宝塔区政务服务中心"),
    ("A4", "A4"), ("2026-03-02 12:00", "2026-03-02 12:00"), ("电话13812345678", "电话138****5678"),
    ("610102199001011234", "610***********1234"), ("", ""),
])
def test_a_cell_whose_column_is_not_known(value, expected):
    assert mask_unlabelled(value) == expected


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
