"""The HTML report (`audit report`): one self-contained, reproducible file in Chinese.

See `audit.report.build.write_report`. Modules: ``scope`` (the stored run and the chosen cities
and month, prepared for reading), ``conclusions`` (主要结论: statements generated from the
figures), ``figures`` (scope, summary, breakdowns), ``comparison`` (cities on one yardstick, the
city × rule matrix), ``compliance`` (per rule and clause), ``halls`` (hall and staff tables),
``process`` (过程视图: variants and the directly-follows map per city) and ``processmap`` (the
map drawn as inline SVG), ``casetable`` (the findings table), ``charts`` (matplotlib → inline
SVG), ``fonts`` (the embedded CJK font, text widths), ``provenance`` (inputs, pack, settings,
calendar), ``text`` (definitions, number formats, rule titles with the values in force).
"""

from audit.report.build import ReportInfo, render_report, write_report

__all__ = ["ReportInfo", "render_report", "write_report"]
