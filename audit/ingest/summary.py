"""Plain-text summaries of what is in the database (used by `audit ingest` and `audit demo`)."""

from __future__ import annotations

from audit.ingest import IngestReport


def format_ingest(report: IngestReport) -> str:
    """The per-file accounting of one ingest: read = loaded + quarantined + duplicates, and what
    became of cities, cells set aside and events waiting for their case rows."""
    lines = [f"导入批次 {report.ingest_id}:"]
    if report.vocabulary == "open":
        lines.append("  环节词表: open (环节名称按原样保留，不限于 13 个规范环节)")
    for f in report.files:
        where = f.name + (f" [{f.sheet}]" if f.sheet else "")
        enc = f", {f.encoding}" if f.encoding else ""
        if f.layout == "xes":
            what = f"({f.format}): 读入 {f.rows_read} 行 ({f.traces} 个 trace + {f.events} 个 event)"
        else:
            what = f"({f.format}{enc}, {f.layout}, 表头第 {f.header_row} 行): 读入 {f.rows_read} 行"
        split = f" (办件 {f.loaded - f.events_loaded} + 事件 {f.events_loaded})" if f.layout == "xes" else ""
        lines.append(
            f"  {where} {what} = 载入 {f.loaded}{split} + 隔离 {f.quarantined} + 重复 {f.duplicates}"
            + (f"; 替换办件 {f.replaced_cases}" if f.replaced_cases else "")
        )
        notes = []
        if f.set_aside:
            notes.append(f"搁置单元格 {f.set_aside} 个 (行已载入，该字段留空)")
        if f.city_resolved:
            notes.append(f"{f.city_resolved} 行按办件编号取得地市")
        if f.waiting:
            notes.append(f"{f.waiting} 个事件等待台账 (库中还没有其办件，载入后自动归入)")
        if f.city_filled:
            notes.append(f"--city 填补了 {f.city_filled} 行的地市")
        if f.filled_elsewhere[0]:
            notes.append(f"注意: 其中 {f.filled_elsewhere[0]} 个办件编号在库中属于其他地市 ({f.filled_elsewhere[1]})；"
                         "文件若跨地市，请去掉 --city 重新导入 (没有地市的行会按办件编号取地市)")
        if notes:
            lines.append("    " + "；".join(notes))
        if f.unmapped:
            kind = "未使用的 trace 属性" if f.layout == "xes" else "未使用的列"
            lines.append(f"    {kind}: {', '.join(f.unmapped)}")
        lines += [f"    {note}" for note in f.notes]
    lines.append(
        f"合计: 读入 {report.rows_read} 行 = 载入 {report.loaded} + 隔离 {report.quarantined} + "
        f"重复 {report.duplicates}; 新办件 {report.new_cases}, 替换办件 {report.replaced_cases}"
        + (f"; 搁置单元格 {report.set_aside}" if report.set_aside else "")
    )
    if report.replaced_cases:
        lines.append(f"  已用新文件替换 {report.replaced_cases} 个此前导入的办件 (replaced cases)")
    if report.joined:
        dup = f" (其中 {report.joined_duplicates} 个与库中已有事件相同，未重复载入)" if report.joined_duplicates else ""
        lines.append(f"  此前等待台账的 {report.joined} 个事件已归入其办件{dup}")
    if report.waiting_total:
        lines.append(f"  库中共有 {report.waiting_total} 个事件等待台账 (没有地市，其办件编号尚未出现在任何台账中)；"
                     "导入含这些办件的台账后自动归入")
    if report.quarantine_sample:
        lines.append("隔离原因 (前 10 条):")
        lines += [f"  {r}" for r in report.quarantine_sample]
    if report.quarantined or report.set_aside:
        lines.append(f"全部隔离的行与搁置的单元格: audit quarantine --ingest {report.ingest_id} "
                     "[--format csv|xlsx --out 文件]")
    return "\n".join(lines)


def database_summary(con) -> str:
    """Cases and events per city, and the quarantine size."""
    rows = con.execute("""
        SELECT c.city, count(*) AS cases,
               count(*) FILTER (WHERE service_type = '帮办') AS bb,
               count(*) FILTER (WHERE service_type = '代办') AS db,
               (SELECT count(*) FROM events e WHERE e.city = c.city) AS events,
               strftime(min(m.first), '%Y-%m') AS first_month, strftime(max(m.first), '%Y-%m') AS last_month
        FROM cases c LEFT JOIN (SELECT city, case_id, min("time") AS first FROM events GROUP BY ALL) m
          USING (city, case_id)
        GROUP BY c.city ORDER BY c.city""").fetchall()
    lines = ["地市    办件  帮办  代办    事件  月份"]
    for city, cases, bb, db, events, m0, m1 in rows:
        lines.append(f"{city:<6}{cases:>6}{bb:>6}{db:>6}{events:>8}  {m0 or '-'} … {m1 or '-'}")
    q = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
    lines.append(f"隔离区 (quarantine): {q} 行")
    return "\n".join(lines)
