"""Charts of the report: matplotlib (no pyplot, no GUI) → inline SVG with text drawn as paths.

Text as paths means a chart needs no font on the viewer's machine and cannot show missing-glyph
boxes as long as the CJK font of `audit.report.fonts` covers it. Output is reproducible: a fixed
``svg.hashsalt``, no date, no comments, and every id prefixed with the chart's own id so that the
charts of one page never share an id.
"""

from __future__ import annotations

import io
import re

import pandas as pd
from markupsafe import Markup, escape

from audit.report.fonts import matplotlib_family
from audit.report.text import RATE_FIGURES, figure_zh

PALETTE = ("#1f5fa8", "#c8102e", "#2e8b57", "#e07b00", "#6a3d9a", "#8c564b", "#d6479b", "#5f6b73",
           "#9a9a00", "#00a2b8")
TREND_FIGURES = ("cases", "compliance_rate", "response_rate", "resolution_rate", "on_time_rate",
                 "satisfaction_rate", "followup_rate")
_ID_REF = re.compile(r'(\sid="|href="#|url\(#)([^")]+)')


def _rc() -> dict:
    return {"font.family": [matplotlib_family()], "svg.fonttype": "path", "svg.hashsalt": "bangban-audit",
            "font.size": 8.5, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
            "axes.unicode_minus": True, "legend.frameon": False}


def city_colors(all_cities: list[str]) -> dict[str, str]:
    """A fixed colour per city (by its place among all cities, so a filtered report keeps colours)."""
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(all_cities)}


def to_svg(fig, chart_id: str, label: str) -> Markup:
    """A matplotlib figure as an inline ``<svg>`` element, ids prefixed with `chart_id`."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = _ID_REF.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}", svg)
    svg = svg.replace("<svg ", f'<svg id="{chart_id}" class="chart-svg" role="img" aria-label="{escape(label)}" ', 1)
    return Markup(svg.strip())


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=72)


def city_comparison(df: pd.DataFrame, colors: dict[str, str], min_cases: int) -> dict:
    """Each rate of each city as a point with its 95 % interval (one small panel per figure, cities
    down the side), value and k/n beside it; a hollow point rests on fewer than `min_cases`, a
    diamond is the case-mix-adjusted rate. Each panel's axis spans its own values (not from 0).

    `df` is `audit.report.comparison.city_frame`. Returns {"svg", "caption"}.
    """
    import matplotlib
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figs = [f for f in RATE_FIGURES if pd.to_numeric(df[f], errors="coerce").notna().any()]
    cities = list(df["city"])
    ncols = 2
    nrows = max(1, -(-len(figs) // ncols))
    panel_h = 0.62 + 0.24 * len(cities)
    with matplotlib.rc_context(_rc()):
        fig = _new_figure(7.2, 0.15 + nrows * panel_h)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        from_zero = True
        adjusted_shown = False
        for ax, name in zip(axes.flat, figs):
            value, low, high = _floats(df, name), _floats(df, f"{name}_low"), _floats(df, f"{name}_high")
            den = _floats(df, f"{name}_den")
            adjusted = _floats(df, f"{name}_adjusted") if f"{name}_adjusted" in df.columns else None
            known = ~pd.isna(value)
            lo = float(min(low[known].min(), value[known].min()))
            hi = float(max(high[known].max(), value[known].max()))
            pad = max(0.02, (hi - lo) * 0.08)
            left, right = max(0.0, lo - pad), min(1.0, hi + pad)
            if right - left < 0.1:  # a narrow span still shows a readable scale
                left, right = max(0.0, min(left, right - 0.1)), min(1.0, max(right, left + 0.1))
            from_zero = from_zero and left == 0.0
            n = len(cities)
            for i, city in enumerate(cities):
                y = n - 1 - i
                color = colors.get(city, "#333333")
                if not known[i]:
                    label = "—"
                else:
                    ax.hlines(y, low[i], high[i], color=color, linewidth=1.6)
                    small = den[i] < min_cases
                    ax.plot([value[i]], [y], marker="o", markersize=5, color=color,
                            markerfacecolor="white" if small else color, markeredgewidth=1.3)
                    if adjusted is not None and not pd.isna(adjusted[i]) and len(cities) > 1:
                        ax.plot([adjusted[i]], [y], marker="D", markersize=3.4, color="#333333",
                                markerfacecolor="none", markeredgewidth=0.9)
                        adjusted_shown = True
                    label = f"{value[i] * 100:.1f}%  {int(df[f'{name}_num'].iloc[i]):,}/{int(den[i]):,}"
                ax.text(1.03, y, label, transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=7.5)
            ax.set_xlim(left, right)
            ax.set_ylim(-0.6, n - 0.4)
            ax.set_yticks(range(n), list(reversed(cities)))
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.grid(axis="x", color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
            ax.set_title(figure_zh(name), loc="left", fontsize=9)
            ax.tick_params(axis="y", length=0)
        for ax in list(axes.flat)[len(figs):]:
            ax.set_visible(False)
        fig.subplots_adjust(left=0.08, right=0.84, top=1 - 0.3 / (0.15 + nrows * panel_h),
                            bottom=0.35 / (0.15 + nrows * panel_h), wspace=0.62, hspace=0.75)
        svg = to_svg(fig, "chart-cities", "各地市比率及其 95% 区间")
    caption = (f"点为比率，横线为其 95% 区间，右侧为比率与分子/分母；空心点表示分母不足 {min_cases}"
               + ("；空心菱形为按服务类型与服务对象类别调整后的比率" if adjusted_shown else "")
               + ("。各小图横轴只截取数值所在的范围，不从 0 开始，请看刻度。" if not from_zero else "。"))
    return {"svg": svg, "caption": caption}


def _floats(df: pd.DataFrame, column: str):
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float, na_value=float("nan"))


def month_range(months: list[str]) -> list[str]:
    """Every month from the first to the last of `months` (YYYY-MM), those without data included."""
    if not months:
        return []
    first, last = min(months), max(months)
    out, year, mon = [], int(first[:4]), int(first[5:])
    while f"{year}-{mon:02d}" <= last:
        out.append(f"{year}-{mon:02d}")
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return out


def trend_charts(monthly: pd.DataFrame, months: list[str], colors: dict[str, str],
                 highlight: str | None, min_cases: int) -> list[dict]:
    """One line chart per figure: months across (every month, a gap where a city has none), one
    line per city, its latest value written at the line's end; a hollow point rests on fewer than
    `min_cases`; `highlight` month shaded. Rate axes span the values, not from 0 (`from_zero`)."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    charts = []
    axis = month_range(months)
    x = {m: i for i, m in enumerate(axis)}
    with matplotlib.rc_context(_rc()):
        for fig_name in TREND_FIGURES:
            fig = _new_figure(3.6, 2.5)
            ax = fig.add_subplot()
            low, high = 1.0, 0.0
            ends = []
            for city, part in monthly.groupby("city", sort=True):
                series = part.set_index("month")[fig_name].reindex(axis)
                values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
                color = colors.get(city)
                ax.plot(range(len(axis)), values, linewidth=1.4, label=city, color=color)  # NaN: a gap
                if fig_name == "cases":
                    small = [False] * len(axis)
                else:
                    den = pd.to_numeric(part.set_index("month")[f"{fig_name}_den"].reindex(axis),
                                        errors="coerce").fillna(0).to_numpy()
                    small = list(den < min_cases)
                for filled in (True, False):
                    pts = [(i, v) for i, v in enumerate(values) if not pd.isna(v) and small[i] != filled]
                    if pts:
                        ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle="none", marker="o",
                                markersize=3 if filled else 3.6, color=color,
                                markerfacecolor=color if filled else "white", markeredgewidth=1.0)
                known = [(i, v) for i, v in enumerate(values) if not pd.isna(v)]
                if known:
                    ends.append((known[-1][0], known[-1][1], color))
                    if fig_name != "cases":
                        low = min(low, min(v for _, v in known))
                        high = max(high, max(v for _, v in known))
            if highlight in x:
                ax.axvspan(x[highlight] - 0.4, x[highlight] + 0.4, color="#fff1c2", zorder=0)
            ax.set_xticks(range(len(axis)), [m[2:] for m in axis], rotation=0)
            ax.set_xlim(-0.5, len(axis) - 0.5 + 0.9)
            if fig_name == "cases":
                ax.set_ylim(bottom=0)
                ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            else:
                bottom = max(0.0, (int(low * 10) - 1) / 10) if low <= high else 0.0
                ax.set_ylim(bottom, 1.02)
                ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            _end_labels(ax, ends, fig_name)
            ax.grid(axis="y", color="#dddddd", linewidth=0.6)
            ax.set_title(f"{figure_zh(fig_name)} 月度趋势")
            ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=min(len(colors), 5),
                      handlelength=1.5, columnspacing=1.0)
            fig.subplots_adjust(left=0.13, right=0.97, top=0.89, bottom=0.23)
            charts.append({"figure": fig_name, "title": f"{figure_zh(fig_name)} 月度趋势",
                           "from_zero": fig_name == "cases" or ax.get_ylim()[0] == 0.0,
                           "svg": to_svg(fig, f"chart-{fig_name.replace('_', '-')}", f"{figure_zh(fig_name)} 月度趋势")})
    return charts


def _end_labels(ax, ends: list[tuple[int, float, str]], fig_name: str) -> None:
    """The latest value of each line written right of its last point, nudged apart so that no two
    labels overlap (at least 7 % of the axis height between them)."""
    if not ends:
        return
    bottom, top = ax.get_ylim()
    gap = (top - bottom) * 0.07
    placed: list[float] = []
    for i, v, color in sorted(ends, key=lambda e: e[1]):
        y = max([v] + [p + gap for p in placed])
        placed.append(y)
        text = f"{int(v):,}" if fig_name == "cases" else f"{v * 100:.0f}%"
        ax.annotate(text, (i, v), xytext=(i + 0.15, y), textcoords="data", fontsize=7.5, color=color,
                    va="center", ha="left", annotation_clip=False)
