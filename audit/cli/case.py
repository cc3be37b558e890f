"""`audit case CASE_ID`: everything about one case in one view."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("case")
@guarded
def case_cmd(
    case_id: str = typer.Argument(..., help="办件编号"),
    city: str | None = typer.Option(None, "--city", help="地市 (同一编号在多个地市时必须指定)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    fmt: str = typer.Option("table", "--format", help="table | json"),
    show_personal_data: bool = typer.Option(False, "--show-personal-data",
                                            help="姓名、证件号码、联系电话不脱敏 (默认脱敏)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """一个办件的全部情况 (one case in one view): 属性、按判定顺序的环节 (来源文件与行号)、本次审计算出的日期
    (开始、办结时限及计入的工作日与中止、响应/归档/回访时限)、审计发现及证据与豁免、大厅的整改答复。

    Example: audit case YA2026030500012 --city 延安 --format json
    """
    from audit.db import connect
    from audit.errors import UsageError
    from audit.outputs.case import case_view, to_json, to_table

    if fmt not in ("table", "json"):
        raise UsageError(f"--format 应为 table 或 json，而不是 {fmt!r}")
    con = connect(db)
    try:
        view = case_view(con, case_id, city, run, show_personal_data)
    finally:
        con.close()
    echo(to_json(view) if fmt == "json" else to_table(view))
