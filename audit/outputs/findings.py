"""Findings: query one run's findings and render them as table, CSV, JSON or XLSX.

Cells that a spreadsheet would take for a formula are made safe as `audit.spreadsheet` says (a
leading apostrophe, in CSV and XLSX alike); XLSX cells are always written as text, never formulas.
The XLSX is a rectification list (整改清单): a sheet per city (named by `sheet_names`), grouped by
hall, with the rule, clause, message and evidence in Chinese, the waiver of a waived finding, set
column widths and a frozen header.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from audit.check.runstore import pack_from_json, select_run
from audit.db import ensure_schema
from audit.errors import UsageError
from audit.known import require_finding_filters
from audit.outputs.mask import NUMBER_HINT, scrub
from audit.rules.pack import Pack, load_pack
from audit.spreadsheet import csv_text, heading_format, safe_cell, sheet_names, text_workbook, write_text

SEVERITY_ZH = {"error": "违规 (error)", "warning": "警告 (warning)", "info": "提示 (info)"}
COLUMNS = ["case_id", "city", "rule_id", "severity", "clause", "message", "evidence", "hall", "service_type",
           "staff", "title", "waived", "waiver_reason", "waiver_approved_by", "waiver_expires"]
STATUSES = ("open", "waived")


def query_findings(con, run_id: int | None = None, rule: str | None = None, city: str | None = None,
                   severity: str | None = None, show_personal: bool = False,
                   status: str | None = None) -> tuple[int, pd.DataFrame]:
    """The findings of a stored run as one frame; (run_id, frame). See `iter_findings`."""
    run_id, chunks = iter_findings(con, run_id, rule, city, severity, show_personal, status)
    frames = list(chunks)
    return run_id, (pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])


CHUNK_VECTORS = 50      # DuckDB vectors (2,048 rows each) per frame of `iter_findings`: ~100,000 rows


def iter_findings(con, run_id: int | None = None, rule: str | None = None, city: str | None = None,
                  severity: str | None = None, show_personal: bool = False,
                  status: str | None = None) -> tuple[int, Iterator[pd.DataFrame]]:
    """The findings of a stored run (default: the latest), most serious first (open before waived);
    (run_id, frames of about 100,000 findings each, at least one): a listing of millions of
    findings is written part by part in bounded memory.

    A finding covered by a waiver of the run (``findings.waiver_id``, `audit.check.waivers`) has
    ``waived`` true and the waiver's reason, approver and end date; `status` keeps only the
    ``open`` or only the ``waived`` findings.

    Hall, service type and staff are the case's as the run judged it (``run_cases``), not as the
    case rows read now. A `rule` the run's pack does not have, or a `city` the run did not judge,
    is a UsageError listing the known ones (`audit.known`); a known one without findings gives an
    empty frame. Phone and ID numbers in a message or its evidence (a custom pack may quote them)
    are masked as in the report unless `show_personal`."""
    ensure_schema(con)
    run_id = select_run(con, run_id).run_id
    if severity and severity not in SEVERITY_ZH:
        raise UsageError(f"--severity 应为 error、warning 或 info，而不是 {severity!r}")
    if status and status not in STATUSES:
        raise UsageError(f"--status 应为 open 或 waived，而不是 {status!r}")
    require_finding_filters(con, run_id, rule, city)
    where, params = ["f.run_id = $run"], {"run": run_id}
    if rule:
        where.append("upper(f.rule_id) = upper($rule)")
        params["rule"] = rule
    if city:
        where.append("f.city = $city")
        params["city"] = city
    if severity:
        where.append("f.severity = $severity")
        params["severity"] = severity
    if status:
        where.append(f"f.waiver_id IS {'NOT ' if status == 'waived' else ''}NULL")
    cursor = con.execute(f"""
        SELECT f.case_id, f.city, f.rule_id, f.severity, f.clause, f.message, CAST(f.evidence AS VARCHAR) AS evidence,
               c.hall, c.service_type, c.staff, r.title,
               f.waiver_id IS NOT NULL AS waived, w.reason AS waiver_reason, w.approved_by AS waiver_approved_by,
               strftime(w.expires, '%Y-%m-%d') AS waiver_expires,
               regexp_matches(f.message, $hint) OR regexp_matches(CAST(f.evidence AS VARCHAR), $hint) AS _personal
        FROM findings f
        LEFT JOIN run_cases c ON c.run_id = f.run_id AND c.city = f.city AND c.case_id = f.case_id
        LEFT JOIN run_rules r ON r.run_id = f.run_id AND r.rule_id = f.rule_id
        LEFT JOIN run_waivers w ON w.run_id = f.run_id AND w.waiver_id = f.waiver_id
        WHERE {' AND '.join(where)}
        ORDER BY CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, f.waiver_id IS NOT NULL,
                 f.city, c.hall NULLS LAST, f.case_id, f.rule_id""", {"hint": NUMBER_HINT, **params})
    return run_id, _chunks(cursor, show_personal)


def _chunks(cursor, show_personal: bool) -> Iterator[pd.DataFrame]:
    first = True
    while True:
        df = cursor.fetch_df_chunk(CHUNK_VECTORS)
        if len(df) == 0 and not first:
            return
        first = False
        personal = df.pop("_personal").fillna(False).astype(bool)
        if not show_personal and personal.any():    # the Python masks only where a number may be personal
            for col in ("message", "evidence"):
                df.loc[personal, col] = df.loc[personal, col].map(scrub)
        yield df
        if len(df) == 0:
            return


def to_csv(df: pd.DataFrame, header: bool = True) -> str:
    """CSV text with formula-safe cells (UTF-8; the caller adds a BOM for Excel when writing a
    file). Without `header`, the rows only (a later chunk of a listing written in parts)."""
    return csv_text(df, header=header)


def write_csv_parts(chunks: Iterator[pd.DataFrame], out: Path | None, echo) -> int:
    """Write the frames as one CSV, part by part: to `out` (UTF-8 with a BOM for Excel; records end
    in CRLF) or, without `out`, through `echo`; returns the number of findings written."""
    n = 0
    with open(out, "w", encoding="utf-8-sig", newline="") if out else contextlib.nullcontext() as fh:
        for i, df in enumerate(chunks):
            text = to_csv(df, header=i == 0)
            if fh is not None:
                fh.write(text)
            elif text:
                echo(text, nl=False)
            n += len(df)
    return n


def to_json(df: pd.DataFrame, run_id: int) -> str:
    """JSON: {"run_id": …, "findings": [{…, "evidence": {…}}]}."""
    records = []
    for rec in df.to_dict(orient="records"):
        rec = {k: (None if (not isinstance(v, (list, dict)) and pd.isna(v)) else v) for k, v in rec.items()}
        rec["evidence"] = json.loads(rec["evidence"]) if rec.get("evidence") else None
        records.append(rec)
    return json.dumps({"run_id": run_id, "count": len(records), "findings": records}, ensure_ascii=False, indent=1)


def to_table(df: pd.DataFrame, limit: int = 200) -> str:
    """A plain-text listing for the terminal (first `limit` rows)."""
    if df.empty:
        return "没有符合条件的审计发现 (no findings)"
    lines = []
    for row in df.head(limit).itertuples(index=False):
        mark = f"[已豁免: {row.waiver_reason}] " if row.waived else ""
        lines.append(f"{row.severity:<7} {row.rule_id:<22} {row.city} {row.case_id}  {mark}{row.message}")
    if len(df) > limit:
        lines.append(f"… 另有 {len(df) - limit} 条；用 --format csv/xlsx --out FILE 导出全部")
    waived = int(df["waived"].sum())
    lines.append(f"共 {len(df)} 条" + (f"，其中已豁免 {waived} 条 (不计入合规率)" if waived else ""))
    return "\n".join(lines)


def rule_labels(pack: Pack | None) -> dict[str, dict[str, str]]:
    """Each rule's evidence labels (rule id → evidence field → 中文名称), from the rules' own files as
    the run stored them (`pack`). A rule stored without labels (a run made before they lived in the
    rule files), or a run stored without its pack, borrows those of the default pack's rule."""
    default = {r.id: r.evidence for r in load_pack().rules}
    if pack is None:
        return default
    return {r.id: r.evidence or default.get(r.id, {}) for r in pack.rules}


def _evidence_value(v) -> str:
    if isinstance(v, bool):
        return "是" if v else "否"
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    if isinstance(v, list):
        return "、".join(json.dumps(x, ensure_ascii=False) if isinstance(x, (dict, list)) else _evidence_value(x)
                        for x in v)
    return str(v)


def evidence_text(evidence: str | None, labels: dict[str, str] | None = None) -> str:
    """Evidence JSON as readable Chinese `名称: 值` pairs; `labels` are the rule's (`rule_labels`),
    and a field without a label shows as written. No evidence (None, or NaN from a frame) is empty."""
    if not isinstance(evidence, str) or not evidence:
        return ""
    try:
        data = json.loads(evidence)
    except ValueError:
        return evidence
    if not isinstance(data, dict):
        return str(data)
    parts = []
    for k, v in data.items():
        if v is None or v == [] or v == "":
            continue
        parts.append(f"{(labels or {}).get(k, k)}: {_evidence_value(v)}")
    return "；".join(parts)


XLSX_COLUMNS = [("服务大厅", "hall", 18), ("办件编号", "case_id", 20), ("服务类型", "service_type", 9),
                ("帮办代办员", "staff", 11), ("严重程度", "severity", 14), ("规则", "rule_id", 22),
                ("条款", "clause", 16), ("规则名称", "title", 30), ("问题", "message", 60), ("证据", "evidence", 60),
                ("豁免", "waiver", 24), ("整改情况", None, 20)]


def waiver_text(rec: dict) -> str:
    """A waived finding's waiver in words (`已豁免：原因 (批准人 …，有效期至 …)`); empty when open."""
    if not rec.get("waived"):
        return ""
    until = f"，有效期至 {rec['waiver_expires']}" if isinstance(rec.get("waiver_expires"), str) else ""
    return f"已豁免：{rec.get('waiver_reason')} (批准人 {rec.get('waiver_approved_by')}{until})"


def to_xlsx(df: pd.DataFrame, path: Path, run_meta: dict | None = None) -> None:
    """The rectification list: a sheet per city (findings without a city on one sheet of their
    own), rows grouped by hall, every cell formula-safe text. Evidence reads with the labels of
    the pack stored with the run (`run_meta`)."""
    stored = (run_meta or {}).get("pack")
    labels = rule_labels(pack_from_json(stored) if stored else None)
    wb = text_workbook(path, "帮办代办服务整改清单", _fixed_created(run_meta))
    head = heading_format(wb)
    big = wb.add_format({"bold": True, "font_size": 14})
    group = wb.add_format({"bold": True, "bg_color": "#F2F2F2"})
    cell = wb.add_format({"text_wrap": True, "valign": "top"})
    city_of = df["city"].fillna("").astype(str)
    cities = sorted(city_of.unique()) or ["(无)"]
    shown = [city or "(未填写地市)" for city in cities]
    for city, label, sheet in zip(cities, shown, sheet_names(shown)):
        ws = wb.add_worksheet(sheet)
        sub = df[city_of == city]
        title = f"{label} 帮办代办服务整改清单" + (f" (审计日 {run_meta['as_of']})" if run_meta else "")
        write_text(ws, 0, 0, title, big)
        for j, (name, _, width) in enumerate(XLSX_COLUMNS):
            write_text(ws, 1, j, name, head)
            ws.set_column(j, j, width)
        ws.freeze_panes(2, 0)
        r = 2
        for hall, rows in sub.groupby(sub["hall"].fillna("(未填写服务大厅)"), sort=True):
            ws.merge_range(r, 0, r, len(XLSX_COLUMNS) - 1, safe_cell(f"{hall}：{len(rows)} 条"), group)
            r += 1
            for rec in rows.to_dict(orient="records"):
                for j, (_, key, _) in enumerate(XLSX_COLUMNS):
                    if key is None:
                        continue
                    value = rec.get(key)
                    if key == "severity":
                        value = SEVERITY_ZH.get(value, value)
                    elif key == "evidence":
                        value = evidence_text(value, labels.get(rec["rule_id"]))
                    elif key == "waiver":
                        value = waiver_text(rec)
                    write_text(ws, r, j, value, cell)
                r += 1
        ws.autofilter(1, 0, max(r - 1, 1), len(XLSX_COLUMNS) - 1)
    wb.close()


def _fixed_created(run_meta: dict | None):
    import datetime as dt

    as_of = (run_meta or {}).get("as_of")
    if isinstance(as_of, dt.date):
        return dt.datetime(as_of.year, as_of.month, as_of.day)
    return dt.datetime(2000, 1, 1)


def run_metadata(con, run_id: int) -> dict:
    """The stored metadata of a run."""
    cols = [d[0] for d in con.execute("SELECT * FROM runs LIMIT 0").description]
    row = con.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).fetchall()
    if not row:
        raise UsageError(f"没有编号为 {run_id} 的审计")
    return dict(zip(cols, row[0]))
