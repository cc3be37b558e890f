"""`audit calendar YYYY-MM`: show one month of the working-day calendar."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("calendar")
@guarded
def calendar_cmd(
    month: str = typer.Argument(..., help="月份 YYYY-MM (month)"),
    calendar: list[Path] = typer.Option([], "--calendar", help="覆盖文件 CSV date,is_workday[,note]"),
    calendar_fallback: str | None = typer.Option(
        None, "--calendar-fallback", help="weekdays: 无日历的年份按周一至周五计算"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """显示某月的工作日历：日期、星期、工作日/休息日、说明 (节假日 / 调休上班 / 周末) 和工作日天数。

    Show one month of the working-day calendar.

    Example: audit calendar 2026-02
    (with a hall's own days: audit calendar 2027-01 --calendar 西安高新.csv)
    """
    from audit.calendar import WorkCalendar, parse_month, render_month

    year, month_no = parse_month(month)
    cal = WorkCalendar.load(calendar, fallback=calendar_fallback)
    echo(render_month(cal, year, month_no))
