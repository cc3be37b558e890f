"""A second process, SIGTERM and kill -9 get one clear line and leave nothing behind (issue 9).

Real processes: a second one holding the database's lock, and `python -m audit ingest` killed
with SIGKILL or SIGTERM while it transcodes a GBK file into its temporary UTF-8 copy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audit.db import connect
from audit.errors import DatabaseBusy
from tests.conftest import REPO, write_csv
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


def _audit(tmp: Path, *args, **popen):
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(REPO))
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
