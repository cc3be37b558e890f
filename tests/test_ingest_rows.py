"""Exact provenance on every read path (contract §1.5): a row's number is its physical line (CSV),
sheet row (Excel) or record number (Parquet), at every size, and events with the same timestamp
keep their file order. Each file here is ≥ 200,000 rows with numeric columns; every event carries
the line it was written on in its note, so each row is checked on its own."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter

from audit.ingest import ingest
from audit.ingest.normalize import MACROS, ColumnPlan, plan_columns, stage_sql
from audit.ingest.profile import load_profile
from audit.vocabulary import header_lookup, step_lookup
from tests.conftest import table

# The combined export of the issue: numeric columns (承诺时限, 收费金额, 到现场次数) included.
HEADER = ["办件编号", "地市", "服务类型", "环节", "时间", "经办人", "承诺时限", "收费金额", "到现场次数", "备注"]
N = 240_000
# Per case (6 rows): 中止 and 续办 at the same minute, twice, so that file order decides.
CYCLE = [("咨询", "09:00"), ("需求分析", "09:30"), ("中止", "10:00"), ("续办", "10:00"), ("中止", "11:00"),
         ("续办", "11:00")]


def record(k: int, line: int, bad: bool = False) -> list[str]:
    """The k-th record (0-based) of the export, written on physical line `line`."""
    step, hm = CYCLE[k % 6]
    day = 1 + (k // 6) % 28
    when = "2026-13-01 09:00" if bad else f"2026-03-{day:02d} {hm}:00"
    return [f"YA{k // 6:07d}", "延安", "代办", step, when, "张三", str(k % 9), f"{k % 5}.00", str(k % 3), str(line)]


def check_rows(con, bad_rows: list[int]) -> None:
    """Every event's row is the line it was written on; the bad rows are quarantined on theirs;
    same-time events keep file order (seq follows the row)."""
    assert table(con, "SELECT count(*) FROM events WHERE note <> source_row::VARCHAR") == [(0,)]
    assert [r[0] for r in table(con, "SELECT source_row FROM quarantine ORDER BY 1")] == bad_rows
    # Within each case, ordering by (time, seq) is ordering by (time, row): 中止 before its 续办.
    assert table(con, """
        SELECT count(*) FROM (
            SELECT row_number() OVER (PARTITION BY case_id ORDER BY "time", seq) AS a,
                   row_number() OVER (PARTITION BY case_id ORDER BY "time", source_row) AS b
            FROM events) WHERE a <> b""") == [(0,)]
    assert table(con, """SELECT count(*) FROM (SELECT case_id, list(step ORDER BY "time", seq) AS s FROM events
                         GROUP BY case_id) WHERE s[3:4] <> ['中止', '续办'] AND len(s) = 6""") == [(0,)]


@pytest.mark.parametrize("variant", ["fast", "fast_gbk", "fast_no_city", "exact_blank_line", "exact_line_break"])
def test_csv_rows_are_physical_lines(tmp_path, con, variant):
    """DuckDB's own parallel reader (UTF-8, and a GBK file through its UTF-8 copy), pyarrow (a
    blank line) and Python's csv module (a line break inside a quoted cell) give the same rows:
    each record's note is the physical line it starts on."""
    no_city = variant == "fast_no_city"     # cities come from a case table: the stage is updated in place
    out = ["延安市帮办代办明细 (导出)", ",".join(h for h in HEADER if not (no_city and h == "地市"))]
    lines_used, bad_lines = 2, []
    for k in range(N):
        if variant == "exact_blank_line" and k == 1_000:
            out.append("")                        # a blank line: quarantined as 空行
            lines_used += 1
            bad_lines.append(lines_used)
        start = lines_used + 1
        rec = record(k, start, bad=k == N - 1)
        if variant == "exact_line_break" and k == 7:
            rec[5] = '"张\n三"'                   # 经办人 spans two physical lines
        text = ",".join(c for i, c in enumerate(rec) if not (no_city and i == 1))
        out.append(text)
        lines_used += text.count("\n") + 1
        if k == N - 1:
            bad_lines.append(start)
    path = tmp_path / f"{variant}.csv"
    with open(path, "w", encoding="gbk" if variant == "fast_gbk" else "utf-8", newline="") as fh:
        fh.write("\n".join(out) + "\n")
    paths = [path]
    if no_city:
        ledger = tmp_path / "ledger.csv"
        ledger.write_text("办件编号,地市,服务类型\n" + "".join(f"YA{k:07d},延安,代办\n" for k in range(N // 6)),
                          encoding="utf-8")
        paths.append(ledger)
    report = ingest(con, paths)
    f = report.files[0]
    assert f.reader == ("duckdb" if variant.startswith("fast") else "exact")
    if no_city:
        assert f.city_resolved == N - 1 and report.waiting_total == 0
    assert f.rows_read == f.loaded + f.quarantined + f.duplicates == N + (variant == "exact_blank_line")
    assert f.quarantined == len(bad_lines) and f.duplicates == 0
    if variant.startswith("fast"):
        assert bad_lines == [N + 2]               # the bad row at line 240,002 is reported there
    check_rows(con, bad_lines)


def test_xlsx_rows_are_sheet_rows(tmp_path, con):
    path = tmp_path / "ledger.xlsx"
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    ws = wb.add_worksheet("明细")
    ws.write_row(0, 0, ["延安市帮办代办明细"])
    ws.write_row(2, 0, HEADER)                 # a blank sheet row 2 above the header
    bad = N - 1
    for k in range(N):
        rec = record(k, k + 4, bad=k == bad)
        ws.write_row(k + 3, 0, rec[:6])
        ws.write_number(k + 3, 6, int(rec[6]))  # numeric cells, as Excel keeps them
        ws.write_number(k + 3, 7, float(rec[7]))
        ws.write_number(k + 3, 8, int(rec[8]))
        ws.write_number(k + 3, 9, int(rec[9]))
    wb.close()
    report = ingest(con, [path])
    f = report.files[0]
    assert (f.rows_read, f.loaded, f.quarantined) == (N, N - 1, 1)
    check_rows(con, [N + 3])


def test_parquet_rows_are_record_numbers(tmp_path, con):
    recs = [record(k, k + 1, bad=k == 5) for k in range(N)]
    cols = list(zip(*recs))
    t = pa.table({h: pa.array(list(c)) for h, c in zip(HEADER, cols)})
    t = t.set_column(6, "承诺时限", pa.array([int(v) for v in cols[6]], pa.int64()))
    t = t.set_column(7, "收费金额", pa.array([float(v) for v in cols[7]], pa.float64()))
    path = tmp_path / "export.parquet"
    pq.write_table(t, path, row_group_size=50_000)
    report = ingest(con, [path])
    assert (report.files[0].rows_read, report.files[0].loaded) == (N, N - 1)
    check_rows(con, [6])


# ---------------------------------------------------------------------------------------------
PROFILE = """
city: 榆林
columns: {受理编号: case_id, 办理类型: service_type}
wide: {咨询日期: 咨询, 受理日期: 受理}
values: {service_type: {帮办服务: 帮办}, channel: {现场: 线下}}
constants: {channel: 现场, promised_days: "5"}
"""


@pytest.mark.parametrize("headers, profile, city", [
    (HEADER, None, None),
    (HEADER, None, "延安"),
    (["办件编号", "环节", "时间", "经办人", "备注"], None, None),
    (["办件编号", "地市", "服务类型", "服务方式", "服务对象类别", "承诺时限", "收费金额", "到现场次数", "评价", "评价时间",
      "归档材料"], None, None),
    (["受理编号", "办理类型", "咨询日期", "受理日期", "收费金额"], "profile", None),
])
def test_the_stage_is_projections_only(tmp_path, headers, profile, city):
    """Row numbers on the fast path come from the order DuckDB keeps through projections: the
    stage's plan must hold no join (an IN list of six or more values becomes one), whatever the
    layout, profile or options."""
    prof = None
    if profile:
        (tmp_path / "p.yaml").write_text(PROFILE, encoding="utf-8")
        prof = load_profile(tmp_path / "p.yaml")
    path = tmp_path / "x.csv"
    path.write_text(",".join(headers) + "\n" + ",".join("1" for _ in headers) + "\n", encoding="utf-8")
    builtin = header_lookup()
    plan: ColumnPlan = plan_columns(headers, builtin, prof, "x.csv")
    cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(headers)))
    source = f"read_csv('{path}', skip=1, header=false, auto_detect=false, columns={{{cols}}})"
    con = duckdb.connect()
    con.execute(MACROS)
    sql = stage_sql(plan, prof, city, source, step_lookup(prof.steps if prof else None), has_row=False,
                    fields=len(headers))
    plan_text = "\n".join(r[1] for r in con.execute("EXPLAIN " + sql).fetchall())
    assert "JOIN" not in plan_text.upper(), plan_text
