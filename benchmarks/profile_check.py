"""Where does `audit check` spend its time and memory? Per-statement timing of one check run.

    python benchmarks/profile_check.py [--db benchmarks/data/bench.duckdb] [--set "SET threads=2" ...]

Runs `audit.check.engine.run_check` in this process on a connection wrapper that times every SQL statement
and samples this process's RSS (see profile_ingest.py). Statements that the engine runs on its own
connections (validate_sql binds every rule against an empty database) show up only in the total.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB  # noqa: E402
from profile_ingest import RECORDS, SAMPLER, TimedCon, print_records  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, default=BENCH_DB)
    ap.add_argument("--set", action="append", default=[], help="SQL run on the connection first")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    from audit.calendar.workcalendar import WorkCalendar
    from audit.check.engine import run_check
    from audit.db import connect
    from audit.rules.pack import load_pack

    SAMPLER.start()
    t0 = time.perf_counter()
    pack = load_pack(None)
    cal = WorkCalendar.load([], None)
    con = connect(args.db)
    for s in args.set:
        con.execute(s)
    t1 = time.perf_counter()
    result = run_check(TimedCon(con), pack, None, None, cal)
    t2 = time.perf_counter()
    con.close()
    SAMPLER.stop_flag = True
    print(f"total {time.perf_counter() - t0:.2f}s (run_check {t2 - t1:.2f}s, setup {t1 - t0:.2f}s), "
          f"peak RSS {max(r[1] for r in RECORDS):,.0f} MB; {result.cases:,} cases, "
          f"{sum(r.findings for r in result.results):,} findings")
    print_records(args.top)


if __name__ == "__main__":
    main()
