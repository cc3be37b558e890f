"""The PM4Py side of bench_templates.py, run in its own process by a Python that has PM4Py.

PM4Py is AGPL: it is never imported by the package or by the benchmark's own process; this script is
run as a separate program (`--pm4py-python`, e.g. a virtualenv with `pip install pm4py`).

    python pm4py_worker.py declare EVENTS.parquet MODEL.json OUT.json
    python pm4py_worker.py read_xes LOG.xes.gz [LOG2.xes.gz ...] OUT.json

`declare`: EVENTS.parquet has columns case, activity, ts, ord (the rows in judged order: time, then
file order); MODEL.json is a list of [template, a, b|null]. Times `pm4py.conformance_declare` on the
DataFrame with all the constraints in one model, and writes the seconds and, per constraint, the sorted
violating case ids. `read_xes`: times `pm4py.read_xes` of each log.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

KEYS = {"existence": "existence", "absence": "absence", "exactly_one": "exactly_one", "init": "init",
        "responded_existence": "responded_existence", "coexistence": "coexistence",
        "not_coexistence": "noncoexistence", "response": "response", "precedence": "precedence",
        "succession": "succession", "chain_response": "chainresponse", "chain_precedence": "chainprecedence",
        "alternate_response": "altresponse", "alternate_precedence": "altprecedence"}


def declare(events: str, model_path: str, out: str) -> None:
    import pandas as pd
    import pm4py

    t0 = time.perf_counter()
    df = pd.read_parquet(events)
    df = df.rename(columns={"case": "case:concept:name", "activity": "concept:name", "ts": "time:timestamp"})
    load = time.perf_counter() - t0
    constraints = json.load(open(model_path, encoding="utf-8"))
    model: dict = {}
    for template, a, b in constraints:
        model.setdefault(KEYS[template], {})[a if b is None else (a, b)] = {"support": 1.0, "confidence": 1.0}
    t0 = time.perf_counter()
    # The rows are already in judged order; PM4Py keeps the DataFrame's order within a case.
    result = pm4py.conformance_declare(df, model)
    seconds = time.perf_counter() - t0
    # conformance_declare returns one entry per case, in the order of its projected log: PM4Py's
    # pandas iterator (pm4py.streaming.conversion.from_pandas) takes np.unique of the case column (sorted
    # ids) and slices each case's rows from its first index, so the rows of a case must be contiguous —
    # they are: the file is written ordered by case, time, file order.
    import numpy as np
    cases = np.unique(df["case:concept:name"].to_numpy())
    assert len(cases) == len(result)
    violating: dict[str, list[str]] = {}
    for case, r in zip(cases, result, strict=True):
        for template, key in r["deviations"]:
            k = json.dumps([template, list(key) if isinstance(key, tuple) else key], ensure_ascii=False)
            violating.setdefault(k, []).append(case)
    json.dump({"load_seconds": load, "seconds": seconds, "cases": len(cases), "events": len(df),
               "violating": {k: sorted(v) for k, v in violating.items()}},
              open(out, "w", encoding="utf-8"), ensure_ascii=False)


def read_xes(paths: list[str], out: str) -> None:
    import pm4py

    res = []
    for p in paths:
        t0 = time.perf_counter()
        df = pm4py.read_xes(p)
        res.append({"path": p, "seconds": time.perf_counter() - t0, "events": len(df),
                    "cases": int(df["case:concept:name"].nunique())})
    json.dump(res, open(out, "w", encoding="utf-8"))


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    import os
    os.environ.setdefault("TQDM_DISABLE", "1")
    if sys.argv[1] == "declare":
        declare(*sys.argv[2:5])
    else:
        read_xes(sys.argv[2:-1], sys.argv[-1])
