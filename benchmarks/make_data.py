"""Write the benchmark inputs into benchmarks/data/ (gitignored).

    python benchmarks/make_data.py                  # 1,000,000 cases (~6.3 M events)
    python benchmarks/make_data.py --cases 100000   # a quick run first
    python benchmarks/make_data.py --cases 3000000 --out benchmarks/data/3m --no-xlsx

Files (all from `audit.sample.generate.generate_cases(n, city, seed)`, one city):

- ``events.csv``         UTF-8 event log, header 办件编号,地市,环节,时间,经办人,备注
- ``events_nocity.csv``  the same events without the 地市 column (header 办件编号,环节,时间,经办人,备注):
                         with ``cases.csv`` the canonical layout (events take their case's city)
- ``events_gbk.csv``     the text of events.csv encoded as GBK
- ``events_badstep.csv`` events.csv with every step unknown (环节 + 审核, e.g. 受理审核): every row
                         is quarantined
- ``combined_bad.csv``   a 22-column combined export (the 6 event columns and the 16 case
                         attributes on every row), the first 1.27 rows per case of the event log
                         (1.27 M rows at 1 M cases), every step unknown: every row is quarantined
- ``cases.csv``          UTF-8 case table with the README's first Chinese header of each field
- ``cases.xlsx``         the same case table as an XLSX ledger (xlsxwriter, constant_memory; not
                         written above 1,048,575 cases, the most rows a sheet holds)
- ``events.xlsx``        only with ``--events-xlsx``: the event log split over sheets of at most
                         1,000,000 rows, each sheet with its own header row
- ``manifest.json``      the case count, seed and the row count of every file, read by the
                         benchmark scripts

Above --chunk cases (1,000,000) the data is generated in chunks of that many cases, each with its
own seed (seed, seed + 1, ...) and appended to the files, so memory stays that of one chunk
(~5 GB at 1 M cases). The first chunk is exactly the data of a run with --cases CHUNK; later
chunks put their number k in the first digit of the 6-digit daily serial of each case id
(…YYYYMMDD0nnnnn → …YYYYMMDDknnnnn), which keeps the ids unique.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
EVENT_HEADER = ["办件编号", "地市", "环节", "时间", "经办人", "备注"]
CASE_HEADER = {  # canonical field -> first header of README's header table
    "case_id": "办件编号", "city": "地市", "county": "区县", "hall": "服务中心",
    "service_type": "服务类型", "channel": "服务方式", "object_type": "服务对象类别",
    "item": "事项名称", "applicant": "服务对象", "id_number": "证件号码", "phone": "联系电话",
    "staff": "帮办代办员", "promised_days": "承诺时限", "fee": "收费金额", "visits": "到现场次数",
    "rating": "评价", "rating_time": "评价时间", "materials": "归档材料",
}
TIME_FMT = "%Y-%m-%d %H:%M:%S"
XLSX_ROWS_PER_SHEET = 1_000_000
XLSX_MAX_ROWS = 1_048_575          # data rows of one sheet (1,048,576 with the header)
COMBINED_SHARE = 1.27              # rows of combined_bad.csv per case (1.27 M at 1 M cases)
BAD_STEP_SUFFIX = "审核"            # 受理 -> 受理审核: not a step of the vocabulary (README 环节)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fmt_times(s: pd.Series) -> pd.Series:
    """Datetimes as text; NaT -> ''. Each distinct value formatted once (fast at millions)."""
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    text = np.asarray(pd.DatetimeIndex(uniq).strftime(TIME_FMT), dtype=object)
    text = np.append(text, "")             # code -1 (NaT) -> ''
    return pd.Series(text[codes], index=s.index, dtype=object)


def event_frame(events: pd.DataFrame, city: str) -> pd.DataFrame:
    out = pd.DataFrame({
        "办件编号": events["case_id"],
        "地市": city,
        "环节": events["step"],
        "时间": _fmt_times(events["time"]),
        "经办人": events["staff"].fillna(""),
        "备注": events["note"].fillna(""),
    })
    return out


def case_frame(cases: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=cases.index)
    for fld, head in CASE_HEADER.items():
        col = cases[fld]
        if fld == "rating_time":
            col = _fmt_times(col)
        elif fld == "fee":
            col = col.map(lambda v: "" if pd.isna(v) else f"{v:g}")
        elif fld in ("promised_days", "visits"):
            col = col.map(lambda v: "" if pd.isna(v) else str(int(v)))
        else:
            col = col.fillna("")
        out[head] = col.astype(object)
    return out


def write_csv(df: pd.DataFrame, path: Path, encoding: str = "utf-8", append: bool = False) -> None:
    df.to_csv(path, index=False, encoding=encoding, lineterminator="\n", chunksize=500_000,
              mode="a" if append else "w", header=not append)


def renumber(ids: pd.Series, chunk: int) -> pd.Series:
    """Case ids of chunk k > 0: k in place of the first digit of the 6-digit daily serial."""
    if chunk == 0:
        return ids
    if chunk > 9:
        raise SystemExit("at most 10 chunks (--cases ≤ 10 × --chunk)")
    s = ids.astype(str)
    if not (s.str[-6] == "0").all():
        raise SystemExit("a daily serial of 100,000 or more: use a smaller --chunk")
    return (s.str[:-6] + str(chunk) + s.str[-5:]).astype(object)


def bad_steps(steps: pd.Series) -> pd.Series:
    """Every step made unknown (an export whose step names the loader does not know)."""
    return (steps.astype(str) + BAD_STEP_SUFFIX).astype(object)


def combined_frame(ev: pd.DataFrame, cs: pd.DataFrame, n_rows: int) -> pd.DataFrame:
    """The first `n_rows` event rows with their case's 16 attributes: 22 columns, every step unknown."""
    part = ev.iloc[:n_rows].copy()
    part["环节"] = bad_steps(part["环节"])
    attrs = cs.drop(columns=["地市"])
    out = part.merge(attrs, on="办件编号", how="left", sort=False, validate="many_to_one")
    return out.fillna("")


def transcode(src: Path, dst: Path, encoding: str) -> None:
    with open(src, encoding="utf-8", newline="") as fi, open(dst, "w", encoding=encoding, newline="") as fo:
        while chunk := fi.read(1 << 22):
            fo.write(chunk)


def write_xlsx(frames: list[tuple[str, pd.DataFrame]], path: Path) -> None:
    """One sheet per (name, frame), each with its own header row; every cell written as text."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                           "strings_to_formulas": False, "strings_to_urls": False})
    for name, df in frames:
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, list(df.columns))
        write_string = sheet.write_string
        for r, row in enumerate(df.itertuples(index=False, name=None), start=1):
            for c, v in enumerate(row):
                if v != "":
                    write_string(r, c, v)
    book.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--city", default="延安")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=DATA)
    ap.add_argument("--chunk", type=int, default=1_000_000, help="cases generated at a time")
    ap.add_argument("--events-xlsx", action="store_true", help="also write the multi-sheet events.xlsx")
    ap.add_argument("--no-xlsx", action="store_true", help="skip cases.xlsx")
    args = ap.parse_args(argv)
    from audit.sample.generate import generate_cases

    args.out.mkdir(parents=True, exist_ok=True)
    xlsx = not args.no_xlsx and args.cases <= XLSX_MAX_ROWS
    if not args.no_xlsx and not xlsx:
        _log(f"cases.xlsx skipped: {args.cases:,} cases do not fit one sheet ({XLSX_MAX_ROWS:,} rows)")
    if args.events_xlsx and args.cases > args.chunk:
        sys.exit("--events-xlsx needs --cases ≤ --chunk")
    t0 = time.perf_counter()
    counts = {"events": 0, "cases": 0, "combined_bad": 0}
    chunks = [(k, min(args.chunk, args.cases - k * args.chunk)) for k in range(-(-args.cases // args.chunk))] or [(0, 0)]
    for k, n in chunks:
        append = k > 0
        t = time.perf_counter()
        cases, events = generate_cases(n, args.city, args.seed + k)
        _log(f"chunk {k + 1}/{len(chunks)}: generated {len(cases):,} cases, {len(events):,} events "
             f"in {time.perf_counter() - t:.1f}s")
        cases["case_id"] = renumber(cases["case_id"], k)
        events["case_id"] = renumber(events["case_id"], k)

        t = time.perf_counter()
        ev = event_frame(events, args.city)
        del events
        write_csv(ev, args.out / "events.csv", append=append)
        write_csv(ev.drop(columns=["地市"]), args.out / "events_nocity.csv", append=append)
        _log(f"  events.csv, events_nocity.csv in {time.perf_counter() - t:.1f}s")

        t = time.perf_counter()
        cs = case_frame(cases)
        del cases
        write_csv(cs, args.out / "cases.csv", append=append)
        _log(f"  cases.csv in {time.perf_counter() - t:.1f}s")

        t = time.perf_counter()
        n_comb = min(len(ev), round(COMBINED_SHARE * len(cs)))
        write_csv(combined_frame(ev, cs, n_comb), args.out / "combined_bad.csv", append=append)
        _log(f"  combined_bad.csv ({n_comb:,} rows) in {time.perf_counter() - t:.1f}s")

        t = time.perf_counter()
        ev["环节"] = bad_steps(ev["环节"])
        write_csv(ev, args.out / "events_badstep.csv", append=append)
        _log(f"  events_badstep.csv in {time.perf_counter() - t:.1f}s")
        counts["events"] += len(ev)
        counts["cases"] += len(cs)
        counts["combined_bad"] += n_comb
        if len(chunks) == 1:
            if xlsx:
                t = time.perf_counter()
                write_xlsx([("办件台账", cs)], args.out / "cases.xlsx")
                _log(f"  cases.xlsx in {time.perf_counter() - t:.1f}s")
            if args.events_xlsx:
                t = time.perf_counter()
                ev = event_frame_again(args, generate_cases)   # the frame above had its steps changed
                parts = [(f"环节日志{i // XLSX_ROWS_PER_SHEET + 1}", ev.iloc[i:i + XLSX_ROWS_PER_SHEET])
                         for i in range(0, len(ev), XLSX_ROWS_PER_SHEET)]
                write_xlsx(parts, args.out / "events.xlsx")
                _log(f"  events.xlsx ({len(parts)} sheets) in {time.perf_counter() - t:.1f}s")
        del ev, cs

    t = time.perf_counter()
    transcode(args.out / "events.csv", args.out / "events_gbk.csv", "gbk")
    _log(f"events_gbk.csv in {time.perf_counter() - t:.1f}s")
    if not xlsx:
        (args.out / "cases.xlsx").unlink(missing_ok=True)
    if not args.events_xlsx:
        (args.out / "events.xlsx").unlink(missing_ok=True)
    ev_n, cs_n = counts["events"], counts["cases"]
    manifest = {"cases": cs_n, "events": ev_n, "city": args.city, "seed": args.seed, "chunk": args.chunk,
                "events_xlsx": bool(args.events_xlsx), "cases_xlsx": xlsx,
                "rows": {"events.csv": ev_n, "events_nocity.csv": ev_n, "events_gbk.csv": ev_n,
                         "events_badstep.csv": ev_n, "combined_bad.csv": counts["combined_bad"],
                         "cases.csv": cs_n, **({"cases.xlsx": cs_n} if xlsx else {}),
                         **({"events.xlsx": ev_n} if args.events_xlsx else {})}}
    (args.out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    _log(f"done in {time.perf_counter() - t0:.1f}s: {manifest}")


def event_frame_again(args, generate_cases) -> pd.DataFrame:
    _, events = generate_cases(args.cases, args.city, args.seed)
    return event_frame(events, args.city)


if __name__ == "__main__":
    main()
