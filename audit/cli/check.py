"""`audit check`: run the rule pack and store the findings."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, eprint, guarded


@app.command("check")
@guarded
def check_cmd(
    pack: str | None = typer.Option(None, "--pack", help="规则包：内置的名称 default、complaints、online、bpic15，或规则包目录 (默认: default，《帮办代办服务规范》)"),
    as_of: str | None = typer.Option(None, "--as-of", help="审计日 YYYY-MM-DD (默认: 最新事件日期)"),
    city: list[str] = typer.Option([], "--city", help="只审计这些地市 (可多次)；数据库中没有的地市报错 (退出码 2)"),
    fail_on: str | None = typer.Option(None, "--fail-on", help="有此级别 (error|warning) 的发现时退出码为 1"),
    calendar: list[str] = typer.Option([], "--calendar", help="工作日历覆盖文件 CSV date,is_workday[,note]；城市=FILE 只用于该市 (可多次)"),
    calendar_fallback: str | None = typer.Option(None, "--calendar-fallback", help="weekdays: 无日历的年份按周一至周五计算"),
    waivers: Path | None = typer.Option(
        None, "--waivers",
        help="豁免文件 (YAML 列表或 CSV，列 rule, case_id, city, hall, reason, approved_by, expires)：规则 (编号或 REQ-* "
             "这样的通配) 与范围 (办件、地市、或地市加服务大厅)；审计日生效的豁免所覆盖的发现照常保存并标注，不计入合规率、"
             "不触发 --fail-on；文件有误时退出码 2，什么也不保存"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> int:
    """按规则包审计每个办件并保存审计发现 (run the rule pack).

    Example: audit check --as-of 2026-03-31 --fail-on error --waivers 豁免.yaml
    """
    from audit.calendar.workcalendar import WorkCalendar
    from audit.check.engine import parse_as_of, run_check
    from audit.check.summary import check_summary
    from audit.check.waiverfile import load_waivers
    from audit.check.workdays import split_calendar_options
    from audit.db import connect
    from audit.errors import UsageError
    from audit.known import require_cities
    from audit.resources import resolve_pack
    from audit.rules.pack import load_pack

    if fail_on not in (None, "error", "warning"):
        raise UsageError(f"--fail-on 应为 error 或 warning，而不是 {fail_on!r}")
    the_pack = load_pack(resolve_pack(pack))
    the_waivers = load_waivers(waivers, the_pack) if waivers is not None else None   # before any database is opened
    common, per_city = split_calendar_options(calendar)
    cal = WorkCalendar.load(common, calendar_fallback)
    con = connect(db)
    try:
        require_cities(con, city)     # before anything runs: a city of no case would store an empty run
        result = run_check(con, the_pack, parse_as_of(as_of), city or None, cal,
                           on_rule=lambda i, n, r: eprint(f"[{i + 1}/{n}] {r.id}"), per_city_calendars=per_city,
                           waivers=the_waivers)
    finally:
        con.close()
    echo(check_summary(result))
    # waived findings are left out of the counts (RunResult.count): they never fail a check
    if fail_on == "error" and result.count("error"):
        return 1
    if fail_on == "warning" and (result.count("error") or result.count("warning")):
        return 1
    return 0
