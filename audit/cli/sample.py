"""`audit sample`: write the realistic sample exports of 延安, 宝鸡 and 榆林 (see `audit.sample.generate`)."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("sample")
@guarded
def sample_cmd(
    out: Path = typer.Option(..., "--out", help="输出目录 (output directory, created if needed)."),
    cases: int = typer.Option(300, "--cases", min=0, help="每个地市的办件数 (cases per city)."),
    seed: int = typer.Option(20251001, "--seed", help="随机种子: 同一种子生成完全相同的文件 (same seed, same bytes)."),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """写出延安、宝鸡、榆林三地的样例导出文件及 manifest.yaml (write the sample exports of three cities).

    延安: GBK 合并导出 CSV; 宝鸡: 环节日志 CSV (UTF-8 BOM) + 办件台账 XLSX; 榆林: 宽表台账 XLSX + 导入配置
    (profile)。约 2-8% 的办件违反各条规则。manifest.yaml 按导入顺序列出每个文件及其 --city / --profile。

    例 (example): audit sample --out sample --cases 300 --seed 1
    """
    from audit.sample.writers import write_sample

    entries = write_sample(out, cases_per_city=cases, seed=seed)
    for entry in entries:
        echo(f"{out / entry['file']}\t{entry['rows']} 行 (rows)")
        if entry.get("profile"):
            echo(f"{out / entry['profile']}\t导入配置 (profile)")
    echo(f"{out / 'manifest.yaml'}\t清单 (manifest, ingest order)")
