"""The working-day calendar (contract §2): national schedule, override files, fallback, SQL macros."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import duckdb
import pytest
from typer.testing import CliRunner

from audit.calendar.workcalendar import WorkCalendar
from audit.errors import CalendarError, UsageError

D = date.fromisoformat


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return WorkCalendar.load()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def full_year_2027(path: Path) -> Path:
    """A hall's whole-year 2027 file: Mon–Fri, with New Year's Day off and one Saturday worked."""
    rows = ["date,is_workday,note"]
    d = D("2027-01-01")
    while d.year == 2027:
        special = {D("2027-01-01"): "0,元旦", D("2027-01-09"): "1,调休"}.get(d)
        rows.append(f"{d},{special or ('1,' if d.weekday() < 5 else '0,')}")
        d += timedelta(days=1)
    return write(path, "\n".join(rows) + "\n")


# -- national schedule ----------------------------------------------------------------------------

def test_spring_festival_2026(cal):
    # Thu 12 → Fri 13, Sat 14 (make-up day), then the holiday 15–23, Tue 24.
    assert cal.add_workdays(D("2026-02-12"), 3) == D("2026-02-24")
    assert cal.add_workdays(D("2026-02-26"), 2) == D("2026-02-28")  # Sat 28 is a make-up day
    assert cal.is_workday(D("2026-02-14")) and not cal.is_workday(D("2026-02-16"))
    assert cal.note(D("2026-02-14")) == "调休上班" and cal.note(D("2026-02-17")) == "春节"


def test_add_zero_is_identity_even_on_a_holiday(cal):
    for d in (D("2026-02-17"), D("2026-02-21"), D("2026-02-24")):
        assert cal.add_workdays(d, 0) == d
    assert cal.add_workdays(datetime(2026, 2, 17, 15, 30), 0) == D("2026-02-17")


def test_add_from_a_holiday_counts_from_the_next_working_day(cal):
    assert cal.add_workdays(D("2026-02-17"), 1) == D("2026-02-24")
    with pytest.raises(ValueError):
        cal.add_workdays(D("2026-02-17"), -1)


def test_workdays_is_half_open(cal):
    assert cal.workdays(D("2026-02-12"), D("2026-02-24")) == 3  # 12, 13, 14
    assert cal.workdays(D("2026-02-12"), D("2026-02-25")) == 4  # … and 24
    assert cal.workdays(D("2026-02-12"), D("2026-02-12")) == 0
    assert cal.workdays(D("2026-02-25"), D("2026-02-12")) == -4
    assert cal.workdays(D("2025-12-29"), D("2026-01-06")) == 5  # 29–31 Dec, Sun 4 and Mon 5 Jan


def test_national_day_2025(cal):
    assert cal.is_workday(D("2025-09-28"))  # Sunday, make-up day
    assert cal.is_workday(D("2025-10-11"))  # Saturday, make-up day
    assert not any(cal.is_workday(D("2025-10-01") + timedelta(days=i)) for i in range(8))
    assert cal.add_workdays(D("2025-09-30"), 1) == D("2025-10-09")
    assert cal.add_workdays(D("2025-09-26"), 2) == D("2025-09-29")  # Fri → Sun 28 → Mon 29
    assert cal.workdays(D("2025-09-27"), D("2025-10-11")) == 5  # 28, 29, 30, 9, 10
    assert cal.workdays(D("2025-09-27"), D("2025-10-12")) == 6  # … and Sat 11


def test_agrees_with_chinesecalendar(cal):
    d = D("2024-01-01")
    while d <= D("2026-12-31"):
        assert cal.is_workday(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


# -- overrides, coverage, fallback ----------------------------------------------------------------

def test_override_file_changes_a_day(tmp_path):
    f = write(tmp_path / "西安.csv", "date,is_workday,note\n2026-02-24,否,大厅停电\n2026-02-21,工作日,\n")
    cal = WorkCalendar.load([f])
    assert not cal.is_workday(D("2026-02-24")) and cal.is_workday(D("2026-02-21"))
    assert cal.note(D("2026-02-24")) == "覆盖: 大厅停电" and cal.note(D("2026-02-21")) == "覆盖: 西安.csv"
    assert cal.add_workdays(D("2026-02-12"), 3) == D("2026-02-21")
    assert "西安.csv" in cal.description


def test_later_override_file_wins_and_values_are_flexible(tmp_path):
    city = write(tmp_path / "city.csv", "date,is_workday\n2026-03-02,0\n2026-03-03,false\n")
    hall = write(tmp_path / "hall.csv", "日期,是否工作日,备注\n2026/3/2,TRUE,\n2026-03-04,1,\n")
    cal = WorkCalendar.load([city, hall])
    assert cal.is_workday(D("2026-03-02")) and not cal.is_workday(D("2026-03-03"))


def test_override_file_saved_by_excel_as_gbk(tmp_path):
    f = tmp_path / "gbk.csv"
    f.write_bytes("日期,是否工作日,备注\n2026-03-02,休息日,停电检修\n".encode("gbk"))
    cal = WorkCalendar.load([f])
    assert not cal.is_workday(D("2026-03-02")) and cal.note(D("2026-03-02")) == "覆盖: 停电检修"


def test_bad_override_file_names_file_line_and_column(tmp_path):
    f = write(tmp_path / "bad.csv", "date,is_workday\n2026-03-02,0\n2026-13-01,1\n2026-03-05,maybe\n")
    with pytest.raises(UsageError) as err:
        WorkCalendar.load([f])
    msg = str(err.value)
    assert "bad.csv" in msg and "2 处" in msg
    assert "第 3 行第 1 列 (date)" in msg and "第 4 行第 2 列 (is_workday)" in msg


def test_override_file_needs_a_header(tmp_path):
    with pytest.raises(UsageError, match="nohead.csv 第 1 行"):
        WorkCalendar.load([write(tmp_path / "nohead.csv", "2026-03-02,0\n")])
    with pytest.raises(UsageError, match="missing.csv"):
        WorkCalendar.load([tmp_path / "missing.csv"])


def test_uncovered_year_is_a_calendar_error(cal):
    with pytest.raises(CalendarError) as err:
        cal.add_workdays(D("2026-12-30"), 5)
    msg = str(err.value)
    assert "2027" in msg and "--calendar" in msg and "chinesecalendar" in msg
    with pytest.raises(CalendarError, match="2003"):
        cal.is_workday(D("2003-06-02"))
    assert 2027 not in cal.covered_years() and 2026 in cal.covered_years()


def test_partial_override_does_not_cover_a_year(tmp_path):
    f = write(tmp_path / "part.csv", "date,is_workday\n2027-01-01,0\n")
    with pytest.raises(CalendarError, match="1 天"):
        WorkCalendar.load([f]).is_workday(D("2027-01-04"))


def test_weekdays_fallback_records_the_year(tmp_path):
    cal = WorkCalendar.load(fallback="weekdays")
    assert cal.fallback_years == set()
    assert cal.add_workdays(D("2026-12-30"), 5) == D("2027-01-06")  # 31, 1 (Fri), 4, 5, 6
    assert cal.fallback_years == {2027}
    assert "2027" in cal.description and "周一至周五" in cal.description
    with pytest.raises(UsageError):
        WorkCalendar.load(fallback="saturdays")


def test_whole_year_override_covers_the_year(tmp_path):
    cal = WorkCalendar.load([full_year_2027(tmp_path / "2027.csv")])
    assert 2027 in cal.covered_years()
    assert not cal.is_workday(D("2027-01-01")) and cal.is_workday(D("2027-01-09"))
    assert cal.add_workdays(D("2026-12-31"), 2) == D("2027-01-05")
    assert cal.fallback_years == set()


# -- SQL ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sql_cal(tmp_path_factory):
    """A real DuckDB file with the calendar table for 2023-11 … 2027 (2027 from a hall's file)."""
    tmp = tmp_path_factory.mktemp("cal")
    cal = WorkCalendar.load([full_year_2027(tmp / "2027.csv")])
    con = duckdb.connect(str(tmp / "audit.duckdb"))
    built = cal.to_duckdb(con, D("2023-11-01"), D("2027-12-31"))
    assert built == (D("2023-11-01"), D("2027-12-31"))
    yield cal, con
    con.close()


def test_calendar_table_shape(sql_cal):
    cal, con = sql_cal
    rows = con.execute("SELECT count(*), count(DISTINCT d), min(d), max(d) FROM calendar").fetchone()
    assert rows == (1522, 1522, D("2023-11-01"), D("2027-12-31"))
    assert con.execute("SELECT is_workday, note FROM calendar WHERE d = DATE '2026-02-14'").fetchone() \
        == (True, "调休上班")
    # wd_no(b-1) - wd_no(a-1) = wd_before(b) - wd_before(a)
    mismatched = "SELECT count(*) FROM calendar WHERE wd_no <> wd_before + is_workday::INT"
    assert con.execute(mismatched).fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM workday_by_no").fetchone() == \
        con.execute("SELECT count(*) FROM calendar WHERE is_workday").fetchone()


def _python_add(cal):
    d, out = D("2024-01-01"), set()
    while d <= D("2026-12-31"):
        out |= {(d, n, cal.add_workdays(d, n)) for n in range(26)}
        d += timedelta(days=1)
    return out


def test_sql_add_workdays_macro_equals_python(sql_cal):
    cal, con = sql_cal
    sql = set(con.execute("""
        SELECT day::DATE, n::INT, add_workdays(day::DATE, n::INT)
        FROM range(DATE '2024-01-01', DATE '2027-01-01', INTERVAL 1 DAY) r(day), range(26) k(n)
    """).fetchall())
    assert sql == _python_add(cal)


def test_sql_add_workdays_join_pattern_equals_python(sql_cal):
    cal, con = sql_cal
    sql = set(con.execute("""
        WITH t AS (SELECT day::TIMESTAMP + INTERVAL 9 HOUR AS day, n::INT AS n
                   FROM range(DATE '2024-01-01', DATE '2027-01-01', INTERVAL 1 DAY) r(day), range(26) k(n))
        SELECT t.day::DATE, t.n, CASE WHEN t.n = 0 THEN t.day::DATE ELSE b.d END
        FROM t JOIN calendar c ON c.d = t.day::DATE
        LEFT JOIN workday_by_no b ON b.wd_no = c.wd_no + t.n
    """).fetchall())
    assert sql == _python_add(cal)


def test_sql_workdays_equals_python(sql_cal):
    cal, con = sql_cal
    query = """
        WITH t AS (SELECT a::DATE AS a, (a + to_days(CAST(k AS INT)))::DATE AS b
                   FROM range(DATE '2024-01-01', DATE '2027-01-01', INTERVAL 1 DAY) r(a), range(-10, 40) s(k))
        SELECT t.a, t.b, {expr} FROM t {joins}
    """
    macro = set(con.execute(query.format(expr="workdays(t.a, t.b)", joins="")).fetchall())
    joined = set(con.execute(query.format(
        expr="cb.wd_before - ca.wd_before",
        joins="JOIN calendar ca ON ca.d = t.a JOIN calendar cb ON cb.d = t.b")).fetchall())
    python = {(a, b, cal.workdays(a, b)) for a, b, _ in macro}
    assert len(macro) == 1096 * 50 and macro == python and joined == python


def test_sql_nulls_and_falling_off_the_table(sql_cal):
    _, con = sql_cal
    assert con.execute("SELECT add_workdays(NULL::DATE, 3), add_workdays(DATE '2026-02-17', NULL), "
                       "workdays(NULL::DATE, DATE '2026-01-01')").fetchone() == (None, None, None)
    with pytest.raises(duckdb.Error, match="工作日历"):
        con.execute("SELECT add_workdays(DATE '2027-12-20', 30)").fetchall()
    with pytest.raises(duckdb.Error, match="工作日历"):
        con.execute("SELECT workdays(DATE '2027-12-20', DATE '2028-01-05')").fetchall()


def test_to_duckdb_requires_coverage_but_clips_headroom(tmp_path, cal):
    con = duckdb.connect(str(tmp_path / "a.duckdb"))
    with pytest.raises(CalendarError, match="2027"):
        cal.to_duckdb(con, D("2026-01-01"), D("2027-06-30"))
    built = cal.to_duckdb(con, D("2025-11-01"), D("2028-06-30"), required_end=D("2026-11-28"))
    assert built == (D("2025-11-01"), D("2026-12-31"))
    assert con.execute("SELECT add_workdays(DATE '2026-02-12', 3)").fetchone() == (D("2026-02-24"),)
    with pytest.raises(duckdb.Error, match="2027"):
        con.execute("SELECT add_workdays(DATE '2026-12-28', 5)").fetchall()
    fallback = WorkCalendar.load(fallback="weekdays")
    assert fallback.to_duckdb(con, D("2026-01-01"), D("2027-06-30"))[1] == D("2027-06-30")
    assert fallback.fallback_years == {2027}
    assert con.execute("SELECT add_workdays(DATE '2026-12-30', 5)").fetchone() == (D("2027-01-06"),)


def test_to_duckdb_temporary_on_a_read_only_database(tmp_path, cal):
    duckdb.connect(str(tmp_path / "ro.duckdb")).close()
    con = duckdb.connect(str(tmp_path / "ro.duckdb"), read_only=True)
    cal.to_duckdb(con, D("2026-01-01"), D("2026-12-31"), temporary=True)
    assert con.execute("SELECT workdays(DATE '2026-02-01', DATE '2026-03-01')").fetchone() == (16,)


# -- CLI ------------------------------------------------------------------------------------------

def test_cli_month(tmp_path):
    import audit.cli.calendar  # noqa: F401  (registers the command)
    from audit.cli import app

    expected = sum(chinese_calendar.is_workday(D("2026-02-01") + timedelta(days=i)) for i in range(28))
    result = CliRunner().invoke(app, ["calendar", "2026-02"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "春节" in out and "调休上班" in out and "周末" in out
    assert "2026-02-14  周六  工作日  调休上班" in out
    assert f"工作日 {expected} 天 / 共 28 天" in out and expected == 16


def test_cli_bad_month_and_uncovered_year(tmp_path):
    import audit.cli.calendar  # noqa: F401
    from audit.cli import app

    bad = CliRunner().invoke(app, ["calendar", "2026-13"])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output
    uncovered = CliRunner().invoke(app, ["calendar", "2027-01"])
    assert uncovered.exit_code == 2 and "2027" in uncovered.output
    covered = CliRunner().invoke(
        app, ["calendar", "2027-01", "--calendar", str(full_year_2027(tmp_path / "2027.csv"))])
    assert covered.exit_code == 0 and "覆盖: 元旦" in covered.output
    fallback = CliRunner().invoke(app, ["calendar", "2027-01", "--calendar-fallback", "weekdays"])
    assert fallback.exit_code == 0 and "周一至周五" in fallback.output
