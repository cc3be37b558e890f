"""Text summaries of a check run (library side of `audit check`)."""

from __future__ import annotations

from audit.check.dataquality import notice_lines
from audit.check.engine import RunResult


def check_summary(result: RunResult) -> str:
    """Per-rule counts, with the run's audit date, pack and calendar."""
    lines = [
        f"审计 {result.run_id}: {result.pack.name} {result.pack.version}，审计日 {result.as_of}，办件 {result.cases} 件",
        f"工作日历: {result.calendar}",
    ]
    if result.fallback_years:
        lines.append(f"注意: {', '.join(map(str, result.fallback_years))} 年无节假日数据，按周一至周五计算")
    lines.append(f"{'规则':<24}{'条款':<18}{'级别':<9}{'办件数':>7}")
    for r in result.results:
        lines.append(f"{r.rule.id:<24}{r.rule.clause:<18}{r.rule.severity:<9}{r.findings:>7}")
    lines.append(f"合计: error {result.count('error')}，warning {result.count('warning')}，info {result.count('info')}")
    notice = notice_lines(result.data_quality)
    if notice:
        lines.append("数据质量 (data quality):")
        lines += [f"  {line}" for line in notice]
    return "\n".join(lines)
