"""Every CSV and XLSX the commands write: formula-safe cells and valid, unique sheet names.

Real files with hall, staff, city, item and step values starting with each formula character are
ingested through the CLI and checked with a small custom pack whose message quotes the item; the
outputs of `kpi`, `findings` and `quarantine` are read back with the csv module and openpyxl.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.db import connect
from audit.spreadsheet import FORMULA_START, csv_text, safe_cell, safe_frame, sheet_names
from tests.conftest import write_csv

PREFIXES = ["=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠"]
SHOWN = [p for p in PREFIXES if p not in "\t\r"]   # ingest trims a leading tab or CR off loaded cells
HEADER = ["办件编号", "地市", "服务大厅", "服务类型", "事项名称", "帮办代办员", "评价", "环节", "时间", "经办人"]

PACK = """name: 公式测试
version: "1.0.0-test"
extends: default
"""
ITEM_RULE = """id: LOCAL-ITEM
clause: "10 一站式办理"
severity: warning
title: 事项名称原样引用
rationale: 测试用：问题与证据原样引用事项名称。
settings: []
sql: |
  SELECT city, case_id, item AS message, {'item': item} AS evidence
  FROM case_facts WHERE item IS NOT NULL
examples:
  fail:
    - name: 有事项名称
      case: {service_type: 帮办, item: "=事项"}
      events: [[咨询, 2026-03-02 09:00]]
  pass:
    - name: 没有事项名称
      case: {service_type: 帮办}
      events: [[咨询, 2026-03-02 09:00]]
"""


def write_pack(root: Path) -> Path:
    """A pack extending the default one with a rule whose message and evidence quote the item."""
    (root / "checks").mkdir(parents=True)
    (root / "pack.yaml").write_text(PACK, encoding="utf-8")
    (root / "checks" / "LOCAL-ITEM.yaml").write_text(ITEM_RULE, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def formula_db(tmp_path_factory) -> Path:
    """One case per prefix: its city, hall, staff and item start with the prefix; a second row has
    an unknown step (quarantined) and the case an unknown rating (set aside), both with the prefix."""
    tmp = tmp_path_factory.mktemp("formula")
    rows = [HEADER]
    for i, p in enumerate(PREFIXES):
        attrs = [f"C{i}", f"{p}城{i}", f"{p}大厅{i}", "帮办", f"{p}事项{i}", f"{p}员{i}", f"{p}好评{i}"]
        rows.append(attrs + ["咨询", "2026-03-02 09:00", f"{p}员{i}"])
        rows.append(attrs + [f"{p}步{i}", "2026-03-02 10:00", f"{p}员{i}"])
    # CRLF rows: the csv module then quotes a cell holding a bare CR.
    path = write_csv(tmp / "formula.csv", rows, newline="\r\n")
    db = tmp / "audit.duckdb"
    assert invoke("ingest", "--db", db, path)[0] == 0
    code, out = invoke("check", "--db", db, "--pack", write_pack(tmp / "pack"), "--as-of", "2026-03-20")
    assert code == 0, out
    return db


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for cell in row]


def xlsx_cells(path: Path) -> list:
    wb = openpyxl.load_workbook(path)
    return [c for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value is not None]


def assert_safe(values: list) -> None:
    risky = [v for v in values if isinstance(v, str) and v.startswith(FORMULA_START)]
    assert not risky, f"formula-like cells written raw: {risky}"


def assert_xlsx_safe(path: Path) -> list[str]:
    cells = xlsx_cells(path)
    assert cells and all(c.data_type != "f" for c in cells)     # openpyxl sees no formula
    assert all(c.data_type == "s" for c in cells)                # every cell is text
    # The file stores a CR as Excel's escape _x000D_, which openpyxl does not undo.
    values = [c.value.replace("_x000D_", "\r") for c in cells]
    assert_safe(values)
    return values


# --- the commands --------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["hall,staff", "city", "city,hall,staff"])
def test_kpi_csv(formula_db, tmp_path, by):
    out = tmp_path / "kpi.csv"
    code, output = invoke("kpi", "--db", formula_db, "--as-of", "2026-03-20", "--by", by, "--format", "csv",
                          "--out", out)
    assert code == 0, output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    cells = [c for row in rows[1:] for c in row]
    assert_safe(cells)
    key = {"hall,staff": "大厅", "city": "城", "city,hall,staff": "员"}[by]
    for _i, p in enumerate(SHOWN):
        assert any(c.startswith(f"'{p}{key}") for c in cells), (p, key)
    # Figures stay numbers: the count of cases is written as 1, never prefixed.
    assert {row[len(by.split(","))] for row in rows[1:]} == {"1"}


def test_findings_csv(formula_db):
    code, out = invoke("findings", "--db", formula_db, "--format", "csv")
    assert code == 0
    cells = csv_cells(out)
    assert_safe(cells)
    for p in SHOWN:
        for key in ("城", "大厅", "员", "事项"):          # city, hall, staff, message
            assert any(c.startswith(f"'{p}{key}") for c in cells), (p, key)


def test_findings_xlsx(formula_db, tmp_path):
    path = tmp_path / "整改清单.xlsx"
    code, out = invoke("findings", "--db", formula_db, "--format", "xlsx", "--out", path)
    assert code == 0, out
    values = assert_xlsx_safe(path)
    for p in SHOWN:
        for key in ("大厅", "员", "事项"):                 # the hall heads its group: `'=大厅0：2 条`
            assert any(v.startswith(f"'{p}{key}") for v in values), (p, key)
        assert any(v.startswith(f"'{p}城") and "整改清单" in v for v in values)   # the sheet's title
    names = openpyxl.load_workbook(path).sheetnames
    assert len(names) == len(PREFIXES) and len({n.casefold() for n in names}) == len(names)


def test_quarantine_csv_and_xlsx(formula_db, tmp_path):
    code, out = invoke("quarantine", "--db", formula_db, "--format", "csv")
    assert code == 0
    cells = csv_cells(out)
    assert_safe(cells)
    for i, p in enumerate(PREFIXES):               # the raw cells keep a leading tab or CR: prefixed
        assert f"'{p}步{i}" in cells and f"'{p}好评{i}" in cells, repr(p)
    path = tmp_path / "隔离清单.xlsx"
    assert invoke("quarantine", "--db", formula_db, "--format", "xlsx", "--out", path)[0] == 0
    values = assert_xlsx_safe(path)
    for i, p in enumerate(PREFIXES):
        assert f"'{p}步{i}" in values and f"'{p}好评{i}" in values, repr(p)
    # Reasons quote the value inside quotation marks: they start with the column's name, not a formula.
    assert any(v.startswith('环节 "=步0"') for v in values)


# --- the shared functions ------------------------------------------------------------------
def test_text_is_prefixed_and_numbers_stay_numbers():
    assert [safe_cell(p + "1") for p in PREFIXES] == ["'" + p + "1" for p in PREFIXES]
    assert safe_cell(-3) == -3 and safe_cell(-0.5) == -0.5 and safe_cell(None) is None
    assert safe_cell("a=1") == "a=1" and safe_cell("'=1") == "'=1" and safe_cell("") == ""
    df = pd.DataFrame({"text": ["-3", "=1+1", "ok", None], "n": [-3, 1, 2, 3], "x": [-1.5, 2.0, None, 0.0],
                       "mixed": [-3, "+1", 2.5, None]})
    rows = list(csv.reader(io.StringIO(csv_text(df))))
    assert rows == [["text", "n", "x", "mixed"], ["'-3", "-3", "-1.5", "-3"], ["'=1+1", "1", "2.0", "'+1"],
                    ["ok", "2", "", "2.5"], ["", "3", "0.0", ""]]
    assert df["text"].tolist()[:2] == ["-3", "=1+1"]                # the frame itself is not changed
    ints = pd.DataFrame({"o": pd.Series([-1, 2], dtype=object)})    # an object column without text
    assert safe_frame(ints) is ints


@pytest.mark.parametrize("labels, expected", [
    (["城[1]", "a:b*c?d/e\\f"], ["城_1_", "a_b_c_d_e_f"]),
    (["'城", "城'", "'", "''城''"], ["城", "城 (2)", "(空)", "城 (3)"]),
    (["", None, float("nan")], ["(空)", "(空) (2)", "(空) (3)"]),
    (["Yanan", "YANAN", "yanan"], ["Yanan", "YANAN (2)", "yanan (3)"]),
    (["History", "history"], ["History_", "history_ (2)"]),
    (["甲" * 31 + "乙", "甲" * 31 + "丙"], ["甲" * 31, "甲" * 27 + " (2)"]),
    (["x" * 30 + "'y"], ["x" * 30]),                                # cut, then the trailing ' dropped
    (["城\t区\n"], ["城_区"]),
    (["\U00020000" * 20], ["\U00020000" * 15]),                     # 31 UTF-16 units, as Excel counts
])
def test_sheet_names(labels, expected):
    assert sheet_names(labels) == expected


def test_findings_sheets_for_awkward_cities(tmp_path):
    """Cities that are not valid sheet names as they are, or not unique once made valid, and
    findings without a city: the workbook is written and opens with unique names ≤ 31."""
    long_a, long_b = "长" * 31 + "甲", "长" * 31 + "乙"
    cities = ["城[1]", "'城", long_a, long_b, "Yanan", "YANAN", "History"]
    rows = [["办件编号", "地市", "服务类型", "环节", "时间"]]
    rows += [[f"K{i}", city, "帮办", "咨询", "2026-03-02 09:00"] for i, city in enumerate(cities)]
    db = tmp_path / "cities.duckdb"
    assert invoke("ingest", "--db", db, write_csv(tmp_path / "cities.csv", rows))[0] == 0
    assert invoke("check", "--db", db, "--as-of", "2026-03-20")[0] == 0
    con = connect(db)
    stored = {r[0] for r in con.execute("SELECT DISTINCT city FROM findings").fetchall()}
    assert stored == set(cities)
    # Findings of a custom pack may come without a city: they get a sheet of their own.
    con.execute("""INSERT INTO findings SELECT run_id, rule_id, severity, clause, c, 'K0', 'x', NULL, NULL
                   FROM (SELECT * FROM findings LIMIT 1), (VALUES (''), (NULL)) v(c)""")
    con.close()
    path = tmp_path / "整改清单.xlsx"
    code, out = invoke("findings", "--db", db, "--format", "xlsx", "--out", path)
    assert code == 0, out
    wb = openpyxl.load_workbook(path)
    names = wb.sheetnames
    assert len(names) == len(cities) + 1
    assert all(0 < len(n.encode("utf-16-le")) // 2 <= 31 for n in names)
    assert len({n.casefold() for n in names}) == len(names)
    assert not any(ch in n for n in names for ch in "[]:*?/\\") and not any(n[0] == "'" or n[-1] == "'" for n in names)
    assert names == sheet_names(["(未填写地市)"] + sorted(cities))
    titles = {ws.title: ws.cell(1, 1).value for ws in wb.worksheets}
    assert titles[sheet_names(sorted(cities))[sorted(cities).index(long_b)]].startswith(long_b)
    assert titles["(未填写地市)"].startswith("(未填写地市)")
    empty = wb["(未填写地市)"]
    assert [empty.cell(r, 2).value for r in range(4, 6)] == ["K0", "K0"]


def test_same_database_same_bytes(formula_db, tmp_path):
    a, b = tmp_path / "a.xlsx", tmp_path / "b.xlsx"
    for path in (a, b):
        assert invoke("findings", "--db", formula_db, "--format", "xlsx", "--out", path)[0] == 0
    assert a.read_bytes() == b.read_bytes()
    _, out = invoke("findings", "--db", formula_db, "--format", "json")
    assert any(f["city"] == "=城0" for f in json.loads(out)["findings"])   # JSON is data, never prefixed
