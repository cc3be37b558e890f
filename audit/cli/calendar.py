"""`audit calendar YYYY-MM`: show one month of the working-day calendar;
`audit calendar --from-notice 通知.txt [--out 2027.csv]`: make a year's calendar file from the State
Council's holiday notice and show its twelve months."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("calendar")
@guarded
def calendar_cmd(
    month: str | None = typer.Argument(None, help="月份 YYYY-MM (month); 有 --from-notice 时可省略"),
    calendar: list[Path] = typer.Option([], "--calendar", help="覆盖文件 CSV date,is_workday[,note]"),
    calendar_fallback: str | None = typer.Option(
        None, "--calendar-fallback", help="weekdays: 无日历的年份按周一至周五计算"),
    from_notice: Path | None = typer.Option(
        None, "--from-notice", help="国务院办公厅节假日安排通知的文本 (UTF-8)：生成该年的日历文件"),
    out: Path | None = typer.Option(
        None, "--out", help="与 --from-notice 同用：写出日历文件 CSV (不给则只显示，不写文件)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """显示某月的工作日历：日期、星期、工作日/休息日、说明 (节假日 / 调休上班 / 周末) 和工作日天数；
    或把国务院办公厅《关于 YYYY 年部分节假日安排的通知》转成该年的日历文件，并逐月显示以便核对。

    Show one month of the working-day calendar; or turn the State Council's holiday notice (pasted
    into a text file) into a calendar file for --calendar, showing the year month by month.

    Example: audit calendar 2026-02
    (with a hall's own days: audit calendar 2027-01 --calendar 西安高新.csv)

    Example (next year's notice): audit calendar --from-notice 通知.txt --out 2027.csv
    """
    from audit.calendar.notice import notice_calendar, read_notice, render_notice_calendar
    from audit.calendar.workcalendar import WorkCalendar, parse_month, render_month
    from audit.errors import UsageError

    if from_notice is None:
        if out is not None:
            raise UsageError("--out 只与 --from-notice 同用 (--out needs --from-notice)")
        if month is None:
            raise UsageError("需要月份 YYYY-MM 或 --from-notice 通知.txt，例如 audit calendar 2026-02 "
                             "(give a month or --from-notice FILE)")
        year, month_no = parse_month(month)
        cal = WorkCalendar.load(calendar, fallback=calendar_fallback)
        echo(render_month(cal, year, month_no))
        return
    if calendar or calendar_fallback:
        raise UsageError("--from-notice 只显示通知本身给出的日历，不与 --calendar / --calendar-fallback 同用；"
                         "写出文件后可用 audit calendar YYYY-MM --calendar 文件 --calendar 其它文件 查看叠加结果 "
                         "(--from-notice shows the notice's calendar alone)")
    notice = read_notice(from_notice)
    months = None
    if month is not None:
        year, month_no = parse_month(month)
        if year != notice.year:
            raise UsageError(f"月份 {month} 不在通知的年份 {notice.year} 内 (month outside the notice's year)")
        months = [month_no]
    echo(render_notice_calendar(notice_calendar(notice, out), months))
