"""Write the benchmark inputs into benchmarks/data/ (gitignored).

    python benchmarks/make_data.py                  # 1,000,000 cases (~6.3 M events)
    python benchmarks/make_data.py --cases 100000   # a quick run first

Files (all from `audit.sample.generate_cases(n, city, seed)`, one city):

- ``events.csv``      UTF-8 event log, header 办件编号,地市,环节,时间,经办人,备注
- ``events_gbk.csv``  the same text encoded as GBK
- ``cases.csv``       UTF-8 case table with the README's first Chinese header of each field
- ``cases.xlsx``      the same case table as an XLSX ledger (xlsxwriter, constant_memory)
- ``events.xlsx``     only with ``--events-xlsx``: the event log split over sheets of at most
                      1,000,000 rows, each sheet with its own header row
- ``manifest.json``   the case count, seed and row counts, read by the benchmark scripts
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


def write_csv(df: pd.DataFrame, path: Path, encoding: str = "utf-8") -> None:
    df.to_csv(path, index=False, encoding=encoding, lineterminator="\n", chunksize=500_000)


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
    ap.add_argument("--events-xlsx", action="store_true", help="also write the multi-sheet events.xlsx")
    ap.add_argument("--no-xlsx", action="store_true", help="skip cases.xlsx")
    args = ap.parse_args(argv)
    from audit.sample import generate_cases

    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cases, events = generate_cases(args.cases, args.city, args.seed)
    _log(f"generated {len(cases):,} cases, {len(events):,} events in {time.perf_counter() - t0:.1f}s")

    t = time.perf_counter()
    ev = event_frame(events, args.city)
    del events
    write_csv(ev, args.out / "events.csv")
    _log(f"events.csv in {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    transcode(args.out / "events.csv", args.out / "events_gbk.csv", "gbk")
    _log(f"events_gbk.csv in {time.perf_counter() - t:.1f}s")

    t = time.perf_counter()
    cs = case_frame(cases)
    del cases
    write_csv(cs, args.out / "cases.csv")
    _log(f"cases.csv in {time.perf_counter() - t:.1f}s")

    if not args.no_xlsx:
        t = time.perf_counter()
        write_xlsx([("办件台账", cs)], args.out / "cases.xlsx")
        _log(f"cases.xlsx in {time.perf_counter() - t:.1f}s")
    if args.events_xlsx:
        t = time.perf_counter()
        parts = [(f"环节日志{i // XLSX_ROWS_PER_SHEET + 1}", ev.iloc[i:i + XLSX_ROWS_PER_SHEET])
                 for i in range(0, len(ev), XLSX_ROWS_PER_SHEET)]
        write_xlsx(parts, args.out / "events.xlsx")
        _log(f"events.xlsx ({len(parts)} sheets) in {time.perf_counter() - t:.1f}s")
    manifest = {"cases": len(cs), "events": len(ev), "city": args.city, "seed": args.seed,
                "events_xlsx": bool(args.events_xlsx), "cases_xlsx": not args.no_xlsx}
    (args.out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    _log(f"done in {time.perf_counter() - t0:.1f}s: {manifest}")


if __name__ == "__main__":
    main()
