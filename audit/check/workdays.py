"""Working-day tables for a run, one calendar per group of cities that share override files.

The national schedule applies everywhere; override files (`--calendar FILE` for every city,
`--calendar 城市=FILE` for one city, or the pack's `calendar` setting, which a city can override
under `cities:`) change single days. Cities with the same files share a calendar. The run gets:

- ``cal_days(cal_key, d, is_workday, wd_no, wd_before)`` and ``cal_workdays(cal_key, wd_no, d)``;
- ``city_calendar(city, cal_key)``; ``case_facts.cal_key`` carries each case's calendar;
- macros ``add_workdays_k(k, day, n)`` and ``workdays_k(k, a, b)`` — the set-based working-day
  arithmetic of contract §2 for calendar `k` — plus the plain ``add_workdays(day, n)`` /
  ``workdays(a, b)`` over the calendar of cities without their own files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from audit.calendar.workcalendar import WorkCalendar
from audit.errors import CalendarError
from audit.rules.contract import CITY_CALENDAR
from audit.rules.pack import Pack


@dataclass
class RunCalendars:
    """The calendars of one run."""

    default: WorkCalendar
    by_key: list[WorkCalendar] = field(default_factory=list)
    cities: dict[str, int] = field(default_factory=dict)

    @property
    def fallback_years(self) -> list[int]:
        """Years counted Monday–Friday only because no calendar covered them."""
        return sorted(set().union(*(c.fallback_years for c in [self.default, *self.by_key])))

    @property
    def description(self) -> str:
        """One line per distinct calendar: which cities use which sources."""
        parts = [self.default.description]
        for key, cal in enumerate(self.by_key):
            cities = [c for c, k in self.cities.items() if k == key]
            if cal.files != self.default.files and cities:
                parts.append(f"{'、'.join(sorted(cities))}: " + ", ".join(p.name for p in cal.files))
        return "；".join(parts)

    @property
    def files(self) -> list[Path]:
        """Every override file in use."""
        seen: list[Path] = []
        for cal in [self.default, *self.by_key]:
            seen += [f for f in cal.files if f not in seen]
        return seen


def split_calendar_options(values: list[str] | list[Path]) -> tuple[list[Path], dict[str, list[Path]]]:
    """`--calendar FILE` (every city) and `--calendar 城市=FILE` (one city)."""
    common: list[Path] = []
    per_city: dict[str, list[Path]] = {}
    for value in map(str, values):
        if "=" in value and not Path(value).exists():
            city, path = value.split("=", 1)
            per_city.setdefault(city.strip(), []).append(Path(path.strip()))
        else:
            common.append(Path(value))
    return common, per_city


def _pack_files(pack: Pack, city: str | None) -> list[Path]:
    files = pack.settings_for(city).get("calendar") or []
    return [(pack.path / f) if not Path(f).is_absolute() else Path(f) for f in files]


def build_calendars(con, pack: Pack, base: WorkCalendar, cities: list[str], lo: dt.date, hi: dt.date,
                    per_city: dict[str, list[Path]] | None = None) -> RunCalendars:
    """Create the run's calendar tables and macros (see module doc) for dates [lo, hi] + headroom."""
    per_city = per_city or {}
    fallback = base.fallback
    default_files = list(base.files) + _pack_files(pack, None)
    run = RunCalendars(WorkCalendar.load(default_files, fallback))
    groups: dict[tuple[Path, ...], int] = {tuple(default_files): 0}
    run.by_key.append(run.default)
    for city in cities:
        files = tuple(list(base.files) + _pack_files(pack, city) + per_city.get(city, []))
        if files not in groups:
            groups[files] = len(run.by_key)
            run.by_key.append(WorkCalendar.load(list(files), fallback))
        run.cities[city] = groups[files]
    end = hi + dt.timedelta(days=3 * 366)
    limits = []
    # The default calendar is built last so the plain macros refer to it.
    for key in list(range(1, len(run.by_key))) + [0]:
        cal = run.by_key[key]
        first, last = cal.to_duckdb(con, lo, end, table=f"_cal_{key}", by_no_table=f"_wdno_{key}",
                                    required_end=hi, temporary=True)
        limits.append((key, first, last, cal))
    con.execute(f"CREATE OR REPLACE TEMP TABLE city_calendar ({CITY_CALENDAR.ddl()}, PRIMARY KEY (city))")
    if run.cities:
        con.executemany("INSERT INTO city_calendar VALUES (?, ?)", list(run.cities.items()))
    union_days = " UNION ALL ".join(f"SELECT {k} AS cal_key, d, is_workday, wd_no, wd_before FROM _cal_{k}"
                                    for k, *_ in limits)
    union_no = " UNION ALL ".join(f"SELECT {k} AS cal_key, wd_no, d FROM _wdno_{k}" for k, *_ in limits)
    con.execute(f"CREATE OR REPLACE TEMP TABLE cal_days AS {union_days}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE cal_workdays AS {union_no}")
    # The message starts with CalendarError.SQL_CODE, like the plain macros' error: the engine turns
    # it into a CalendarError naming the year.
    beyond = " ".join(
        f"WHEN {k} THEN '{CalendarError.SQL_CODE}: 工作日历表 {first}…{last} 之外：{_missing_year(cal, last)} (date outside the working-day calendar): '"
        for k, first, last, cal in limits)
    con.execute(f"""
        CREATE OR REPLACE TEMP MACRO add_workdays_k(k, start_day, n) AS (
            SELECT CASE WHEN q.day IS NULL OR n IS NULL THEN NULL
                        WHEN n = 0 THEN q.day
                        WHEN n < 0 THEN error('add_workdays: n 必须 >= 0 (n must be >= 0)')
                        WHEN wd.d IS NULL THEN error((CASE k {beyond} END) || 'add_workdays(' || q.day || ', ' || n || ')')
                        ELSE wd.d END
            FROM (SELECT CAST(start_day AS DATE) AS day) q
            LEFT JOIN cal_days c ON c.cal_key = k AND c.d = q.day
            LEFT JOIN cal_workdays wd ON wd.cal_key = k AND wd.wd_no = c.wd_no + n);
        CREATE OR REPLACE TEMP MACRO workdays_before_k(k, day) AS (
            SELECT CASE WHEN q.day IS NULL THEN NULL
                        WHEN c.d IS NULL THEN error((CASE k {beyond} END) || q.day)
                        ELSE c.wd_before END
            FROM (SELECT CAST(day AS DATE) AS day) q
            LEFT JOIN cal_days c ON c.cal_key = k AND c.d = q.day);
        CREATE OR REPLACE TEMP MACRO workdays_k(k, from_day, to_day) AS
            workdays_before_k(k, to_day) - workdays_before_k(k, from_day);
    """)
    return run


def _missing_year(cal: WorkCalendar, last: dt.date) -> str:
    if last.month == 12 and last.day == 31 and not cal.is_covered(last.year + 1) and not cal.fallback:
        return f"{last.year + 1} 年不在工作日历范围内"
    return "超出工作日历范围"
