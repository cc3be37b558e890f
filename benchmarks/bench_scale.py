"""How `audit ingest` of the canonical layout scales: 1M cases against 3M cases, in the same run.

    python benchmarks/make_data.py --cases 1000000 --out benchmarks/data/1m
    python benchmarks/make_data.py --cases 3000000 --out benchmarks/data/3m --no-xlsx
    python benchmarks/bench_scale.py --small benchmarks/data/1m --large benchmarks/data/3m [--rounds R]

Each round measures, in fresh processes: the bare read_csv of the small data's two canonical files
(events_nocity.csv + cases.csv, one process, one fresh DuckDB file), `audit ingest` of them (one
command, fresh database), then the same two for the large data (the order alternates between
rounds). A round gives the ratio large ÷ small of the ingest times (target ≤ 3.3 at 3M / 1M), the
same ratio of the bare reads (what DuckDB itself pays for 3× the data), and each ingest's ratio to
its bare read. The table gives the median and the range over the rounds. --json PATH also writes
every run's figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import CANONICAL, bare_once, ingest_once, run_json, spread  # noqa: E402
from common import DATA, fresh_db, machine, table  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=Path, default=DATA / "1m")
    ap.add_argument("--large", type=Path, default=DATA / "3m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    sizes = {}
    for name, d in (("small", args.small), ("large", args.large)):
        m = json.loads((d / "manifest.json").read_text())
        if not all((d / f).exists() for f in CANONICAL):
            sys.exit(f"{d}: {' and '.join(CANONICAL)} not found: run make_data.py --out {d}")
        sizes[name] = m
    print(f"Machine: {machine()}", file=sys.stderr)
    runs: dict[str, list] = {f"{w}_{s}": [] for w in ("bare", "ingest") for s in ("small", "large")}
    dbs = {"small": args.small / "tmp_scale.duckdb", "large": args.large / "tmp_scale.duckdb"}
    for k in range(args.rounds):
        order = ("small", "large") if k % 2 == 0 else ("large", "small")
        for size in order:
            d = args.small if size == "small" else args.large
            files = [d / f for f in CANONICAL]
            res = bare_once(files)
            if res is None:
                sys.exit(f"bare read_csv of {d} failed")
            r, counts = ingest_once(files, dbs[size])
            fresh_db(dbs[size])
            runs[f"bare_{size}"].append(res[0])
            runs[f"ingest_{size}"].append(r)
            print(f"  round {k + 1} {size}: bare {res[0].seconds:.1f}s ({res[0].cpu:.1f} CPU s), ingest {r.seconds:.1f}s "
                  f"({r.cpu:.1f} CPU s) / {r.peak_rss_mb:,.0f} MB ({r.seconds / res[0].seconds:.2f}× bare)",
                  file=sys.stderr, flush=True)
    ratio = {w: [lg.seconds / sm.seconds for sm, lg in zip(runs[f"{w}_small"], runs[f"{w}_large"])]
             for w in ("bare", "ingest")}
    cpu_ratio = {w: [lg.cpu / sm.cpu for sm, lg in zip(runs[f"{w}_small"], runs[f"{w}_large"])]
                 for w in ("bare", "ingest")}
    to_bare = {s: [i.seconds / b.seconds for i, b in zip(runs[f"ingest_{s}"], runs[f"bare_{s}"])]
               for s in ("small", "large")}
    rows = []
    for s in ("small", "large"):
        m = sizes[s]
        rows.append([f"{m['cases']:,} cases / {m['events']:,} events",
                     spread([r.seconds for r in runs[f"bare_{s}"]], "{:.1f}"),
                     spread([r.seconds for r in runs[f"ingest_{s}"]], "{:.1f}"),
                     spread(to_bare[s]),
                     spread([r.peak_rss_mb for r in runs[f"bare_{s}"]], "{:,.0f}"),
                     spread([r.peak_rss_mb for r in runs[f"ingest_{s}"]], "{:,.0f}"),
                     spread([r.cpu for r in runs[f"bare_{s}"]], "{:.1f}"),
                     spread([r.cpu for r in runs[f"ingest_{s}"]], "{:.1f}"),
                     spread([r.other_cpu for r in runs[f"ingest_{s}"]], "{:.1f}")])
    rows.append(["large ÷ small (per round)", spread(ratio["bare"]), f"**{spread(ratio['ingest'])}**", "", "", "",
                 spread(cpu_ratio["bare"]), spread(cpu_ratio["ingest"]), ""])
    print(f"\nCanonical layout at two sizes, {args.rounds} rounds — {machine()}; started {started}\n")
    print(table(["data", "bare read_csv s", "audit ingest s", "ingest ÷ bare", "bare peak RSS MB",
                 "ingest peak RSS MB", "bare CPU s", "ingest CPU s", "other CPU s (ingest)"], rows))
    print("\nmedian (min–max) over the rounds. Target: 3M costs ≤ 3.3× the 1M time.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "started": started, "machine": machine(), "small": str(args.small), "large": str(args.large),
            "runs": {k: [run_json(r) for r in v] for k, v in runs.items()},
            "ratio": ratio, "cpu_ratio": cpu_ratio, "to_bare": to_bare}, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
