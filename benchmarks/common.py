"""Shared helpers of the benchmark scripts: run a command in a fresh process, measure it."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# $BENCH_DATA points the scripts at another data directory (e.g. benchmarks/data/100k, written by
# `make_data.py --cases 100000 --out benchmarks/data/100k`).
DATA = Path(os.environ.get("BENCH_DATA", ROOT / "benchmarks" / "data")).resolve()
BENCH_DB = DATA / "bench.duckdb"


@dataclass
class Run:
    """One measured child process."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    other_cpu: float = 0.0   # CPU seconds used by *other* processes while this one ran
    tries: int = 1           # runs made until one was not contended (see `run`)
    cpu: float = 0.0         # the child's own CPU seconds (user + system, all its threads)


def _cpu_total() -> float:
    """CPU seconds spent busy by the whole machine since boot (/proc/stat; 0.0 if unavailable)."""
    try:
        with open("/proc/stat") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(vals[:8]) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of all CPUs busy over `seconds` (from /proc/stat; 0.0 where unavailable)."""
    def sample():
        with open("/proc/stat") as fh:
            vals = [int(v) for v in fh.readline().split()[1:]]
        return sum(vals), vals[3] + vals[4]          # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except OSError:
        return 0.0
    return 1 - (i1 - i0) / max(t1 - t0, 1)


QUIET_WAIT = float(os.environ.get("BENCH_QUIET_WAIT", "1800"))
BUSY_SEEN: list[float] = []


def wait_quiet(limit: float = 0.15) -> None:
    """Wait (up to $BENCH_QUIET_WAIT s, default 1800) until other processes leave the CPUs idle,
    so that a measurement is not shared with another job; warn and go on after that."""
    start = time.monotonic()
    busy = cpu_busy()
    warned = False
    while busy > limit and time.monotonic() - start < QUIET_WAIT:
        if not warned:
            print(f"  waiting for an idle machine (CPU {busy:.0%} busy) ...", file=sys.stderr, flush=True)
            warned = True
        time.sleep(10)
        busy = cpu_busy()
    if busy > limit:
        print(f"  WARNING: measuring on a busy machine (CPU {busy:.0%} busy)", file=sys.stderr)
    BUSY_SEEN.append(busy)


MAX_TRIES = int(os.environ.get("BENCH_MAX_TRIES", "4"))
CONTENDED = 0.10     # other processes' CPU time above this share of the run's wall time × cores


def run(cmd: list[str], cwd: Path = ROOT, quiet: bool = True, before=None, retry: bool = True) -> Run:
    """Run `cmd` in a fresh process: wall time and that child's own peak RSS (via wait4).

    With `quiet` (the default) it first waits for an idle machine, and measures the CPU time that
    other processes used meanwhile (machine busy time from /proc/stat minus the child's own CPU
    time); a run where others took more than 10 % of the cores is repeated, up to
    $BENCH_MAX_TRIES (4) times, and the least contended run is kept. `before()` runs before every
    attempt (e.g. to start again from a fresh database); `retry=False` measures once."""
    best: Run | None = None
    for attempt in range(1, (MAX_TRIES if quiet and retry else 1) + 1):
        if before:
            before()
        if quiet:
            wait_quiet()
        r = _run_once(cmd, cwd)
        r.tries = attempt
        if best is None or r.other_cpu < best.other_cpu:
            best = r
        if r.returncode != 0 or r.other_cpu <= CONTENDED * r.seconds * (os.cpu_count() or 1):
            return r
        print(f"  contended run ({r.other_cpu:.1f} CPU s used by other processes in {r.seconds:.1f} s): "
              "measuring again", file=sys.stderr, flush=True)
    return best


def _run_once(cmd: list[str], cwd: Path) -> Run:
    busy0 = _cpu_total()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # communicate() would reap the child itself; read the pipes, then reap with wait4 for its rusage.
    out, err = _drain(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    other = max(0.0, _cpu_total() - busy0 - usage.ru_utime - usage.ru_stime)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, out, err, other,
               cpu=usage.ru_utime + usage.ru_stime)


def _drain(proc: subprocess.Popen) -> tuple[str, str]:
    import threading

    chunks: dict[str, str] = {}

    def read(name, stream):
        chunks[name] = stream.read()
        stream.close()

    threads = [threading.Thread(target=read, args=(n, s)) for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return chunks["out"], chunks["err"]


def check_ok(r: Run, what: str) -> None:
    if r.returncode != 0:
        sys.exit(f"{what} failed (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")


def fresh_db(path: Path) -> Path:
    for p in (path, Path(str(path) + ".wal")):
        if p.exists():
            p.unlink()
    return path


def manifest() -> dict:
    path = DATA / "manifest.json"
    if not path.exists():
        sys.exit("benchmarks/data/manifest.json not found: run  python benchmarks/make_data.py  first")
    return json.loads(path.read_text())


def machine() -> str:
    import duckdb
    import pyarrow

    mem = ""
    try:
        kb = int(next(ln for ln in open("/proc/meminfo") if ln.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 ** 2:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    cpu = ""
    try:
        cpu = next(ln for ln in open("/proc/cpuinfo") if ln.startswith("model name")).split(":", 1)[1].strip()
    except (OSError, StopIteration):
        pass
    return (f"{os.cpu_count()} cores ({cpu}){mem}; Python {platform.python_version()}, "
            f"DuckDB {duckdb.__version__}, pyarrow {pyarrow.__version__}")


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
