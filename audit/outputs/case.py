"""Everything about one case in one view (`audit case CASE_ID`): assembled, then rendered.

`case_view` gathers, for a stored run (default: the latest), a plain structure:

- ``attributes``: the case's attributes and the file and row they came from (the ``cases`` view);
  name, ID and phone masked unless `show_personal`, phone and ID numbers in free text too;
- ``events``: its events in the order the rules judge them (time, then ``seq``: the order of the
  source rows), each with its source file and row (the ``events`` view);
- ``dates``: what the run computed (``run_case_dates``): request, start, the deadline with the working
  days counted — promised plus suspended, each closed suspension with its working days on the run's
  calendar (``run_calendar``) — response, close, archive and follow-up limits;
- ``findings``: the run's findings of the case with their evidence (labelled in Chinese as the run's
  pack names it), the waiver that covers each (``run_waivers``) and the hall's answer to it read back
  by `audit rectify import` (``rectify_answers``: owner, status, action, date, and the file and row).

Attributes and events are read from the database as it is now; dates and findings are the run's.
A case id the run does not hold is a UsageError suggesting close ids (`audit.known.close_case_ids`); a
case id held by two cities needs ``--city``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json

from audit.check.runstore import StoredRun, pack_from_json, require_cases, select_run
from audit.db import ensure_schema
from audit.errors import UsageError
from audit.known import close_case_ids, listing
from audit.outputs.findings import SEVERITY_ZH, evidence_text, rule_labels
from audit.outputs.mask import mask_id, mask_name, mask_phone, scrub
from audit.vocabulary import HEADER_ALIASES

ATTRIBUTES = ("county", "hall", "service_type", "channel", "object_type", "item", "applicant", "id_number", "phone",
              "staff", "promised_days", "fee", "visits", "rating", "rating_time", "materials")
PERSONAL = {"applicant": mask_name, "id_number": mask_id, "phone": mask_phone}
FREE_TEXT = ("item", "materials")
START_STEP = {"帮办": "受理", "代办": "委托"}     # contract §4: the start of a case


def case_view(con, case_id: str, city: str | None = None, run_id: int | None = None,
              show_personal: bool = False) -> dict:
    """The plain structure of one case (see module doc)."""
    ensure_schema(con)
    run = select_run(con, run_id)
    require_cases(con, run)
    city = resolve_city(con, run, case_id, city)
    mask = (lambda text: text) if show_personal else scrub
    view = {"run_id": run.run_id, "as_of": str(run.as_of), "case_id": case_id, "city": city,
            "attributes": _attributes(con, city, case_id, show_personal),
            "events": _events(con, city, case_id, mask),
            "dates": _dates(con, run, city, case_id),
            "findings": _findings(con, run.run_id, city, case_id, mask)}
    return view


def resolve_city(con, run: StoredRun, case_id: str, city: str | None) -> str:
    """The city of `case_id` in the run; a UsageError when the run has no such case (with close ids),
    or has it in several cities and `city` does not choose one."""
    cities = [r[0] for r in con.execute("SELECT DISTINCT city FROM run_cases WHERE run_id = ? AND case_id = ? "
                                        "ORDER BY city", [run.run_id, case_id]).fetchall()]
    if city is not None and city in cities:
        return city
    if city is not None and cities:
        raise UsageError(f"办件 {case_id} 不在 --city {city} 中；审计 {run.run_id} 中该编号在: {listing(cities)}")
    if len(cities) == 1:
        return cities[0]
    if cities:
        raise UsageError(f"办件编号 {case_id} 在多个地市 ({listing(cities)}) 都有：请用 --city 指定")
    raise UsageError(_unknown(con, run, case_id))


def _unknown(con, run: StoredRun, case_id: str) -> str:
    held = [r[0] for r in con.execute("SELECT DISTINCT city FROM cases WHERE case_id = ? ORDER BY city",
                                      [case_id]).fetchall()]
    if held:
        return (f"办件 {case_id} 在数据库中 ({listing(held)})，但不在审计 {run.run_id} (审计日 {run.as_of}) 中："
                "它是该次审计之后导入的，或不在其 --city 范围内；请重新运行 audit check")
    close = close_case_ids(con, run.run_id, case_id)
    hint = f"；相近的办件编号: {listing(close)}" if close else ""
    return f"审计 {run.run_id} 中没有办件 {case_id}{hint}"


def _text(value) -> object:
    """A value for the structure: dates and times as text (YYYY-MM-DD[ HH:MM:SS]), an amount (Decimal)
    as written (50.00), anything else as it is."""
    if isinstance(value, (dt.date, dt.datetime, decimal.Decimal)):
        return str(value)
    return value


def _attributes(con, city: str, case_id: str, show_personal: bool) -> dict:
    cols = ", ".join(ATTRIBUTES)
    row = con.execute(f"SELECT {cols}, source_file, source_row FROM cases WHERE city = ? AND case_id = ?",
                      [city, case_id]).fetchall()
    if not row:
        return {}
    attrs = dict(zip((*ATTRIBUTES, "source_file", "source_row"), row[0]))
    if not show_personal:
        for name, mask in PERSONAL.items():
            attrs[name] = mask(attrs[name])
        for name in FREE_TEXT:
            attrs[name] = scrub(attrs[name])
    return {k: _text(v) for k, v in attrs.items()}


def _events(con, city: str, case_id: str, mask) -> list[dict]:
    rows = con.execute("""SELECT "time", step, staff, note, source_file, source_row, seq FROM events
                          WHERE city = ? AND case_id = ? ORDER BY "time", seq""", [city, case_id]).fetchall()
    keys = ("time", "step", "staff", "note", "source_file", "source_row", "seq")
    events = [dict(zip(keys, map(_text, r))) for r in rows]
    for e in events:
        e["note"] = mask(e["note"])
    return events


def _dates(con, run: StoredRun, city: str, case_id: str) -> dict | None:
    cols = [d[0] for d in con.execute("SELECT * FROM run_case_dates LIMIT 0").description]
    row = con.execute("SELECT * FROM run_case_dates WHERE run_id = ? AND city = ? AND case_id = ?",
                      [run.run_id, city, case_id]).fetchall()
    if not row:
        return None     # a run stored before the dates were kept
    d = dict(zip(cols, row[0]))
    # each suspension's working days: workdays(中止 date, 续办 date) on the run's calendar of the city
    spans = con.execute("""
        WITH k AS (SELECT coalesce(max(cal_key), 0) AS key FROM run_city_calendar WHERE run_id = $run AND city = $city),
        s AS (SELECT i, x."from"::DATE AS a, x."to"::DATE AS b
              FROM (SELECT unnest(suspensions) AS x, generate_subscripts(suspensions, 1) AS i
                    FROM run_case_dates WHERE run_id = $run AND city = $city AND case_id = $case))
        SELECT s.i, s.a, s.b, count(c.d) FILTER (WHERE c.is_workday) AS wd
        FROM s LEFT JOIN run_calendar c ON c.run_id = $run AND c.cal_key = (SELECT key FROM k)
                                       AND c.d >= s.a AND c.d < s.b
        GROUP BY ALL ORDER BY s.i""", {"run": run.run_id, "city": city, "case": case_id}).fetchall()
    service_type = con.execute("SELECT service_type FROM run_cases WHERE run_id = ? AND city = ? AND case_id = ?",
                               [run.run_id, city, case_id]).fetchall()
    suspensions = [{"from": _text(a), "to": _text(b), "working_days": wd if b is not None else None}
                   for _, a, b, wd in spans]
    n = (d["promised_days"] + d["suspended_wd"]) if d["promised_days"] is not None else None
    return {
        "request": _text(d["request_time"]),
        "start": {"step": START_STEP.get(service_type[0][0] if service_type else None), "time": _text(d["start_time"])},
        "response": {"step": d["response_step"], "time": _text(d["response_time"]), "limit": _text(d["response_limit"])},
        "deadline": {"date": _text(d["deadline"]), "start_date": _text(d["start_time"] and d["start_time"].date()),
                     "promised_days": d["promised_days"], "suspended_working_days": d["suspended_wd"],
                     "working_days": n, "suspensions": suspensions, "suspended": d["suspended"]},
        "complete": _text(d["complete_time"]),
        "close": _text(d["close_time"]),
        "archive": {"time": _text(d["archive_time"]), "limit": _text(d["archive_limit"])},
        "followup": {"rating_date": _text(d["rating_date"]), "limit": _text(d["followup_limit"])},
    }


def _findings(con, run_id: int, city: str, case_id: str, mask) -> list[dict]:
    stored = con.execute("SELECT pack FROM runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
    labels = rule_labels(pack_from_json(stored) if stored else None)
    rows = con.execute("""
        SELECT f.rule_id, f.severity, f.clause, r.title, f.message, CAST(f.evidence AS VARCHAR),
               w.waiver_id, w.reason, w.approved_by, w.expires, w.line, w.rule,
               a.status, a.owner, a.action, a.done_on, a.file_name, a.sheet, a.source_row
        FROM findings f
        LEFT JOIN run_rules r ON r.run_id = f.run_id AND r.rule_id = f.rule_id
        LEFT JOIN run_waivers w ON w.run_id = f.run_id AND w.waiver_id = f.waiver_id
        LEFT JOIN rectify_answers a ON a.run_id = f.run_id AND a.city = f.city AND a.case_id = f.case_id
                                   AND a.rule_id = f.rule_id
        WHERE f.run_id = ? AND f.city = ? AND f.case_id = ?
        ORDER BY CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, f.rule_id""",
                       [run_id, city, case_id]).fetchall()
    out = []
    for (rule_id, severity, clause, title, message, evidence, wid, reason, approved_by, expires, line, rule,
         status, owner, action, done_on, file_name, sheet, source_row) in rows:
        evidence = mask(evidence)
        waiver = None if wid is None else {"waiver_id": wid, "rule": rule, "line": line, "reason": reason,
                                           "approved_by": approved_by, "expires": _text(expires)}
        answer = None if status is None else {
            "status": status, "owner": owner, "action": mask(action), "done_on": _text(done_on),
            "file_name": file_name, "sheet": sheet, "source_row": source_row}
        out.append({"rule_id": rule_id, "severity": severity, "clause": clause, "title": title,
                    "message": mask(message), "evidence": json.loads(evidence) if evidence else None,
                    "evidence_text": evidence_text(evidence, labels.get(rule_id)), "waiver": waiver,
                    "answer": answer})
    return out


# --- rendering --------------------------------------------------------------------------------
def to_json(view: dict) -> str:
    """The structure as JSON (keys in English, values as stored)."""
    return json.dumps(view, ensure_ascii=False, indent=1)


def _label(field: str) -> str:
    return HEADER_ALIASES.get(field, [field])[0]


def to_table(view: dict) -> str:
    """The view as text for the terminal."""
    lines = [f"办件 {view['case_id']} · {view['city']} (审计 {view['run_id']}，审计日 {view['as_of']})", "", "属性 (attributes)"]
    attrs = view["attributes"]
    if not attrs:
        lines.append("  (台账中没有此办件，只从环节得知)")
    for name in ATTRIBUTES:
        if attrs.get(name) not in (None, ""):
            lines.append(f"  {_label(name)}: {attrs[name]}")
    if attrs:
        lines.append(f"  来源: {attrs['source_file']} 第 {attrs['source_row']} 行")
    lines += ["", "环节 (events，按判定顺序：时间，同一时间按源文件行序)"]
    for i, e in enumerate(view["events"], 1):
        extra = "".join(f"  {v}" for v in (e["staff"], e["note"]) if v)
        lines.append(f"  {i:>2}. {e['time']}  {e['step']}{extra}  ({e['source_file']} 第 {e['source_row']} 行)")
    if not view["events"]:
        lines.append("  (没有环节)")
    lines += ["", "日期 (本次审计计算)"] + _date_lines(view["dates"])
    lines += ["", f"审计发现 (findings) {len(view['findings'])} 条"]
    for f in view["findings"]:
        lines.append(f"  {SEVERITY_ZH.get(f['severity'], f['severity'])} {f['rule_id']} ({f['clause']}) {f['title'] or ''}")
        lines.append(f"    问题: {f['message']}")
        if f["evidence_text"]:
            lines.append(f"    证据: {f['evidence_text']}")
        if f["waiver"]:
            w = f["waiver"]
            until = f"，有效期至 {w['expires']}" if w["expires"] else ""
            lines.append(f"    已豁免 (waived): {w['reason']} (批准人 {w['approved_by']}{until}；豁免文件第 {w['line']} 行)")
        if f["answer"]:
            a = f["answer"]
            said = "，".join(x for x in (f"责任人 {a['owner']}" if a["owner"] else "",
                                        f"完成于 {a['done_on']}" if a["done_on"] else "") if x)
            where = f"{a['file_name']}{'#' + a['sheet'] if a['sheet'] else ''} 第 {a['source_row']} 行"
            lines.append(f"    整改答复 (answer): {a['status']}{' (' + said + ')' if said else ''}"
                         f"{'：' + a['action'] if a['action'] else ''} ({where})")
    return "\n".join(lines)


def _date_lines(d: dict | None) -> list[str]:
    if d is None:
        return ["  (该次审计由旧版本保存，没有保存逐件日期；请重新运行 audit check)"]
    dl = d["deadline"]
    lines = [f"  请求 (第一个环节): {d['request'] or '—'}",
             f"  开始 ({d['start']['step'] or '受理/委托'}): {d['start']['time'] or '—'}"]
    if dl["date"]:
        lines.append(f"  办结时限: {dl['date']} = {dl['start_date']} 之后第 {dl['working_days']} 个工作日 "
                     f"(承诺 {dl['promised_days']} + 已结束中止 {dl['suspended_working_days']})")
    else:
        lines.append("  办结时限: — (没有开始环节或承诺时限)")
    for s in dl["suspensions"]:
        span = f"{s['from']} 至 {s['to']}: {s['working_days']} 个工作日" if s["to"] else f"{s['from']} 起，尚未续办"
        lines.append(f"    中止 {span}")
    if dl["suspended"]:
        lines.append("    中止中：不判断办结时限")
    lines += [f"  办结: {d['complete'] or '—'}；关闭: {d['close'] or '—'}",
              f"  响应 ({d['response']['step'] or '—'}): {d['response']['time'] or '—'}，时限 {d['response']['limit'] or '—'}",
              f"  资料归档: {d['archive']['time'] or '—'}，时限 {d['archive']['limit'] or '—'}",
              f"  评价日期: {d['followup']['rating_date'] or '—'}，回访时限 {d['followup']['limit'] or '—'}"]
    return lines
