"""The generator of the ingest fuzz test (tests/test_ingest_fuzz.py): dirty hall exports.

It writes files the way service halls send them -- event logs with and without 地市, combined
exports, case tables; UTF-8, UTF-8 with BOM, GBK CSV and XLSX -- with title rows, blank and
white-space rows, footers, rows with a key problem, unusable cells, edge dirt, ragged rows, quoted
commas and line breaks, exact repeats and contradicting rows, in one or several ingests. Each
record keeps the values it stands for (as the contract reads them) and the physical line it was
written at. Nothing here imports audit code.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import xlsxwriter

# ---------------------------------------------------------------------------------------------
# Vocabulary of the generator (contract §1.3, §1.4; README 表头 / 取值). Canonical value ->
# spellings that mean it.

CITIES = ["延安", "榆林", "宝鸡"]
STEP_SPELLINGS = {
    "咨询": ["咨询", "咨询", "服务咨询"], "申请": ["申请"], "受理": ["受理"], "需求分析": ["需求分析"],
    "委托": ["委托", "签订委托书", "委托授权"], "承办": ["承办", "承办", "办理"], "移交": ["移交", "交接"],
    "中止": ["中止", "服务中止"], "续办": ["续办"], "办结": ["办结"], "终止": ["终止"],
    "资料归档": ["资料归档", "归档"], "回访": ["回访"],
}
FLOWS = {"帮办": ["咨询", "申请", "受理", "承办", "办结", "资料归档"],
         "代办": ["咨询", "需求分析", "委托", "承办", "移交", "中止", "续办", "办结", "资料归档"]}
UNKNOWN_STEPS = ["喝茶", "初审", "领证", "审核通过", "待办"]
BAD_TIMES = ["2025-13-01 09:00", "2025/02/30", "待定", "1985-03-05 09:00", "2025-03-05 25:00",
             "2101-01-01", "0000-00-00 00:00:00", "2025-02-29"]
SCI_IDS = ["2.02603E+11", "6.10602E+17", "1.23457E+13", "6.1E+17"]
FOOTERS = ["合计", "合计：共 {n} 条", "总计", "小计", "制表人：张三", "制表人: 李四    审核人: 王五",
           "填表说明：本表由系统导出，仅供核对", "填表说明：\n1. 时间为办理时间\n2. 编号为系统编号"]
TITLES = ["{city}市政务服务中心帮办代办服务明细表", "导出时间：2025-06-01 10:00", "单位：{city}市行政审批服务局",
          "2025年第二季度 办件台账"]
STAFF = ["张三", "李四", "王五", "赵六", "刘洋", "陈静", "杨帆"]
NOTES = [None, None, None, "材料齐全", "已电话告知", "材料齐全,已受理", '申请人"加急"', "窗口 3 号",
         "待补充身份证\n已告知"]
ITEMS = ["营业执照办理", "不动产登记,抵押", "社保卡补办", "公积金提取", "出生医学证明", "税务登记"]
# Archived materials, separated by ; ； 、 or , (contract §1.3): stored as written.
MATERIALS = [None, "申请表、身份证复印件", "申请表；委托书；营业执照", "申请表;身份证", "委托书,授权书",
             "申请表;身份证;委托书;营业执照;授权书"]
RATING_SCORES = {"非常满意": 5, "满意": 4, "基本满意": 3, "不满意": 2, "非常不满意": 1}
RATING_WORDS = {"非常满意": ["很满意"], "满意": ["好评"], "基本满意": ["中评", "一般", "比较满意"],
                "不满意": ["差评"], "非常不满意": ["很不满意"]}
SERVICE_TYPES = {"帮办": ["帮办", "帮办服务"], "代办": ["代办", "代办服务"]}
CHANNELS = {"线上": ["线上", "网上", "网办", "在线"], "线下": ["线下", "现场", "窗口"]}
# Cells that are not usable: set aside (contract §1.5), the row loads with the field empty.
BAD_CELLS = {"service_type": ["帮代办", "其他"], "channel": ["电话", "邮寄"],
             "promised_days": ["三个工作日", "约3天", "待定", "3.5", "-"],
             "fee": ["五十元", "待定", "50元/次", "面议"], "visits": ["多次", "1-2", "若干"],
             "rating": ["还行", "优", "A", "好"]}
FEES = [Decimal(0), Decimal(0), Decimal(0), Decimal(20), Decimal(50), Decimal("12.5"), Decimal(1200), Decimal("35.8")]

HEADERS = {
    "seq": ["序号"],
    "case_id": ["办件编号", "办件编号", "服务编号", "办件号", "*办件编号", " 办件编号 "],
    "city": ["地市", "地市", "城市", "所属地市"],
    "step": ["环节", "环节", "步骤", "办理环节", "环节名称"],
    "time": ["时间", "办理时间", "发生时间", "环节时间"],
    "event_staff": ["经办人", "办理人"],
    "note": ["备注", "说明"],
    "service_type": ["服务类型", "帮办代办类型"],
    "channel": ["服务方式", "服务渠道"],
    "item": ["事项名称", "办理事项"],
    "staff": ["帮办代办员", "帮办员"],
    "promised_days": ["承诺时限", "承诺时限(工作日)", "承诺时限（工作日）"],
    "fee": ["收费金额", "收费金额(元)", "收费"],
    "visits": ["到现场次数", "跑动次数"],
    "rating": ["评价", "评价等级", "满意度"],
    "materials": ["归档材料", "归档资料"],
}
ATTRS = ["service_type", "channel", "item", "staff", "promised_days", "fee", "visits", "rating", "materials"]
EVENT_LAYOUTS = ("events", "events_nocity", "combined")
FORMATS = ["utf-8", "utf-8-sig", "gbk", "xlsx"]


class Raw(str):
    """A CSV cell written as it is, never quoted (the `="0012"` of some exporters)."""


# ---------------------------------------------------------------------------------------------
# What the generator writes.

@dataclass
class Case:
    city: str
    case_id: str
    attrs: dict                 # canonical attribute values
    events: list                # (step, time, staff, note), canonical


@dataclass
class Record:
    """One record written below a header, and what the contract makes of it."""

    cells: list
    kind: str                   # data | blank | footer | defect
    defect: str | None = None   # the quarantine reason kind (REASONS) of a row with a key problem
    city: str | None = None     # normalised values of a data row
    case_id: str | None = None
    key: tuple | None = None    # an event: (step, time, staff, note)
    attrs: dict = field(default_factory=dict)   # attribute -> value (None: empty or set aside)
    aside: int = 0              # cells set aside
    line: int = 0               # physical line (CSV) or sheet row (XLSX) where it starts
    is_record: bool = True      # False: a trailing blank row of a sheet (not a record, see Model)
    src: tuple | None = None    # (case, event, attribute values) it was made from


@dataclass
class GenFile:
    name: str
    fmt: str                    # utf-8 | utf-8-sig | gbk | xlsx
    layout: str                 # events | events_nocity | combined | cases
    columns: list               # (field, header)
    records: list
    titles: list = field(default_factory=list)
    blank_before_header: int = 0
    header_line: int = 0
    path: Path | None = None
    sheet: str | None = None
    shown: str = ""             # the file as written, with line numbers (for failure messages)
    source: GenFile | None = None    # this file is a byte copy of `source`

    @property
    def copy_of(self) -> str | None:
        return self.source.name if self.source else None

    @property
    def table_name(self) -> str:
        """The file's name in the quarantine table (`name#sheet` for a sheet)."""
        return self.name + (f"#{self.sheet}" if self.sheet else "")

    def col(self, fld: str) -> int | None:
        return next((i for i, (f, _) in enumerate(self.columns) if f == fld), None)


@dataclass
class Scenario:
    seed: int
    ingests: list               # list of list[GenFile]
    tags: set = field(default_factory=set)


# ---------------------------------------------------------------------------------------------
# The generator.

def make_id(rng: random.Random, n: int) -> str:
    r = rng.random()
    if r < 0.4:
        return f"YA2025{rng.randint(301, 630):04d}{n:03d}"
    if r < 0.7:
        return f"6106{rng.randint(10 ** 13, 10 ** 14 - 1)}"        # 18 digits: text, not a number
    if r < 0.85:
        return f"{n:06d}"                                           # leading zeros
    return f"BB-{n:04d}"


def make_events(rng: random.Random, service_type: str, staff: str) -> list:
    """A case's steps in the order of its flow, a quarter of them at the time of the next."""
    flow = FLOWS[service_type]
    if service_type == "代办" and rng.random() < 0.7:
        flow = [s for s in flow if s not in ("移交", "中止", "续办")]
    steps = flow[:rng.randint(1, len(flow))]
    if steps[-1] == "资料归档" and rng.random() < 0.2:
        steps.append("回访")
    t = dt.datetime(2025, rng.randint(3, 5), rng.randint(1, 28), rng.randint(8, 16), rng.choice([0, 5, 15, 30, 45]))
    events = []
    for s in steps:
        when = t
        if s == "资料归档" and rng.random() < 0.5:
            when = dt.datetime(t.year, t.month, t.day) + dt.timedelta(days=1)    # a date-only step
        events.append((s, when, rng.choice([staff, staff, rng.choice(STAFF)]), rng.choice(NOTES)))
        r = rng.random()    # a quarter of the steps share the timestamp of the next one
        t += dt.timedelta(0) if r < 0.25 else dt.timedelta(minutes=rng.choice([10, 30, 90])) if r < 0.7 \
            else dt.timedelta(days=rng.randint(1, 3))
    return events


def make_pool(rng: random.Random) -> list[Case]:
    """The cases of a scenario, a case id or two in two cities."""
    cases, n = [], 0
    for _ in range(rng.randint(6, 12)):
        n += 1
        cases.append(new_case(rng, rng.choice(CITIES), make_id(rng, n)))
    for _ in range(rng.choice([0, 1, 1, 2])):     # case ids present in two cities
        other = rng.choice(cases)
        city = rng.choice([c for c in CITIES if c != other.city])
        cases.append(new_case(rng, city, other.case_id))
    return cases


def new_case(rng: random.Random, city: str, case_id: str) -> Case:
    st = rng.choice(["帮办", "代办"])
    staff = rng.choice(STAFF)
    attrs = {"service_type": st, "channel": rng.choice(["线上", "线下"]), "item": rng.choice(ITEMS),
             "staff": staff, "promised_days": rng.choice([0, 1, 3, 5, 10, 20]), "fee": rng.choice(FEES),
             "visits": rng.choice([0, 1, 1, 2, 3]),
             "rating": rng.choice([None, "非常满意", "满意", "满意", "基本满意", "不满意", "非常不满意"]),
             "materials": rng.choice(MATERIALS)}
    return Case(city, case_id, attrs, make_events(rng, st, staff))


def mutate_pool(rng: random.Random, pool: list[Case]) -> None:
    """Between ingests: corrections and later exports (a new step, a corrected time, new values)."""
    for case in rng.sample(pool, k=min(len(pool), rng.randint(0, 3))):
        r = rng.random()
        if r < 0.3:
            last = case.events[-1]
            case.events.append(("回访" if last[0] != "回访" else "终止", last[1] + dt.timedelta(days=2), last[2], None))
        elif r < 0.5:
            i = rng.randrange(len(case.events))
            s, t, who, note = case.events[i]
            case.events[i] = (s, t + dt.timedelta(hours=1), who, note)
        else:
            a = rng.choice(["fee", "rating", "promised_days", "channel", "visits"])
            case.attrs[a] = new_case(rng, case.city, case.case_id).attrs[a]


def render_time(rng: random.Random, t: dt.datetime, fmt: str):
    """`t` in one of the styles of contract §1.1 (an Excel date cell in a workbook)."""
    if fmt == "xlsx" and rng.random() < 0.5:
        return t                                                    # an Excel date cell
    y, m, d, hh, mm = t.year, t.month, t.day, t.hour, t.minute
    options = [f"{t:%Y-%m-%d %H:%M:%S}", f"{t:%Y-%m-%d %H:%M:%S}", f"{y}/{m}/{d} {hh}:{mm:02d}",
               f"{t:%Y-%m-%d %H:%M}", f"{y}年{m}月{d}日 {hh}:{mm:02d}", f"{t:%Y-%m-%dT%H:%M:%S}",
               f"{t:%Y-%m-%d %H:%M:%S}.0", f"{t - dt.timedelta(hours=8):%Y-%m-%dT%H:%M:%S}Z",
               f"{t:%Y-%m-%dT%H:%M:%S}+08:00"]
    if (hh, mm) == (0, 0):
        options += [f"{t:%Y-%m-%d}", f"{y}年{m}月{d}日", f"{t:%Y%m%d}", f"{y}.{m}.{d}", f"{t:%Y/%m/%d}",
                    str((t - dt.datetime(1899, 12, 30)).days)]     # an Excel serial that became text
    s = rng.choice(options)
    return s + " " if rng.random() < 0.05 else s


def dirty_text(rng: random.Random, s: str, fmt: str, tags: set, is_id: bool = False):
    """Free text with the edge dirt exports carry; it reads back as `s` (contract: values are
    trimmed, `="…"` unwrapped)."""
    r = rng.random()
    if r < 0.04:
        tags.add("dirt:trailing-spaces")
        return s + "  "
    if r < 0.07:
        tags.add("dirt:full-width-space")
        return "\u3000" + s if rng.random() < 0.5 else s + "\u3000"
    if r < 0.09:
        tags.add("dirt:tab")
        return "\t" + s
    if r < 0.14 and is_id and fmt != "xlsx":
        tags.add("dirt:=\"…\"")
        return Raw(f'="{s}"')
    return s


def render_city(rng: random.Random, city: str, fmt: str, tags: set) -> str:
    if rng.random() < 0.3:
        tags.add("dirt:city-市")
        city += "市"
    return dirty_text(rng, city, fmt, tags)


def render_attr(rng: random.Random, a: str, v, fmt: str, tags: set):
    """(cell, value read back, cells set aside)."""
    if a in BAD_CELLS and rng.random() < 0.08:
        tags.add(f"aside:{a}")
        return rng.choice(BAD_CELLS[a]), None, 1
    if v is None or rng.random() < 0.03:
        return "", None, 0
    xlsx = fmt == "xlsx"
    if a == "service_type":
        return rng.choice(SERVICE_TYPES[v]), v, 0
    if a == "channel":
        return rng.choice(CHANNELS[v]), v, 0
    if a in ("item", "staff", "materials"):
        if "," in v:
            tags.add("dirt:quoted-comma")
        return dirty_text(rng, v, fmt, tags), v, 0
    if a in ("promised_days", "visits"):
        unit = "个工作日" if a == "promised_days" else "次"
        options = [str(v), f"{v}{unit}", f"{v}.0"] + (["即办"] if a == "promised_days" and v == 0 else []) \
            + ([f"{v}天"] if a == "promised_days" else []) + ([v] if xlsx else [])
        return rng.choice(options), v, 0
    if a == "fee":
        if v == 0:
            options = ["0", "0.00", "免费", "无"]
        else:
            # GBK has only the full-width ￥.
            options = [f"{v}", f"{v:.2f}", f"{v}元", ("￥" if fmt == "gbk" else rng.choice(["¥", "￥"])) + f"{v}"]
            if v >= 1000:
                options.append(f"{v:,}")
                tags.add("dirt:quoted-comma")
        options += [float(v)] if xlsx else []
        return rng.choice(options), v, 0
    if a == "rating":
        score = RATING_SCORES[v]
        options = [v, v, str(score), f"{score}分", f"{score}星", f"{score}.0", *RATING_WORDS[v]]
        options += [score] if xlsx else []
        cell = rng.choice(options)
        if cell in ("好评", "中评", "差评"):
            tags.add("rating:好评/中评/差评")
        return cell, v, 0
    raise AssertionError(a)


def choose_columns(rng: random.Random, layout: str, tags: set) -> list:
    """(field, header) of a file of `layout`, headers in the spellings halls use."""
    fields = ["case_id"]
    if layout != "events_nocity":
        fields.append("city")
    if layout in EVENT_LAYOUTS:
        fields += ["step", "time"]
        fields += [f for f in ("event_staff", "note") if rng.random() < 0.8]
    if layout in ("combined", "cases"):
        attrs = [a for a in ATTRS if rng.random() < 0.55]
        if layout == "cases" and "service_type" not in attrs and rng.random() < 0.8:
            attrs.insert(0, "service_type")
        fields += attrs or [rng.choice(ATTRS)]
    if rng.random() < 0.3:
        rest = fields[1:]
        rng.shuffle(rest)
        fields = [fields[0]] + rest
        tags.add("columns-shuffled")
    if rng.random() < 0.3:
        fields.insert(0, "seq")     # 序号: a column no field maps to
    headers = []
    for f in fields:
        h = rng.choice(HEADERS[f])
        if f == "staff" and layout == "cases" and rng.random() < 0.2:
            h = "经办人"            # a case table's 经办人 is its staff (README)
        headers.append(h)
    return list(zip(fields, headers))


def data_record(rng: random.Random, f: GenFile, case: Case, ev, tags: set, attr_values: dict | None = None) -> Record:
    """A record of `case` (an event row when `ev` is given, else a case row)."""
    cells, rec = [], Record([], "data", case_id=case.case_id, src=(case, ev, attr_values))
    if f.layout != "events_nocity":
        rec.city = case.city
    step, when, who, note = ev if ev else (None, None, None, None)
    for fld, _ in f.columns:
        if fld == "seq":
            cells.append(str(rng.randint(1, 999)) if f.fmt != "xlsx" else rng.randint(1, 999))
        elif fld == "case_id":
            cells.append(dirty_text(rng, case.case_id, f.fmt, tags, is_id=True))
        elif fld == "city":
            if f.layout == "events" and rng.random() < 0.06:
                cells.append("")         # a row without its city: takes its case's city
                rec.city = None
                tags.add("event-row-with-empty-city")
            else:
                cells.append(render_city(rng, case.city, f.fmt, tags))
        elif fld == "step":
            cells.append(dirty_text(rng, rng.choice(STEP_SPELLINGS[step]), f.fmt, tags) if rng.random() < 0.1
                         else rng.choice(STEP_SPELLINGS[step]))
        elif fld == "time":
            cells.append(render_time(rng, when, f.fmt))
        elif fld == "event_staff":
            cells.append(dirty_text(rng, who, f.fmt, tags) if who else "")
        elif fld == "note":
            cells.append(note or "")
            if note and "\n" in note:
                tags.add("dirt:line-break-in-cell")
            if note and "," in note:
                tags.add("dirt:quoted-comma")
        else:
            v = (attr_values or case.attrs)[fld]
            cell, value, aside = render_attr(rng, fld, v, f.fmt, tags)
            cells.append(cell)
            rec.attrs[fld] = value
            rec.aside += aside
    rec.cells = cells
    if ev:
        rec.key = (step, when, who if "event_staff" in dict(f.columns) else None,
                   note if "note" in dict(f.columns) else None)
    # A short row (trailing cells missing): CSV only, and only free trailing columns.
    if f.fmt != "xlsx" and rng.random() < 0.05 and f.columns[-1][0] in ("note", "event_staff", "item"):
        dropped = f.columns[-1][0]
        rec.cells = cells[:-1]
        if dropped == "item":
            rec.attrs["item"] = None
        elif dropped == "note":
            rec.key = rec.key[:3] + (None,)
        else:
            rec.key = rec.key[:2] + (None, rec.key[3])
        tags.add("ragged:short-row")
    return rec


def defect_record(rng: random.Random, f: GenFile, case: Case, tags: set) -> Record:
    """A row with one key problem: quarantined (contract §1.5)."""
    ev = rng.choice(case.events) if f.layout in EVENT_LAYOUTS else None
    rec = data_record(rng, f, case, ev, set())
    kinds = ["empty_id", "sci_id", "ragged"] + (["unknown_step", "empty_step", "bad_time", "bad_time", "empty_time"]
                                                 if ev else [])
    kind = rng.choice(kinds)
    cells = list(rec.cells) + [""] * (len(f.columns) - len(rec.cells))
    if kind == "empty_id":
        cells[f.col("case_id")] = rng.choice(["", "  ", "\u3000", "\t"] + ([Raw('=""')] if f.fmt != "xlsx" else []))
    elif kind == "sci_id":
        cells[f.col("case_id")] = rng.choice(SCI_IDS)
    elif kind == "unknown_step":
        cells[f.col("step")] = rng.choice(UNKNOWN_STEPS)
    elif kind == "empty_step":
        cells[f.col("step")] = ""
    elif kind == "bad_time":
        cells[f.col("time")] = rng.choice(BAD_TIMES)
    elif kind == "empty_time":
        cells[f.col("time")] = ""
    else:
        cells.append(rng.choice(["多出来的内容", "x", "备用"]))
        kind = "ragged_xlsx" if f.fmt == "xlsx" else "ragged_csv"
    tags.add(f"quarantine:{kind}")
    return Record(cells, "defect", defect=kind)


def blank_record(rng: random.Random, f: GenFile, tags: set) -> Record:
    n = len(f.columns)
    r = rng.random()
    if r < 0.35:
        cells = []                                   # an empty line / a row with no cells
    elif r < 0.6:
        cells = [""] * n
    else:   # white space only: spaces, full-width spaces, tabs
        cells = [rng.choice(["", " ", "  ", "\u3000", "\t"]) for _ in range(n)]
        cells[rng.randrange(n)] = rng.choice([" ", "\u3000", "   "])
        tags.add("blank:white-space-only")
    tags.add("blank")
    return Record(cells, "blank", defect="blank")


def footer_record(rng: random.Random, f: GenFile, n: int, tags: set) -> Record:
    text = rng.choice(FOOTERS).format(n=n)
    cells = [text] + [""] * (len(f.columns) - 1)
    if rng.random() < 0.3:
        cells = [text]                               # a footer is often a short row
    if "\n" in text:
        tags.add("dirt:line-break-in-cell")
    tags.add("footer")
    return Record(cells, "footer", defect="footer")


def gen_file(rng: random.Random, layout: str, fmt: str, cases: list[Case], tags: set) -> GenFile:
    """One export of `cases`: their rows, repeats, rows with a key problem, blank rows, footers,
    title rows (the file is named and written later)."""
    f = GenFile("", fmt, layout, choose_columns(rng, layout, tags), [])
    tags.update({f"format:{fmt}", f"layout:{layout}"})
    recs: list[Record] = []
    if layout in EVENT_LAYOUTS:
        # Each case: all its events (a full export), or the first few (an export made earlier).
        queues = []
        for c in cases:
            evs = list(c.events)
            if len(evs) > 1 and rng.random() < 0.2:
                evs = evs[:rng.randint(1, len(evs) - 1)]
            late_rating = layout == "combined" and rng.random() < 0.5
            queues.append([(c, e, late_rating) for e in evs])
        while any(queues):      # cases interleaved, each in its own order
            q = rng.choice([q for q in queues if q])
            c, e, late_rating = q.pop(0)
            values = c.attrs
            if late_rating and e[0] not in ("办结", "资料归档", "回访"):
                values = dict(c.attrs, rating=None)      # rated only once completed
            recs.append(data_record(rng, f, c, e, tags, values))
    else:
        for c in cases:
            r = rng.random()
            if r < 0.15:        # an earlier row of the case that a later one contradicts
                stale = dict(c.attrs)
                a = rng.choice(ATTRS)
                stale[a] = new_case(rng, c.city, c.case_id).attrs[a]
                recs.append(data_record(rng, f, c, None, tags, stale))
                tags.add("case:stale-row-in-file")
            recs.append(data_record(rng, f, c, None, tags))
    # Exact repeats within the file (rendered anew: the same values, maybe other spellings).
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        if not recs:
            break
        i = rng.randrange(len(recs))
        src = recs[i]
        again = data_record(rng, f, src.src[0], src.src[1], tags, src.src[2])
        if again.key == src.key and again.attrs == src.attrs and again.city == src.city:
            recs.insert(rng.randint(i + 1, len(recs)), again)
            tags.add("repeat-in-file")
    for _ in range(rng.choice([0, 0, 1, 2, 3])):
        recs.insert(rng.randint(0, len(recs)), defect_record(rng, f, rng.choice(cases), tags))
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        recs.insert(rng.randint(0, len(recs)), blank_record(rng, f, tags))
    if rng.random() < 0.1 and recs:
        recs.insert(rng.randint(0, len(recs)), footer_record(rng, f, len(recs), tags))
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        recs.append(footer_record(rng, f, len(recs), tags))
    if rng.random() < 0.2:
        recs.append(blank_record(rng, f, tags))
    f.records = recs
    f.titles = [rng.choice(TITLES).format(city=cases[0].city) for _ in range(rng.choice([0, 0, 1, 1, 2]))]
    f.blank_before_header = rng.choice([0, 0, 0, 1])
    if f.titles:
        tags.add("title-rows")
    return f


def make_scenario(seed: int) -> Scenario:
    """The ingests of one scenario: a pool of cases (some ids in two cities), changed a little
    between ingests, sent as 1-4 files per ingest (sometimes a file sent again, or an older
    export along with a newer one)."""
    rng = random.Random(seed)
    scen = Scenario(seed, [])
    pool = make_pool(rng)
    if len({c.case_id for c in pool}) < len(pool):
        scen.tags.add("case-id-in-two-cities")
    written: list[GenFile] = []
    cityless: set = set()
    previous = pool
    for k in range(rng.choice([1, 2, 2, 3, 3, 4])):
        if k:
            previous = copy.deepcopy(pool)
            mutate_pool(rng, pool)
        files: list[GenFile] = []
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            if (written or files) and rng.random() < 0.15:   # an export sent again (or twice)
                src = rng.choice(written + [f for f in files if not f.copy_of])
                dup = copy.copy(src)
                dup.source = src
                files.append(dup)
                scen.tags.add("file-sent-again")
                continue
            layout = rng.choices(["events", "events_nocity", "combined", "cases"], [3, 3, 2, 3])[0]
            fmt = rng.choices(FORMATS, [3, 2, 3, 3])[0]
            cases = rng.sample(pool, k=min(len(pool), rng.randint(1, 5)))
            if layout == "events_nocity":
                cityless |= {c.case_id for c in cases}
            elif layout == "cases" and rng.random() < 0.5:    # the case rows of city-less events
                cases += [c for c in pool if c.case_id in cityless and c not in cases][:2]
            if k and layout in ("cases", "combined") and rng.random() < 0.3:
                # An older export sent along: the cases as they were before the last ingest.
                cases = [previous[pool.index(c)] for c in cases]
                scen.tags.add("file-with-older-values")
            files.append(gen_file(rng, layout, fmt, cases, scen.tags))
        for j, f in sorted(enumerate(files), key=lambda jf: jf[1].source is not None):
            ext = ".xlsx" if f.fmt == "xlsx" else ".csv"
            f.name = f"i{k + 1}f{j + 1}_" + (f"copy_of_{f.copy_of}" if f.source else f"{f.layout}_{f.fmt}{ext}")
        written += files
        scen.ingests.append(files)
    return scen


# ---------------------------------------------------------------------------------------------
# Writing the files; each record learns its physical line.

def csv_cell(c) -> str:
    """A cell as a CSV writer writes it (quoted only when it must be; `Raw` as it is)."""
    if isinstance(c, Raw):
        return c
    c = "" if c is None else str(c)
    if any(ch in c for ch in ',"\n\r'):
        return '"' + c.replace('"', '""') + '"'
    return c


def write_csv_file(rng: random.Random, f: GenFile, path: Path, tags: set) -> None:
    """Title lines, the header, the records; `\n` or `\r\n`, maybe `,,` after every line."""
    nl = rng.choice(["\n", "\r\n"])
    pad = 2 if rng.random() < 0.15 else 0           # `…,,` after every line (an Excel save)
    quote_all = rng.random() < 0.15
    width = len(f.columns)
    title_commas = [rng.random() < 0.3 for _ in f.titles]
    inside_pad = [rng.random() < 0.5 for _ in f.records]
    no_last_nl = rng.random() < 0.15

    def line(cells) -> str:
        if quote_all:
            return ",".join(c if isinstance(c, Raw) else '"' + str(c).replace('"', '""') + '"' for c in cells)
        return ",".join(csv_cell(c) for c in cells)

    def compose() -> str:
        out, n = [], 1
        for t, commas in zip(f.titles, title_commas):
            out.append(t + ("," * (width - 1 + pad) if commas else "") + nl)
            n += 1
        for _ in range(f.blank_before_header):
            out.append(nl)
            n += 1
        f.header_line = n
        out.append(line([h for _, h in f.columns] + [""] * pad) + nl)
        n += 1
        for r, inside in zip(f.records, inside_pad):
            r.line = n
            cells = list(r.cells)
            if pad and len(cells) == width:
                cells += [""] * pad
            elif pad and len(cells) == width + 1 and inside:
                cells += [""] * (pad - 1)       # the extra content inside the `,,` columns
            text = line(cells) if cells else ""
            out.append(text + nl)
            n += (text + nl).count("\n")
        if f.records and f.records[-1].cells and no_last_nl:
            out[-1] = out[-1][: -len(nl)]                 # no line end after the last record
        return "".join(out)

    text = compose()
    if all(r.cells and len(r.cells) == width and "\n" not in "".join(map(str, r.cells)) for r in f.records):
        tags.add("csv:one-line-per-record")         # audit reads these with DuckDB's own reader
    if f.fmt == "utf-8-sig":
        data = b"\xef\xbb\xbf" + text.encode("utf-8")
    else:
        data = text.encode(f.fmt)
    path.write_bytes(data)
    shown = text.split("\n")
    f.shown = "\n".join(f"{i + 1:4d}| {ln!r}" for i, ln in enumerate(shown[:-1] if text.endswith("\n") else shown))


def write_xlsx_file(rng: random.Random, f: GenFile, path: Path, tags: set) -> None:
    """A workbook: maybe a notes sheet, the data sheet with title rows (merged or not)."""
    wb = xlsxwriter.Workbook(str(path))
    datefmt = wb.add_format({"num_format": rng.choice(["yyyy-mm-dd hh:mm", "yyyy/m/d h:mm", "yyyy-mm-dd"])})
    notes = rng.random()
    if notes < 0.15:
        wb.add_worksheet("说明").write_string(0, 0, "填表说明：本表由系统导出")
    f.sheet = rng.choice(["Sheet1", "办件台账", "环节明细", "导出数据"])
    ws = wb.add_worksheet(f.sheet)
    shown = []
    width = len(f.columns)

    def put(r: int, cells) -> None:
        shown.append(f"{r + 1:4d}| {[c for c in cells]!r}")
        for j, v in enumerate(cells):
            if isinstance(v, dt.datetime):
                ws.write_datetime(r, j, v, datefmt)
            elif isinstance(v, (int, float)):
                ws.write_number(r, j, v)
            elif v not in (None, ""):
                ws.write_string(r, j, str(v))

    r = 0
    for t in f.titles:
        if rng.random() < 0.5 and width > 1:
            ws.merge_range(r, 0, r, width - 1, t)
            shown.append(f"{r + 1:4d}| [merged] {t!r}")
        else:
            put(r, [t])
        r += 1
    r += f.blank_before_header
    f.header_line = r + 1
    put(r, [h for _, h in f.columns])
    r += 1
    for rec in f.records:
        rec.line = r + 1
        put(r, rec.cells)
        r += 1
    if notes > 0.9:
        wb.add_worksheet("说明").write_string(0, 0, "填表说明：本表由系统导出")
    wb.close()
    # Rows with nothing in them at the end of a sheet are not rows of the file (the sheet ends
    # before them); a blank line at the end of a CSV file is a record.
    for rec in reversed(f.records):
        if rec.kind != "blank" or any(str(c) for c in rec.cells):
            break
        rec.is_record = False
    f.shown = "\n".join(shown)


def write_scenario(scen: Scenario, where: Path) -> None:
    """Write every file of the scenario into `where`; each record learns its line."""
    rng = random.Random(scen.seed * 7919 + 1)
    where.mkdir(parents=True, exist_ok=True)
    for files in scen.ingests:
        for f in sorted(files, key=lambda f: f.source is not None):     # copies after their sources
            f.path = where / f.name
            if f.source:
                src = f.source
                f.path.write_bytes(src.path.read_bytes())
                f.records, f.sheet, f.header_line, f.shown = src.records, src.sheet, src.header_line, src.shown
            elif f.fmt == "xlsx":
                write_xlsx_file(rng, f, f.path, scen.tags)
            else:
                write_csv_file(rng, f, f.path, scen.tags)
