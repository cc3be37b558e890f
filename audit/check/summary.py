"""Text summaries of a check run (library side of `audit check`)."""

from __future__ import annotations

from audit.check.dataquality import notice_lines
from audit.check.engine import RunResult
from audit.check.waivers import EXPIRED, WaiverStatus


def check_summary(result: RunResult) -> str:
    """Per-rule counts (and waived findings, with a waiver file), with the run's audit date, pack
    and calendar; the waivers that expired or matched nothing are listed."""
    lines = [
        f"审计 {result.run_id}: {result.pack.name} {result.pack.version}，审计日 {result.as_of}，办件 {result.cases} 件",
        f"工作日历: {result.calendar}",
    ]
    lines += result.warnings
    if result.fallback_years:
        lines.append(f"注意: {', '.join(map(str, result.fallback_years))} 年无节假日数据，按周一至周五计算")
    with_waivers = result.waiver_file is not None
    w = max([24] + [len(r.rule.id) + 2 for r in result.results])     # long ids (other packs) stay aligned
    lines.append(f"{'规则':<{w}}{'条款':<18}{'级别':<9}{'办件数':>7}" + (f"{'豁免':>7}" if with_waivers else ""))
    for r in result.results:
        lines.append(f"{r.rule.id:<{w}}{r.rule.clause:<18}{r.rule.severity:<9}{r.findings:>7}"
                     + (f"{r.waived:>7}" if with_waivers else ""))
    totals = []
    for severity in ("error", "warning", "info"):
        waived = result.waived(severity)
        totals.append(f"{severity} {result.count(severity)}" + (f" (另有 {waived} 条已豁免)" if waived else ""))
    lines.append("合计: " + "，".join(totals))
    if with_waivers:
        lines += waiver_lines(result)
    notice = notice_lines(result.data_quality)
    if notice:
        lines.append("数据质量 (data quality):")
        lines += [f"  {line}" for line in notice]
    return "\n".join(lines)


def waiver_lines(result: RunResult) -> list[str]:
    """The waivers of a run: how many were in force and what they covered; every expired waiver
    and every waiver in force that matched nothing, with its line in the file."""
    wf, statuses = result.waiver_file, result.waivers
    in_force = [s for s in statuses if s.status != EXPIRED]
    lines = [f"豁免 (waivers): {wf.path} (SHA-256 {wf.sha256[:12]}…) {len(statuses)} 条，审计日生效 {len(in_force)} 条，"
             f"豁免发现 {sum(r.waived for r in result.results)} 条"]
    expired = [s for s in statuses if s.status == EXPIRED]
    unmatched = [s for s in in_force if not s.matched]
    if expired:
        lines.append(f"  已过期、不适用 (expired) {len(expired)} 条:")
        lines += [f"    {_describe(s)}" for s in expired]
    if unmatched:
        lines.append(f"  没有匹配任何发现 (matched nothing) {len(unmatched)} 条:")
        lines += [f"    {_describe(s)}" for s in unmatched]
    return lines


def _describe(status: WaiverStatus) -> str:
    w = status.waiver
    until = f"，有效期至 {w.expires}" if w.expires else ""
    return f"第 {w.line} 行 {w.rule} {w.scope} (批准人 {w.approved_by}{until})"
