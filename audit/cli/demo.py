"""`audit demo`: the whole job on the bundled sample, in the working directory."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("demo")
@guarded
def demo_cmd(
    out: Path = typer.Option(Path("demo_output"), "--out", help="样例数据与结果的输出目录"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """演示：生成延安、宝鸡、榆林样例数据并导入、审计、写出报告 (sample → ingest → check → report).

    Example: audit demo            (in an empty directory; writes demo_output/ and audit.duckdb)
    """
    from audit.demo import run_demo

    for line in run_demo(out, db):
        echo(line)
