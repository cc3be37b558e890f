"""`audit findings`: list the findings of the latest run."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("findings")
@guarded
def findings_cmd(
    rule: str | None = typer.Option(None, "--rule", help="只列出此规则，如 REQ-TIME-LIMIT"),
    city: str | None = typer.Option(None, "--city", help="只列出此地市"),
    severity: str | None = typer.Option(None, "--severity", help="error | warning | info"),
    status: str | None = typer.Option(None, "--status", help="open (未豁免) | waived (已豁免，见 audit check --waivers)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | json | xlsx (整改清单)"),
    out: Path | None = typer.Option(None, "--out", help="输出文件 (xlsx 必须指定)"),
    run: int | None = typer.Option(None, "--run", help="审计编号 (默认: 最近一次)"),
    show_personal_data: bool = typer.Option(False, "--show-personal-data",
                                            help="问题与证据中的证件号码、联系电话不脱敏 (默认脱敏)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """列出审计发现 (list findings); csv/json columns include case_id, city, rule_id, severity, clause, message,
    and waived, waiver_reason, waiver_approved_by, waiver_expires (a finding covered by a waiver: kept, marked, not
    counted against 合规率).

    Example: audit findings --rule REQ-TIME-LIMIT --city 延安 --format xlsx --out 整改清单.xlsx
    Example: audit findings --status waived --format csv
    """
    from audit.db import connect
    from audit.errors import UsageError
    from audit.outputs.findings import (
        iter_findings,
        query_findings,
        run_metadata,
        to_json,
        to_table,
        to_xlsx,
        write_csv_parts,
    )

    if fmt not in ("table", "csv", "json", "xlsx"):
        raise UsageError(f"--format 应为 table、csv、json 或 xlsx，而不是 {fmt!r}")
    if fmt == "xlsx" and out is None:
        raise UsageError("--format xlsx 需要 --out FILE.xlsx")
    con = connect(db)
    try:
        if fmt == "csv":        # written part by part: millions of findings in bounded memory
            run_id, chunks = iter_findings(con, run, rule, city, severity, show_personal_data, status)
            n = write_csv_parts(chunks, out, echo)
            if out:
                echo(f"已写出 {out} ({n} 条)")
            return
        run_id, df = query_findings(con, run, rule, city, severity, show_personal_data, status)
        meta = run_metadata(con, run_id)
    finally:
        con.close()
    if fmt == "xlsx":
        to_xlsx(df, out, meta)
        echo(f"已写出整改清单 {out} ({len(df)} 条)")
        return
    text = {"table": lambda: to_table(df), "json": lambda: to_json(df, run_id)}[fmt]()
    if out:
        out.write_text(text, encoding="utf-8")
        echo(f"已写出 {out} ({len(df)} 条)")
    else:
        echo(text.rstrip("\n"))
