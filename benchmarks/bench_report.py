"""Time `audit report` (and `audit kpi --by city,month`) over a database of 1,000,000 cases.

    python benchmarks/bench_report.py                       # builds benchmarks/data/bench_report.duckdb once
    python benchmarks/bench_report.py --cases 100000        # a quick run first
    python benchmarks/bench_report.py --db some.duckdb      # another database (built there if missing)

The database is built from `audit.sample.generate.generate_cases` for 延安, 宝鸡 and 榆林 (a third of the
cases each, canonical CSV headers), ingested and checked with the CLI. Each measured command
runs in a fresh process; the table gives wall seconds, the child's peak RSS and the output size.
Targets: figures ≤ 5 s; report ≤ 15 s and ≤ 10 MB. The row "ensure_run" is what the report does
before any figure is computed (rebuilding ``case_facts`` for the run, `audit.check.engine`); `audit kpi`
reads the figures stored with the run instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT, check_ok, fresh_db, machine, run, table  # noqa: E402

CITIES = ("延安", "宝鸡", "榆林")
TIME_FMT = "%Y-%m-%d %H:%M:%S"
# The report command through the CLI app, whether or not audit/cli/__init__.py imports it yet.
AUDIT = [sys.executable, "-c", "import sys, audit.cli.report; from audit.cli import app; sys.argv[0] = 'audit'; app()"]
TARGETS = {"kpi": (5.0, None), "report": (15.0, 10 * 1024 * 1024)}
# What every figure and report command does first (engine, not report): rebuild case_facts for the run.
ENSURE_RUN = [sys.executable, "-c", "import sys; from audit.db import connect; from audit.check.engine import ensure_run; "
              "ensure_run(connect(sys.argv[1]))"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_inputs(n_cases: int, out: Path) -> list[Path]:
    """Case table and event log CSVs (canonical headers) for the three cities."""
    from audit.sample.generate import generate_cases

    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i, city in enumerate(CITIES):
        n = n_cases // len(CITIES) + (1 if i < n_cases % len(CITIES) else 0)
        t = time.perf_counter()
        cases, events = generate_cases(n, city, seed=100 + i)
        events = events.assign(city=city, time=events["time"].dt.strftime(TIME_FMT))
        ev_path, case_path = out / f"report_events_{i}.csv", out / f"report_cases_{i}.csv"
        events[["case_id", "city", "step", "time", "staff", "note"]].to_csv(ev_path, index=False, lineterminator="\n")
        cases = cases.assign(rating_time=cases["rating_time"].dt.strftime(TIME_FMT))
        cases.to_csv(case_path, index=False, lineterminator="\n")
        files += [case_path, ev_path]
        _log(f"{city}: {len(cases):,} cases, {len(events):,} events written in {time.perf_counter() - t:.1f}s")
    return files


def build_db(db: Path, n_cases: int) -> list[list]:
    """Ingest and check a fresh database; returns the timing rows of those steps."""
    files = write_inputs(n_cases, db.parent / "report_inputs")
    fresh_db(db)
    rows = []
    r = run([sys.executable, "-m", "audit", "ingest", *map(str, files), "--db", str(db)])
    check_ok(r, "audit ingest")
    rows.append(["audit ingest (setup)", f"{r.seconds:.1f}", f"{r.peak_rss_mb:,.0f}", "", ""])
    for f in files:
        f.unlink()
    r = run([sys.executable, "-m", "audit", "check", "--db", str(db)])
    check_ok(r, "audit check")
    rows.append(["audit check (setup)", f"{r.seconds:.1f}", f"{r.peak_rss_mb:,.0f}", "", ""])
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--db", type=Path, default=None, help="database to use (built there if missing)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the benchmark database")
    args = ap.parse_args(argv)
    db = args.db or DATA / "bench_report.duckdb"
    rows = []
    if args.rebuild or not db.exists():
        rows += build_db(db, args.cases)
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        n_cases = con.execute("SELECT count(*) FROM cases").fetchall()[0][0]
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    ok = True
    # Warm-up: the first run after ingest may run the check; measure steady state.
    check_ok(run([*AUDIT, "kpi", "--by", "city", "--db", str(db)]), "audit kpi (warm-up)")
    r = run([*ENSURE_RUN, str(db)])
    check_ok(r, "ensure_run")
    rows.append(["of which: ensure_run (rebuild case_facts)", f"{r.seconds:.1f}", f"{r.peak_rss_mb:,.0f}", "", "(engine)"])
    for name, cmd, target in [
        ("audit kpi --by city,month", [*AUDIT, "kpi", "--by", "city,month", "--format", "csv",
                                       "--out", str(out / "kpi.csv"), "--db", str(db)], "kpi"),
        ("audit report", [*AUDIT, "report", "--out", str(out / "report.html"), "--db", str(db)], "report"),
        ("audit report --city 延安 --month 2026-03",
         [*AUDIT, "report", "--out", str(out / "report_yanan.html"), "--city", "延安", "--month", "2026-03",
          "--db", str(db)], "report"),
    ]:
        r = run(cmd)
        check_ok(r, name)
        path = Path(cmd[cmd.index("--out") + 1])
        size = path.stat().st_size
        max_s, max_bytes = TARGETS[target]
        passed = r.seconds <= max_s and (max_bytes is None or size <= max_bytes)
        ok &= passed
        shown = f"{size / 1024 ** 2:.2f} MB" if size >= 1024 ** 2 else f"{size / 1024:.0f} KB"
        rows.append([name, f"{r.seconds:.1f}", f"{r.peak_rss_mb:,.0f}", shown,
                     f"{'✓' if passed else '✗'} ≤ {max_s:g} s" + (f", ≤ {max_bytes // 1024 ** 2} MB" if max_bytes else "")])
    print(f"{n_cases:,} cases ({db.name}); {machine()}\n")
    print(table(["command", "seconds", "peak RSS (MB)", "output", "target"], rows))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
