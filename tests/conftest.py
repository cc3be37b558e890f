"""Shared fixtures: real files written by the tests, a real DuckDB file, the real CLI."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import duckdb
import pytest
import xlsxwriter
from typer.testing import CliRunner

from audit.cli import app
from audit.db import connect

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.duckdb"


@pytest.fixture
def con(db_path: Path):
    c = connect(db_path)
    yield c
    c.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch):
    """Run the CLI through typer's runner in tmp_path; returns (exit_code, output)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return result.exit_code, result.output

    return run


def write_csv(path: Path, rows: list[list[object]], encoding: str = "utf-8", title: str | None = None,
              newline: str = "\n") -> Path:
    """Write rows as CSV in the given encoding, optionally under a title line."""
    with open(path, "w", encoding=encoding, newline="") as fh:
        if title:
            fh.write(title + newline)
        w = csv.writer(fh, lineterminator=newline)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    return path


def write_xlsx(path: Path, rows: list[list[object]], sheet: str = "Sheet1", title: str | None = None,
               blank_rows: int = 0) -> Path:
    """Write rows to an XLSX sheet; datetimes become real Excel date cells."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet(sheet)
    fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    r0 = 0
    if title:
        ws.merge_range(0, 0, 0, max(1, len(rows[0]) - 1), title)
        r0 = 1
    r0 += blank_rows
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if isinstance(v, dt.datetime):
                ws.write_datetime(r0 + i, j, v, fmt)
            elif v is None:
                continue
            elif isinstance(v, (int, float)):
                ws.write_number(r0 + i, j, v)
            else:
                ws.write_string(r0 + i, j, str(v))
    wb.close()
    return path


def table(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def snapshot(con) -> dict[str, list[tuple]]:
    """Everything an ingest may change, in a comparable form."""
    return {
        "cases": table(con, "SELECT * FROM cases ORDER BY city, case_id"),
        "events": table(con, "SELECT * FROM events ORDER BY seq"),
        "quarantine": table(con, "SELECT file_name, sha256, source_row, \"column\", reason FROM quarantine ORDER BY ALL"),
    }


def query(db: Path, sql: str, params=None) -> list[tuple]:
    """Rows of `sql` on the database file `db`, opened read-only for the query alone."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
