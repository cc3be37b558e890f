"""`audit compare`: what became of each finding between two stored runs, and the rectification rate.

A finding is identified by (city, case_id, rule_id). Between a *base* run and a later *run* (default:
the latest run and the one before it) each finding of either run gets exactly one status:

| status | 中文 | when |
| --- | --- | --- |
| ``new`` | 新发现 | in the run, not in the base run |
| ``persisting`` | 仍存在 | in both runs |
| ``claimed_fixed`` | 称已整改但仍存在 | in both runs, and the hall answered 整改状态 = 已整改 to it in the base run |
| ``fixed`` | 已整改 | in the base run, not in the run, and the run judged the case again (it is among the run's ``run_cases``) under the same rule |
| ``waived`` | 已豁免 | in the run, covered by one of the run's waivers (``findings.waiver_id``; its reason, approver and end date from ``run_waivers``) |
| ``gone`` | 未再审计 | in the base run, but the run did not judge it again: the case is not among its cases (``gone_reason`` ``case``: 办件不在本次审计中 — another ``--city``, or the case left the data) or the rule is not in its pack (``rule``) |

``gone`` is never counted as fixed: nobody looked again. The rectification rate of a group is
``fixed ÷ findings of the base run`` (k/n, with the 95 % Wilson interval of contract §5.1); the base
run's findings are ``persisting + claimed_fixed + fixed + gone`` and those of them waived in the run.

DATA-* findings describe the data, not the service; as in the rectification lists (`audit.rectify`)
they are left out. The hall's answer is the one recorded for the base run's finding
(``rectify_answers``), with the file it came from. An answer is *overdue* when a base finding has
none and the run's audit date is past the base run's 整改期限 (its audit date + ``rectify_days``
working days on its stored calendar, `audit.rectify.lists.city_deadlines`); a finding waived in the
base run (``base_waived``) was on no hall's list and is never overdue.

Everything is computed in DuckDB from the stored runs (`compare_runs`, one set-based query for the
findings and one ``GROUPING SETS`` query for the summary per city, hall and rule); the renderers
(`to_table`, `to_csv`, `to_json`, `to_xlsx`) only format it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from audit.check.runstore import StoredRun, require_cases, select_run
from audit.db import ensure_schema
from audit.errors import UsageError
from audit.figures.fair import add_intervals
from audit.known import listing, refuse, unknown_values
from audit.outputs.findings import SEVERITY_ZH
from audit.rectify.lists import NO_HALL, city_deadlines, split_values
from audit.rules.titles import rule_title
from audit.spreadsheet import csv_text, heading_format, sheet_names, text_workbook, write_text

STATUSES = ("new", "persisting", "claimed_fixed", "fixed", "waived", "gone")
STATUS_ZH = {"new": "新发现", "persisting": "仍存在", "claimed_fixed": "称已整改但仍存在", "fixed": "已整改",
             "waived": "已豁免", "gone": "未再审计"}
GONE_ZH = {"case": "办件不在本次审计中", "rule": "规则不在本次审计的规则包中"}
CLAIMED = "已整改"
RATE = "rectification_rate"
FINDING_COLUMNS = ["city", "hall", "case_id", "rule_id", "severity", "status", "gone_reason", "in_base", "in_run",
                   "base_waived",
                   "title", "clause", "month", "deadline", "overdue", "owner", "answer_status", "action", "done_on",
                   "answer_file", "answer_sha256", "answer_sheet", "answer_row", "waiver_id", "waiver_reason",
                   "waiver_approved_by", "waiver_expires"]
COUNT_COLUMNS = ["base_findings", "run_findings", *STATUSES, "answered", "claimed", "overdue"]
SUMMARY_COLUMNS = [*COUNT_COLUMNS, RATE, f"{RATE}_num", f"{RATE}_den", f"{RATE}_low", f"{RATE}_high"]
LEVELS = {"total": [], "city": ["city"], "hall": ["city", "hall"], "rule": ["rule_id"]}
LEVEL_ZH = {"total": "合计", "city": "按地市", "hall": "按服务大厅", "rule": "按规则"}


@dataclass
class Comparison:
    """Two runs compared: each finding with its status (`findings`, columns `FINDING_COLUMNS`) and
    the counts per level (`summary`: ``total``, ``city``, ``hall``, ``rule`` → frame of the level's
    keys then `SUMMARY_COLUMNS`)."""

    base: StoredRun
    run: StoredRun
    cities: list[str]
    month: str | None
    findings: pd.DataFrame
    summary: dict[str, pd.DataFrame]
    deadlines: dict[str, tuple[int, dt.date | None]]      # city -> (rectify_days, base run's 整改期限)
    notices: list[str] = field(default_factory=list)

    @property
    def total(self) -> dict:
        """The summary's one row over the whole scope."""
        return self.summary["total"].iloc[0].to_dict()


# --- data ---------------------------------------------------------------------------------------
def choose_runs(con, base_id: int | None = None, run_id: int | None = None) -> tuple[StoredRun, StoredRun]:
    """(base, run): `run_id` or the latest; `base_id` or the run before `run`. An unknown run lists
    the runs there are; a database with one run says to check again after new data (UsageError)."""
    ensure_schema(con)
    run = select_run(con, run_id)
    if base_id is not None:
        base = select_run(con, base_id)
    else:
        earlier = con.execute("SELECT run_id, as_of FROM runs WHERE run_id < ? ORDER BY run_id DESC LIMIT 1",
                              [run.run_id]).fetchall()
        if not earlier:
            total = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
            if total == 1:
                raise UsageError(f"数据库中只有一次审计 (审计 {run.run_id}，审计日 {run.as_of})，没有可比较的审计：导入整改后的"
                                 "新数据后再运行 audit check，然后运行 audit compare")
            raise UsageError(f"审计 {run.run_id} 之前没有审计；请用 --base 指定基准审计")
        base = StoredRun(*earlier[0])
    if base.run_id == run.run_id:
        raise UsageError(f"--base 与 --run 是同一次审计 ({run.run_id})；请指定两次不同的审计")
    for r in (base, run):
        require_cases(con, r)
    return base, run


def compare_runs(con, base_id: int | None = None, run_id: int | None = None, cities: list[str] | None = None,
                 month: str | None = None, with_findings: bool = True) -> Comparison:
    """Compare the findings of two stored runs (`choose_runs`) over `cities` (default: every city
    of either run; repeatable or comma-separated) and optionally the cases requested in `month`
    (YYYY-MM). A city or month that neither run has is a UsageError listing the known ones.
    Without `with_findings` only the summary is read (`findings` is empty: the report's use)."""
    base, run = choose_runs(con, base_id, run_id)
    cities = _scope_cities(con, base, run, split_values(cities))
    if month is not None:
        months = [r[0] for r in con.execute("""SELECT DISTINCT month FROM run_cases WHERE list_contains($runs, run_id)
                     AND list_contains($cities, city) AND month IS NOT NULL ORDER BY month""",
                                            {"runs": [base.run_id, run.run_id], "cities": cities}).fetchall()]
        refuse([unknown_values("--month", [month], months, "不是两次审计中所选地市的受理月份", suggest=False)])
    settings = con.execute("SELECT settings FROM runs WHERE run_id = ?", [base.run_id]).fetchall()[0][0]
    # 整改期限 of the cities the base run judged (a city new in the later run had no list to answer)
    judged = [r[0] for r in con.execute("""SELECT DISTINCT city FROM run_cases WHERE run_id = ?
                                           AND list_contains(?, city) ORDER BY city""", [base.run_id, cities]).fetchall()]
    deadlines = city_deadlines(con, base.run_id, base.as_of, settings, judged)
    con.execute(f"CREATE OR REPLACE TEMP TABLE compare_findings AS {FINDINGS_SQL}",
                {"base": base.run_id, "run": run.run_id, "as_of": run.as_of, "cities": cities, "month": month,
                 "deadline_cities": list(deadlines), "deadline_days": [d for _, d in deadlines.values()],
                 "claimed": CLAIMED})
    findings = con.execute(f"""SELECT {', '.join(FINDING_COLUMNS)} FROM compare_findings
        ORDER BY city, hall NULLS LAST, case_id, rule_id {'' if with_findings else 'LIMIT 0'}""").df()
    _titles_in_force(con, findings, base, run)
    summary = _summary(con)
    return Comparison(base, run, cities, month, findings, summary, deadlines,
                      _notices(con, base, run, deadlines, summary["total"]))


def _titles_in_force(con, findings: pd.DataFrame, base: StoredRun, run: StoredRun) -> None:
    """Each rule title with the values in force for the finding's city (`rule_title`), in the
    settings of the run the title was taken from (the later run's when it has the finding)."""
    if findings.empty:
        return
    settings = dict(con.execute("SELECT run_id, settings FROM runs WHERE run_id IN (?, ?)",
                                [base.run_id, run.run_id]).fetchall())
    pairs = findings[["title", "city", "in_run"]].drop_duplicates()
    filled = {(t, c, i): rule_title(t, settings[run.run_id if i else base.run_id], city=c)
              for t, c, i in pairs.itertuples(index=False) if isinstance(t, str)}
    findings["title"] = [filled.get(key, key[0]) for key in zip(findings["title"], findings["city"], findings["in_run"])]


def _scope_cities(con, base: StoredRun, run: StoredRun, chosen: list[str]) -> list[str]:
    known = [r[0] for r in con.execute("""SELECT DISTINCT city FROM run_cases WHERE list_contains(?, run_id)
                                          AND city IS NOT NULL ORDER BY city""", [[base.run_id, run.run_id]]).fetchall()]
    refuse([unknown_values("--city", chosen, known, f"不在审计 {base.run_id} 和 {run.run_id} 的地市中")])
    return chosen or known


# One row per finding of either run in scope (DATA-* left out). A rule that output a case twice
# still makes one finding of it (the GROUP BY).
FINDINGS_SQL = """
WITH b AS (SELECT city, case_id, rule_id, any_value(severity) AS severity, bool_or(waiver_id IS NOT NULL) AS waived
           FROM findings WHERE run_id = $base AND rule_id NOT LIKE 'DATA-%' GROUP BY ALL),
     l AS (SELECT city, case_id, rule_id, any_value(severity) AS severity, min(waiver_id) AS waiver_id
           FROM findings WHERE run_id = $run AND rule_id NOT LIKE 'DATA-%' GROUP BY ALL),
     bc AS (SELECT city, case_id, nullif(trim(hall), '') AS hall, month FROM run_cases WHERE run_id = $base),
     lc AS (SELECT city, case_id, nullif(trim(hall), '') AS hall, month FROM run_cases WHERE run_id = $run),
     br AS (SELECT rule_id, any_value(title) AS title, any_value(clause) AS clause FROM run_rules
            WHERE run_id = $base GROUP BY ALL),
     lr AS (SELECT rule_id, any_value(title) AS title, any_value(clause) AS clause FROM run_rules
            WHERE run_id = $run GROUP BY ALL),
     dl AS (SELECT unnest($deadline_cities::VARCHAR[]) AS city, unnest($deadline_days::DATE[]) AS deadline),
     k AS (SELECT coalesce(l.city, b.city) AS city, coalesce(l.case_id, b.case_id) AS case_id,
                  coalesce(l.rule_id, b.rule_id) AS rule_id, coalesce(l.severity, b.severity) AS severity,
                  b.rule_id IS NOT NULL AS in_base, l.rule_id IS NOT NULL AS in_run, l.waiver_id,
                  coalesce(b.waived, false) AS base_waived
           FROM b FULL JOIN l ON l.city = b.city AND l.case_id = b.case_id AND l.rule_id = b.rule_id)
SELECT k.city, coalesce(bc.hall, lc.hall) AS hall, k.case_id, k.rule_id, k.severity,
       CASE WHEN k.waiver_id IS NOT NULL THEN 'waived'
            WHEN k.in_run AND NOT k.in_base THEN 'new'
            WHEN k.in_run AND a.status = $claimed THEN 'claimed_fixed'
            WHEN k.in_run THEN 'persisting'
            WHEN lc.case_id IS NULL OR lr.rule_id IS NULL THEN 'gone'
            ELSE 'fixed' END AS status,
       CASE WHEN k.in_run THEN NULL WHEN lc.case_id IS NULL THEN 'case' WHEN lr.rule_id IS NULL THEN 'rule'
            END AS gone_reason,
       k.in_base, k.in_run, k.base_waived, coalesce(lr.title, br.title) AS title,
       coalesce(lr.clause, br.clause) AS clause,
       coalesce(bc.month, lc.month) AS month,
       CASE WHEN k.in_base THEN dl.deadline END AS deadline,
       -- overdue: a base finding without an answer whose 整改期限 had passed on the run's audit date; one
       -- waived in the base run was on no list (audit.rectify.lists), so no answer was asked for
       -- (NULL where the base run's stored calendar does not reach the deadline)
       CASE WHEN NOT k.in_base OR k.base_waived OR a.status IS NOT NULL THEN false
            ELSE dl.deadline < $as_of END AS overdue,
       a.owner, a.status AS answer_status, a.action, a.done_on, a.file_name AS answer_file,
       a.sha256 AS answer_sha256, a.sheet AS answer_sheet, a.source_row AS answer_row,
       k.waiver_id, w.reason AS waiver_reason, w.approved_by AS waiver_approved_by, w.expires AS waiver_expires
FROM k
LEFT JOIN run_waivers w ON w.run_id = $run AND w.waiver_id = k.waiver_id
LEFT JOIN bc ON bc.city = k.city AND bc.case_id = k.case_id
LEFT JOIN lc ON lc.city = k.city AND lc.case_id = k.case_id
LEFT JOIN br ON br.rule_id = k.rule_id
LEFT JOIN lr ON lr.rule_id = k.rule_id
LEFT JOIN dl ON dl.city = k.city
LEFT JOIN rectify_answers a ON a.run_id = $base AND a.city = k.city AND a.case_id = k.case_id AND a.rule_id = k.rule_id
WHERE list_contains($cities::VARCHAR[], k.city) AND ($month::VARCHAR IS NULL OR coalesce(bc.month, lc.month) = $month::VARCHAR)
"""


def _summary(con) -> dict[str, pd.DataFrame]:
    counts = ",\n".join([
        "count(*) FILTER (in_base) AS base_findings", "count(*) FILTER (in_run) AS run_findings",
        *(f"count(*) FILTER (status = '{s}') AS {s}" for s in STATUSES),
        "count(*) FILTER (in_base AND answer_status IS NOT NULL) AS answered",
        f"count(*) FILTER (in_base AND answer_status = '{CLAIMED}') AS claimed",
        "count(*) FILTER (overdue) AS overdue"])
    df = con.execute(f"""
        SELECT grouping(city, hall, rule_id) AS _set, city, hall, rule_id, {counts}
        FROM compare_findings GROUP BY GROUPING SETS ((), (city), (city, hall), (rule_id))
        ORDER BY city NULLS FIRST, hall NULLS LAST, rule_id""").df()
    for col in COUNT_COLUMNS:
        df[col] = df[col].astype("int64")
    df[f"{RATE}_num"], df[f"{RATE}_den"] = df["fixed"], df["base_findings"]
    df[RATE] = (df["fixed"] / df["base_findings"]).where(df["base_findings"] > 0)
    df = add_intervals(df, [RATE])
    # grouping(city, hall, rule_id): a bit per key left out, city the highest
    sets = {"total": 0b111, "city": 0b011, "hall": 0b001, "rule": 0b110}
    out = {}
    for level, keys in LEVELS.items():
        part = df[df["_set"] == sets[level]][keys + SUMMARY_COLUMNS].reset_index(drop=True)
        if level == "total" and part.empty:         # no finding at all: one row of zeros
            part = pd.DataFrame([{**{c: 0 for c in COUNT_COLUMNS}, f"{RATE}_num": 0, f"{RATE}_den": 0}])
            part = part.reindex(columns=SUMMARY_COLUMNS)
        out[level] = part
    return out


def _notices(con, base: StoredRun, run: StoredRun, deadlines: dict, total: pd.DataFrame) -> list[str]:
    """What a reader of the comparison must know: runs in reverse order, different packs, rules or
    cases the run did not judge again, no answers read back, deadlines the calendar does not reach."""
    notes = []
    if base.as_of > run.as_of:
        notes.append(f"基准审计 {base.run_id} 的审计日 ({base.as_of}) 晚于审计 {run.run_id} 的审计日 ({run.as_of})")
    packs = dict(con.execute("SELECT run_id, pack_sha256 FROM runs WHERE run_id IN (?, ?)",
                             [base.run_id, run.run_id]).fetchall())
    if packs.get(base.run_id) != packs.get(run.run_id):
        notes.append("两次审计所用的规则包不同：规则或设置的改变也会使发现出现或消失")
    row = total.iloc[0]
    if row["gone"]:
        notes.append(f"{row['gone']} 条基准发现未再审计 (办件不在本次审计中或规则不在本次规则包中)，不计为已整改")
    answers = con.execute("SELECT count(*) FROM rectify_answers WHERE run_id = ?", [base.run_id]).fetchall()[0][0]
    if not answers:
        notes.append(f"审计 {base.run_id} 没有读回任何整改答复 (audit rectify import)：没有\"称已整改\"，未答复的都可能逾期")
    unknown = [c for c, (_, d) in deadlines.items() if d is None]
    if unknown:
        notes.append(f"审计 {base.run_id} 保存的工作日历不到 {listing(unknown)} 的整改期限：这些地市的答复是否逾期无法判断")
    return notes


# --- renderers ----------------------------------------------------------------------------------
def _clean(value):
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):              # numpy scalars
        value = value.item()
    if isinstance(value, (dt.date, pd.Timestamp)):
        return value.strftime("%Y-%m-%d")
    return value


def _records(df: pd.DataFrame) -> list[dict]:
    return [{k: _clean(v) for k, v in rec.items()} for rec in df.to_dict("records")]


def _rate_text(rec: dict) -> str:
    k, n = _clean(rec[f"{RATE}_num"]), _clean(rec[f"{RATE}_den"])
    if not n:
        return "—"
    return f"{k / n * 100:.1f}% ({k}/{n})"


def _heading(c: Comparison) -> list[str]:
    lines = [f"基准审计 {c.base.run_id} (审计日 {c.base.as_of}) → 审计 {c.run.run_id} (审计日 {c.run.as_of})；"
             f"地市: {listing(c.cities)}" + (f"；{c.month} 受理的办件" if c.month else "")]
    lines += [f"整改期限 {city} {d or '未知'} (审计日后 {n} 个工作日)" for city, (n, d) in c.deadlines.items()]
    lines += [f"注意: {n}" for n in c.notices]
    return lines


def to_table(c: Comparison) -> str:
    """The summary for the terminal: the totals, then per city, hall and rule (the findings
    themselves: csv, json or xlsx)."""
    cols = ["base_findings", "fixed", "persisting", "claimed_fixed", "waived", "gone", "new", "overdue"]
    head = ["基准发现", "已整改", "仍存在", "称已整改", "已豁免", "未再审计", "新发现", "逾期未答复", "整改率 (k/n)"]
    lines = _heading(c)
    for level, keys in LEVELS.items():
        frame = c.summary[level]
        if frame.empty:
            continue
        lines += ["", LEVEL_ZH[level], "\t".join([{"city": "地市", "hall": "服务大厅", "rule_id": "规则"}[k] for k in keys]
                                                + head)]
        for rec in frame.to_dict("records"):
            labels = [NO_HALL if k == "hall" and _clean(rec[k]) is None else str(rec[k]) for k in keys]
            lines.append("\t".join(labels + [str(rec[col]) for col in cols] + [_rate_text(rec)]))
    lines += ["", f"共 {len(c.findings)} 条发现；逐条状态: audit compare --format csv|json|xlsx --out FILE"]
    return "\n".join(lines)


def summary_frame(c: Comparison) -> pd.DataFrame:
    """Every level of the summary in one frame: ``level``, ``city``, ``hall``, ``rule_id``, then
    `SUMMARY_COLUMNS` (the keys a level does not group by are empty)."""
    parts = [c.summary[level].assign(level=level) for level in LEVELS]
    return pd.concat(parts, ignore_index=True).reindex(columns=["level", "city", "hall", "rule_id",
                                                                *SUMMARY_COLUMNS])


def to_csv(c: Comparison, summary: bool = False) -> str:
    """CSV of the findings (`FINDING_COLUMNS`), or with `summary` of `summary_frame`; rates at full
    precision, formula-like cells made safe (`audit.spreadsheet`)."""
    frame = summary_frame(c) if summary else c.findings[FINDING_COLUMNS]
    return csv_text(frame)


def to_json(c: Comparison, summary: bool = False) -> str:
    """JSON: the runs, scope, notices, the summary per level and (unless `summary`) every finding."""
    data = {"base_run": {"run_id": c.base.run_id, "as_of": c.base.as_of.isoformat()},
            "run": {"run_id": c.run.run_id, "as_of": c.run.as_of.isoformat()},
            "cities": c.cities, "month": c.month,
            "deadlines": {city: {"rectify_days": n, "deadline": _clean(d)} for city, (n, d) in c.deadlines.items()},
            "notices": c.notices,
            "summary": {level: (_records(frame)[0] if level == "total" else _records(frame))
                        for level, frame in c.summary.items()}}
    if not summary:
        data["count"] = len(c.findings)
        data["findings"] = _records(c.findings[FINDING_COLUMNS])
    return json.dumps(data, ensure_ascii=False, indent=1)


XLSX_SUMMARY = [("基准审计的发现", "base_findings"), ("本次审计的发现", "run_findings"),
                *((STATUS_ZH[s], s) for s in STATUSES), ("已答复", "answered"), ("答复已整改", "claimed"),
                ("逾期未答复", "overdue"), ("整改率", RATE), ("整改率分子", f"{RATE}_num"), ("整改率分母", f"{RATE}_den")]
XLSX_FINDINGS = [("地市", "city", 8), ("服务大厅", "hall", 18), ("办件编号", "case_id", 19), ("规则编号", "rule_id", 19),
                 ("级别", "severity", 12), ("规则名称", "title", 28), ("状态", "status", 14), ("说明", "gone_reason", 18),
                 ("整改期限", "deadline", 11), ("逾期未答复", "overdue", 9), ("责任人", "owner", 10),
                 ("整改状态", "answer_status", 10), ("整改情况", "action", 30), ("整改完成日期", "done_on", 12),
                 ("答复文件", "answer_file", 24), ("工作表", "answer_sheet", 10), ("行", "answer_row", 6),
                 ("豁免原因", "waiver_reason", 24), ("豁免批准人", "waiver_approved_by", 14),
                 ("豁免有效期至", "waiver_expires", 12)]


def to_xlsx(c: Comparison, path: Path) -> None:
    """A workbook: ``说明`` (the runs, scope, deadlines, notices, the statuses), one sheet per
    summary level, and ``逐条`` with every finding. Text cells formula-safe, counts as numbers."""
    wb = text_workbook(path, "帮办代办服务整改跟踪", dt.datetime(c.run.as_of.year, c.run.as_of.month, c.run.as_of.day))
    head, wrap = heading_format(wb), wb.add_format({"text_wrap": True, "valign": "top"})
    percent = wb.add_format({"num_format": "0.0%"})
    names = sheet_names(["说明", *(LEVEL_ZH[level] for level in LEVELS), "逐条"])
    ws = wb.add_worksheet(names[0])
    ws.set_column(0, 0, 100)
    lines = _heading(c) + [""] + [f"{STATUS_ZH[s]} ({s})：{STATUS_MEANING[s]}" for s in STATUSES]
    lines.append("整改率 = 已整改 ÷ 基准审计的发现 (未再审计的不计为已整改)；数据质量提示 DATA-* 不列入。")
    for r, line in enumerate(lines):
        write_text(ws, r, 0, line, wrap)
    for level, name in zip(LEVELS, names[1:]):
        keys = LEVELS[level]
        ws = wb.add_worksheet(name)
        header = [{"city": "地市", "hall": "服务大厅", "rule_id": "规则编号"}[k] for k in keys] + [h for h, _ in XLSX_SUMMARY]
        for j, text in enumerate(header):
            write_text(ws, 0, j, text, head)
        ws.set_column(0, len(header) - 1, 11)
        for i, rec in enumerate(c.summary[level].to_dict("records"), start=1):
            for j, key in enumerate(keys):
                value = _clean(rec[key])
                write_text(ws, i, j, NO_HALL if key == "hall" and value is None else value)
            for j, (_, col) in enumerate(XLSX_SUMMARY, start=len(keys)):
                value = _clean(rec[col])
                if value is not None:
                    ws.write_number(i, j, value, percent if col == RATE else None)
        ws.freeze_panes(1, len(keys))
    ws = wb.add_worksheet(names[-1])
    for j, (text, _, width) in enumerate(XLSX_FINDINGS):
        write_text(ws, 0, j, text, head)
        ws.set_column(j, j, width)
    for i, rec in enumerate(_records(c.findings), start=1):
        shown = {**rec, "severity": SEVERITY_ZH.get(rec["severity"], rec["severity"]),
                 "status": STATUS_ZH.get(rec["status"], rec["status"]), "gone_reason": GONE_ZH.get(rec["gone_reason"]),
                 "overdue": "是" if rec["overdue"] else None, "hall": rec["hall"] or NO_HALL}
        for j, (_, key, _) in enumerate(XLSX_FINDINGS):
            write_text(ws, i, j, shown[key])
    ws.autofilter(0, 0, max(len(c.findings), 1), len(XLSX_FINDINGS) - 1)
    ws.freeze_panes(1, 0)
    wb.close()


STATUS_MEANING = {
    "new": "本次审计有、基准审计没有的发现",
    "persisting": "两次审计都有的发现",
    "claimed_fixed": "两次审计都有，而大厅对基准审计的这条发现答复了\"已整改\"",
    "fixed": "基准审计有、本次审计没有，且本次审计仍审计了该办件和该规则",
    "waived": "本次审计中被豁免的发现",
    "gone": "基准审计有，但本次审计没有再审计它 (办件不在本次审计中，或规则不在本次的规则包中)；不计为已整改",
}
