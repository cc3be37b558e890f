"""The `audit` command line: thin typer commands over the library (one module per command).

Every command takes ``--db PATH`` (default ``audit.duckdb`` in the working directory) and
``--debug``. Library errors (``audit.errors.AuditError``) become one line on stderr and the
documented exit code; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="audit",
    help="帮办代办服务审计工具 — audit 帮办代办 case logs against 《帮办代办服务规范》.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Importing the command modules registers their commands on `app`.
from audit.cli import bulletin as _bulletin  # noqa: E402,F401
from audit.cli import calendar as _calendar  # noqa: E402,F401
from audit.cli import case as _case  # noqa: E402,F401
from audit.cli import check as _check  # noqa: E402,F401
from audit.cli import compare as _compare  # noqa: E402,F401
from audit.cli import demo as _demo  # noqa: E402,F401
from audit.cli import findings as _findings  # noqa: E402,F401
from audit.cli import ingest as _ingest  # noqa: E402,F401
from audit.cli import kpi as _kpi  # noqa: E402,F401
from audit.cli import quarantine as _quarantine  # noqa: E402,F401
from audit.cli import rectify as _rectify  # noqa: E402,F401
from audit.cli import report as _report  # noqa: E402,F401
from audit.cli import rules as _rules  # noqa: E402,F401
from audit.cli import sample as _sample  # noqa: E402,F401


def main() -> None:
    """Console-script entry point."""
    app()
