"""`audit quarantine`: every quarantined row and set-aside cell, for a clerk to correct."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli import app
from audit.cli.common import DbOption, DebugOption, echo, guarded


@app.command("quarantine")
@guarded
def quarantine_cmd(
    ingest: int | None = typer.Option(None, "--ingest", help="只列出此导入批次 (默认: 全部)"),
    fmt: str = typer.Option("table", "--format", help="table | csv | xlsx"),
    out: Path | None = typer.Option(None, "--out", help="输出文件 (xlsx 必须指定)"),
    show_personal_data: bool = typer.Option(False, "--show-personal-data",
                                            help="显示完整的姓名、证件号码和联系电话 (默认脱敏)"),
    db: Path = DbOption,
    debug: bool = DebugOption,
) -> None:
    """列出被隔离的行和被搁置的单元格 (quarantined rows and set-aside cells): 文件、行、列、原始值、原因.

    csv columns: ingest_id, kind (quarantined | set_aside), file, row, column, raw, reason.

    Example: audit quarantine --ingest 3 --format xlsx --out 隔离清单.xlsx
    """
    from audit.db import connect
    from audit.errors import UsageError
    from audit.outputs.quarantine import counts_text, csv_parts, empty_text, list_quarantine, table_parts, write_xlsx

    if fmt not in ("table", "csv", "xlsx"):
        raise UsageError(f"--format 应为 table、csv 或 xlsx，而不是 {fmt!r}")
    if fmt == "xlsx" and out is None:
        raise UsageError("--format xlsx 需要 --out FILE.xlsx")
    con = connect(db, read_only=True)
    try:
        listing = list_quarantine(con, ingest, show_personal_data)
        if fmt == "xlsx":
            write_xlsx(listing, out)
        else:
            parts = table_parts(listing) if fmt == "table" else csv_parts(listing)
            if out is None:
                for part in parts:
                    echo(part, nl=False)
                return
            with open(out, "w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as fh:
                for part in parts:
                    fh.write(part)
    finally:
        con.close()
    echo(f"已写出 {out} ({counts_text(listing)})" if listing.total else f"{empty_text(listing)}；已写出 {out} (只有表头)")
