"""Plain-text summaries of what is in the database (used by `audit ingest` and `audit demo`)."""

from __future__ import annotations

from audit.ingest import IngestReport


def format_ingest(report: IngestReport) -> str:
    """The per-file accounting of one ingest: read = loaded + quarantined + duplicates."""
    lines = [f"导入批次 {report.ingest_id}:"]
    for f in report.files:
        where = f.name + (f" [{f.sheet}]" if f.sheet else "")
        enc = f", {f.encoding}" if f.encoding else ""
        lines.append(
            f"  {where} ({f.format}{enc}, {f.layout}, 表头第 {f.header_row} 行): 读入 {f.rows_read} 行 = "
            f"载入 {f.loaded} + 隔离 {f.quarantined} + 重复 {f.duplicates}"
            + (f"; 替换办件 {f.replaced_cases}" if f.replaced_cases else "")
        )
        if f.unmapped:
            lines.append(f"    未使用的列: {', '.join(f.unmapped)}")
    lines.append(
        f"合计: 读入 {report.rows_read} 行 = 载入 {report.loaded} + 隔离 {report.quarantined} + "
        f"重复 {report.duplicates}; 新办件 {report.new_cases}, 替换办件 {report.replaced_cases}"
    )
    if report.replaced_cases:
        lines.append(f"  已用新文件替换 {report.replaced_cases} 个此前导入的办件 (replaced cases)")
    if report.quarantine_sample:
        lines.append("隔离原因 (前 10 条，全部见表 quarantine):")
        lines += [f"  {r}" for r in report.quarantine_sample]
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
