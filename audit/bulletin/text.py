"""The words of the bulletin (通报): headings, sentences and cell texts, in the style of official
documents (Arabic numerals, 百分点 for changes of a rate, dates written 2026年4月3日)."""

from __future__ import annotations

import datetime as dt
import re

from audit.report.text import Subject, is_empty, pct

HEADING_OVERVIEW = "一、基本情况"
HEADING_PROBLEMS = "二、存在问题"
HEADING_REQUIREMENTS = "三、整改要求"
SUB_FIGURES = "（一）总体情况"
SUB_CITIES = "（二）各市情况"
SUB_HALLS = "（三）服务大厅红黑榜"
SUB_PROBLEMS = "（一）主要问题"
SUB_CASES = "（二）典型案例"

# The rates a bulletin reports, in the order the policy names them (响应率、解决率、满意率 first).
OVERVIEW_FIGURES = ("response_rate", "resolution_rate", "on_time_rate", "satisfaction_rate", "followup_rate",
                    "compliance_rate")
TABLE_FIGURES = OVERVIEW_FIGURES
FIGURE_NAMES = {"response_rate": "响应率", "resolution_rate": "解决率", "on_time_rate": "按时办结率",
                "satisfaction_rate": "满意率", "followup_rate": "差评回访率", "compliance_rate": "合规率"}
_DIGITS = "零一二三四五六七八九"
NAMED_MAX = 20          # halls named as not ranked; the rest are counted


def title(period: str, area: str, about: Subject) -> str:
    """关于2026年3月全省帮办代办服务情况的通报."""
    return f"关于{period}{area}{about.service}情况的通报"


def figure_name(fig: str) -> str:
    """Chinese name of a rate."""
    return FIGURE_NAMES.get(fig, fig)


def chinese_number(n: int) -> str:
    """1 → 一, 10 → 十, 12 → 十二, 21 → 二十一 (1..99), as in （一）（二）…."""
    tens, ones = divmod(n, 10)
    if n < 10:
        return _DIGITS[n]
    head = "" if tens == 1 else _DIGITS[tens]
    return head + "十" + (_DIGITS[ones] if ones else "")


def chinese_date(d: dt.date) -> str:
    """2026-04-03 → 2026年4月3日 (the 成文日期 of official documents: Arabic numerals, no zero padding)."""
    return f"{d.year}年{d.month}月{d.day}日"


def period_name(month: str) -> str:
    """'2026-03' → 2026年3月."""
    return f"{int(month[:4])}年{int(month[5:])}月"


def area_name(cities: list[str], all_cities: list[str]) -> str:
    """全省 when the bulletin covers every city of the run, else the cities named (延安、宝鸡)."""
    return "全省" if cities == all_cities else "、".join(cities)


def addressee(cities: list[str], all_cities: list[str]) -> str:
    """The addressee line (主送)."""
    if cities == all_cities:
        return "各市、各有关服务大厅："
    return f"{'、'.join(cities)}各有关服务大厅："


def basis(standard: str, period: str, area: str, as_of: dt.date, about: Subject) -> str:
    """The opening sentence: the standard judged by, the period, the audit date."""
    return (f"依据{standard}，对{period}{area}受理的{about.cases}进行了审计（审计日{chinese_date(as_of)}）。"
            f"现将有关情况通报如下：")


def standard_name(standard: str | None, pack_name: str | None) -> str:
    """The standard's title in 《》 as the pack names it, e.g. 《帮办代办服务规范》."""
    found = re.search(r"《[^》]+》", standard or "")
    if found:
        return found.group(0)
    name = (standard or pack_name or "帮办代办服务规范").strip()
    return name if name.startswith("《") else f"《{name}》"


def count(value) -> str:
    """A number of cases: 1,234 → '1234' (official text writes no thousands separator)."""
    return "0" if is_empty(value) else str(int(value))


def share(rec: dict, fig: str, sep: str = "") -> str:
    """'87.5%（35/40）' (with `sep` between the rate and its counts: a line break in a table cell);
    an empty rate '—（0/0）'."""
    num, den = rec.get(f"{fig}_num"), rec.get(f"{fig}_den")
    value = rec.get(fig)
    text = "—" if is_empty(value) else pct(value)
    return f"{text}{sep}（{count(num)}/{count(den)}）"


def change_pp(now, before) -> str | None:
    """The change of a rate in 百分点, rounded to 0.1: '上升2.5个百分点', '下降0.3个百分点', '持平';
    None when either side is empty."""
    if is_empty(now) or is_empty(before):
        return None
    points = round((float(now) - float(before)) * 100, 1)
    if points == 0:
        return "持平"
    return f"{'上升' if points > 0 else '下降'}{abs(points):.1f}个百分点"


def overview(period: str, area: str, now: dict, before: dict, about: Subject) -> str:
    """The month's figures and their change against the month before."""
    n, m = int(now.get("cases") or 0), int(before.get("cases") or 0)
    if m:
        diff = n - m
        change = "持平" if diff == 0 else f"{'增加' if diff > 0 else '减少'}{abs(diff)}件"
        head = f"{period}，{area}共受理{about.cases}{n}件，较上月（{m}件）{change}。"
    else:
        head = f"{period}，{area}共受理{about.cases}{n}件（上月无办件，不作比较）。"
    parts = []
    for fig in OVERVIEW_FIGURES:
        name = figure_name(fig)
        if is_empty(now.get(fig)):
            parts.append(f"{name}无可计算的办件")
            continue
        text = f"{name}{share(now, fig)}"
        if m:
            moved = change_pp(now.get(fig), before.get(fig))
            text += f"，较上月{moved}" if moved else "，上月无可比数据"
        parts.append(text)
    return head + "；".join(parts) + "。"


def city_table_caption(period: str, about: Subject) -> str:
    return f"表1　{period}各市{about.service}指标"


def rank_line(rec: dict, fig: str) -> str:
    """'\n第2名' with its marks (from `audit.figures.fair.rank_with_marks`): ≈ when the figure's
    interval overlaps another ranked one's (the rank cannot be told apart), † when its denominator is
    below min_cases; '' for an unranked (empty) figure."""
    rank = rec.get(f"{fig}_rank")
    if is_empty(rank):
        return ""
    distinct, small = rec.get(f"{fig}_distinct"), rec.get(f"{fig}_small")
    marks = ("≈" if not is_empty(distinct) and not bool(distinct) else "") + ("†" if bool(small) else "")
    return f"\n第{int(rank)}名{marks}"


def rank_notes(least: int, unit: str) -> list[str]:
    """The notes under a ranked table."""
    return [f"注：名次按指标由高到低排列 (1 = 最好)，并列同名次，空指标不排名。“≈”表示该指标的 95% 置信区间 (Wilson) "
            f"与其他{unit}的区间重叠，名次不能区分；“†”表示该指标的分母少于 {least} 件，名次依据的办件少。"]


def halls_intro(period: str, least: int, ranked: int, red: int, black: int,
                left_out: list[tuple[str, str | None, int]]) -> str:
    """The paragraph before the 红榜 and 黑榜, naming the halls that were not ranked."""
    if red and black:
        text = (f"{period}受理办件不少于{least}件的服务大厅共{ranked}个，按合规率排名，"
                f"合规率最高的{red}个列入红榜、最低的{black}个列入黑榜。")
    elif ranked:
        text = f"{period}受理办件不少于{least}件的服务大厅共{ranked}个，合规率无高低之分，本月不设红黑榜。"
    else:
        text = f"{period}没有受理办件不少于{least}件的服务大厅，本月不设红黑榜。"
    if left_out:
        names = "、".join(f"{_place(city, hall)}（{int(n)}件）" for city, hall, n in left_out[:NAMED_MAX])
        more = f"等{len(left_out)}个" if len(left_out) > NAMED_MAX else ""
        text += f"办件不足{least}件、未参加排名的服务大厅{len(left_out)}个：{names}{more}。"
    return text


def red_caption(period: str) -> str:
    return f"表2　{period}服务大厅红榜 (合规率最高)"


def black_caption(period: str) -> str:
    return f"表3　{period}服务大厅黑榜 (合规率最低，最低者在前)"


def _place(city: str, hall: str | None) -> str:
    """A hall named with its city unless its name starts with it: 宝鸡甲大厅, 延安 市民中心."""
    if not hall or (isinstance(hall, float)):
        return f"{city}（未填写服务大厅）"
    return hall if hall.startswith(city) else f"{city}{hall}"


def total_label(area: str) -> str:
    """The label of the table's total row."""
    return "合计" if area == "全省" else f"合计（{area}）"


def problem_line(i: int, title: str, clause: str, rule_id: str, n: int, per_city: list[tuple[str, int]]) -> str:
    """1．限时办结……。共3件，其中延安2件、宝鸡1件（规范条款 10 限时办结，规则 REQ-TIME-LIMIT）。
    Numbered 1．2．… : the third level of an official document, under the heading （一）主要问题."""
    cities = "、".join(f"{city}{k}件" for city, k in per_city)
    where = f"，其中{cities}" if len(per_city) > 1 else f"，均在{per_city[0][0]}" if per_city else ""
    return f"{i + 1}．{_sentence(title)}共{n}件{where}（规范条款 {clause}，规则 {rule_id}）。"


def typical_case(i: int, city: str, hall: str | None, case_id: str, service_type: str | None,
                 applicant: str | None, staff: str | None, rule: str, message: str | None, evidence: str,
                 about: Subject) -> str:
    """One typical case: where, which case, what went wrong (the `rule`'s title), the evidence."""
    who = [p for p in (service_type, f"服务对象{applicant}" if applicant else "",
                       f"{about.staff}{staff}" if staff else "") if p]
    people = f"（{'，'.join(who)}）" if who else ""
    head = f"{chinese_number(i + 1)}是{_place(city, hall)}办件{case_id}{people}{_sentence(rule)}"
    body = _sentence(message) if message else ""
    proof = f"证据：{evidence}。" if evidence else ""
    return head + body + proof


def requirements(deadline: dict[str, dt.date], days: int, as_of: dt.date, issuer: str,
                 has_black_list: bool, about: Subject) -> list[str]:
    """The rectification requirements; the deadline is per city when the cities' calendars differ."""
    dates = sorted(set(deadline.values()))
    if len(dates) == 1:
        when = f"于{chinese_date(dates[0])}前"
    else:
        when = "分别于" + "、".join(f"{city}{chinese_date(d)}" for city, d in deadline.items()) + "前"
    to = f"报送{issuer}" if issuer else "报送通报单位"
    items = [
        f"（一）逐件整改。各市要组织相关服务大厅对本通报所列问题办件逐件核查、逐项整改，"
        f"{when}（审计日{chinese_date(as_of)}后{days}个工作日内）将整改情况书面{to}。",
        "（二）落实差评回访。对不满意、非常不满意的评价逐件回访、限时整改，做到件件有整改、有反馈。",
    ]
    if has_black_list:
        items.append(f"（三）强化结果运用。列入黑榜的服务大厅要深入分析原因、制定整改措施，整改结果纳入{about.service}考核。")
    else:
        items.append(f"（三）强化结果运用。整改结果纳入{about.service}考核。")
    return items


def _sentence(text: str | None) -> str:
    """`text` ending in one full stop (a rule title or message may or may not end with one)."""
    text = (text or "").strip().rstrip("。.；;")
    return f"{text}。" if text else ""


NO_PROBLEMS = "本月办件未发现违规 (error) 或警告 (warning) 级别的问题。"
NO_CASES = "本月没有违规 (error) 级别的问题办件。"
