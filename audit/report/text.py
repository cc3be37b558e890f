"""Words and number formats of the report: figure definitions in Chinese, %, pp, severities."""

from __future__ import annotations

import math
from dataclasses import dataclass

from audit.figures.metrics import FIGURE_ZH, FIGURES

RATE_FIGURES = tuple(f for f in FIGURES if f.endswith("_rate"))



@dataclass(frozen=True)
class Subject:
    """What a run's report and bulletin are about: the service (titles, table captions), its cases
    and the staff who handle them."""

    service: str
    cases: str
    staff: str


BANGBAN = Subject("帮办代办服务", "帮办代办办件", "帮办代办员")


def subject(vocabulary, pack_name: str | None) -> Subject:
    """帮办代办 for a pack written for the 13 帮办代办 steps (`vocabulary` canonical, or None for a run
    stored without its pack); otherwise the pack's name, its cases 办件 and their staff 经办人 — a
    complaints register or a building-permit log audited with its own pack is not a 帮办代办 service."""
    if vocabulary is None or vocabulary.kind == "canonical":
        return BANGBAN
    return Subject((pack_name or "").strip() or "规则包", "办件", "经办人")


SEVERITY_ZH = {"error": "违规", "warning": "警告", "info": "提示"}
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}

KEY_ZH = {"city": "地市", "county": "区县", "hall": "服务大厅", "month": "月份", "service_type": "服务类型",
          "channel": "服务方式", "object_type": "服务对象类别", "staff": "帮办代办员"}

# Contract §5, in the words an inspector reads. (numerator, denominator, note)
FIGURE_DEFINITIONS = {
    "cases": ("办件数", "", "范围内的办件数。办件按其首次事件 (申请/咨询) 所在月份归月 (YYYY-MM)。"),
    "response_rate": (
        "按时响应的办件 (帮办的受理、代办的需求分析在首次事件后 response_days 个工作日内)",
        "已响应或已超过响应时限仍未响应的办件",
        "时限未到且尚未响应的办件不计入 (待定)。"),
    "resolution_rate": (
        "已办结的办件",
        "已办结或已终止的办件，以及未办结、未中止、且已超过办结时限的办件",
        "中止中的办件和时限未到的办件不计入。"),
    "on_time_rate": (
        "办结日期不晚于办结时限的办件",
        "已办结且有办结时限的办件",
        "办结时限 = 起始日 (帮办受理、代办委托) 加 承诺时限与中止工作日之和 个工作日。"),
    "satisfaction_rate": (
        "评价为 非常满意、满意、基本满意 的办件",
        "有评价的办件",
        "评价以办件台账为准。"),
    "mean_rating": ("", "", "评价的平均分：非常满意 = 5、满意 = 4、基本满意 = 3、不满意 = 2、非常不满意 = 1。"),
    "followup_rate": (
        "差评 (不满意、非常不满意) 后在评价日起 followup_days 个工作日内回访的办件",
        "已回访或回访时限已过的差评办件",
        "回访时限未到且尚未回访的差评不计入。"),
    "compliance_rate": (
        "没有任何 违规 (error) 级别审计发现的办件",
        "范围内的全部办件",
        "警告 (warning)、提示 (info) 以及数据质量 (DATA-*) 发现不影响合规率。"),
}


def figure_zh(fig: str) -> str:
    """Chinese name of a figure."""
    return FIGURE_ZH.get(fig, fig)


def is_empty(value) -> bool:
    """True for None, NaN and pandas' NA."""
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except (TypeError, ValueError):
        return str(value) in ("<NA>", "nan", "NaT")


def pct(value) -> str:
    """0.8734 → '87.3%'; empty → ''."""
    return "" if is_empty(value) else f"{float(value) * 100:.1f}%"


def fmt_figure(fig: str, value) -> str:
    """A figure's value as shown in the report: % for rates, 2 decimals for the mean rating."""
    if is_empty(value):
        return ""
    if fig == "cases":
        return f"{int(value):,}"
    if fig == "mean_rating":
        return f"{float(value):.2f}"
    return pct(value)


def fmt_change(fig: str, value) -> str:
    """A month-on-month change: '+1.2 pp' for rates, '+12' for cases, '+0.05' for the mean rating.

    A change that rounds to zero is written without a sign ('0.0 pp').
    """
    if is_empty(value):
        return ""
    if fig == "cases":
        text = f"{int(value):+,}"
    elif fig == "mean_rating":
        text = f"{float(value):+.2f}"
    else:
        text = f"{float(value) * 100:+.1f} pp"
    return text[1:] if text[1:].split(" ")[0].strip("0.") == "" else text


def fmt_ratio(num, den) -> str:
    """What a rate rests on: '131/150'; '' when the denominator is empty or missing."""
    if is_empty(den) or not den:
        return ""
    return f"{int(num):,}/{int(den):,}"


def fmt_basis(fig: str, rec: dict) -> str:
    """What a figure of `rec` (a row with ``<figure>_num`` / ``_den``) rests on: k/n for a rate,
    the number of rated cases for the mean rating ('评价 78 件'); '' without them."""
    den = rec.get(f"{fig}_den")
    if fig == "mean_rating":
        return f"评价 {int(den):,} 件" if not is_empty(den) and den else ""
    return fmt_ratio(rec.get(f"{fig}_num"), den)


def fmt_count(value) -> str:
    """An integer count with thousands separators; empty → ''."""
    return "" if is_empty(value) else f"{int(value):,}"
