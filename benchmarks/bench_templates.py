"""The template engine next to PM4Py's Declare conformance, and XES import next to pm4py.read_xes.

    python benchmarks/bench_templates.py --data benchmarks/data/1m --pm4py-python /path/to/venv/bin/python
        [--rounds R] [--keep-db] [--xes-dir ../shared/data/event-logs] [--xes-only] [--json PATH]

PM4Py is AGPL and never imported here: it runs in its own process (benchmarks/pm4py_worker.py) under
`--pm4py-python` (a Python with `pip install pm4py`; default $PM4PY_PYTHON).

Set-up (not measured): one `audit ingest` of the canonical layout into `<data>/tmp_tmpl.duckdb`, and
the events exported in judged order (case, time, file order) to `<data>/tmp_events.parquet` for PM4Py.

Each round, in fresh processes: the bare read_csv of the same input files (the yardstick), `audit
check --pack benchmarks/templates_pack` (16 template rules: the 14 PM4Py shares, plus a working-day
and a working-hour bound), and PM4Py's `conformance_declare` with the 14 shared constraints in one model
(the worker reports its own seconds for the call alone, without reading the file). After the rounds
the verdicts are compared rule by rule: the cases each rule flagged must be exactly those PM4Py
reports a deviation of that constraint for.

XES: `audit ingest BPIC15_N.xes.gz --city 市N --vocabulary open` of each of the five logs into a fresh
database, next to `pm4py.read_xes` of the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import CANONICAL, PY, bare_once, run_json, spread  # noqa: E402
from common import DATA, ROOT, check_ok, fresh_db, machine, run, table  # noqa: E402

PACK = ROOT / "benchmarks" / "templates_pack"
WORKER = ROOT / "benchmarks" / "pm4py_worker.py"
XES_DIR = ROOT.parent / "shared" / "data" / "event-logs"


def pack_constraints() -> dict[str, list]:
    """rule id -> [template, a, b|None] of the pack's rules without a bound (those PM4Py can judge)."""
    out = {}
    for f in sorted((PACK / "checks").glob("*.yaml")):
        r = yaml.safe_load(f.read_text(encoding="utf-8"))
        if "within" not in r:
            acts = r["activities"]
            out[r["id"]] = [r["template"], acts[0], acts[1] if len(acts) > 1 else None]
    return out


def setup(data: Path, keep: bool) -> tuple[Path, Path]:
    import duckdb

    db, events = data / "tmp_tmpl.duckdb", data / "tmp_events.parquet"
    if not (keep and db.exists()):
        fresh_db(db)
        r = run([PY, "-m", "audit", "ingest", *map(str, (data / f for f in CANONICAL)), "--db", str(db)], quiet=False)
        check_ok(r, "set-up ingest")
    if not (keep and events.exists()):
        con = duckdb.connect(str(db), read_only=True)
        con.execute(f"""COPY (SELECT city || '/' || case_id AS "case", step AS activity, "time" AS ts, seq AS ord
                              FROM event_rows ORDER BY "case", ts, ord)
                        TO '{events}' (FORMAT parquet)""")
        con.close()
    return db, events


def engine_seconds(db: Path, shared: list[str]) -> dict:
    """The template engine's own time in the last run (stored by audit check: runs.prepare_seconds,
    run_rules.seconds), next to building case_facts: the trace strings plus the rules' queries (all
    16, and the 14 shared ones), and those queries alone."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id, prep = con.execute("SELECT run_id, prepare_seconds FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
        rules, shared_rules = con.execute("""SELECT sum(seconds), sum(seconds) FILTER (WHERE rule_id IN (SELECT unnest(?)))
                                             FROM run_rules WHERE run_id = ?""", [shared, run_id]).fetchone()
    finally:
        con.close()
    prep = json.loads(prep)
    return {"facts": prep["facts"], "traces": prep["traces"], "rules": rules, "engine": prep["traces"] + rules,
            "shared": prep["traces"] + shared_rules, "shared_rules": shared_rules}


def engine_verdicts(db: Path) -> dict[str, set[str]]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        run_id = con.execute("SELECT max(run_id) FROM runs").fetchone()[0]
        got: dict[str, set[str]] = {}
        for rid, case in con.execute("SELECT rule_id, city || '/' || case_id FROM findings WHERE run_id = ?",
                                     [run_id]).fetchall():
            got.setdefault(rid, set()).add(case)
        n_events = con.execute("SELECT count(*) FROM event_rows").fetchone()[0]
        n_cases = con.execute("SELECT count(*) FROM (SELECT DISTINCT city, case_id FROM event_rows)").fetchone()[0]
    finally:
        con.close()
    got["_size"] = {"events": n_events, "cases": n_cases}
    return got


def compare_verdicts(engine: dict, pm: dict, constraints: dict[str, list]) -> list[list]:
    rows = []
    for rid, (template, a, b) in constraints.items():
        key = json.dumps([_pm_key(template), [a, b] if b is not None else a], ensure_ascii=False)
        want = set(pm["violating"].get(key, []))
        mine = engine.get(rid, set())
        rows.append([rid, template, f"{a}{'→' + b if b else ''}", f"{len(mine):,}", f"{len(want):,}",
                     "same" if mine == want else f"DIFFER ({len(mine - want)} engine-only, {len(want - mine)} PM4Py-only)"])
    return rows


def _pm_key(template: str) -> str:
    sys.path.insert(0, str(WORKER.parent))
    from pm4py_worker import KEYS

    return KEYS[template]


def xes_imports(xes_dir: Path, pm_python: str, tmp: Path) -> tuple[list[list], list[dict]]:
    logs = sorted(xes_dir.glob("BPIC15_*.xes.gz"))
    if not logs:
        return [], []
    out_json = tmp / "read_xes.json"
    pm_run = run([pm_python, str(WORKER), "read_xes", *map(str, logs), str(out_json)])
    check_ok(pm_run, "pm4py.read_xes")
    pm = {Path(r["path"]).name: r for r in json.loads(out_json.read_text())}
    rows, raw = [], []
    for log in logs:
        n = log.name.split("_")[1].split(".")[0]
        db = fresh_db(tmp / f"xes{n}.duckdb")
        r = run([PY, "-m", "audit", "ingest", str(log), "--city", f"市{n}", "--vocabulary", "open", "--db", str(db)],
                before=lambda db=db: fresh_db(db))
        check_ok(r, f"audit ingest {log.name}")
        p = pm[log.name]
        rows.append([log.name, f"{p['cases']:,}", f"{p['events']:,}", f"{r.seconds:.2f}", f"{r.peak_rss_mb:,.0f}",
                     f"{p['seconds']:.2f}", f"{p['seconds'] / r.seconds:.1f}×"])
        raw.append({"log": log.name, "ingest": run_json(r), "pm4py_read_xes_seconds": p["seconds"],
                    "events": p["events"], "cases": p["cases"]})
    rows.append(["(pm4py process: all five, with import)", "", "", "", f"{pm_run.peak_rss_mb:,.0f}",
                 f"{pm_run.seconds:.2f}", ""])
    return rows, raw


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA / "1m")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pm4py-python", default=os.environ.get("PM4PY_PYTHON", sys.executable))
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--xes-dir", type=Path, default=XES_DIR)
    ap.add_argument("--xes-only", action="store_true", help="only the XES imports")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    tmp = Path(tempfile.mkdtemp(prefix="bench_tmpl_"))
    # The XES imports first, while this process is small: a child's peak RSS counts the memory it
    # shares with its parent until it starts the new program.
    xes_rows, xes_raw = [], []
    if args.xes_dir.is_dir():
        xes_rows, xes_raw = xes_imports(args.xes_dir, args.pm4py_python, tmp)
        print(f"\n## XES import: audit ingest vs pm4py.read_xes ({started})\n")
        print(table(["log", "cases", "events", "audit ingest (s, whole command)", "peak RSS (MB)",
                     "pm4py.read_xes (s, call alone)", "read_xes ÷ ingest"], xes_rows))
    if args.xes_only:
        return
    db, events = setup(args.data, args.keep_db)
    constraints = pack_constraints()
    model = tmp / "model.json"
    model.write_text(json.dumps(list(constraints.values()), ensure_ascii=False), encoding="utf-8")
    files = [args.data / f for f in CANONICAL]
    rounds = []
    pm_out = tmp / "pm.json"
    for i in range(args.rounds):
        bare = bare_once(files)
        if bare is None:
            sys.exit("bare read_csv failed")
        chk = run([PY, "-m", "audit", "check", "--pack", str(PACK), "--db", str(db)])
        if chk.returncode not in (0, 1):
            check_ok(chk, "audit check --pack templates_pack")
        pm = run([args.pm4py_python, str(WORKER), "declare", str(events), str(model), str(pm_out)])
        check_ok(pm, "PM4Py conformance_declare")
        pm_res = json.loads(pm_out.read_text(encoding="utf-8"))
        rounds.append({"bare": run_json(bare[0]), "check": run_json(chk), "engine": engine_seconds(db, list(constraints)),
                       "pm4py_process": run_json(pm),
                       "pm4py_conformance_seconds": pm_res["seconds"], "pm4py_load_seconds": pm_res["load_seconds"]})
        print(f"  round {i + 1}: bare {bare[0].seconds:.2f} s, check {chk.seconds:.2f} s "
              f"(template engine {rounds[-1]['engine']['engine']:.2f} s), "
              f"PM4Py conformance_declare {pm_res['seconds']:.2f} s", file=sys.stderr, flush=True)
    verdict_rows = compare_verdicts(engine_verdicts(db), pm_res, constraints)
    same = all(r[-1] == "same" for r in verdict_rows)
    ratio = [r["check"]["seconds"] / r["bare"]["seconds"] for r in rounds]
    speedup_engine = [r["pm4py_conformance_seconds"] / r["engine"]["shared"] for r in rounds]
    speedup_rules = [r["pm4py_conformance_seconds"] / r["engine"]["shared_rules"] for r in rounds]
    speedup = [r["pm4py_conformance_seconds"] / r["check"]["seconds"] for r in rounds]
    speedup_proc = [r["pm4py_process"]["seconds"] / r["check"]["seconds"] for r in rounds]
    size = engine_verdicts(db)["_size"]
    print(f"\n## Template engine vs PM4Py ({started}; {machine()})\n")
    print(f"{size['cases']:,} cases, {size['events']:,} events; {len(constraints)} shared constraints "
          f"(+{len(list((PACK / 'checks').glob('*.yaml'))) - len(constraints)} bounded rules only the engine runs); "
          f"{args.rounds} rounds, median (range)\n")
    print(table(["measure", "value"], [
        ["bare read_csv (s)", spread([r["bare"]["seconds"] for r in rounds])],
        ["audit check --pack templates_pack, whole command (s)", spread([r["check"]["seconds"] for r in rounds])],
        ["check ÷ bare read_csv", spread(ratio)],
        ["template engine: trace strings + the 16 rules' queries, messages and evidence included (s)",
         spread([r["engine"]["engine"] for r in rounds])],
        ["template engine, the 14 shared rules only (traces + their queries, s)",
         spread([r["engine"]["shared"] for r in rounds])],
        ["  of which building the trace strings (s)", spread([r["engine"]["traces"] for r in rounds])],
        ["  of which the 14 rules' queries (s)", spread([r["engine"]["shared_rules"] for r in rounds])],
        ["case_facts, built by every check whatever the pack (s)", spread([r["engine"]["facts"] for r in rounds])],
        ["check peak RSS (MB)", spread([r["check"]["peak_rss_mb"] for r in rounds], "{:,.0f}")],
        ["PM4Py conformance_declare call alone (s)", spread([r["pm4py_conformance_seconds"] for r in rounds])],
        ["PM4Py process (read parquet + call, s)", spread([r["pm4py_process"]["seconds"] for r in rounds])],
        ["PM4Py peak RSS (MB)", spread([r["pm4py_process"]["peak_rss_mb"] for r in rounds], "{:,.0f}")],
        ["speed-up: PM4Py call ÷ template engine (same 14 constraints)", spread(speedup_engine, "{:.1f}×")],
        ["speed-up: PM4Py call ÷ the 14 rules' queries (both given the log in order)", spread(speedup_rules, "{:.1f}×")],
        ["speed-up: PM4Py call ÷ whole audit check", spread(speedup, "{:.1f}×")],
        ["speed-up: PM4Py process ÷ whole audit check", spread(speedup_proc, "{:.1f}×")],
        ["verdicts", "same for every constraint" if same else "DIFFER"],
    ]))
    print()
    print(table(["rule", "template", "activities", "engine cases", "PM4Py cases", "verdict"], verdict_rows))
    if args.json:
        args.json.write_text(json.dumps({"started": started, "machine": machine(), "rounds": rounds,
                                         "verdicts": verdict_rows, "same": same, "xes": xes_raw},
                                        ensure_ascii=False, indent=1))
    if not same:
        sys.exit("verdicts differ")


if __name__ == "__main__":
    main()
