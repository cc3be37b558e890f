"""A TEST-ONLY pause point for the kill -9 tests (tests/test_cli_interrupted.py).

`pause_for_test` is called just before the COMMIT of the ingest's and the check's transactions.
Unless the environment variable AUDIT_TEST_PAUSE_AT names that point it returns at once and does
nothing; no command, option or setting of the tool sets it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import duckdb


def pause_for_test(con: duckdb.DuckDBPyConnection, point: str) -> None:
    """TEST-ONLY pause point; a no-op unless the environment variable AUDIT_TEST_PAUSE_AT names
    `point` (``ingest-commit``, ``check-commit``: inside a transaction, just before its COMMIT).

    Then it writes the file named by AUDIT_TEST_PAUSE_MARKER (JSON: the point, the process id and
    the row count of every table of the database as this transaction sees it) and sleeps until
    the process is killed, so that a test can kill -9 it exactly there and then check that
    nothing of the transaction remains. Never set these variables outside the tests.
    """
    if os.environ.get("AUDIT_TEST_PAUSE_AT") != point:
        return
    tables = [r[0] for r in con.execute("""SELECT table_name FROM duckdb_tables()
        WHERE database_name = current_database() AND NOT temporary ORDER BY 1""").fetchall()]
    counts = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}
    marker = Path(os.environ["AUDIT_TEST_PAUSE_MARKER"])
    part = marker.with_name(marker.name + ".part")
    part.write_text(json.dumps({"point": point, "pid": os.getpid(), "tables": counts}), encoding="utf-8")
    part.replace(marker)            # the test never reads a half-written marker
    while True:
        time.sleep(3600)
