"""`audit report`: the HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, eprint, guarded


@app.command("report")
@guarded
def report_cmd(
    out: Path = typer.Option(..., "--out", help="输出的 HTML 文件"),
    city: list[str] | None = typer.Option(None, "--city", help="只包含此地市 (可重复)；没有办件的地市报错 (退出码 2)"),
    month: str | None = typer.Option(None, "--month", help="只包含此月受理的办件 YYYY-MM；没有办件的月份报错 (退出码 2)"),
    as_of: str | None = typer.Option(None, "--as-of", help="审计日 YYYY-MM-DD (默认: 最近一次审计的审计日)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    base: int | None = typer.Option(None, "--base", help="整改跟踪的基准审计编号 (默认: 该次审计之前的一次；没有时不含整改跟踪)"),
    show_personal_data: bool = typer.Option(False, "--show-personal-data",
                                            help="显示完整的姓名、证件号码和联系电话 (默认脱敏)"),
    all_staff: bool = typer.Option(False, "--all-staff",
                                   help="列出每一名帮办代办员 (默认办件少于 min_cases 的按服务大厅合并为一行)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """生成 HTML 审计报告 (one self-contained file: opens offline, prints on A4).

    Reads what the latest `audit check` run stored (--run N, or the latest at --as-of): the pack,
    settings and calendars as they were, and its figures; without a run it says to run `audit check`.

    Example: audit report --out 报告.html --city 延安 --month 2026-03
    """
    from audit.check.engine import parse_as_of
    from audit.db import connect
    from audit.known import require_cities
    from audit.report import write_report
    from audit.report.figures import city_names, require_month_format

    require_month_format(month)
    con = connect(db)
    try:
        # Before a run is chosen (or made): a city the database has no case of is refused at once.
        require_cities(con, city_names(city))
        info = write_report(con, out, cities=city or None, month=month, as_of=parse_as_of(as_of),
                            show_personal=show_personal_data, run_id=run, all_staff=all_staff,
                            base_run=base)
    finally:
        con.close()
    shown = (f"{info.findings_shown:,} / {info.findings_total:,}" if info.findings_shown < info.findings_total
             else f"{info.findings_total:,}")
    for line in info.notices:
        eprint(f"注意: {line}")
    echo(f"已写出报告 {info.path} ({info.bytes / 1024:,.0f} KB；办件 {info.cases:,} 件，审计发现 {shown} 条，"
         f"审计日 {info.as_of})")
