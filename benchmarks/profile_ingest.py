"""Where does `audit ingest` spend its time and memory? Per-statement timing of one ingest.

    python benchmarks/profile_ingest.py benchmarks/data/events.csv [--db X] [--set "SET threads=2" ...]

Runs `audit.ingest.ingest` in this process on a connection wrapper that times every SQL statement
(multi-statement strings are split and run one by one) and samples this process's RSS every 20 ms,
so each statement gets its wall time and the peak RSS while it ran. The Python-side reading of each
sheet or file (`read_any`: header and encoding check; pyarrow/calamine for files DuckDB does not
read itself) is timed the same way. The SHA-256 runs in a background thread and is not a row of
its own. `--set` statements run on the connection first (e.g. "SET memory_limit='1GB'"; the
connection already has the memory settings of `audit.db.connect`, AUDIT_MEMORY_LIMIT included).
`--duck-memory` also samples DuckDB's own accounting (`duckdb_memory()`: memory in use and
temporary storage spilled to disk) through a second cursor, and reports its peak per statement.
The `audit` package profiled is the one of this checkout (not an installed one).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT, fresh_db  # noqa: E402

sys.path.insert(0, str(ROOT))     # this checkout's audit package, not an installed one


class RssSampler(threading.Thread):
    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval, self.peak, self.stop_flag = interval, 0, False
        self.duck = None                 # a cursor to sample duckdb_memory() with (--duck-memory)
        self.duck_peak = (0.0, 0.0)      # DuckDB memory in use, temporary storage on disk (MB)

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def run(self):
        n = 0
        while not self.stop_flag:
            self.peak = max(self.peak, self.rss_mb())
            if self.duck is not None and n % 10 == 0:      # every 0.2 s: the query is not free
                try:
                    used, tmp = self.duck.execute("SELECT sum(memory_usage_bytes), sum(temporary_storage_bytes) "
                                                  "FROM duckdb_memory()").fetchone()
                    self.duck_peak = (max(self.duck_peak[0], used / 2**20), max(self.duck_peak[1], tmp / 2**20))
                except Exception:   # noqa: BLE001 - a sample may fail while the connection closes
                    pass
            n += 1
            time.sleep(self.interval)

    def window(self) -> None:
        self.peak = self.rss_mb()
        self.duck_peak = (0.0, 0.0)


SAMPLER = RssSampler()
RECORDS: list[tuple[float, float, str, float]] = []   # seconds, peak RSS MB in window, label, CPU seconds
DUCK: dict[int, tuple[float, float]] = {}              # record index -> DuckDB memory / temp storage peak MB


def _label(sql: str) -> str:
    lines = [ln for ln in sql.strip().splitlines() if not ln.strip().startswith("--")]
    return " ".join(" ".join(lines).split())[:110]


def _split(sql: str) -> list[str]:
    import duckdb

    return [st.query for st in duckdb.extract_statements(sql)]


class TimedCon:
    """Forwards to a DuckDB connection, timing execute / executemany."""

    def __init__(self, con):
        self._con = con

    def __getattr__(self, name):
        return getattr(self._con, name)

    def _timed(self, fn, label, *a):
        SAMPLER.window()
        t, c = time.perf_counter(), cpu_seconds()
        res = fn(*a)
        RECORDS.append((time.perf_counter() - t, SAMPLER.peak, label, cpu_seconds() - c))
        DUCK[len(RECORDS) - 1] = SAMPLER.duck_peak
        return res

    def execute(self, sql, params=None):
        stmts = _split(sql) if params is None else [sql]
        res = None
        for s in stmts:
            if params is None:
                res = self._timed(self._con.execute, _label(s), s)
            else:
                # a rule's INSERT INTO findings gets its rule id (the second parameter) in the label
                tag = (f"[{params[1]}] " if s.lstrip().startswith(("INSERT INTO findings", "INSERT INTO _run_findings"))
                       and len(params) > 1 else "")
                res = self._timed(self._con.execute, tag + _label(s), s, params)
        return res

    def executemany(self, sql, params):
        return self._timed(self._con.executemany, "executemany " + _label(sql), sql, params)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--db", type=Path, default=DATA / "tmp_profile.duckdb")
    ap.add_argument("--keep", action="store_true", help="do not start from a fresh database")
    ap.add_argument("--set", action="append", default=[], help="SQL run on the connection first")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--duck-memory", action="store_true", help="also sample duckdb_memory() (see above)")
    args = ap.parse_args(argv)

    import audit.ingest.load as load
    from audit.db import connect

    if not args.keep:
        fresh_db(args.db)
    SAMPLER.start()
    real_read_any = load.read_any

    def timed_read_any(*a, **k):
        items = iter(real_read_any(*a, **k))
        while True:   # one row per sheet, as the loader reads them (one at a time)
            SAMPLER.window()
            t, c = time.perf_counter(), cpu_seconds()
            try:
                raw = next(items)
            except StopIteration:
                return
            RECORDS.append((time.perf_counter() - t, SAMPLER.peak, f"read_any({Path(a[0]).name}) [python]",
                            cpu_seconds() - c))
            yield raw

    load.read_any = timed_read_any
    t0, c0 = time.perf_counter(), cpu_seconds()
    con = connect(args.db)
    for s in args.set:
        con.execute(s)
    print("settings: " + ", ".join(f"{k}={v}" for k, v in con.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', 'temp_directory', 'threads') "
        "ORDER BY name").fetchall()))
    if args.duck_memory:
        SAMPLER.duck = con.cursor()
    rep = load.ingest(TimedCon(con), args.files)
    SAMPLER.stop_flag = True
    SAMPLER.join()
    con.close()
    total, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(f"total {total:.2f}s ({cpu:.2f} CPU s), peak RSS {max(r[1] for r in RECORDS):,.0f} MB; "
          f"read {rep.rows_read:,} loaded {rep.loaded:,} quarantined {rep.quarantined:,} duplicates {rep.duplicates:,}")
    print_records(args.top, args.duck_memory)


def cpu_seconds() -> float:
    """CPU time of this process, all threads (DuckDB's and the SHA-256 thread's included)."""
    t = os.times()
    return t.user + t.system


def print_records(top: int, duck: bool = False) -> None:
    """The sum of the timed steps, then the `top` slowest as a markdown table. `CPU s` is the
    whole process's CPU time during the step: > seconds when DuckDB ran on several cores, and it
    includes background threads (the SHA-256 of the input)."""
    print(f"sum of timed steps {sum(r[0] for r in RECORDS):.2f}s, {sum(r[3] for r in RECORDS):.2f} CPU s\n")
    extra = " DuckDB MB | spilled MB |" if duck else ""
    print(f"| seconds | CPU s | peak RSS MB |{extra} statement |\n| ---: | ---: | ---: |{' ---: | ---: |' if duck else ''} --- |")
    for i in sorted(range(len(RECORDS)), key=lambda i: -RECORDS[i][0])[:top]:
        sec, peak, label, cpu = RECORDS[i]
        cols = f" {DUCK.get(i, (0, 0))[0]:,.0f} | {DUCK.get(i, (0, 0))[1]:,.0f} |" if duck else ""
        print(f"| {sec:.2f} | {cpu:.2f} | {peak:,.0f} |{cols} `{label}` |")


if __name__ == "__main__":
    main()
