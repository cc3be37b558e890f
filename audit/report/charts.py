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


def city_comparison(ranking: pd.DataFrame, colors: dict[str, str]) -> Markup:
    """Grouped bars: each rate figure on one 0–100 % yardstick, one bar per city."""
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    with matplotlib.rc_context(_rc()):
        cities = list(ranking["city"])
        figs = list(RATE_FIGURES)
        fig = _new_figure(7.2, 2.9)
        ax = fig.add_subplot()
        width = 0.8 / max(len(cities), 1)
        for i, city in enumerate(cities):
            values = [pd.to_numeric(ranking.loc[ranking["city"] == city, f], errors="coerce").iloc[0] for f in figs]
            xs = [j + (i - (len(cities) - 1) / 2) * width for j in range(len(figs))]
            ax.bar(xs, [0 if pd.isna(v) else v for v in values], width * 0.92, label=city, color=colors.get(city))
        ax.set_xticks(range(len(figs)), [figure_zh(f) for f in figs])
        ax.set_ylim(0, 1.0)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(ncols=min(len(cities), 6), loc="upper center", bbox_to_anchor=(0.5, 1.14))
        fig.subplots_adjust(left=0.07, right=0.99, top=0.86, bottom=0.1)
        return to_svg(fig, "chart-cities", "各地市指标对比")


def trend_charts(monthly: pd.DataFrame, months: list[str], colors: dict[str, str],
                 highlight: str | None) -> list[dict]:
    """One line chart per figure: months across, one line per city; `highlight` month shaded."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    charts = []
    with matplotlib.rc_context(_rc()):
        for fig_name in TREND_FIGURES:
            fig = _new_figure(3.6, 2.5)
            ax = fig.add_subplot()
            x = {m: i for i, m in enumerate(months)}
            low = 1.0
            for city, part in monthly.groupby("city", sort=True):
                values = pd.to_numeric(part[fig_name], errors="coerce")
                keep = values.notna() & part["month"].isin(x)
                xs = [x[m] for m in part.loc[keep, "month"]]
                ax.plot(xs, values[keep], marker="o", markersize=2.5, linewidth=1.4, label=city,
                        color=colors.get(city))
                if fig_name != "cases" and keep.any():
                    low = min(low, float(values[keep].min()))
            if highlight in x:
                ax.axvspan(x[highlight] - 0.4, x[highlight] + 0.4, color="#fff1c2", zorder=0)
            ax.set_xticks(range(len(months)), [m[2:] for m in months], rotation=0)
            if fig_name == "cases":
                ax.set_ylim(bottom=0)
                ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
            else:
                ax.set_ylim(max(0.0, (int(low * 10) - 1) / 10), 1.02)
                ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            ax.grid(axis="y", color="#dddddd", linewidth=0.6)
            ax.set_title(f"{figure_zh(fig_name)} 月度趋势")
            ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=min(len(colors), 5),
                      handlelength=1.5, columnspacing=1.0)
            fig.subplots_adjust(left=0.13, right=0.97, top=0.89, bottom=0.23)
            charts.append({"figure": fig_name, "title": f"{figure_zh(fig_name)} 月度趋势",
                           "svg": to_svg(fig, f"chart-{fig_name.replace('_', '-')}", f"{figure_zh(fig_name)} 月度趋势")})
    return charts
