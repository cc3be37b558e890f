"""`audit rules`: the pack's catalogue, or one rule explained."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("rules")
@guarded
def rules_cmd(
    rule_id: str | None = typer.Argument(None, help="规则编号，如 REQ-TIME-LIMIT"),
    pack: str | None = typer.Option(None, "--pack", help="规则包：内置的名称 default、complaints、online、bpic15，或规则包目录 (默认: default)"),
    city: str | None = typer.Option(None, "--city", help="显示此地市生效的设置"),
    verify: bool = typer.Option(False, "--verify", help="运行规则的通过/不通过示例并报告结果"),
    markdown: bool = typer.Option(False, "--markdown", help="以 Markdown 表格输出规则目录 (README 中的规则表由此生成)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> int:
    """列出规则包中的规则 (list the rules with clause, severity and settings in force).

    Example: audit rules            audit rules REQ-TIME-LIMIT --verify
    """
    from audit.outputs.catalog import catalogue, explain
    from audit.outputs.catalog import markdown as as_markdown
    from audit.resources import resolve_pack
    from audit.rules.pack import load_pack

    the_pack = load_pack(resolve_pack(pack))
    if markdown:
        echo(as_markdown(the_pack))
        return 0
    if rule_id is None:
        echo(catalogue(the_pack, city))
        return 0
    text, ok = explain(the_pack, the_pack.rule(rule_id), city, verify)
    echo(text)
    return 0 if ok else 1
