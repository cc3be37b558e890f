"""The demo job: bundled sample data for three cities → ingest → check → summary (→ report)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from audit.db import connect


def run_demo(out: Path, db_path: Path) -> Iterator[str]:
    """Write the sample exports to `out`, ingest them into a fresh `db_path`, run the default pack.

    Yields progress lines. The sample is the one bundled in ``sample_data/`` (same generator, same
    seed, same bytes).
    """
    from audit.engine import run_check
    from audit.check import check_summary
    from audit.ingest import ingest
    from audit.sample import write_sample
    from audit.summary import database_summary, format_ingest

    out = Path(out)
    data = out / "sample_data"
    manifest = write_sample(data)
    yield f"样例数据已写入 {data} ({len(manifest)} 个文件)"
    for suffix in ("", ".wal"):
        p = Path(str(db_path) + suffix)
        if p.exists():
            p.unlink()
    con = connect(db_path)
    try:
        for entry in manifest:
            report = ingest(con, [data / entry["file"]], city=entry.get("city"),
                            profile=(data / entry["profile"]) if entry.get("profile") else None,
                            command="audit demo")
            yield format_ingest(report)
        yield database_summary(con)
        yield check_summary(run_check(con))
        from audit.report import write_report

        info = write_report(con, out / "report.html")
        yield f"报告 (report): {info.path}"
    finally:
        con.close()
    yield f"数据库: {db_path}"
