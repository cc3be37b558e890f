"""The coming year's calendar from the State Council's holiday notice (节假日安排通知).

Each year the General Office of the State Council publishes 《国务院办公厅关于 YYYY 年部分节假日安排的
通知》 weeks before the ``chinesecalendar`` package has the year. Its wording has been stable for years::

    一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
    六、国庆节、中秋节：10月1日（周三）至8日（周三）放假调休，共8天。9月28日（周日）、10月11日（周六）上班。

`read_notice` turns the pasted text into a `Notice`; `Notice.calendar_csv` into an override file that
lists every day of the year (``date,is_workday,note``), so that ``--calendar FILE`` makes the year
covered (`audit.calendar.workcalendar.WorkCalendar` treats a file listing every date of a year as that year's
calendar). Days in a holiday range are days off, weekends included; the make-up days (上班) are working
days; every other day is Monday–Friday work, Saturday–Sunday rest.

The parser reads numbered sections (``一、`` … , or none) headed by festival names and a colon, in
full-width or half-width punctuation, several to a line or one per line. In a section, the dates of a
clause (up to ``，`` ``。`` ``；`` or ``.``) that ends in 放假 are days off (``A至B`` is a range; ``至3日`` keeps A's
month and year; ``2018年12月30日`` names its own year), those of a clause ending in 上班 are make-up
days. Parenthesised annotations (weekday, 农历) are not dates; a weekday given there must match the date,
which catches a wrong year or a mistyped day. Every problem is reported at once with its line.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from audit.calendar.workcalendar import (
    MAKEUP_NOTE,
    WEEKDAY_NAMES,
    WEEKEND_NOTE,
    WorkCalendar,
    parse_override_text,
    read_calendar_text,
    render_month,
)
from audit.errors import UsageError
from audit.spreadsheet import safe_row

# Festival names as the notices write them; any short name ending in 节 is accepted too (a new holiday).
_FESTIVAL = r"(?:元旦|春节|清明节|劳动节|端午节|中秋节|国庆节|[\u4e00-\u9fff]{1,4}节)"
_NAMES = rf"{_FESTIVAL}(?:[、和与及]{_FESTIVAL})*"
_SECTION_RE = re.compile(rf"^\s*(?:[一二三四五六七八九十]+、|\d{{1,2}}[.、])?\s*(?P<names>{_NAMES})\s*:(?P<body>.*)$")
# Where a second section starts on the same line ("…上班。二、春节：…").
_SECTION_START_RE = re.compile(rf"(?=(?:[一二三四五六七八九十]+、|\d{{1,2}}[.、])\s*{_NAMES}\s*:)")
_TOKEN_RE = re.compile(r"""
      (?P<date>(?:(?P<y>\d{4})\s*年\s*)?(?:(?P<m>\d{1,2})\s*月\s*)?(?P<d>\d{1,2})\s*日)\s*(?:\((?P<ann>[^()]*)\))?
    | \([^()]*\)                                      # an aside such as 除夕（2月9日）: not a date of the schedule
    | (?P<through>至|到|~|-|—)
    | 放假\s*(?P<off_n>\d+)\s*天
    | (?P<off>放假)
    | (?P<work>上班)
    | 共\s*(?P<total>\d+)\s*天
    | (?P<stop>[,。;.])
""", re.VERBOSE)
_WEEKDAY_RE = re.compile(r"(?:周|星期|礼拜)([一二三四五六日天])")
_WEEKDAY_NO = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_YEAR_RES = (  # where the year is, best first
    re.compile(r"关于\s*(\d{4})\s*年[^。\n]{0,12}?(?:节假日|放假)"),
    re.compile(r"现将\s*(\d{4})\s*年"),
    re.compile(r"(\d{4})\s*年[^。\n]{0,30}?(?:节假日|放假)"),
)


@dataclass
class Section:
    """One numbered section of the notice: its festivals' days off and make-up working days."""

    name: str                 # as written, e.g. 春节 or 国庆节、中秋节
    line: int
    days_off: list[date] = field(default_factory=list)
    makeup_days: list[date] = field(default_factory=list)


@dataclass
class Notice:
    """A parsed holiday notice: its year, its title (if the text has one) and its sections."""

    path: Path
    year: int
    title: str
    sections: list[Section]

    def days(self) -> dict[date, tuple[bool, str]]:
        """(is_workday, note) of every day of the year, plus days of adjacent years the notice names."""
        special: dict[date, tuple[bool, str]] = {}
        for s in self.sections:
            for d in s.days_off:
                special[d] = (False, s.name)
            for d in s.makeup_days:
                special[d] = (True, s.name + MAKEUP_NOTE)
        out = {d: v for d, v in special.items() if d.year != self.year}
        d = date(self.year, 1, 1)
        while d.year == self.year:
            out[d] = special.get(d) or ((True, "") if d.weekday() < 5 else (False, WEEKEND_NOTE))
            d += timedelta(days=1)
        return dict(sorted(out.items()))

    def calendar_csv(self) -> str:
        """The override file (``date,is_workday,note``) listing every day of the year."""
        days_off = sum(len(s.days_off) for s in self.sections)
        makeup = sum(len(s.makeup_days) for s in self.sections)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([f"# {self.title or f'{self.year} 年部分节假日安排'} (由 {self.path.name} 生成)"])
        w.writerow([f"# 放假 {days_off} 天，调休上班 {makeup} 天，其余周一至周五上班、周六周日休息；"
                    f"列出 {self.year} 年每一天，--calendar 读入后该年即有日历"])
        w.writerow(["date", "is_workday", "note"])
        for d, (workday, note) in self.days().items():
            w.writerow(safe_row([d.isoformat(), 1 if workday else 0, note]))
        return buf.getvalue()


@dataclass
class NoticeCalendar:
    """What `audit calendar --from-notice` produces: the notice, the CSV text, the calendar it gives."""

    notice: Notice
    csv_text: str
    calendar: WorkCalendar
    out: Path | None


def read_notice(path: Path) -> Notice:
    """Parse a holiday notice saved as text (UTF-8, or GBK); UsageError naming file and lines otherwise."""
    return parse_notice(read_calendar_text(Path(path), "节假日安排通知"), Path(path))


def notice_calendar(notice: Notice, out: Path | None = None) -> NoticeCalendar:
    """Write the notice's override file to `out` (if given) and load the calendar back through the
    override-file reader, so what is shown is what ``--calendar`` will read."""
    text = notice.calendar_csv()
    if out is not None:
        try:
            out.write_text(text, encoding="utf-8-sig")  # with a BOM, as Excel wants for a UTF-8 CSV
        except OSError as exc:
            raise UsageError(f"无法写出日历文件 {out}: {exc.strerror} (cannot write calendar file)") from exc
    source = out if out is not None else notice.path
    cal = WorkCalendar(parse_override_text(text, source), [source])
    return NoticeCalendar(notice, text, cal, out)


def render_notice_calendar(result: NoticeCalendar, months: list[int] | None = None) -> str:
    """The months (all twelve by default) as `render_month` shows them, then a summary; without a file
    written, the CSV text follows."""
    notice, cal = result.notice, result.calendar
    parts = [render_month(cal, notice.year, m) for m in (months or range(1, 13))]
    year_days = [d for d in notice.days() if d.year == notice.year]
    workdays = sum(cal.is_workday(d) for d in year_days)
    lines = [f"{notice.title or notice.year} — {notice.year} 年工作日 {workdays} 天 / 共 {len(year_days)} 天"]
    for s in notice.sections:
        span = _spans(s.days_off)
        extra = f"；调休上班 {'、'.join(_day_text(d) for d in s.makeup_days)}" if s.makeup_days else ""
        lines.append(f"  {s.name}: 放假 {span}，{len(s.days_off)} 天{extra}")
    if result.out is not None:
        lines.append(f"已写出 {result.out} (用 --calendar {result.out} 读入)")
    else:
        lines += ["", f"# 未写文件 (加 --out {notice.year}.csv 写出)；CSV 如下 (nothing written; the CSV):", "",
                  result.csv_text.rstrip("\n")]
    return "\n\n".join(parts) + "\n\n" + "\n".join(lines)


# -- parsing --------------------------------------------------------------------------------------

def parse_notice(text: str, path: Path) -> Notice:
    """Parse the text of a notice; `path` names it in errors."""
    lines = [unicodedata.normalize("NFKC", line) for line in text.splitlines()]
    problems: list[str] = []
    year, year_line, title = _find_year(lines)
    first = next((i for i, line in enumerate(lines, 1) if line.strip()), 1)
    if year is None:
        head = lines[first - 1].strip()[:40] if lines else ""
        problems.append(f"第 {first} 行: 找不到年份，标题应如《国务院办公厅关于2027年部分节假日安排的通知》"
                        f"(no year found; the line reads {head!r})")
    sections: list[Section] = []
    for no, line in enumerate(lines, 1):
        for part in _SECTION_START_RE.split(line):
            m = _SECTION_RE.match(part)
            if m:
                section = Section(re.sub(r"\s+", "", m.group("names")), no)
                # Without a year the dates cannot be checked: their problems would only be noise.
                _read_section(section, m.group("body"), year or 2000, problems if year else [])
                sections.append(section)
    if not sections:
        problems.append(f"第 {year_line or first}–{len(lines)} 行: 没有可识别的放假安排，应如"
                        "“一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。”"
                        " (no holiday line found)")
    if year:
        _check_conflicts(sections, problems)
    if problems:
        shown = "; ".join(problems[:10]) + (f"; …共 {len(problems)} 处" if len(problems) > 10 else "")
        raise UsageError(f"{path} 不是可识别的节假日安排通知，{len(problems)} 处问题 "
                         f"(not a holiday notice I can read): {shown}")
    return Notice(path, year, title, sections)


def _find_year(lines: list[str]) -> tuple[int | None, int | None, str]:
    """(year, its line, the title line) from the title or the opening sentence."""
    title = next((re.sub(r"\s+", "", line) for line in lines
                  if "关于" in line and line.strip().endswith("通知") and len(line.strip()) < 60), "")
    for pattern in _YEAR_RES:
        for no, line in enumerate(lines, 1):
            m = pattern.search(line)
            if m:
                return int(m.group(1)), no, title
    return None, None, title


def _read_section(section: Section, body: str, year: int, problems: list[str]) -> None:
    """Fill `section` from its text: clauses ending in 放假 give days off, in 上班 make-up days."""
    where = f"第 {section.line} 行 ({section.name})"
    pending: list[date] = []   # dates of the clause so far, ranges expanded
    previous: date | None = None
    through = False
    totals: list[int] = []
    unreadable = False         # a date already reported: no second message about missing dates
    for tok in _TOKEN_RE.finditer(body):
        if tok.group("date"):
            d = _resolve(tok, previous, year, where, problems)
            if d is None:
                through, unreadable = False, True
                continue
            _check_weekday(d, tok.group("ann"), where, problems)
            if through and pending:
                start = pending[-1]
                if d < start:
                    problems.append(f"{where}: {_day_text(start)}至{_day_text(d)} 结束早于开始 (range ends before it starts)")
                pending += [start + timedelta(days=i) for i in range(1, (d - start).days + 1)]
            else:
                pending.append(d)
            previous, through = d, False
        elif tok.group("through"):
            through = True
        elif tok.group("off") or tok.group("off_n"):
            if not pending and not unreadable:
                problems.append(f"{where}: “放假”前没有日期 (no dates before 放假)")
            section.days_off += pending
            if tok.group("off_n"):
                totals.append(int(tok.group("off_n")))
            pending = []
        elif tok.group("work"):
            if not pending and not unreadable:
                problems.append(f"{where}: “上班”前没有日期 (no dates before 上班)")
            section.makeup_days += pending
            pending = []
        elif tok.group("total"):
            totals.append(int(tok.group("total")))
        elif tok.group("stop"):
            if pending:
                problems.append(f"{where}: {'、'.join(_day_text(d) for d in pending)} 之后没有“放假”或“上班”，"
                                "无法判断是休息还是上班 (dates neither 放假 nor 上班)")
            pending, through = [], False
    if pending:
        problems.append(f"{where}: {'、'.join(_day_text(d) for d in pending)} 之后没有“放假”或“上班” "
                        "(dates neither 放假 nor 上班)")
    if not section.days_off:
        if not unreadable:
            problems.append(f"{where}: 没有放假日期 (no days off)")
    elif totals and totals[-1] != len(set(section.days_off)):
        problems.append(f"{where}: 写的是共 {totals[-1]} 天，日期却是 {len(set(section.days_off))} 天 "
                        "(the day count does not match the dates)")
    for d in section.makeup_days:
        if d.weekday() < 5:
            problems.append(f"{where}: 调休上班日 {_day_text(d)} 是{WEEKDAY_NAMES[d.weekday()]}，本来就上班 "
                            "(a make-up day on a weekday: wrong date or year?)")


def _resolve(tok: re.Match, previous: date | None, year: int, where: str, problems: list[str]) -> date | None:
    """The date of a token: a missing month is the previous date's (with its year); a missing year is
    the notice's."""
    y, m, d = tok.group("y"), tok.group("m"), int(tok.group("d"))
    if m is None and previous is None:
        problems.append(f"{where}: “{tok.group('date')}” 没有月份 (a day without a month)")
        return None
    if m is None:
        y_no, m_no = (int(y) if y else previous.year), previous.month
    else:
        y_no, m_no = (int(y) if y else year), int(m)
    try:
        return date(y_no, m_no, d)
    except ValueError:
        problems.append(f"{where}: {y_no}年{m_no}月{d}日 不是有效日期 (not a date)")
        return None


def _check_weekday(d: date, annotation: str | None, where: str, problems: list[str]) -> None:
    m = _WEEKDAY_RE.search(annotation or "")
    if m and _WEEKDAY_NO[m.group(1)] != d.weekday():
        problems.append(f"{where}: {d.isoformat()} 是{WEEKDAY_NAMES[d.weekday()]}，通知写的是{m.group(0)} "
                        "(the weekday does not match: wrong year or date?)")


def _check_conflicts(sections: list[Section], problems: list[str]) -> None:
    off = {d: s for s in sections for d in s.days_off}
    for s in sections:
        for d in s.makeup_days:
            if d in off:
                problems.append(f"第 {s.line} 行 ({s.name}): {_day_text(d)} 既是放假日 (第 {off[d].line} 行 "
                                f"{off[d].name}) 又是调休上班日 (both a day off and a make-up day)")


def _day_text(d: date) -> str:
    return f"{d.month}月{d.day}日"


def _spans(days: list[date]) -> str:
    """'1月28日至2月4日' (consecutive runs joined by 、)."""
    runs: list[list[date]] = []
    for d in sorted(set(days)):
        if runs and d - runs[-1][-1] == timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return "、".join(_day_text(r[0]) + (f"至{_day_text(r[-1])}" if len(r) > 1 else "") for r in runs)
