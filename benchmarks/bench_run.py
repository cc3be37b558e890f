"""`audit check`, `audit report` and `audit kpi` against DuckDB's bare read_csv of the input files.

    python benchmarks/make_data.py --cases 1000000 --out benchmarks/data/1m
    python benchmarks/bench_run.py --data benchmarks/data/1m [--rounds R] [--json PATH]

Set-up (not measured as a ratio): one `audit ingest` of the canonical layout (events_nocity.csv +
cases.csv) into `<data>/tmp_run.duckdb`. Then each round measures, in fresh processes: the bare
read_csv of the same two files (one process, a fresh DuckDB file: what DuckDB itself pays to read
the inputs), `audit check` (every rule of the default pack; a repeat replaces the run), `audit
report` (the whole report of the stored run) and `audit kpi --by city,month`. A round gives check ÷
bare and report ÷ bare (targets at 1M cases: ≤ 4× and ≤ 2×); the table gives the median and the
range over the rounds, the child's CPU seconds and its peak RSS (target ≤ 2 GB).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import CANONICAL, PY, bare_once, ingest_once, run_json, spread  # noqa: E402
from common import DATA, ROOT, check_ok, machine, run, table  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
TARGETS = {"check": 4.0, "report": 2.0}


def commands(db: Path) -> dict[str, list[str]]:
    """The measured commands on `db`."""
    audit = [PY, "-m", "audit"]
    return {
        "check": [*audit, "check", "--db", str(db)],
        "report": [*audit, "report", "--out", str(OUT / "run_report.html"), "--db", str(db)],
        "kpi": [*audit, "kpi", "--by", "city,month", "--format", "csv", "--out", str(OUT / "run_kpi.csv"),
                "--db", str(db)],
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "1m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep-db", action="store_true", help="reuse <data>/tmp_run.duckdb if it exists")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    files = [args.data / f for f in CANONICAL]
    if not all(f.exists() for f in files):
        sys.exit(f"{args.data}: {' and '.join(CANONICAL)} not found: run make_data.py --out {args.data}")
    m = json.loads((args.data / "manifest.json").read_text())
    db = args.data / "tmp_run.duckdb"
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"Machine: {machine()}", file=sys.stderr)
    if not (args.keep_db and db.exists()):
        r, _ = ingest_once(files, db)
        print(f"  set-up: audit ingest {r.seconds:.1f}s / {r.peak_rss_mb:,.0f} MB", file=sys.stderr)
    runs: dict[str, list] = {k: [] for k in ("bare", "check", "report", "kpi")}
    for k in range(args.rounds):
        res = bare_once(files)
        if res is None:
            sys.exit("bare read_csv failed")
        runs["bare"].append(res[0])
        line = [f"bare {res[0].seconds:.1f}s ({res[0].cpu:.1f} CPU s)"]
        for name, cmd in commands(db).items():
            r = run(cmd)
            check_ok(r, f"audit {name}")
            runs[name].append(r)
            line.append(f"{name} {r.seconds:.1f}s ({r.cpu:.1f} CPU s) / {r.peak_rss_mb:,.0f} MB "
                        f"({r.seconds / res[0].seconds:.2f}× bare)")
        print(f"  round {k + 1}: " + ", ".join(line), file=sys.stderr, flush=True)
    rows = []
    for name in ("bare", "check", "report", "kpi"):
        rs = runs[name]
        ratio = [r.seconds / b.seconds for r, b in zip(rs, runs["bare"])]
        cpu_ratio = [r.cpu / b.cpu for r, b in zip(rs, runs["bare"])]
        target = f"≤ {TARGETS[name]:g}×" if name in TARGETS else ""
        rows.append([name if name == "bare" else f"audit {name}", spread([r.seconds for r in rs], "{:.1f}"),
                     "" if name == "bare" else f"**{spread(ratio)}**", spread([r.cpu for r in rs], "{:.1f}"),
                     "" if name == "bare" else spread(cpu_ratio), spread([r.peak_rss_mb for r in rs], "{:,.0f}"),
                     spread([r.other_cpu for r in rs], "{:.1f}"), target])
    print(f"\n{m['cases']:,} cases / {m['events']:,} events, {args.rounds} rounds — {machine()}; started {started}\n")
    print(table(["command", "seconds", "÷ bare read_csv", "CPU s", "CPU s ÷ bare", "peak RSS MB", "other CPU s",
                 "target"], rows))
    print("\nmedian (min–max) over the rounds; each ratio is taken within its round.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"started": started, "machine": machine(), "data": str(args.data),
                                         "runs": {k: [run_json(r) for r in v] for k, v in runs.items()}},
                                        ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
