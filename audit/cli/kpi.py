"""`audit kpi`: the figures of contract §5 by any grouping."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, guarded, write_or_echo


@app.command("kpi")
@guarded
def kpi_cmd(
    by: str | None = typer.Option(None, "--by", help="分组: city,county,hall,month,service_type,channel,object_type,staff 的任意组合"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json"),
    out: Path | None = typer.Option(None, "--out", help="输出文件"),
    as_of: str | None = typer.Option(None, "--as-of", help="审计日 YYYY-MM-DD (默认: 最近一次审计的审计日)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    detail: bool = typer.Option(False, "--detail",
                                help="每个指标加分子、分母与 95% Wilson 区间 (<figure>_num/_den/_low/_high)"),
    adjusted: bool = typer.Option(False, "--adjusted",
                                  help="加按服务类型×服务对象类别标准化的调整率 (<figure>_adjusted)，以输出的各组为标准"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """计算响应率、解决率、满意率等指标 (figures by group); rates are fractions in machine output.

    Reads the figures stored by the latest `audit check` run (--run N, or the latest at --as-of);
    without a run it says to run `audit check` first.

    --detail adds each rate's numerator, denominator and 95% Wilson interval; --adjusted adds the
    case-mix-adjusted rates, standardised over the groups of the output (contract §5.1).

    Example: audit kpi --by city,month --format csv --out kpi.csv
    Example: audit kpi --by city --detail --adjusted --format json
    """
    from audit.check.engine import parse_as_of
    from audit.db import connect
    from audit.errors import UsageError
    from audit.outputs.kpi import kpi_csv, kpi_json, kpi_table, run_kpis

    if fmt not in ("table", "csv", "json"):
        raise UsageError(f"--format 应为 table、csv 或 json，而不是 {fmt!r}")
    con = connect(db)
    try:
        result = run_kpis(con, by, parse_as_of(as_of), run, detail=detail, adjusted=adjusted)
    finally:
        con.close()
    text = {"table": kpi_table, "csv": kpi_csv, "json": kpi_json}[fmt](result)
    write_or_echo(text, out, fmt, f"{len(result.table)} 行")
