"""Write the generated sample data the way three service halls really export it.

- 延安: a GBK combined-export CSV (title line, CRLF, unpadded ``2025/9/3 9:05`` times, one blank
  row and one exact duplicate row);
- 宝鸡: a UTF-8-with-BOM event CSV (some step aliases) plus an XLSX case ledger with a merged
  title row, a blank row, the header on row 3, ratings as 5..1 and real Excel datetime cells;
- 榆林: a wide XLSX ledger (one time column per step) with non-standard headers and a profile.

Every file is byte-for-byte reproducible from the seed. Nothing here prints.
"""

from __future__ import annotations

import csv
import io
import zlib
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter
import yaml

from audit.errors import UsageError
from audit.sample.generate import generate_cases

MAX_CASES_PER_CITY = 1_000_000          # the XLSX ledgers are limited to 1,048,576 rows
# Fixed document metadata so that the XLSX bytes depend on the seed only.
_XLSX_CREATED = datetime(2026, 4, 1, 9, 0, 0)

YANAN_HEADER = ["办件编号", "地市", "区县", "服务中心", "服务类型", "服务方式", "服务对象类别", "事项名称",
                "服务对象", "证件号码", "联系电话", "帮办代办员", "承诺时限(工作日)", "收费金额", "到现场次数",
                "评价", "评价时间", "归档材料", "环节", "时间", "经办人", "备注"]
CASE_FIELDS = ["case_id", "city", "county", "hall", "service_type", "channel", "object_type", "item",
               "applicant", "id_number", "phone", "staff", "promised_days", "fee", "visits",
               "rating", "rating_time", "materials"]
BAOJI_EVENT_HEADER = ["办件编号", "环节", "发生时间", "办理人", "备注"]
BAOJI_CASE_HEADER = ["服务编号", "城市", "区县", "服务大厅", "服务类型", "服务方式", "服务对象类别", "事项名称",
                     "申请人", "身份证号", "手机号", "帮办员", "承诺时限", "收费", "跑动次数", "评价等级",
                     "评价时间", "归档资料"]
BAOJI_ALIASES = {"咨询": "服务咨询", "委托": "签订委托书", "承办": "办理", "资料归档": "归档", "中止": "服务中止"}
YULIN_COLUMNS = {"受理编号": "case_id", "所属区县": "county", "办理地点": "hall", "办理类型": "service_type",
                 "办理渠道": "channel", "对象类别": "object_type", "办理事项": "item", "办事人": "applicant",
                 "证件号": "id_number", "电话": "phone", "专员": "staff", "时限": "promised_days",
                 "费用": "fee", "跑动": "visits", "满意度": "rating", "评价日期": "rating_time",
                 "存档材料": "materials"}
YULIN_WIDE = {"咨询日期": "咨询", "申请日期": "申请", "受理日期": "受理", "需求分析日期": "需求分析",
              "委托日期": "委托", "承办日期": "承办", "中止日期": "中止", "续办日期": "续办",
              "办结日期": "办结", "终止日期": "终止", "归档日期": "资料归档", "回访日期": "回访"}
YULIN_VALUES = {"service_type": {"帮办服务": "帮办", "代办服务": "代办"},
                "channel": {"网上": "线上", "现场": "线下"}}
RATING_POINTS = {"非常满意": 5, "满意": 4, "基本满意": 3, "不满意": 2, "非常不满意": 1}


def _fmt_times(times: pd.Series, style: str) -> np.ndarray:
    """Format datetimes (NaT -> '') in one of the export styles; each distinct minute once."""
    values = times.to_numpy(dtype="datetime64[m]")
    uniq, inv = np.unique(values, return_inverse=True)
    out = []
    for u in uniq:
        if np.isnat(u):
            out.append("")
            continue
        t = u.astype(datetime)
        if style == "slash":
            out.append(f"{t.year}/{t.month}/{t.day} {t.hour}:{t.minute:02d}")
        elif style == "cn":
            out.append(f"{t.year}年{t.month}月{t.day}日 {t.hour}:{t.minute:02d}")
        elif style == "iso_sec":
            out.append(t.strftime("%Y-%m-%d %H:%M:%S"))
        else:
            out.append(t.strftime("%Y-%m-%d %H:%M"))
    return np.array(out, dtype=object)[inv.ravel()] if len(uniq) else np.array([], dtype=object)


def _text(values) -> list[str]:
    """Strings for a CSV column: None/NaN -> ''."""
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def _writer_rng(seed: int, city: str) -> np.random.Generator:
    return np.random.default_rng([seed, 99, zlib.crc32(city.encode("utf-8"))])


def write_yanan(out: Path, cases: pd.DataFrame, events: pd.DataFrame, seed: int) -> list[dict]:
    """延安: GBK combined export, one row per event with the case attributes repeated."""
    rng = _writer_rng(seed, "延安")
    rows = events.merge(cases, on="case_id", how="left", suffixes=("_event", ""), sort=False)
    cn = rng.random(len(rows)) < 0.03                       # a few rows in 2025年9月3日 9:05 style
    when = np.where(cn, _fmt_times(rows["time"], "cn"), _fmt_times(rows["time"], "slash"))
    rated = np.where(cn, _fmt_times(rows["rating_time"], "cn"), _fmt_times(rows["rating_time"], "slash"))
    cols = [_text(rows[f]) for f in CASE_FIELDS[:12]]
    cols += [_text(rows["promised_days"]), [f"{x:.2f}" for x in rows["fee"]], _text(rows["visits"]),
             _text(rows["rating"]), list(rated), _text(rows["materials"]), _text(rows["step"]),
             list(when), _text(rows["staff_event"]), _text(rows["note"])]
    body = [list(r) for r in zip(*cols)]
    if body:
        dup = int(rng.integers(0, len(body)))
        body.insert(dup + 1, list(body[dup]))             # an exact duplicate row
        body.insert(int(rng.integers(1, len(body))), [""] * len(YANAN_HEADER))  # a blank row
    buf = io.StringIO(newline="")
    buf.write("延安市帮办代办办件明细表\r\n")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(YANAN_HEADER)
    w.writerows(body)
    name = "延安_办件明细.csv"
    (out / name).write_bytes(buf.getvalue().encode("gbk"))
    return [{"file": name, "city": None, "profile": None, "layout": "combined", "encoding": "gbk",
             "rows": len(body), "cases": len(cases)}]


def write_baoji(out: Path, cases: pd.DataFrame, events: pd.DataFrame, seed: int) -> list[dict]:
    """宝鸡: event CSV (UTF-8 BOM, no city column) and XLSX case ledger with a title block."""
    rng = _writer_rng(seed, "宝鸡")
    step = events["step"].to_numpy(dtype=object).copy()
    alias = np.array([BAOJI_ALIASES.get(s) for s in step], dtype=object)
    use = (alias != None) & (rng.random(len(step)) < 0.3)  # noqa: E711
    step[use] = alias[use]
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(BAOJI_EVENT_HEADER)
    w.writerows(zip(_text(events["case_id"]), step, _fmt_times(events["time"], "iso_sec"),
                    _text(events["staff"]), _text(events["note"])))
    ev_name = "宝鸡_环节日志.csv"
    (out / ev_name).write_bytes(buf.getvalue().encode("utf-8-sig"))

    xl_name = "宝鸡_办件台账.xlsx"
    wb = xlsxwriter.Workbook(str(out / xl_name), {"strings_to_numbers": False})
    wb.set_properties({"title": "宝鸡市帮办代办服务台账", "author": "宝鸡市政务服务中心",
                       "company": "宝鸡市政务服务中心", "created": _XLSX_CREATED})
    ws = wb.add_worksheet("办件台账")
    title = wb.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"})
    head = wb.add_format({"bold": True, "border": 1, "bg_color": "#DDEBF7", "align": "center"})
    dt_fmt = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    money = wb.add_format({"num_format": "0.00"})
    ws.merge_range(0, 0, 0, len(BAOJI_CASE_HEADER) - 1, "宝鸡市帮办代办服务台账", title)
    ws.set_row(0, 28)
    ws.write_row(2, 0, BAOJI_CASE_HEADER, head)
    for col, width in enumerate([18, 6, 8, 20, 8, 8, 12, 24, 26, 21, 13, 8, 8, 8, 8, 8, 17, 50]):
        ws.set_column(col, col, width)
    ws.freeze_panes(3, 0)
    for i, c in enumerate(cases.itertuples(index=False), start=3):
        for col, f in enumerate(CASE_FIELDS[:12]):
            val = getattr(c, f)
            if isinstance(val, str):
                ws.write_string(i, col, val)              # 身份证号 / 手机号 as text
        ws.write_number(i, 12, int(c.promised_days))
        ws.write_number(i, 13, float(c.fee), money)
        ws.write_number(i, 14, int(c.visits))
        if isinstance(c.rating, str):
            ws.write_number(i, 15, RATING_POINTS[c.rating])
        if not pd.isna(c.rating_time):
            ws.write_datetime(i, 16, c.rating_time.to_pydatetime(), dt_fmt)
        if isinstance(c.materials, str):
            ws.write_string(i, 17, c.materials)
    wb.close()
    return [
        {"file": ev_name, "city": "宝鸡", "profile": None, "layout": "events", "encoding": "utf-8-sig",
         "rows": len(events), "cases": int(events["case_id"].nunique())},
        {"file": xl_name, "city": None, "profile": None, "layout": "cases", "encoding": None,
         "rows": len(cases), "cases": len(cases)},
    ]


def write_yulin(out: Path, cases: pd.DataFrame, events: pd.DataFrame, seed: int) -> list[dict]:
    """榆林: wide XLSX ledger (one date column per step) plus its ingest profile."""
    if events.duplicated(["case_id", "step"]).any():
        raise ValueError("a wide ledger holds at most one event per step (generate with wide=True)")
    step_col = {step: col for col, step in YULIN_WIDE.items()}
    when = pd.Series(_fmt_times(events["time"], "minute"), index=events.index)
    long = pd.DataFrame({"case_id": events["case_id"], "col": events["step"].map(step_col),
                         "when": when})
    wide = long.pivot(index="case_id", columns="col", values="when")
    wide = wide.reindex(index=cases["case_id"], columns=list(YULIN_WIDE)).astype(object)
    wide = wide.where(wide.notna(), "")
    back = {field: {v: k for k, v in m.items()} for field, m in YULIN_VALUES.items()}
    rating_time = _fmt_times(cases["rating_time"], "minute")

    name = "榆林_台账.xlsx"
    wb = xlsxwriter.Workbook(str(out / name), {"strings_to_numbers": False})
    wb.set_properties({"title": "榆林市帮办代办台账", "author": "榆林市政务服务中心",
                       "created": _XLSX_CREATED})
    ws = wb.add_worksheet("台账")
    head = wb.add_format({"bold": True, "border": 1})
    header = list(YULIN_COLUMNS) + list(YULIN_WIDE)
    ws.write_row(0, 0, header, head)
    ws.set_column(0, len(header) - 1, 14)
    for i, c in enumerate(cases.itertuples(index=False)):
        r = i + 1
        for col, field in enumerate(YULIN_COLUMNS.values()):
            val = getattr(c, field)
            if field in back:
                val = back[field][val]
            if field == "rating_time":
                val = rating_time[i]
            if field in ("promised_days", "visits"):
                ws.write_number(r, col, int(val))
            elif field == "fee":
                ws.write_number(r, col, float(val))
            elif isinstance(val, str) and val:
                ws.write_string(r, col, val)
        for j, val in enumerate(wide.iloc[i].tolist()):
            if val:
                ws.write_string(r, len(YULIN_COLUMNS) + j, val)
    wb.close()

    profile_name = "榆林_profile.yaml"
    profile = {"name": "榆林市帮办代办台账", "city": "榆林", "sheet": "台账", "columns": YULIN_COLUMNS,
               "wide": YULIN_WIDE, "values": YULIN_VALUES}
    text = ("# 榆林台账的导入配置 (ingest profile): 表头 -> 标准字段, 各时间列对应的环节, 取值映射\n"
            + yaml.safe_dump(profile, allow_unicode=True, sort_keys=False, width=120))
    (out / profile_name).write_text(text, encoding="utf-8", newline="\n")
    return [{"file": name, "city": None, "profile": profile_name, "layout": "wide", "encoding": None,
             "rows": len(cases), "cases": len(cases)}]


# The sample's cities, in ingest order, and whether the city's export is a wide ledger.
SAMPLE_CITIES = {"延安": False, "宝鸡": False, "榆林": True}


def sample_frames(cases_per_city: int, seed: int, with_truth: bool = False):
    """Yield ``(city, frames)`` for each city of the sample, in ingest order: the generated
    ``(cases, events)`` that `write_sample` writes for it, or with ``with_truth``
    ``(cases, events, truth)``, truth being the generator's record of the violations it injected
    (rule id -> case ids; see `audit.sample.generate.generate_cases`). Generated one city at a time."""
    for city, wide in SAMPLE_CITIES.items():
        yield city, generate_cases(cases_per_city, city, seed, wide=wide, with_truth=with_truth)


def write_sample(out_dir: str | Path, cases_per_city: int = 300, seed: int = 20251001) -> list[dict]:
    """Generate `cases_per_city` cases for each of 延安, 宝鸡 and 榆林 and write them in three
    export shapes into `out_dir` (created if needed), plus ``manifest.yaml``.

    Raises `UsageError` when `cases_per_city` is negative or above `MAX_CASES_PER_CITY`.
    Returns the manifest entries in ingest order; each has ``file`` (name inside `out_dir`),
    ``city`` (to pass to ingest, or None when the file carries it), ``profile`` (file name or
    None), ``layout``, ``encoding``, ``rows`` (data rows written) and ``cases``.
    """
    if not 0 <= cases_per_city <= MAX_CASES_PER_CITY:
        raise UsageError(f"cases per city must be between 0 and {MAX_CASES_PER_CITY} "
                         f"(an XLSX sheet holds at most 1,048,576 rows), got {cases_per_city}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    writers = {"延安": write_yanan, "宝鸡": write_baoji, "榆林": write_yulin}
    entries = []
    for city, frames in sample_frames(cases_per_city, seed):       # one city in memory at a time
        entries += writers[city](out, *frames, seed)
    manifest = {"description": "bangban-audit 样例数据: 按顺序导入 (ingest in this order)",
                "seed": seed, "cases_per_city": cases_per_city, "files": entries}
    text = ("# audit ingest <file> [--city <city>] [--profile <profile>] for each entry, in order\n"
            + yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False, width=120))
    (out / "manifest.yaml").write_text(text, encoding="utf-8", newline="\n")
    return entries
