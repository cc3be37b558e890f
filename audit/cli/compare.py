"""`audit compare`: each finding's status between two runs, and the rectification rate."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, eprint, guarded, write_or_echo

FORMATS = ("table", "csv", "json", "xlsx")


@app.command("compare")
@guarded
def compare_cmd(
    base: int | None = typer.Option(None, "--base", help="基准审计编号 (默认: --run 之前的一次)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json | xlsx"),
    out: Path | None = typer.Option(None, "--out", help="输出文件 (xlsx 必须指定)"),
    city: list[str] = typer.Option([], "--city", help="只比较这些地市 (可多次，或 延安,宝鸡)"),
    month: str | None = typer.Option(None, "--month", help="只比较此月受理的办件 YYYY-MM"),
    summary: bool = typer.Option(False, "--summary", help="csv/json 只输出按地市、服务大厅、规则的汇总"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """比较两次审计 (compare two runs): each finding is new, persisting, claimed_fixed, fixed, waived or gone;
    the rectification rate (fixed ÷ findings of the base run) per city, hall and rule.

    Default: the latest run against the one before it.

    Example: audit compare
    Example: audit compare --base 3 --run 5 --city 延安 --format xlsx --out 整改跟踪.xlsx
    """
    from audit.db import connect
    from audit.errors import UsageError
    from audit.rectify.compare import compare_runs, to_csv, to_json, to_table, to_xlsx
    from audit.report.figures import require_month_format

    if fmt not in FORMATS:
        raise UsageError(f"--format 应为 table、csv、json 或 xlsx，而不是 {fmt!r}")
    if fmt == "xlsx" and out is None:
        raise UsageError("--format xlsx 需要 --out FILE.xlsx")
    require_month_format(month)
    con = connect(db)
    try:
        result = compare_runs(con, base, run, city, month)
    finally:
        con.close()
    if fmt == "xlsx":
        to_xlsx(result, out)
        echo(f"已写出 {out} ({len(result.findings)} 条发现)")
        return
    if fmt != "table":
        for line in result.notices:
            eprint(f"注意: {line}")
    text = {"table": lambda: to_table(result), "csv": lambda: to_csv(result, summary),
            "json": lambda: to_json(result, summary)}[fmt]()
    write_or_echo(text, out, fmt, f"{len(result.findings)} 条发现")
