"""Time `audit check` (all rules of the default pack) and `audit findings --format csv` on bench.duckdb.

    python benchmarks/bench_ingest.py        # builds benchmarks/data/bench.duckdb (events + cases)
    python benchmarks/bench_check.py [--db PATH] [--repeat R]

Each command runs in a fresh process; wall time and that child's own peak RSS (wait4) are reported.
The first `audit check` creates the run; a repeat with the same data and settings replaces that
run's findings (same run key), which is what a re-check after no change costs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB, ROOT, check_ok, machine, run, table  # noqa: E402

PY = sys.executable
OUT = ROOT / "benchmarks" / "out"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=BENCH_DB)
    ap.add_argument("--repeat", type=int, default=2, help="audit check runs (the first creates the run)")
    args = ap.parse_args(argv)
    if not args.db.exists():
        sys.exit(f"{args.db} not found: run  python benchmarks/bench_ingest.py  first")
    import duckdb

    con = duckdb.connect(str(args.db), read_only=True)
    n_cases = con.execute("SELECT count(*) FROM cases").fetchone()[0]
    n_events = con.execute("SELECT count(*) FROM event_rows").fetchone()[0]
    con.close()
    print(f"Machine: {machine()}\nDB: {args.db} ({args.db.stat().st_size / 1e6:,.0f} MB), "
          f"{n_cases:,} cases, {n_events:,} events", file=sys.stderr)
    rows = []
    for i in range(args.repeat):
        r = run([PY, "-m", "audit", "check", "--db", str(args.db)])
        check_ok(r, "audit check")
        con = duckdb.connect(str(args.db), read_only=True)
        run_id, findings = con.execute("SELECT run_id, findings FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
        con.close()
        what = "first run" if i == 0 else "repeat, same data (replaces that run)"
        print(f"  audit check ({what}): {r.seconds:.1f}s, {r.peak_rss_mb:,.0f} MB, run {run_id}, "
              f"{findings:,} findings", file=sys.stderr)
        rows.append([f"audit check ({what})", f"{n_cases:,}", f"{findings:,}", f"{r.seconds:.1f}",
                     f"{n_cases / r.seconds:,.0f}", f"{r.peak_rss_mb:,.0f}", f"{r.other_cpu:.1f}"])
    OUT.mkdir(exist_ok=True)
    out = OUT / "findings.csv"
    r = run([PY, "-m", "audit", "findings", "--format", "csv", "--out", str(out), "--db", str(args.db)])
    check_ok(r, "audit findings")
    print(f"  audit findings --format csv: {r.seconds:.1f}s, {r.peak_rss_mb:,.0f} MB, "
          f"{out.stat().st_size / 1e6:,.0f} MB written", file=sys.stderr)
    rows.append([f"audit findings --format csv --out ({out.stat().st_size / 1e6:,.0f} MB)", f"{n_cases:,}",
                 f"{findings:,}", f"{r.seconds:.1f}", f"{n_cases / r.seconds:,.0f}", f"{r.peak_rss_mb:,.0f}", f"{r.other_cpu:.1f}"])
    print(f"\nCheck, {n_cases:,} cases / {n_events:,} events — {machine()}\n")
    print(table(["command", "cases", "findings", "seconds", "cases/s", "peak RSS MB", "other CPU s"], rows))
    print("\nTargets: audit check ≤ 10 s, peak RSS ≤ 2,048 MB.")
    print("`other CPU s` = CPU seconds other processes used during the measurement (a run where they took "
          "> 10 % of the cores is repeated; see common.run).")


if __name__ == "__main__":
    main()
