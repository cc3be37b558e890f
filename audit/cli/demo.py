"""`audit demo`: the whole job on the bundled sample, in a folder of its own."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DebugOption, echo, guarded


@app.command("demo")
@guarded
def demo_cmd(
    out: Path = typer.Option(Path("demo_output"), "--out", help="演示目录：样例数据、报告和演示数据库都写在这里"),
    db: Path | None = typer.Option(None, "--db", help="演示数据库 (默认: <--out>/audit.duckdb)；"
                                      "已存在而不是演示生成的数据库不会被改动 (退出码 2)"),
    debug: bool = DebugOption,
) -> None:
    """演示：生成延安、宝鸡、榆林样例数据并导入、审计、写出报告 (sample → ingest → check → report).

    Everything goes into the demo's own folder: demo_output/sample_data/, demo_output/report.html and
    the database demo_output/audit.duckdb; an audit.duckdb in the working directory is never touched.
    Running the demo again replaces what it made before.

    Example: audit demo            (then: audit findings --db demo_output/audit.duckdb)
    """
    from audit.sample.demo import run_demo

    for line in run_demo(out, db):
        echo(line)
