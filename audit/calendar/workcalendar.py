"""The working-day calendar (工作日历) of contract §2.

A working day is Monday–Friday, minus the statutory holidays, plus the make-up working days (调休) of
the national schedule (the ``chinesecalendar`` package). City or hall calendar files override single
days on top of it, in the order given (a later file wins), and a file that lists every date of a year
makes that year covered even if the national table does not have it yet.

Override files are CSV with a header: ``date,is_workday[,note]`` (also ``日期,是否工作日[,备注]``);
``is_workday`` accepts 1/0, true/false, 是/否, 工作日/休息日. Lines starting with ``#`` are comments.

A date in a year no calendar covers raises `CalendarError`, unless the calendar was loaded with
``fallback="weekdays"``: such years then count Monday–Friday only and are recorded in
``WorkCalendar.fallback_years`` so reports can say so.

In SQL (after `WorkCalendar.to_duckdb`), rules do working-day arithmetic set-based:

- macros ``add_workdays(day, n)``, ``workdays(from_day, to_day)`` and ``workdays_before(day)`` (a DATE
  or TIMESTAMP; the time of day is ignored; NULL in → NULL out; a date beyond the table raises an
  error naming the calendar table and the missing year);
- or, equivalently, joins on the tables (``wd_no`` = working days up to and including ``d``,
  ``wd_before`` = working days strictly before ``d``)::

      -- add_workdays(t.day, t.n), n >= 0
      SELECT CASE WHEN t.n = 0 THEN t.day::DATE ELSE b.d END AS due
      FROM t JOIN calendar c ON c.d = t.day::DATE
      LEFT JOIN workday_by_no b ON b.wd_no = c.wd_no + t.n

      -- workdays(t.a, t.b): working days in [a, b)
      SELECT cb.wd_before - ca.wd_before AS n
      FROM t JOIN calendar ca ON ca.d = t.a::DATE JOIN calendar cb ON cb.d = t.b::DATE
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path

import numpy as np
import pyarrow as pa
from chinese_calendar import constants as _national

from audit.errors import CalendarError, UsageError

FALLBACKS = ("weekdays",)
WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
MAKEUP_NOTE = "调休上班"
WEEKEND_NOTE = "周末"

_NATIONAL_YEARS = range(min(_national.holidays).year, max(_national.holidays).year + 1)
_TRUE = {"1", "true", "是", "工作日"}
_FALSE = {"0", "false", "否", "休息日"}
_HEADER = {"date": "date", "日期": "date", "is_workday": "is_workday", "是否工作日": "is_workday",
           "note": "note", "备注": "note", "说明": "note"}
_DATE_RE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]0{1,2}:00(?::00)?)?|(\d{4})(\d{2})(\d{2})")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _national_version() -> str:
    try:
        return metadata.version("chinesecalendar")
    except metadata.PackageNotFoundError:  # pragma: no cover - vendored copies
        return "unknown"


@dataclass(frozen=True)
class Override:
    """One day set by a calendar file."""

    is_workday: bool
    note: str
    source: str  # file name, shown when the row has no note


class WorkCalendar:
    """Working days: the national schedule, then override files, then (if chosen) Mon–Fri fallback."""

    def __init__(self, overrides: dict[date, Override] | None = None, files: list[Path] | None = None,
                 fallback: str | None = None):
        if fallback not in (None, *FALLBACKS):
            raise UsageError(f"未知的日历兜底方式 {fallback!r}，只支持 weekdays (unknown calendar fallback)")
        self.overrides = dict(overrides or {})
        self.files = list(files or [])
        self.fallback = fallback
        self.fallback_years: set[int] = set()
        self._years: dict[int, tuple[list[bool], list[str]]] = {}
        per_year: dict[int, int] = {}
        for d in self.overrides:
            per_year[d.year] = per_year.get(d.year, 0) + 1
        self._override_counts = per_year
        self._full_override_years = {y for y, n in per_year.items() if n == _days_in_year(y)}

    @classmethod
    def load(cls, overrides: list[Path] | tuple = (), fallback: str | None = None) -> WorkCalendar:
        """Build the calendar from the national schedule plus override files (applied in order)."""
        merged: dict[date, Override] = {}
        for path in overrides:
            merged.update(read_override_file(Path(path)))
        return cls(merged, [Path(p) for p in overrides], fallback)

    # -- coverage ---------------------------------------------------------------------------------

    def covered_years(self) -> list[int]:
        """Years with a real calendar: the national table plus years an override file fully lists."""
        return sorted(set(_NATIONAL_YEARS) | self._full_override_years)

    def is_covered(self, year: int) -> bool:
        """True if `year` has a real calendar (fallback years do not count)."""
        return year in _NATIONAL_YEARS or year in self._full_override_years

    @property
    def description(self) -> str:
        """Human text naming the sources, e.g. for a report's run metadata."""
        text = (f"国家法定节假日 (chinesecalendar {_national_version()}, "
                f"{_NATIONAL_YEARS.start}–{_NATIONAL_YEARS.stop - 1})")
        if self.files:
            text += " + 覆盖文件 " + ", ".join(p.name for p in self.files)
        if self.fallback_years:
            years = "、".join(str(y) for y in sorted(self.fallback_years))
            text += f"；{years} 年无日历，按周一至周五计算 (weekdays fallback)"
        elif self.fallback:
            text += "；无日历的年份按周一至周五计算 (weekdays fallback, not used so far)"
        return text

    def _uncovered_error(self, year: int) -> CalendarError:
        partial = self._override_counts.get(year, 0)
        extra = f"覆盖文件只列出了 {year} 年 {partial} 天，需要全年每一天；" if partial else ""
        return CalendarError(
            f"{year} 年不在工作日历范围内 (chinesecalendar {_national_version()} 只有 "
            f"{_NATIONAL_YEARS.start}–{_NATIONAL_YEARS.stop - 1} 年)：{extra}请升级 chinesecalendar "
            f"(pip install -U chinesecalendar)，或用 --calendar FILE 提供列出 {year} 年每一天的 CSV "
            f"(date,is_workday[,note])——{notice_remedy(year)}——，"
            f"或加 --calendar-fallback weekdays 按周一至周五计算 "
            f"(no working-day calendar covers {year}: update chinesecalendar, pass --calendar FILE "
            f"listing every date of {year}, made from the State Council's holiday notice with "
            f"`audit calendar --from-notice notice.txt --out {year}.csv`, or use --calendar-fallback weekdays)")

    def _year(self, year: int) -> tuple[list[bool], list[str]]:
        """(is_workday, note) for every day of `year`, computed once."""
        if year in self._years:
            return self._years[year]
        national = year in _NATIONAL_YEARS
        if not national and year not in self._full_override_years:
            if self.fallback != "weekdays":
                raise self._uncovered_error(year)
            self.fallback_years.add(year)
        flags: list[bool] = []
        notes: list[str] = []
        d = date(year, 1, 1)
        while d.year == year:
            flag, note = self._day(d, national)
            flags.append(flag)
            notes.append(note)
            d += timedelta(days=1)
        self._years[year] = (flags, notes)
        return flags, notes

    def _day(self, d: date, national: bool) -> tuple[bool, str]:
        override = self.overrides.get(d)
        if override is not None:
            return override.is_workday, f"覆盖: {override.note or override.source}"
        if national and d in _national.holidays:
            return False, _national.Holiday(_national.holidays[d]).chinese
        if national and d in _national.workdays:
            return True, MAKEUP_NOTE
        if d.weekday() >= 5:
            return False, WEEKEND_NOTE
        return True, ""

    # -- day arithmetic ---------------------------------------------------------------------------

    def is_workday(self, d: date) -> bool:
        """True if `d` (a date or datetime) is a working day."""
        d = _as_date(d)
        return self._year(d.year)[0][d.timetuple().tm_yday - 1]

    def note(self, d: date) -> str:
        """Why `d` is what it is: a holiday name, 调休上班, 周末, '覆盖: …', or '' for a plain weekday."""
        d = _as_date(d)
        return self._year(d.year)[1][d.timetuple().tm_yday - 1]

    def add_workdays(self, d: date, n: int) -> date:
        """`d` for n = 0; otherwise the n-th working day after `d` (`d` itself is not counted)."""
        d = _as_date(d)
        if n < 0:
            raise ValueError("add_workdays needs n >= 0")
        while n > 0:
            d += timedelta(days=1)
            n -= self.is_workday(d)
        return d

    def workdays(self, a: date, b: date) -> int:
        """Working days in the half-open range [a, b); for b < a, the negative of workdays(b, a)."""
        a, b = _as_date(a), _as_date(b)
        if b < a:
            return -self.workdays(b, a)
        count = 0
        while a < b:
            flags = self._year(a.year)[0]
            stop = b if b.year == a.year else date(a.year + 1, 1, 1)
            first = a.timetuple().tm_yday - 1
            count += sum(flags[first:first + (stop - a).days])
            a = stop
        return count

    def month(self, year: int, month: int) -> list[tuple[date, bool, str]]:
        """(date, is_workday, note) for every day of the month."""
        d = date(year, month, 1)
        days = []
        while d.month == month:
            days.append((d, self.is_workday(d), self.note(d)))
            d += timedelta(days=1)
        return days

    # -- DuckDB -----------------------------------------------------------------------------------

    def to_duckdb(self, con, start: date, end: date, table: str = "calendar", *,
                  required_end: date | None = None, by_no_table: str = "workday_by_no",
                  temporary: bool = False) -> tuple[date, date]:
        """Create `table` (d, is_workday, wd_no, wd_before, note) for every date in [start, end], the
        lookup `by_no_table` (wd_no → working day), and the macros add_workdays / workdays over them.

        Every year in [start, required_end] must be covered (CalendarError otherwise, unless the
        fallback was chosen); `required_end` defaults to `end`. Past `required_end` the table is
        clipped at the first uncovered year, so headroom for add_workdays never fails by itself; a
        lookup that falls off the table raises in SQL. Returns the (first, last) date built.
        """
        start, end = _as_date(start), _as_date(end)
        required_end = min(_as_date(required_end), end) if required_end else end
        if start > end:
            raise ValueError("to_duckdb needs start <= end")
        for name in (table, by_no_table):
            if not _IDENT_RE.fullmatch(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")
        for year in range(start.year, required_end.year + 1):
            self._year(year)  # raises CalendarError for an uncovered year
        last = end
        for year in range(required_end.year + 1, end.year + 1):
            if not (self.is_covered(year) or self.fallback):
                last = date(year - 1, 12, 31)
                break
        flags: list[bool] = []
        notes: list[str] = []
        for year in range(start.year, last.year + 1):
            year_flags, year_notes = self._year(year)
            lo = (start - date(year, 1, 1)).days if year == start.year else 0
            hi = (last - date(year, 1, 1)).days + 1 if year == last.year else len(year_flags)
            flags += year_flags[lo:hi]
            notes += year_notes[lo:hi]
        is_workday = np.array(flags, dtype=bool)
        wd_no = np.cumsum(is_workday, dtype=np.int32)
        rows = pa.table({
            "d": pa.array(np.arange(np.datetime64(start, "D"), np.datetime64(last, "D") + 1)),
            "is_workday": pa.array(is_workday),
            "wd_no": pa.array(wd_no),
            "wd_before": pa.array(wd_no - is_workday.astype(np.int32)),
            "note": pa.array(notes, pa.string()),
        })
        temp = "TEMP " if temporary else ""
        con.register("_calendar_rows", rows)
        try:
            con.execute(f"""
                CREATE OR REPLACE {temp}TABLE {table} (d DATE PRIMARY KEY, is_workday BOOLEAN NOT NULL,
                    wd_no INTEGER NOT NULL, wd_before INTEGER NOT NULL, note VARCHAR);
                INSERT INTO {table} SELECT d, is_workday, wd_no, wd_before, note FROM _calendar_rows;
                CREATE OR REPLACE {temp}TABLE {by_no_table} (wd_no INTEGER PRIMARY KEY, d DATE NOT NULL);
                INSERT INTO {by_no_table} SELECT wd_no, d FROM {table} WHERE is_workday ORDER BY d;
            """)
        finally:
            con.unregister("_calendar_rows")
        con.execute(self._macros_sql(table, by_no_table, start, last, temp))
        return start, last

    def _macros_sql(self, table: str, by_no: str, first: date, last: date, temp: str) -> str:
        # One correlated subquery per date looked up: DuckDB decorrelates it into a hash join over
        # the distinct inputs, so 1M calls take a few tens of ms (a single subquery joining both
        # dates of workdays() was 3x slower: it deduplicates (a, b) pairs instead of dates).
        # The extra FROM (SELECT …) row keeps NULL inputs NULL, while a date beyond the table
        # becomes an error instead of a silent NULL.
        beyond = (f"{last.year + 1} 年不在工作日历范围内" if last.month == 12 and last.day == 31
                  and not self.is_covered(last.year + 1) and not self.fallback else "工作日历表范围不够")
        off = (f"{CalendarError.SQL_CODE}: 工作日历表 {table} 只含 {first}…{last}，{beyond} (date outside the working-day "
               f"calendar table; supply a calendar for the missing year or widen the range): ")
        return f"""
            CREATE OR REPLACE {temp}MACRO add_workdays(start_day, n) AS (
                SELECT CASE WHEN q.day IS NULL OR n IS NULL THEN NULL
                            WHEN n = 0 THEN q.day
                            WHEN n < 0 THEN error('add_workdays: n 必须 >= 0 (n must be >= 0)')
                            WHEN wd.d IS NULL THEN error('{off}add_workdays(' || q.day || ', ' || n || ')')
                            ELSE wd.d END
                FROM (SELECT CAST(start_day AS DATE) AS day) q
                LEFT JOIN {table} cal ON cal.d = q.day
                LEFT JOIN {by_no} wd ON wd.wd_no = cal.wd_no + n);
            CREATE OR REPLACE {temp}MACRO workdays_before(day) AS (
                SELECT CASE WHEN q.day IS NULL THEN NULL
                            WHEN cal.d IS NULL THEN error('{off}' || q.day)
                            ELSE cal.wd_before END
                FROM (SELECT CAST(day AS DATE) AS day) q
                LEFT JOIN {table} cal ON cal.d = q.day);
            CREATE OR REPLACE {temp}MACRO workdays(from_day, to_day) AS
                workdays_before(to_day) - workdays_before(from_day);
        """


# -- override files -------------------------------------------------------------------------------

def read_override_file(path: Path) -> dict[date, Override]:
    """Parse one override CSV; every bad row is reported at once as a UsageError (file, line, column)."""
    return parse_override_text(read_calendar_text(path, "日历覆盖文件"), path)


def parse_override_text(text: str, path: Path) -> dict[date, Override]:
    """Parse the text of an override CSV; `path` names it in errors and in the days' `source`."""
    rows = _csv_rows(text)
    first = next(rows, None)
    if first is None:
        raise UsageError(f"{path} 第 1 行: 文件为空，需要表头 date,is_workday[,note] (empty calendar file)")
    line, header = first
    names = [c.strip().lower() for c in header]
    columns = {_HEADER[name]: i for i, name in enumerate(names) if name in _HEADER}
    if "date" not in columns or "is_workday" not in columns:
        raise UsageError(f"{path} 第 {line} 行: 需要表头 date,is_workday[,note] "
                         f"(line {line}: header date,is_workday[,note] required)")
    days: dict[date, Override] = {}
    problems: list[str] = []
    for line, row in rows:
        cells = {name: (row[i].strip() if i < len(row) else "") for name, i in columns.items()}
        where = {name: f"第 {line} 行第 {i + 1} 列 ({name})" for name, i in columns.items()}
        day = _parse_date(cells["date"])
        flag = _parse_flag(cells["is_workday"])
        if day is None:
            problems.append(f"{where['date']}: 日期 {cells['date']!r} 无法识别，应为 YYYY-MM-DD")
        if flag is None:
            problems.append(f"{where['is_workday']}: {cells['is_workday']!r} 无法识别，"
                            "应为 1/0、true/false、是/否、工作日/休息日")
        if day is not None and flag is not None:
            if day in days and days[day].is_workday != flag:
                problems.append(f"{where['date']}: {day} 重复出现且取值矛盾 (conflicting duplicate)")
            days[day] = Override(flag, cells.get("note", ""), path.name)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; …共 {len(problems)} 处" if len(problems) > 10 else "")
        raise UsageError(f"日历覆盖文件 {path} 有 {len(problems)} 处错误 (bad calendar file): {shown}")
    return days


def read_calendar_text(path: Path, what: str) -> str:
    """The text of a calendar input file in UTF-8 or GB18030; `what` names the kind of file in errors."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"无法读取{what} {path}: {exc.strerror} (cannot read calendar file)") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("gb18030", errors="replace")  # Excel and Notepad on Chinese Windows save GBK


def _csv_rows(text: str):
    """(line number, cells) of the non-blank, non-comment rows of a CSV text."""
    reader = csv.reader(io.StringIO(text))
    for row in reader:
        if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#"):
            yield reader.line_num, row


def _parse_flag(text: str) -> bool | None:
    text = text.strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _parse_date(text: str) -> date | None:
    m = _DATE_RE.fullmatch(text)
    if not m:
        return None
    y, mo, d = (int(g) for g in (m.groups()[:3] if m.group(1) else m.groups()[3:]))
    try:
        return date(y, mo, d)
    except ValueError:
        return None


def notice_remedy(year: int | None) -> str:
    """How to make a calendar file for `year` from the State Council's notice (for error messages)."""
    name = f"{year}.csv" if year else "日历.csv"
    when = f" {year} 年" if year else "该年"
    return (f"可把国务院办公厅关于{when}部分节假日安排的通知存为文本，"
            f"用 audit calendar --from-notice 通知.txt --out {name} 生成日历文件")


def _as_date(d: date) -> date:
    return d.date() if isinstance(d, datetime) else d


def _days_in_year(year: int) -> int:
    return (date(year + 1, 1, 1) - date(year, 1, 1)).days


# -- the `audit calendar` command -----------------------------------------------------------------

def parse_month(text: str) -> tuple[int, int]:
    """'2026-02' → (2026, 2); anything else is a UsageError."""
    m = re.fullmatch(r"\s*(\d{4})[-/.](\d{1,2})\s*", text)
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise UsageError(f"月份 {text!r} 无法识别，应为 YYYY-MM，例如 2026-02 (month must be YYYY-MM)")
    return int(m.group(1)), int(m.group(2))


def render_month(cal: WorkCalendar, year: int, month: int) -> str:
    """The month as a plain-text table: date, 星期, 工作日/休息日, note, and the working-day count."""
    days = cal.month(year, month)
    lines = [f"{year} 年 {month} 月工作日历 — {cal.description}", "",
             "日期        星期  类型    说明"]
    for d, workday, note in days:
        lines.append(f"{d.isoformat()}  {WEEKDAY_NAMES[d.weekday()]}  "
                     f"{'工作日' if workday else '休息日'}  {note}".rstrip())
    count = sum(1 for _, workday, _ in days if workday)
    lines += ["", f"工作日 {count} 天 / 共 {len(days)} 天 (working days: {count} of {len(days)})"]
    return "\n".join(lines)
