"""`audit ingest FILE…`: load hall exports into the database."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("ingest")
@guarded
def ingest_cmd(
    files: list[Path] = typer.Argument(..., help="CSV / XLSX / XLS / Parquet / XES (.xes, .xes.gz) 文件，可多个"),
    city: str | None = typer.Option(None, "--city", help="一个地市的文件：只填补地市为空的行 (跨地市的文件不用它，没有地市的行按办件编号取地市)"),
    profile: Path | None = typer.Option(None, "--profile", help="列名/环节/取值映射的 YAML 配置文件"),
    sheet: str | None = typer.Option(None, "--sheet", help="只读取这个 Excel 工作表"),
    append: bool = typer.Option(False, "--append", help="已有办件的新事件追加而非替换 (增量导出)"),
    vocabulary: str | None = typer.Option(
        None, "--vocabulary", metavar="open|canonical",
        help="环节词表：canonical (默认，13 个规范环节，其它名称隔离) 或 open (环节名称按原样保留)；同一数据库只能用一种"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """导入办件日志 (load case logs into the database).

    Reads event logs, case tables, combined exports and wide ledgers (with --profile) in UTF-8 /
    GBK CSV, XLSX, XLS or Parquet, and IEEE XES event logs (plain or gzip). Prints, for every file,
    rows read = loaded + quarantined + duplicates, and the cells set aside. Rows without a city
    take their case's city. The whole command is one transaction. `audit quarantine` lists what
    was quarantined or set aside.

    Example: audit ingest 宝鸡_环节日志.csv 宝鸡_办件台账.xlsx --city 宝鸡

    Example: audit ingest BPIC15_1.xes.gz --city 市1 --vocabulary open
    """
    from audit.db import connect
    from audit.ingest import ingest
    from audit.ingest.summary import format_ingest

    con = connect(db)
    try:
        report = ingest(con, files, city=city, profile=profile, sheet=sheet, append=append,
                        command="audit ingest " + " ".join(str(f) for f in files), vocabulary=vocabulary)
    finally:
        con.close()
    echo(format_ingest(report))
