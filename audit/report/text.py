"""Words and number formats of the report: figure definitions in Chinese, %, pp, severities."""

from __future__ import annotations

import json
import math
import re

from audit.figures.metrics import FIGURE_ZH, FIGURES

RATE_FIGURES = tuple(f for f in FIGURES if f.endswith("_rate"))

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


# --- settings in rule titles and definitions ------------------------------------------------------
# A unit written right after a setting's name in a title ("archive_days 个工作日内"): a city's
# different value goes after the unit ("5 个工作日 (榆林: 2)内" reads worse than "5 个工作日 (榆林: 2) 内").
_CLOSING = "，。；：、)）」』\"'"
_UNIT = r"(?P<sep>\s*)(?P<unit>个工作日|个自然日|工作日|自然日|个月|小时|天|日|次|件)?"


def run_settings(settings) -> dict[str, dict]:
    """A run's settings (``runs.settings``: JSON text or its dict) as {"default": {…}, city: {…}}.

    Each city entry holds the settings in force for that city (the pack's, overridden by its own).
    """
    if not settings:
        return {"default": {}}
    data = json.loads(settings) if isinstance(settings, str) else dict(settings)
    data.setdefault("default", {})
    return data


def _is_scalar(value) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def setting_value(settings, name: str, city: str | None = None):
    """The value of setting `name` in force for `city` (the default when the city has none)."""
    data = run_settings(settings)
    if city and name in data.get(city, {}):
        return data[city][name]
    return data["default"].get(name)


def setting_overrides(settings, name: str, cities: list[str] | None = None) -> list[tuple[str, object]]:
    """(cities, value) where a city's value of `name` differs from the default, cities that share a
    value together ("榆林、延安"), in the order of the values' first city; `cities` limits the cities."""
    data = run_settings(settings)
    default = data["default"].get(name)
    groups: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    for city in sorted(c for c in data if c != "default"):
        if cities is not None and city not in cities:
            continue
        value = data[city].get(name, default)
        if value != default:
            key = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
            groups.setdefault(key, []).append(city)
            values[key] = value
    return [("、".join(cs), values[key]) for key, cs in groups.items()]


def _setting_names(settings, names) -> list[str]:
    data = run_settings(settings)
    known = {k for part in data.values() for k, v in part.items() if _is_scalar(v)}
    chosen = known if names is None else known & set(names)
    return sorted(chosen, key=lambda k: (-len(k), k))  # the longest first: no name eats a longer one


def fill_settings(text: str, settings, city: str | None = None, cities: list[str] | None = None,
                  names=None) -> str:
    """`text` with each setting name in it (written ``{name}`` or bare, e.g. ``followup_days``)
    replaced by the value in force.

    With `city`, that city's value. Otherwise the default value, followed by the cities (of
    `cities`, all when None) whose value differs: "1 个工作日 (榆林: 2)". Only settings whose
    value is a number or a word are replaced (lists such as ``object_types`` stay as names);
    `names` limits the replacement to those settings (a rule's own).
    """
    if not text:
        return text or ""
    for name in _setting_names(settings, names):
        pattern = re.compile(r"(?:\{" + re.escape(name) + r"\}|(?<![A-Za-z0-9_])" + re.escape(name)
                             + r"(?![A-Za-z0-9_]))" + _UNIT)
        text = pattern.sub(lambda m, name=name: _value_text(m, name, settings, city, cities), text)
    return text


def _value_text(m: re.Match, name: str, settings, city: str | None, cities: list[str] | None) -> str:
    sep, unit = m.group("sep"), m.group("unit") or ""
    out = f"{setting_value(settings, name, city)}{sep}{unit}" if unit else f"{setting_value(settings, name, city)}"
    others = setting_overrides(settings, name, cities) if city is None else []
    if others:
        out += " (" + "；".join(f"{cs}: {v}" for cs, v in others) + ")"
        rest = m.string[m.end():m.end() + 1]
        if unit and rest and not rest.isspace() and rest not in _CLOSING:
            out += " "
    return out if unit else out + sep


def rule_title(rule, settings, city: str | None = None, cities: list[str] | None = None) -> str:
    """A rule's title (a pack `Rule`, or the title text) with the values in force in place of the
    setting names it quotes: "差评须在 5 个工作日内回访"; where cities differ and no `city` is
    given, "在 1 个工作日 (榆林: 2) 内" (see `fill_settings`)."""
    title = rule if isinstance(rule, str) else getattr(rule, "title", "")
    return fill_settings(title, settings, city, cities)
