"""The HTML report (`audit report`): one self-contained, reproducible file in Chinese.

See `audit.report.build.write_report`. Modules: ``figures`` (scope, summary, ranking,
breakdowns), ``compliance`` (per rule and clause), ``casetable`` (the findings table), ``charts``
(matplotlib → inline SVG), ``fonts`` (the embedded CJK font), ``mask`` (personal data),
``provenance`` (inputs, pack, settings, calendar), ``text`` (definitions and number formats).
"""

from audit.report.build import ReportInfo, render_report, write_report

__all__ = ["ReportInfo", "render_report", "write_report"]
