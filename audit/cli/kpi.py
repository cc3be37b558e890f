"""`audit kpi`: the figures of contract §5 by any grouping."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("kpi")
@guarded
def kpi_cmd(
    by: str | None = typer.Option(None, "--by", help="分组: city,county,hall,month,service_type,channel,object_type,staff 的任意组合"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    out: Path | None = typer.Option(None, "--out", help="输出文件"),
    as_of: str | None = typer.Option(None, "--as-of", help="审计日 YYYY-MM-DD (默认: 最近一次审计的审计日)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """计算响应率、解决率、满意率等指标 (figures by group); rates are fractions in machine output.

    Reads the figures stored by the latest `audit check` run (--run N, or the latest at --as-of);
    without a run it says to run `audit check` first.

    Example: audit kpi --by city,month --format csv --out kpi.csv
    """
    from audit.check.engine import parse_as_of
    from audit.db import connect
    from audit.errors import UsageError
    from audit.outputs.kpi import kpi_csv, kpi_json, kpi_table, run_kpis

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format 应为 table、csv 或 json，而不是 {fmt!r}")
    con = connect(db)
    try:
        result = run_kpis(con, by, parse_as_of(as_of), run)
    finally:
        con.close()
    text = {"table": kpi_table, "csv": kpi_csv, "json": kpi_json}[fmt](result)
    if out:
        out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8",
                       newline="" if fmt == "csv" else None)     # CSV records end in CRLF already
        echo(f"已写出 {out} ({len(result.table)} 行)")
    else:
        echo(text.rstrip("\n"))
