"""`audit rectify export`: a rectification list (整改清单) per hall, for the hall to fill in and return.

One workbook per (city, hall) that has findings in the run (DATA-* rules describe the data, not the
service, and are left out); cases without a hall make one list per city, ``<city>_(未填写服务大厅)``.
File names come from `audit.spreadsheet.file_names`. Each workbook has two sheets:

- ``说明``: which run (number, audit date), which pack (name, version, SHA-256), the database's id,
  the deadline, how many findings, and how to fill the list in;
- ``整改清单``: a flat table — header on row 1, no merged cells, an autofilter over it, the header
  frozen and repeated on every printed page (A4 landscape, fit to width) — of the hall's findings,
  worst first (error, warning, info; then rule, case). The hall fills 责任人, 整改状态 (a drop-down:
  `audit.rectify.STATUSES`), 整改情况 and 整改完成日期; the last column is the finding key
  (`audit.rectify.keys`) that `audit rectify import` reads the row back by.

Every cell is formula-safe text (`audit.spreadsheet`). The message and evidence (in the words of
the rule's own evidence labels) are masked as in the report, and the case's own applicant name, ID
and phone are masked wherever a rule quotes them (`audit.outputs.mask.mask_quoted`). 整改期限 is the
audit date plus the pack setting ``rectify_days`` (default `RECTIFY_DAYS_DEFAULT`, a city may have
its own) working days on the city's calendar as the run stored it (``run_calendar``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from audit import __version__
from audit.check.runstore import RERUN, require_cases, select_run, stored_pack
from audit.db import database_identity, ensure_schema, transaction
from audit.errors import CalendarError, UsageError
from audit.known import refuse, run_cities, unknown_values
from audit.outputs.findings import SEVERITY_ZH, evidence_text, rule_labels, run_metadata
from audit.outputs.mask import mask_quoted
from audit.rectify import STATUSES
from audit.rectify.keys import FindingKey, make_key
from audit.spreadsheet import file_names, heading_format, text_workbook, write_text

RECTIFY_DAYS_DEFAULT = 10
NO_HALL = "(未填写服务大厅)"
LIST_SHEET, COVER_SHEET = "整改清单", "说明"
# The headers `audit rectify import` finds its columns by.
KEY_HEADER = "审计键 (请勿修改)"
OWNER, STATUS, ACTION, DONE = "责任人", "整改状态", "整改情况", "整改完成日期"
ANSWER_HEADERS = (OWNER, STATUS, ACTION, DONE)
# (header, field of a finding row, or None for what the hall fills in; column width)
COLUMNS = [("序号", "no", 6), ("地市", "city", 8), ("服务大厅", "hall", 18), ("办件编号", "case_id", 19),
           ("事项名称", "item", 22), ("开始日期", "start_date", 11), ("帮办代办员", "staff", 10),
           ("级别", "severity", 13), ("规则编号", "rule_id", 19), ("条款", "clause", 12), ("规则名称", "title", 26),
           ("问题", "message", 40), ("证据", "evidence", 40), ("整改期限", "deadline", 11), (OWNER, None, 10),
           (STATUS, None, 11), (ACTION, None, 32), (DONE, None, 13), (KEY_HEADER, "key", 16)]
FETCH = 5000


@dataclass
class HallList:
    """One workbook written: its hall, file and how many findings of each severity it lists."""

    city: str
    hall: str | None
    path: Path
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def findings(self) -> int:
        return sum(self.counts.values())


@dataclass
class ExportResult:
    """What `export_lists` wrote."""

    run_id: int
    as_of: dt.date
    database_id: str
    deadlines: dict[str, tuple[int, dt.date]]      # city -> (rectify_days, deadline)
    lists: list[HallList] = field(default_factory=list)

    @property
    def findings(self) -> int:
        return sum(h.findings for h in self.lists)


def rectify_days(settings: dict, city: str) -> int:
    """The ``rectify_days`` in force for `city` in a run's stored settings (``runs.settings``:
    ``{"default": {...}, city: {...}}``); `RECTIFY_DAYS_DEFAULT` for a pack without it."""
    own = settings.get(city) or settings.get("default") or {}
    return int(own.get("rectify_days", RECTIFY_DAYS_DEFAULT))


def split_values(values: list[str] | None) -> list[str]:
    """Repeated options and comma-separated values (`--city 延安,宝鸡 --city 榆林`) as one list."""
    return list(dict.fromkeys(v.strip() for value in values or [] for v in value.replace("，", ",").split(",")
                              if v.strip()))


def export_lists(con, out_dir: Path, run_id: int | None = None, cities: list[str] | None = None,
                 severities: list[str] | None = None) -> ExportResult:
    """Write the rectification list of every hall with findings in the run (default: the latest)
    into `out_dir` (made if missing; files of the same name are replaced). `cities` and
    `severities` narrow the findings; a city the run did not judge or an unknown severity is a
    UsageError listing the known ones, before anything is written."""
    ensure_schema(con)
    run = select_run(con, run_id)
    require_cases(con, run)
    cities, severities = split_values(cities), split_values(severities)
    refuse([unknown_values("--city", cities, run_cities(con, run.run_id), f"不在审计 {run.run_id} 的地市中"),
            unknown_values("--severity", severities, list(SEVERITY_ZH), "不是 error、warning 或 info", suggest=False)])
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} 是一个文件，应为目录 (a folder for the workbooks)")
    with transaction(con):
        database_id, secret = database_identity(con)
    meta = run_metadata(con, run.run_id)
    where, params = _where(run.run_id, cities, severities)
    groups = con.execute(f"""
        SELECT f.city, nullif(trim(c.hall), '') AS hall, f.severity, count(*)
        FROM findings f LEFT JOIN run_cases c ON c.run_id = f.run_id AND c.city = f.city AND c.case_id = f.case_id
        WHERE {where} GROUP BY ALL ORDER BY f.city, hall NULLS LAST""", params).fetchall()
    halls: dict[tuple, HallList] = {}
    for city, hall, severity, n in groups:
        halls.setdefault((city, hall), HallList(city, hall, Path())).counts[severity] = n
    names = file_names((f"{city}_{hall or NO_HALL}" for city, hall in halls), ".xlsx")
    for hall_list, name in zip(halls.values(), names):
        hall_list.path = out_dir / name
    deadlines = _deadlines(con, run, meta, sorted({city for city, _ in halls}))
    result = ExportResult(run.run_id, run.as_of, database_id, deadlines, list(halls.values()))
    if not halls:
        return result
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = rule_labels(stored_pack(con, run.run_id))
    run_key = meta["run_key"] or ""

    def key_of(row: dict) -> str:
        return make_key(secret, FindingKey(database_id, run.run_id, run_key, row["city"], row["case_id"], row["rule_id"]))

    cursor = con.execute(f"""
        SELECT f.city, nullif(trim(c.hall), '') AS hall, f.case_id, c.item, c.start_date, c.staff, f.severity,
               f.rule_id, f.clause, r.title, f.message, CAST(f.evidence AS VARCHAR) AS evidence,
               c.applicant, c.id_number, c.phone
        FROM findings f
        LEFT JOIN run_cases c ON c.run_id = f.run_id AND c.city = f.city AND c.case_id = f.case_id
        LEFT JOIN run_rules r ON r.run_id = f.run_id AND r.rule_id = f.rule_id
        WHERE {where}
        ORDER BY f.city, hall NULLS LAST, CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                 f.rule_id, f.case_id""", params)
    names = [d[0] for d in cursor.description]
    writer = None
    while batch := cursor.fetchmany(FETCH):
        for values in batch:
            row = dict(zip(names, values))
            hall_list = halls[(row["city"], row["hall"])]
            if writer is None or writer.hall_list is not hall_list:
                if writer is not None:
                    writer.close()
                writer = _ListWriter(hall_list, meta, database_id, deadlines[row["city"]])
            row["evidence"] = evidence_text(row["evidence"], labels.get(row["rule_id"]))
            for col in ("message", "evidence"):
                row[col] = mask_quoted(row[col], row["applicant"], row["id_number"], row["phone"])
            row["key"] = key_of(row)
            writer.add(row)
    if writer is not None:
        writer.close()
    return result


def _where(run_id: int, cities: list[str], severities: list[str]) -> tuple[str, dict]:
    # A waived finding is an accepted deviation: nothing to rectify, so it is not on a hall's list.
    where, params = ["f.run_id = $run", "f.rule_id NOT LIKE 'DATA-%'", "f.waiver_id IS NULL"], {"run": run_id}
    if cities:
        where.append("list_contains($cities, f.city)")
        params["cities"] = cities
    if severities:
        where.append("list_contains($severities, f.severity)")
        params["severities"] = severities
    return " AND ".join(where), params


def _deadlines(con, run, meta: dict, cities: list[str]) -> dict[str, tuple[int, dt.date]]:
    """Each city's deadline (`city_deadlines`). A run stored without its calendar, or a deadline
    past the end of the stored calendar, is an error saying what to run."""
    if not cities:
        return {}
    last = con.execute("SELECT max(d) FROM run_calendar WHERE run_id = ?", [run.run_id]).fetchall()[0][0]
    if last is None:
        raise UsageError(f"审计 {run.run_id} 由旧版本保存，没有保存工作日历，无法计算整改期限；{RERUN}")
    out = {}
    for city, (n, deadline) in city_deadlines(con, run.run_id, run.as_of, meta.get("settings"), cities).items():
        if deadline is None:
            raise CalendarError(
                f"审计 {run.run_id} 保存的工作日历只到 {last}，{city} 的整改期限 (审计日 {run.as_of} 后 {n} 个工作日) "
                f"超出了它；请用 --calendar 提供 {last.year + 1} 年的日历 (可由 audit calendar --from-notice 生成) "
                "重新运行 audit check，或明确选择 --calendar-fallback weekdays")
        out[city] = (n, deadline)
    return out


def city_deadlines(con, run_id: int, as_of: dt.date, settings: str | None,
                   cities: list[str]) -> dict[str, tuple[int, dt.date | None]]:
    """Each city's 整改期限 for a run's findings: the city's `rectify_days`-th working day after the
    audit date on its calendar as the run stored it (``run_calendar``, ``run_city_calendar``), with
    that number of days; the deadline is None where the stored calendar ends before it (or the run
    was stored without one). `settings` is the run's stored ``runs.settings``."""
    if not cities:
        return {}
    stored = json.loads(settings or "{}")
    days = [rectify_days(stored, c) for c in cities]
    rows = con.execute("""
        WITH wanted AS (SELECT unnest($cities) AS city, unnest($days) AS n),
        keyed AS (SELECT w.city, w.n, coalesce(cc.cal_key, 0) AS cal_key FROM wanted w
                  LEFT JOIN run_city_calendar cc ON cc.run_id = $run AND cc.city = w.city),
        ahead AS (SELECT cal_key, d, row_number() OVER (PARTITION BY cal_key ORDER BY d) AS k
                  FROM run_calendar WHERE run_id = $run AND is_workday AND d > $as_of)
        SELECT w.city, w.n, a.d FROM keyed w LEFT JOIN ahead a ON a.cal_key = w.cal_key AND a.k = w.n""",
                       {"cities": cities, "days": days, "run": run_id, "as_of": as_of}).fetchall()
    return {city: (n, deadline) for city, n, deadline in sorted(rows)}


class _ListWriter:
    """One hall's workbook, written row by row (constant memory: a hall may have many findings)."""

    def __init__(self, hall_list: HallList, meta: dict, database_id: str, deadline: tuple[int, dt.date]):
        self.hall_list, self.deadline = hall_list, deadline
        as_of = meta["as_of"]
        self.wb = text_workbook(hall_list.path, f"{hall_list.city} {hall_list.hall or NO_HALL} 帮办代办服务整改清单",
                                dt.datetime(as_of.year, as_of.month, as_of.day), constant_memory=True)
        self._cover(meta, database_id)
        self.ws = self.wb.add_worksheet(LIST_SHEET)
        base = {"text_wrap": True, "valign": "top", "border": 1}
        self.cell = self.wb.add_format(base)
        self.answer = self.wb.add_format({**base, "bg_color": "#FFF2CC"})
        self.date = self.wb.add_format({**base, "bg_color": "#FFF2CC", "num_format": "yyyy-mm-dd"})
        self.key = self.wb.add_format({**base, "font_color": "#808080", "font_size": 8, "text_wrap": False})
        head = heading_format(self.wb)
        for j, (name, _, width) in enumerate(COLUMNS):
            write_text(self.ws, 0, j, name, head)
            self.ws.set_column(j, j, width)
        self.digits = len(str(hall_list.findings))
        self.row = 0

    def _cover(self, meta: dict, database_id: str) -> None:
        h = self.hall_list
        ws = self.wb.add_worksheet(COVER_SHEET)
        title = self.wb.add_format({"bold": True, "font_size": 14})
        bold = self.wb.add_format({"bold": True, "valign": "top"})
        wrap = self.wb.add_format({"text_wrap": True, "valign": "top"})
        ws.set_column(0, 0, 16)
        ws.set_column(1, 1, 96)
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        days, deadline = self.deadline
        counts = "，".join(f"{SEVERITY_ZH[s]} {h.counts[s]}" for s in SEVERITY_ZH if h.counts.get(s))
        facts = [("地市", h.city), ("服务大厅", h.hall or NO_HALL), ("审计编号", str(meta["run_id"])),
                 ("审计日", str(meta["as_of"])),
                 ("整改期限", f"{deadline} (审计日后 {days} 个工作日，按{h.city}的工作日历)"),
                 ("审计发现", f"{h.findings} 条：{counts} (数据质量提示 DATA-* 不列入)"),
                 ("规则包", meta.get("pack_name") or ""), ("规则包版本", meta.get("pack_version") or ""),
                 ("规则包 SHA-256", meta.get("pack_sha256") or ""), ("依据标准", meta.get("standard") or ""),
                 ("数据库标识", database_id), ("生成工具", f"bangban-audit {__version__}")]
        write_text(ws, 0, 0, f"{h.city} {h.hall or NO_HALL} 帮办代办服务整改清单", title)
        r = 2
        for label, value in facts:
            write_text(ws, r, 0, label, bold)
            write_text(ws, r, 1, value, wrap)
            r += 1
        r += 1
        write_text(ws, r, 0, "填写说明", bold)
        for i, text in enumerate(instructions(deadline), 1):
            write_text(ws, r, 1, f"{i}. {text}", wrap)
            r += 1
        r += 1
        write_text(ws, r, 0, "整改状态", bold)
        for status, meaning in STATUS_MEANINGS.items():
            write_text(ws, r, 1, f"{status}：{meaning}", wrap)
            r += 1

    def add(self, row: dict) -> None:
        """One finding as the next row of the table."""
        self.row += 1
        values = {**row, "no": str(self.row).zfill(self.digits), "severity": SEVERITY_ZH.get(row["severity"]),
                  "deadline": str(self.deadline[1])}
        for j, (name, column, _) in enumerate(COLUMNS):
            if column is None:
                write_text(self.ws, self.row, j, None, self.date if name == DONE else self.answer)
            else:
                write_text(self.ws, self.row, j, values.get(column), self.key if column == "key" else self.cell)

    def close(self) -> None:
        ws, last, n = self.ws, len(COLUMNS) - 1, self.row
        status = next(j for j, c in enumerate(COLUMNS) if c[0] == STATUS)
        done = next(j for j, c in enumerate(COLUMNS) if c[0] == DONE)
        ws.data_validation(1, status, n, status, {
            "validate": "list", "source": list(STATUSES), "input_title": STATUS,
            "input_message": "从列表中选择：" + " / ".join(STATUSES), "error_title": STATUS,
            "error_message": "整改状态只能是 " + "、".join(STATUSES) + " 之一"})
        ws.data_validation(1, done, n, done, {
            "validate": "date", "criteria": "between", "minimum": dt.date(2000, 1, 1),
            "maximum": dt.date(2100, 12, 31), "input_title": DONE, "input_message": "日期，如 2026-04-15",
            "error_title": DONE, "error_message": "请填写日期，如 2026-04-15"})
        ws.autofilter(0, 0, n, last)
        ws.freeze_panes(1, 0)
        ws.set_landscape()
        ws.set_paper(9)                         # A4
        ws.fit_to_pages(1, 0)                   # one page wide, as many pages long as needed
        ws.repeat_rows(0)
        ws.print_area(0, 0, n, last - 1)        # the key is for the import, not for the printed page
        ws.set_header(_header_text(self.hall_list))
        ws.set_footer("&C第 &P 页，共 &N 页")
        self.wb.close()


STATUS_MEANINGS = {
    "已整改": "问题已经改正；在整改情况中写明做了什么，并填写整改完成日期",
    "整改中": "正在整改；在整改情况中写明进展和安排",
    "申请豁免": "有正当理由不整改 (如政策调整、系统原因)；在整改情况中写明理由和依据，由审计组审核",
    "有异议": "认为这条发现不成立；在整改情况中写明理由，可另附材料",
}


def instructions(deadline: dt.date) -> list[str]:
    """How to fill in the list (the cover sheet)."""
    return [
        f"在“{LIST_SHEET}”工作表中逐条填写浅黄色的四列：{OWNER}、{STATUS}、{ACTION}、{DONE}；请在 {deadline} 之前交回。",
        f"{STATUS}从下拉列表中选择：" + " / ".join(STATUSES) + f"。填写了任何一项答复时须选择{STATUS}。",
        f"{DONE}写成日期，如 2026-04-15。",
        f"可以排序、筛选、增加列 (如备注)、删除不需答复的行。排序时请选中整张表 (含最后一列“{KEY_HEADER}”)，"
        "否则行与审计键错位，读回时这些行会被拒绝。",
        f"不要修改最后一列“{KEY_HEADER}”：它标明每一行是哪次审计的哪条发现，改动后该行无法读回。"
        "其它列 (办件、规则、问题、证据) 只供阅读，修改它们不会改变审计结果。",
        "没有填写答复的行不改变已有的答复；同一条发现以后交回的文件为准。",
        "填好后交回本文件 (可以改文件名)，审计组用 audit rectify import 读回。",
    ]


def _header_text(hall_list: HallList) -> str:
    """The printed page header: city and hall (``&`` doubled: a lone one starts a header code)."""
    def plain(text: str) -> str:
        return text.replace("&", "&&")[:80]

    return f"&L{plain(hall_list.city)} {plain(hall_list.hall or NO_HALL)}&R帮办代办服务整改清单"


def format_export(result: ExportResult, out_dir: Path) -> str:
    """What `export_lists` wrote: the run, each city's deadline, a line per workbook."""
    if not result.lists:
        return f"审计 {result.run_id} (审计日 {result.as_of}) 没有符合条件的需整改的发现；没有写出文件"
    lines = [f"审计 {result.run_id} (审计日 {result.as_of}，数据库标识 {result.database_id})：写出 {len(result.lists)} 份整改清单、"
             f"{result.findings} 条发现到 {out_dir}"]
    lines += [f"  {city} 整改期限 {day} (审计日后 {n} 个工作日)" for city, (n, day) in sorted(result.deadlines.items())]
    lines += [f"  {h.path.name}: {h.findings} 条" for h in result.lists]
    lines.append("各大厅填好后交回，用 audit rectify import 文件… 读回")
    return "\n".join(lines)
