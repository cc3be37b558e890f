"""主要结论: the report's opening statements, generated from the figures (no free text to keep).

`conclusions` returns structured statements — the tests check these, the template
(``reports/_conclusions.html``) only renders them:

- `CityExtremes`: per rate figure, the best and the worst city of the scope, what each rate rests
  on (k/n) and whether the two are distinguishable (their 95 % Wilson intervals do not overlap,
  contract §5.1); the case-mix-adjusted best and worst where the figure has an adjusted rate and
  they differ; which of the two rest on fewer than `min_cases`. Only with two or more cities.
- `MonthMove`: the biggest month-on-month changes (city × rate figure, in percentage points) of
  the latest month of the scope against the month before, counted only where both months rest on
  at least `min_cases` (a move of 3 cases out of 5 says nothing).
- `CityRules`: for each city, its three service rules with the most cases (DATA-* rules describe
  the data, not the service, and are left out).
- `WeakHall`: the halls with the lowest compliance among those with at least `min_cases` cases.
- the data-quality notice of the run (`audit.check.dataquality.notice_lines`), when there is any.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from audit.figures.fair import ADJUSTED_FIGURES, adjusted_rates, wilson
from audit.report.figures import Scope, kpis, previous_month
from audit.report.scope import open_scope
from audit.report.text import RATE_FIGURES, figure_zh, fmt_ratio, is_empty, pct
from audit.rules.titles import rule_title

TOP_MOVES = 5        # month-on-month moves listed
TOP_RULES = 3        # rules per city
WEAK_HALLS = 3       # halls listed


@dataclass(frozen=True)
class Rate:
    """A rate of one group: k of n, its value and 95 % Wilson interval."""

    num: int
    den: int

    @property
    def value(self) -> float | None:
        return self.num / self.den if self.den else None

    @property
    def interval(self) -> tuple[float | None, float | None]:
        return wilson(self.num, self.den)

    def text(self) -> str:
        """'82.3% (247/300)'."""
        return f"{pct(self.value)} ({fmt_ratio(self.num, self.den)})"

    def overlaps(self, other: Rate) -> bool:
        """Whether the two closed intervals share a point (an empty one overlaps everything)."""
        (a, b), (c, d) = self.interval, other.interval
        if None in (a, b, c, d):
            return True
        return a <= d and c <= b


@dataclass(frozen=True)
class CityExtremes:
    """The best and the worst city on one rate figure."""

    figure: str
    best: str
    best_rate: Rate
    worst: str
    worst_rate: Rate
    distinguishable: bool            # the two intervals do not overlap
    small: tuple[str, ...] = ()      # of best and worst, those resting on fewer than min_cases
    adjusted_best: str | None = None     # by the case-mix-adjusted rate, when it differs
    adjusted_worst: str | None = None

    def text(self, min_cases: int) -> str:
        name = figure_zh(self.figure)
        out = f"{name}：最好 {self.best} {self.best_rate.text()}，最差 {self.worst} {self.worst_rate.text()}，"
        out += ("相差 " + f"{(self.best_rate.value - self.worst_rate.value) * 100:.1f} pp；"
                if self.best_rate.value is not None and self.worst_rate.value is not None else "")
        out += ("两者的 95% 区间不重叠，差别可以区分。" if self.distinguishable
                else "两者的 95% 区间重叠，差别可能只是偶然波动，不宜据此排先后。")
        if self.small:
            out += f"{'、'.join(self.small)} 的分母不足 {min_cases}，结论仅供参考。"
        if self.adjusted_best or self.adjusted_worst:
            parts = [f"最好 {self.adjusted_best}" if self.adjusted_best else "",
                     f"最差 {self.adjusted_worst}" if self.adjusted_worst else ""]
            out += f"按服务类型与服务对象类别调整后：{'，'.join(p for p in parts if p)}。"
        return out


@dataclass(frozen=True)
class MonthMove:
    """One city's change on one rate figure from the previous month to the month."""

    city: str
    figure: str
    month: str
    previous: str
    before: Rate
    after: Rate

    @property
    def change_pp(self) -> float:
        return (self.after.value - self.before.value) * 100

    @property
    def distinguishable(self) -> bool:
        return not self.before.overlaps(self.after)

    def text(self) -> str:
        sign = "上升" if self.change_pp > 0 else "下降"
        out = (f"{self.city} {figure_zh(self.figure)} {sign} {abs(self.change_pp):.1f} pp："
               f"{self.previous} {self.before.text()} → {self.month} {self.after.text()}")
        return out + ("；两月的 95% 区间不重叠。" if self.distinguishable else "；两月的 95% 区间重叠。")


@dataclass(frozen=True)
class RuleCount:
    """A rule and the cases it flagged in one city."""

    rule_id: str
    title: str
    cases: int
    share: float       # of the city's cases in scope


@dataclass(frozen=True)
class CityRules:
    """A city's service rules with the most cases."""

    city: str
    cases: int
    rules: tuple[RuleCount, ...]

    def text(self) -> str:
        if not self.rules:
            return f"{self.city} ({self.cases:,} 件)：没有服务规则的审计发现。"
        items = "；".join(f"{r.rule_id} {r.title}：{r.cases:,} 件 ({pct(r.share)})" for r in self.rules)
        return f"{self.city} ({self.cases:,} 件)：{items}。"


@dataclass(frozen=True)
class WeakHall:
    """A hall among those with the lowest compliance."""

    city: str
    hall: str
    compliance: Rate
    errors: int = 0

    def text(self) -> str:
        low, high = self.compliance.interval
        interval = f"，95% 区间 {pct(low)}–{pct(high)}" if low is not None else ""
        return f"{self.city} {self.hall}：合规率 {self.compliance.text()}{interval}，违规发现 {self.errors:,} 条。"


@dataclass
class Conclusions:
    """Every statement of 主要结论 (see the module doc)."""

    cities: list[str]
    min_cases: int
    extremes: list[CityExtremes] = field(default_factory=list)
    month: str | None = None
    previous: str | None = None
    has_previous: bool = False
    moves: list[MonthMove] = field(default_factory=list)
    moves_small: int = 0              # city × figure moves left out: fewer than min_cases in a month
    city_rules: list[CityRules] = field(default_factory=list)
    weak_halls: list[WeakHall] = field(default_factory=list)
    halls_small: int = 0              # halls left out: fewer than min_cases cases
    data_quality: list[str] = field(default_factory=list)

    @property
    def single_city(self) -> bool:
        return len(self.cities) == 1


def conclusions(con, run_id: int, scope: Scope, rules: dict[str, dict], min_cases: int, settings=None,
                data_quality: list[str] | None = None) -> Conclusions:
    """The statements of 主要结论 for the scope (``report_scope`` and ``report_findings`` must hold
    the scope's cases and findings; `rules` maps rule id → {"raw_title", "clause_key", …}, as
    `audit.report.compliance.rule_catalog`; `settings` are the run's, for the values in the titles)."""
    out = Conclusions(list(scope.cities), min_cases, data_quality=list(data_quality or []))
    if not out.single_city:
        out.extremes = city_extremes(con, run_id, scope, min_cases)
    _month_moves(con, run_id, scope, min_cases, out)
    out.city_rules = city_rules(con, rules, settings)
    out.weak_halls, out.halls_small = weak_halls(con, run_id, scope, min_cases)
    return out


def _rate(rec: dict, fig: str) -> Rate:
    num, den = rec.get(f"{fig}_num"), rec.get(f"{fig}_den")
    return Rate(0 if is_empty(num) else int(num), 0 if is_empty(den) else int(den))


def city_extremes(con, run_id: int, scope: Scope, min_cases: int) -> list[CityExtremes]:
    """Per rate figure with a value in two or more cities: the best and the worst city (ties: the
    first city by name)."""
    df = kpis(con, run_id, ["city"], scope.where, with_counts=True)
    adjusted = adjusted_rates(con, run_id, ["city"], scope.where).set_index("city")
    out = []
    for fig in RATE_FIGURES:
        part = df[pd.to_numeric(df[fig], errors="coerce").notna()].copy()
        if len(part) < 2:
            continue
        part["_v"] = pd.to_numeric(part[fig])
        best = part.sort_values(["_v", "city"], ascending=[False, True], kind="stable").iloc[0].to_dict()
        worst = part.sort_values(["_v", "city"], ascending=[True, True], kind="stable").iloc[0].to_dict()
        if best["city"] == worst["city"]:
            continue
        b, w = _rate(best, fig), _rate(worst, fig)
        small = tuple(r["city"] for r in (best, worst) if _rate(r, fig).den < min_cases)
        adj_best = adj_worst = None
        if fig in ADJUSTED_FIGURES:
            adj = pd.to_numeric(adjusted[f"{fig}_adjusted"], errors="coerce").reindex(part["city"]).dropna()
            if len(adj) >= 2:
                order = sorted(adj.items(), key=lambda kv: (-kv[1], kv[0]))
                adj_best = order[0][0] if order[0][0] != best["city"] else None
                order = sorted(adj.items(), key=lambda kv: (kv[1], kv[0]))
                adj_worst = order[0][0] if order[0][0] != worst["city"] else None
        out.append(CityExtremes(fig, best["city"], b, worst["city"], w, not b.overlaps(w), small,
                                adj_best, adj_worst))
    return out


def _month_moves(con, run_id: int, scope: Scope, min_cases: int, out: Conclusions) -> None:
    """The biggest month-on-month moves of the latest month of the scope (or `--month`)."""
    out.month = scope.month or (scope.months[-1] if scope.months else None)
    if not out.month:
        return
    out.previous = previous_month(out.month)
    df = kpis(con, run_id, ["city", "month"], scope.city_where, with_counts=True)
    now = df[df["month"] == out.month].set_index("city")
    before = df[df["month"] == out.previous].set_index("city")
    out.has_previous = len(before) > 0
    moves = []
    for city in sorted(set(now.index) & set(before.index)):
        for fig in RATE_FIGURES:
            a, b = _rate(before.loc[city].to_dict(), fig), _rate(now.loc[city].to_dict(), fig)
            if not a.den or not b.den:
                continue
            if a.den < min_cases or b.den < min_cases:
                out.moves_small += 1
                continue
            moves.append(MonthMove(city, fig, out.month, out.previous, a, b))
    order = {f: i for i, f in enumerate(RATE_FIGURES)}
    moves.sort(key=lambda m: (-round(abs(m.change_pp), 9), m.city, order[m.figure]))
    out.moves = [m for m in moves if round(m.change_pp, 9) != 0][:TOP_MOVES]


def city_rules(con, rules: dict[str, dict], settings=None) -> list[CityRules]:
    """Per city of the scope, its `TOP_RULES` service rules with the most cases (ties: rule id),
    titled with the city's own values."""
    service = [r for r, info in rules.items() if info.get("clause_key") != "DATA"]
    cases = dict(con.execute("SELECT city, count(*) FROM report_scope GROUP BY city").fetchall())
    rows = con.execute("""
        SELECT city, rule_id, count(*) AS n FROM report_findings
        WHERE list_contains(?, rule_id) GROUP BY ALL ORDER BY city, n DESC, rule_id""", [service]).fetchall()
    per_city: dict[str, list[RuleCount]] = {c: [] for c in sorted(cases)}
    for city, rule_id, n in rows:
        if len(per_city[city]) < TOP_RULES:
            title = rule_title(rules[rule_id]["raw_title"], settings, city=city)
            per_city[city].append(RuleCount(rule_id, title, int(n), n / cases[city]))
    return [CityRules(city, int(cases[city]), tuple(items)) for city, items in per_city.items()]


def weak_halls(con, run_id: int, scope: Scope, min_cases: int) -> tuple[list[WeakHall], int]:
    """The `WEAK_HALLS` halls with the lowest compliance among those with at least `min_cases`
    cases (ties: more cases first, then city and hall), and how many halls had fewer cases."""
    df = kpis(con, run_id, ["city", "hall"], scope.where, with_counts=True)
    df = df[df["hall"].notna()]
    big = df[df["cases"] >= min_cases].copy()
    big["_v"] = pd.to_numeric(big["compliance_rate"])
    big = big.sort_values(["_v", "cases", "city", "hall"], ascending=[True, False, True, True], kind="stable")
    errors = dict(((c, h), int(n)) for c, h, n in con.execute("""
        SELECT k.city, k.hall, count(*) FROM report_findings f JOIN case_kpi k USING (city, case_id)
        WHERE f.severity = 'error' AND NOT f.waived GROUP BY ALL""").fetchall())
    halls = [WeakHall(rec["city"], rec["hall"], _rate(rec, "compliance_rate"), errors.get((rec["city"], rec["hall"]), 0))
             for rec in big.head(WEAK_HALLS).to_dict("records")]
    return halls, int((df["cases"] < min_cases).sum())



def for_scope(con, cities: list[str] | None = None, month: str | None = None, as_of=None,
              run_id: int | None = None) -> Conclusions:
    """The statements of 主要结论 of a stored run (`run_id`, or the latest at `as_of`) for the
    chosen cities and month, as the report writes them (for other outputs, such as a bulletin)."""
    rs = open_scope(con, cities, month, as_of, run_id)
    return conclusions(con, rs.run_id, rs.scope, rs.rules, rs.min_cases, rs.settings, rs.data_quality)
