"""The demo job: bundled sample data for three cities → ingest → check → summary (→ report).

The demo works in a folder of its own (`out`, default ``demo_output``): the sample exports in
``sample_data/``, the report ``report.html`` and the database ``audit.duckdb`` all go there, so
that the user's own ``audit.duckdb`` in the working directory is never touched. Running the demo
again replaces what it made. An existing database is replaced only if the demo made it (every
ingest recorded in it is the demo's own); any other file at the database path is refused.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

from audit.db import connect
from audit.errors import UsageError

DEMO_COMMAND = "audit demo"       # the command recorded with each of the demo's ingests
DEMO_DB = "audit.duckdb"          # the demo's database, inside its folder


def demo_db_path(out: Path, db_path: Path | None = None) -> Path:
    """Where the demo's database goes: `db_path` if given, else ``<out>/audit.duckdb``."""
    return Path(db_path) if db_path is not None else Path(out) / DEMO_DB


def is_demo_database(path: Path) -> bool:
    """Whether the file at `path` is a database the demo made: DuckDB can open it and it records
    ingests, all of them the demo's. Opened read-only; a database in use by another process is
    an error (DatabaseBusy), not a no."""
    try:
        con = connect(path, read_only=True)
    except UsageError:          # not a DuckDB database
        return False
    try:
        commands = [r[0] for r in con.execute("SELECT command FROM ingests").fetchall()]
    except Exception:           # no ingests table: not one of ours
        return False
    finally:
        con.close()
    return bool(commands) and all(c == DEMO_COMMAND for c in commands)


def claim_database(path: Path) -> None:
    """Make way for the demo's database at `path`: remove a database the demo made before (with
    its write-ahead log); refuse (UsageError) any other existing file, leaving it as it is."""
    if path.exists() and not (path.is_file() and is_demo_database(path)):
        raise UsageError(f"{path} 已存在且不是 audit demo 生成的数据库：演示不会改动它；"
                         "请用 --db 指定一个新文件，或用 --out 指定另一个演示目录")
    if path.exists():
        for suffix in ("", ".wal"):
            p = Path(str(path) + suffix)
            if p.exists():
                p.unlink()


def run_demo(out: Path, db_path: Path | None = None) -> Iterator[str]:
    """Write the sample exports to ``<out>/sample_data``, ingest them into a fresh database
    (`demo_db_path`), run the default pack and write ``<out>/report.html``.

    Yields progress lines. The sample is the one bundled in ``sample_data/`` (same generator, same
    seed, same bytes). A database at the path that the demo did not make is refused before
    anything is written (see the module doc).
    """
    from audit.check.engine import run_check
    from audit.check.summary import check_summary
    from audit.ingest import ingest
    from audit.ingest.summary import database_summary, format_ingest
    from audit.sample.writers import write_sample

    out = Path(out)
    db_path = demo_db_path(out, db_path)
    claim_database(db_path)
    data = out / "sample_data"
    manifest = write_sample(data)
    yield f"样例数据已写入 {data} ({len(manifest)} 个文件)"
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = connect(db_path)
    try:
        for entry in manifest:
            report = ingest(con, [data / entry["file"]], city=entry.get("city"),
                            profile=(data / entry["profile"]) if entry.get("profile") else None,
                            command=DEMO_COMMAND)
            yield format_ingest(report)
        yield database_summary(con)
        yield check_summary(run_check(con))
        from audit.report import write_report

        info = write_report(con, out / "report.html")
        yield f"报告 (report): {info.path}"
    finally:
        con.close()
    yield f"数据库 (database): {db_path}"
    yield f"接着查看 (next): audit findings --db {shlex.quote(str(db_path))}"
