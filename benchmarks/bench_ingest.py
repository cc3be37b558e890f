"""Time `audit ingest` of the benchmark inputs next to DuckDB's own read_csv of the same files.

    python benchmarks/make_data.py [--cases N]     # first
    python benchmarks/bench_ingest.py [--repeat R] [--only events.csv ... canonical]
    python benchmarks/bench_ingest.py --only canonical --canonical-repeat 5

Every measurement is a fresh process (`python -m audit ingest FILE --db X` into a fresh database
file, or a bare `CREATE TABLE t AS SELECT * FROM read_csv(FILE, all_varchar=true)` into a fresh
DuckDB file), so the figures include interpreter start-up and imports; peak RSS is that child's
own maximum resident set size (wait4). With --repeat R the fastest of R runs is reported (and the
largest peak RSS); the bare read_csv runs 3 times by default (--bare-repeat), as it is short and
its time is the yardstick.

The canonical layout (`canonical`: events_nocity.csv, whose events take the city of their case,
and cases.csv) is measured as ONE `audit ingest events_nocity.csv cases.csv` process against the
bare read of the same two files (two `CREATE TABLE … AS SELECT * FROM read_csv(…)` in one fresh
process and one fresh DuckDB file), the two alternating, --canonical-repeat rounds: each round gives
a ratio ingest ÷ bare; the table reports the median and the range.

The all-quarantined inputs (events_badstep.csv, combined_bad.csv) are measured like the other
single files: their peak RSS is the point.

Finally events.csv and then cases.csv are ingested (two commands) into benchmarks/data/bench.duckdb,
which is kept for bench_check.py. --json PATH also writes every run's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_DB, DATA, Run, check_ok, fresh_db, machine, manifest, run, table  # noqa: E402

PY = sys.executable
TMP_DB = DATA / "tmp_ingest.duckdb"
BARE_DB = DATA / "tmp_bare.duckdb"

BARE = """
import sys, duckdb
db, enc, *paths = sys.argv[1:]
con = duckdb.connect(db)
opts = "all_varchar=true" + (f", encoding='{enc}'" if enc else "")
n = 0
for i, path in enumerate(paths):
    con.execute(f"CREATE TABLE t{i} AS SELECT * FROM read_csv('{path}', {opts})")
    n += con.execute(f"SELECT count(*) FROM t{i}").fetchone()[0]
print(n)
con.close()
"""
CANONICAL = ["events_nocity.csv", "cases.csv"]


def best(runs: list[Run]) -> Run:
    r = min(runs, key=lambda x: x.seconds)
    return Run(r.seconds, max(x.peak_rss_mb for x in runs), r.returncode, r.stdout, r.stderr, r.other_cpu, cpu=r.cpu)


def ingest_once(files: list[Path], db: Path, fresh: bool = True) -> tuple[Run, list[tuple]]:
    # A fresh database is made before every attempt (common.run repeats a contended run); an ingest
    # into an existing database cannot be repeated like that, so it is measured once.
    r = run([PY, "-m", "audit", "ingest", *map(str, files), "--db", str(db)],
            before=(lambda: fresh_db(db)) if fresh else None, retry=fresh)
    check_ok(r, f"audit ingest {' '.join(f.name for f in files)}")
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    counts = con.execute("""SELECT file_name, rows_read, loaded, quarantined, duplicates FROM ingest_files
                            WHERE ingest_id = (SELECT max(ingest_id) FROM ingests) ORDER BY file_id""").fetchall()
    con.close()
    return r, counts


def bare_once(path: Path | list[Path], encoding: str = "") -> tuple[Run, int] | None:
    paths = path if isinstance(path, list) else [path]
    r = run([PY, "-c", BARE, str(BARE_DB), encoding, *map(str, paths)], before=lambda: fresh_db(BARE_DB))
    fresh_db(BARE_DB)
    if r.returncode != 0:
        print(f"  bare read_csv of {' '.join(p.name for p in paths)} (encoding={encoding or 'default'}) failed: "
              f"{next((ln for ln in r.stderr.splitlines() if 'Error' in ln), r.returncode)}", file=sys.stderr)
        return None
    return r, int(r.stdout.strip().splitlines()[-1])


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """median (min–max) of `values`."""
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def canonical(data: Path, rounds: int, db: Path = TMP_DB) -> dict:
    """The canonical layout in `data`: `rounds` alternating runs of the bare read of the two files
    and of one `audit ingest` of them (bare first in odd rounds, ingest first in even ones).
    Returns the runs and the per-round ratios ingest ÷ bare."""
    files = [data / f for f in CANONICAL]
    out = {"bare": [], "ingest": [], "ratio": [], "cpu_ratio": [], "counts": None, "rows": None}
    for k in range(rounds):
        order = ("bare", "ingest") if k % 2 == 0 else ("ingest", "bare")
        got = {}
        for what in order:
            if what == "bare":
                res = bare_once(files)
                if res is None:
                    sys.exit("bare read_csv of the canonical layout failed")
                got["bare"], out["rows"] = res
            else:
                got["ingest"], out["counts"] = ingest_once(files, db)
        out["bare"].append(got["bare"])
        out["ingest"].append(got["ingest"])
        out["ratio"].append(got["ingest"].seconds / got["bare"].seconds)
        out["cpu_ratio"].append(got["ingest"].cpu / got["bare"].cpu)
        print(f"  canonical round {k + 1}: bare {got['bare'].seconds:.1f}s ({got['bare'].cpu:.1f} CPU s) / "
              f"{got['bare'].peak_rss_mb:,.0f} MB, ingest {got['ingest'].seconds:.1f}s ({got['ingest'].cpu:.1f} CPU s) / "
              f"{got['ingest'].peak_rss_mb:,.0f} MB → {out['ratio'][-1]:.2f}× bare (CPU {out['cpu_ratio'][-1]:.2f}×)",
              file=sys.stderr, flush=True)
    fresh_db(db)
    return out


def canonical_rows(label: str, res: dict, data: Path) -> list[list]:
    """Table rows (bare, ingest) for a `canonical` result: median and range of every figure."""
    mb = sum((data / f).stat().st_size for f in CANONICAL) / 1e6
    tot = [sum(c[i] for c in res["counts"]) for i in range(1, 5)]
    acct = f"read {tot[0]:,} = loaded {tot[1]:,} + quar. {tot[2]:,} + dup. {tot[3]:,}"
    n = len(res["ratio"])
    return [
        [f"bare DuckDB read_csv {' + '.join(CANONICAL)}{label}", f"{mb:,.0f}", f"{res['rows']:,}",
         spread([r.seconds for r in res["bare"]], "{:.1f}"), spread([r.peak_rss_mb for r in res["bare"]], "{:,.0f}"),
         "1", spread([r.cpu for r in res["bare"]], "{:.1f}"), "1", spread([r.other_cpu for r in res["bare"]], "{:.1f}"),
         f"one process, one fresh DB, all_varchar; {n} rounds"],
        [f"audit ingest {' '.join(CANONICAL)}{label}", f"{mb:,.0f}", f"{tot[0]:,}",
         spread([r.seconds for r in res["ingest"]], "{:.1f}"), spread([r.peak_rss_mb for r in res["ingest"]], "{:,.0f}"),
         f"**{spread(res['ratio'])}**", spread([r.cpu for r in res["ingest"]], "{:.1f}"), spread(res["cpu_ratio"]),
         spread([r.other_cpu for r in res["ingest"]], "{:.1f}"),
         f"one command, fresh DB; {acct}"],
    ]


def run_json(r: Run) -> dict:
    return {"seconds": round(r.seconds, 3), "cpu": round(r.cpu, 2), "peak_rss_mb": round(r.peak_rss_mb, 1),
            "other_cpu": round(r.other_cpu, 2), "tries": r.tries}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1, help="runs of each ingest (the fastest is reported)")
    ap.add_argument("--bare-repeat", type=int, default=3, help="runs of each bare read_csv (the fastest is reported)")
    ap.add_argument("--only", nargs="*", help="input file names to run (default: all present)")
    ap.add_argument("--no-bench-db", action="store_true", help="do not (re)build bench.duckdb")
    ap.add_argument("--canonical-repeat", type=int, default=5,
                    help="alternating rounds (bare read, ingest) of the canonical layout")
    ap.add_argument("--json", type=Path, help="also write every run's figures to this file")
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    record: dict = {"started": started, "data": str(DATA), "machine": machine(), "single": [], "canonical": None}
    m = manifest()
    inputs = [  # (label, file, bare-read_csv file and encoding to compare with)
        ("events.csv (UTF-8)", "events.csv", ("events.csv", "")),
        ("events_gbk.csv (GBK)", "events_gbk.csv", ("events.csv", "")),
        ("cases.csv (UTF-8)", "cases.csv", ("cases.csv", "")),
        ("cases.xlsx", "cases.xlsx", ("cases.csv", "")),
        ("events.xlsx (multi-sheet)", "events.xlsx", ("events.csv", "")),
        ("events_badstep.csv (every row quarantined)", "events_badstep.csv", ("events_badstep.csv", "")),
        ("combined_bad.csv (22 columns, every row quarantined)", "combined_bad.csv", ("combined_bad.csv", "")),
    ]
    inputs = [i for i in inputs if (DATA / i[1]).exists() and (not args.only or i[1] in args.only)]
    do_canonical = (all((DATA / f).exists() for f in CANONICAL) and args.canonical_repeat > 0
                    and (not args.only or "canonical" in args.only))
    print(f"Machine: {machine()}", file=sys.stderr)
    print(f"Data: {m['cases']:,} cases, {m['events']:,} events", file=sys.stderr)

    bare: dict[tuple[str, str], tuple[Run, int] | None] = {}
    # DuckDB reads GBK only through the `encodings` extension (a download); the GBK input is
    # compared with the bare read of the same content as UTF-8.
    bare_jobs = sorted({i[2] for i in inputs})
    for name, enc in bare_jobs:
        results = [bare_once(DATA / name, enc) for _ in range(args.bare_repeat)]
        ok = [x for x in results if x]
        bare[(name, enc)] = (best([x[0] for x in ok]), ok[0][1]) if ok else None
        if ok:
            print(f"  bare read_csv {name}{' ' + enc if enc else ''}: {bare[(name, enc)][0].seconds:.1f}s", file=sys.stderr)

    rows_out = []
    canon = canonical(DATA, args.canonical_repeat) if do_canonical else None

    def add(label: str, path: Path, r: Run, rows: int, ref: tuple[Run, int] | None, note: str = ""):
        mb = path.stat().st_size / 1e6
        ratio = f"{ref[0].seconds / r.seconds:.2f}" if ref else "n/a"
        rows_out.append([label, f"{mb:,.0f}", f"{rows:,}", f"{r.seconds:.1f}", f"{rows / r.seconds:,.0f}",
                         f"{mb / r.seconds:.1f}", f"{r.peak_rss_mb:,.0f}", ratio, f"{r.other_cpu:.1f}", note])

    for name, enc in bare_jobs:
        res = bare.get((name, enc))
        if res:
            add(f"bare DuckDB read_csv {name}" + (f" (encoding='{enc}')" if enc else ""), DATA / name, res[0], res[1],
                res, "all_varchar, CREATE TABLE in a fresh file DB")
    for label, name, ref in inputs:
        runs, counts = [], None
        for _ in range(args.repeat):
            r, counts = ingest_once([DATA / name], TMP_DB)
            runs.append(r)
        r = best(runs)
        rows = sum(c[1] for c in counts)
        tot = [sum(c[i] for c in counts) for i in range(1, 5)]
        acct = (f"read {tot[0]:,} = loaded {tot[1]:,} + quar. {tot[2]:,} + dup. {tot[3]:,}"
                + (f" over {len(counts)} sheets" if len(counts) > 1 else ""))
        print(f"  ingest {name}: {r.seconds:.1f}s  {r.peak_rss_mb:,.0f} MB  {acct}", file=sys.stderr)
        record["single"].append({"input": name, "runs": [run_json(x) for x in runs], "counts": tot,
                                 "bare": run_json(bare[ref][0]) if bare.get(ref) else None})
        add(f"audit ingest {label}", DATA / name, r, rows, bare.get(ref), f"fresh DB; {acct}")
    fresh_db(TMP_DB)

    if not args.no_bench_db and (DATA / "events.csv").exists() and (DATA / "cases.csv").exists():
        for name in ("events.csv", "cases.csv"):
            r, counts = ingest_once([DATA / name], BENCH_DB, fresh=name == "events.csv")
            rows = sum(c[1] for c in counts)
            add(f"audit ingest {name} → bench.duckdb", DATA / name, r, rows, bare.get((name, "")),
                "events first, then cases into the same DB" if name == "cases.csv" else "fresh bench DB")
        print(f"  kept {BENCH_DB} ({BENCH_DB.stat().st_size / 1e6:,.0f} MB)", file=sys.stderr)

    print(f"\nIngest, {m['cases']:,} cases / {m['events']:,} events — {machine()}; started {started}\n")
    if rows_out:
        print(table(["input", "size MB", "rows", "seconds", "rows/s", "MB/s", "peak RSS MB",
                     "speed vs bare read_csv", "other CPU s", "notes"], rows_out))
    if canon:
        record["canonical"] = {"bare": [run_json(r) for r in canon["bare"]],
                               "ingest": [run_json(r) for r in canon["ingest"]],
                               "ratio": [round(x, 3) for x in canon["ratio"]],
                               "cpu_ratio": [round(x, 3) for x in canon["cpu_ratio"]], "rows": canon["rows"],
                               "counts": [list(c) for c in canon["counts"]]}
        print(f"\nCanonical layout ({args.canonical_repeat} alternating rounds; median (min–max))\n")
        print(table(["input", "size MB", "rows", "seconds", "peak RSS MB", "time ÷ bare read_csv (same round)",
                     "CPU s", "CPU s ÷ bare", "other CPU s", "notes"], canonical_rows("", canon, DATA)))
        print("\nTarget: the canonical layout at 1M cases ingests in ≤ 3× the bare read_csv of the same two files.")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    print("\n`speed vs bare read_csv` = bare read_csv seconds / ingest seconds for the same content as "
          "UTF-8 CSV (target ≥ 0.5 for UTF-8 CSV).")
    print("`other CPU s` = CPU seconds other processes used during the measurement (a run where they took "
          "> 10 % of the cores is repeated; see common.run).")


if __name__ == "__main__":
    main()
