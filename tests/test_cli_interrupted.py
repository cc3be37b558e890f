"""A second process, SIGTERM and kill -9 get one clear line and leave nothing behind (issues 9, 10).

Real processes: a second one holding the database's lock; `python -m audit ingest` killed
with SIGKILL or SIGTERM while it transcodes a GBK file into its temporary UTF-8 copy; and
`ingest` and `check` killed with SIGKILL inside their transactions, just before COMMIT (the
test-only pause point `audit.testpause`), which must leave the database exactly as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.check.engine import run_check
from audit.db import connect
from audit.errors import DatabaseBusy
from audit.ingest import ingest
from audit.sample.writers import write_sample
from tests.conftest import REPO, snapshot, write_csv
from tests.test_ingest_bad_input import HEADER, SEED, rows, seeded, unchanged  # noqa: F401


# --- 5. a database in use ---------------------------------------------------------------------
def test_a_database_in_use_is_one_clear_line(tmp_path, cli, seeded):
    db, _ = seeded
    path = write_csv(tmp_path / "ev.csv", SEED)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); time.sleep(120)", str(db)],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"ready"
        for command in (["ingest", path], ["check"]):
            code, out = cli(*command, "--db", db)
            assert code == 2, out
            assert f"数据库 {db} 正被另一个进程使用 (database is in use by another process: PID {holder.pid}," in out
            assert "内部错误" not in out and len(out.strip().splitlines()) == 1
        with pytest.raises(DatabaseBusy):
            connect(db)
    finally:
        holder.kill()
        holder.wait()


# --- 6. temporary UTF-8 copies ----------------------------------------------------------------
def _gbk_events(path: Path, n: int) -> Path:
    path.write_bytes((HEADER + rows(n)).encode("gbk"))
    return path


def _audit(tmp: Path, *args, env: dict | None = None, **popen):
    env = env or dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "audit", *map(str, args)], env=env, cwd=tmp,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def _copies(tmp: Path) -> list[Path]:
    return sorted(tmp.glob("bangban-audit-*/*.csv"))


def _wait_for_copy(tmp: Path, proc) -> list[Path]:
    deadline = time.monotonic() + 60
    while not (found := _copies(tmp)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return found


def test_copies_of_a_killed_ingest_are_removed_by_the_next(tmp_path, seeded):
    db, before = seeded
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    big = _gbk_events(tmp_path / "big_gbk.csv", 300_000)
    proc = _audit(tmp, "ingest", big, "--db", db)
    left = _wait_for_copy(tmp, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _copies(tmp) == left and left[0].name.startswith(f"{proc.pid}-")
    assert unchanged(db, before)
    small = _audit(tmp, "ingest", write_csv(tmp_path / "s.csv", SEED), "--db", db)
    out, err = small.communicate(timeout=120)
    assert small.returncode == 0, err.decode()
    assert _copies(tmp) == []


def test_sigterm_unwinds_and_removes_the_copy(tmp_path, seeded):
    db, before = seeded
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    big = _gbk_events(tmp_path / "big_gbk.csv", 300_000)
    proc = _audit(tmp, "ingest", big, "--db", db)
    _wait_for_copy(tmp, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.decode().strip() == "已终止 (terminated)：命令未完成，数据库保持原样"
    assert _copies(tmp) == []
    assert unchanged(db, before)


def test_copies_are_removed_after_success_and_after_an_error(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    good = _gbk_events(tmp_path / "good_gbk.csv", 100)
    proc = _audit(tmp, "ingest", good, "--db", tmp_path / "x.duckdb")
    proc.communicate(timeout=120)
    assert proc.returncode == 0 and _copies(tmp) == []
    # a GBK file whose columns cannot be used: the error comes after the copy is made
    bad = tmp_path / "bad_gbk.csv"
    bad.write_bytes("办件编号,地市,环节,经办人\nK1,延安,咨询,张三\n".encode("gbk"))
    proc = _audit(tmp, "ingest", bad, "--db", tmp_path / "x.duckdb")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3 and "没有 时间 (time) 列" in err.decode()
    assert _copies(tmp) == []


def test_a_file_that_is_no_database_is_one_line(tmp_path, cli):
    db = tmp_path / "notes.duckdb"
    db.write_text("办件编号,地市\n", encoding="utf-8")
    code, out = cli("check", "--db", db)
    assert code == 2 and out.startswith(f"错误 (error): 无法打开数据库 {db}: IO Error:") and "内部错误" not in out


def test_a_lock_message_without_its_holder_still_names_the_database(tmp_path):
    import duckdb

    from audit.db import _open_error

    err = _open_error(tmp_path / "a.duckdb", duckdb.IOException(
        'IO Error: Could not set lock on file "a.duckdb": Conflicting lock is held'))
    assert isinstance(err, DatabaseBusy)
    assert str(err).startswith(f"数据库 {tmp_path / 'a.duckdb'} 正被另一个进程使用 (database is in use by another process)；")


# --- 7. kill -9 inside the ingest's and the check's transactions (issue 10) -------------------
def _state(db: Path) -> dict:
    """Everything in the database: every table's row count, the runs, the findings, and the
    cases, events and quarantine (conftest.snapshot)."""
    con = connect(db)
    try:
        tables = [r[0] for r in con.execute("""SELECT table_name FROM duckdb_tables()
            WHERE database_name = current_database() AND NOT temporary ORDER BY 1""").fetchall()]
        return {"counts": {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables},
                "runs": _rows(con, "SELECT * FROM runs ORDER BY run_id"),
                "findings": con.execute("SELECT * FROM findings ORDER BY ALL").fetchall(),
                **snapshot(con)}
    finally:
        con.close()


def _rows(con, sql: str) -> list[dict]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def _assert_as_before(db: Path, before: dict) -> None:
    now = _state(db)
    assert now["counts"] == before["counts"]        # every table's row count first (a short message)
    assert now["runs"] == before["runs"]
    assert now == before


def _kill_at(tmp: Path, point: str, *args) -> dict:
    """Run `python -m audit *args` until it pauses at `point` (inside its transaction, before
    COMMIT), kill -9 it there, and return what the pause point saw (row counts in the transaction)."""
    marker = tmp / f"{point}.json"
    proc = _audit(tmp, *args, env=dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(REPO),
                                       AUDIT_TEST_PAUSE_AT=point, AUDIT_TEST_PAUSE_MARKER=str(marker)))
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, f"finished without reaching {point}: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{point} not reached"
            time.sleep(0.02)
        seen = json.loads(marker.read_text(encoding="utf-8"))
        assert seen["point"] == point and seen["pid"] == proc.pid
        assert proc.poll() is None                      # paused there, alive: the kill lands inside
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    marker.unlink()
    return seen["tables"]


def _finish(tmp: Path, *args) -> None:
    proc = _audit(tmp, *args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()


@pytest.fixture
def audited(tmp_path) -> Path:
    """A database holding a small sample and one check run of it."""
    data = tmp_path / "sample"
    db = tmp_path / "audit.duckdb"
    con = connect(db)
    for entry in write_sample(data, cases_per_city=60, seed=5):
        ingest(con, [data / entry["file"]], city=entry["city"],
               profile=data / entry["profile"] if entry["profile"] else None)
    run_check(con)
    con.close()
    return db


def _events_csv(path: Path, n_cases: int) -> Path:
    """A GBK combined export of `n_cases` cases, six events each."""
    steps = ["咨询", "申请", "受理", "承办", "办结", "资料归档"]
    with open(path, "w", encoding="gbk", newline="") as fh:
        fh.write("办件编号,地市,服务类型,服务方式,承诺时限,收费金额,环节,时间,经办人\r\n")
        for i in range(n_cases):
            for j, step in enumerate(steps):
                fh.write(f"K{i:07d},延安,帮办,线下,3,0,{step},2025/3/{1 + i % 28} {9 + j}:00,张三\r\n")
    return path


def test_kill_inside_the_ingest_transaction_leaves_the_database_as_it_was(tmp_path, audited):
    # 21,000 cases: 126,000 events, more than one DuckDB row group (122,880 rows), which DuckDB
    # writes into the database file before COMMIT.
    big = _events_csv(tmp_path / "big.csv", 21_000)
    before = _state(audited)
    seen = _kill_at(tmp_path, "ingest-commit", "ingest", big, "--db", audited)
    assert seen["event_rows"] == before["counts"]["event_rows"] + 6 * 21_000   # all written, not committed
    assert seen["ingests"] == before["counts"]["ingests"] + 1
    _assert_as_before(audited, before)
    _finish(tmp_path, "ingest", big, "--db", audited)                           # the next ingest works
    after = _state(audited)
    assert after["counts"] == seen                                              # and gives what was lost:
    assert len(after["events"]) == len(before["events"]) + 6 * 21_000          # the whole file
    assert len(after["cases"]) == len(before["cases"]) + 21_000
    assert set(before["cases"]) <= set(after["cases"]) and after["runs"] == before["runs"]


@pytest.mark.parametrize("as_of", ["latest", "2026-01-30"])
def test_kill_inside_the_check_transaction_leaves_the_database_as_it_was(tmp_path, audited, as_of):
    """`latest` runs the stored run again (its transaction first deletes the stored findings and
    run); a new audit date adds a run."""
    args = ("check", "--db", audited) + (("--as-of", as_of) if as_of != "latest" else ())
    before = _state(audited)
    seen = _kill_at(tmp_path, "check-commit", *args)
    assert seen["runs"] == len(before["runs"]) + (as_of != "latest")
    assert seen["findings"] > 0 and seen["run_rules"] > 0
    _assert_as_before(audited, before)               # the runs, findings and every count as they were
    _finish(tmp_path, *args)                          # the next check works
    after = _state(audited)
    assert after["counts"] == seen
    if as_of == "latest":                             # the same run, replaced under a new id
        con = connect(audited)
        assert con.execute("SELECT run_key, as_of, findings FROM runs").fetchall() == [
            (before["runs"][0]["run_key"], before["runs"][0]["as_of"], len(before["findings"]))]
        con.close()
        assert sorted(f[1:] for f in after["findings"]) == sorted(f[1:] for f in before["findings"])
