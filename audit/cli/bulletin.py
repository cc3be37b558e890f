"""`audit bulletin`: the monthly bulletin (通报) as an editable Word document."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, eprint, guarded


@app.command("bulletin")
@guarded
def bulletin_cmd(
    month: str = typer.Option(..., "--month", help="通报的月份 YYYY-MM (该月受理的办件)；没有办件的月份报错 (退出码 2)"),
    out: Path = typer.Option(..., "--out", help="输出的 Word 文件 (.docx)"),
    city: list[str] | None = typer.Option(None, "--city", help="只包含此地市 (可重复)；默认全部地市 (全省)"),
    issuer: str = typer.Option("", "--issuer", help="发文单位，写在落款处和整改要求中"),
    number: str = typer.Option("", "--number", help="发文字号，如 陕政服办〔2026〕12号"),
    date: str | None = typer.Option(None, "--date", help="成文日期 YYYY-MM-DD (默认: 该次审计的审计日)"),
    deadline_days: int | None = typer.Option(None, "--deadline-days",
                                             help="整改期限：审计日后的工作日数，按该次审计保存的工作日历计算 (默认: 规则包的 rectify_days，未设时 10)"),
    as_of: str | None = typer.Option(None, "--as-of", help="审计日 YYYY-MM-DD (默认: 最近一次审计的审计日)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """生成月度通报 (the monthly bulletin, 通报) as an editable Word document (.docx).

    Reads what the latest `audit check` run stored (--run N, or the latest at --as-of): the month's
    figures with their change against the month before, the city table with ranks, the 红榜/黑榜 of
    halls, the problems and typical cases (personal data masked), and the rectification deadline:
    the audit date plus --deadline-days working days on the calendar stored with the run. No clock is
    read: the same database and options give the same text.

    Example: audit bulletin --month 2026-03 --out 通报.docx --issuer 省政务服务中心 --number "陕政服办〔2026〕12号"
    """
    from audit.bulletin.build import parse_date, write_bulletin
    from audit.check.engine import parse_as_of
    from audit.db import connect
    from audit.known import require_cities
    from audit.report.figures import city_names, require_month_format

    require_month_format(month)
    issued = parse_date(date, "--date")
    con = connect(db)
    try:
        require_cities(con, city_names(city))
        bulletin = write_bulletin(con, out, month, cities=city_names(city) or None, issuer=issuer, number=number,
                                  date=issued, deadline_days=deadline_days, run_id=run, as_of=parse_as_of(as_of))
    finally:
        con.close()
    for line in bulletin.notices:
        eprint(f"注意: {line}")
    deadlines = "、".join(sorted({str(d) for d in bulletin.deadline.values()}))
    echo(f"已写出通报 {out} ({bulletin.month}：办件 {bulletin.cases:,} 件，审计 {bulletin.run_id}，"
         f"审计日 {bulletin.as_of}，整改期限 {deadlines})")
