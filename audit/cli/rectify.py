"""`audit rectify export` / `audit rectify import`: rectification lists per hall, and the answers read back."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded

rectify_app = typer.Typer(name="rectify", no_args_is_help=True, add_completion=False,
                          help="整改清单：按服务大厅导出 (export)，读回各大厅的答复 (import)。")
app.add_typer(rectify_app)


@rectify_app.command("export")
@guarded
def export_cmd(
    out: Path = typer.Option(..., "--out", help="输出目录 (每个服务大厅一个 .xlsx；不存在时创建)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    city: list[str] = typer.Option([], "--city", help="只导出这些地市 (可多次，或 延安,宝鸡)"),
    severity: list[str] = typer.Option([], "--severity", help="只导出这些级别: error / warning / info (可多次)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """按服务大厅写出整改清单 (a rectification workbook per hall) of a run's findings (DATA-* excluded).

    Example: audit rectify export --out 整改清单/ --city 延安 --severity error
    """
    from audit.db import connect
    from audit.rectify.lists import export_lists, format_export

    con = connect(db)
    try:
        result = export_lists(con, out, run, city, severity)
    finally:
        con.close()
    echo(format_export(result, out))


@rectify_app.command("import")
@guarded
def import_cmd(
    files: list[Path] = typer.Argument(..., help="各大厅交回的整改清单 .xlsx，可多个 (按给出的顺序，后者为准)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """读回各大厅填写的整改清单 (read the answers back): 读入 = 记录 + 拒绝 + 未变, per file.

    Example: audit rectify import 整改清单/*.xlsx
    """
    from audit.db import connect
    from audit.rectify.answers import format_import, import_answers

    con = connect(db)
    try:
        report = import_answers(con, files)
    finally:
        con.close()
    echo(format_import(report))
