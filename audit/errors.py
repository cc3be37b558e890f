"""One error hierarchy for the library; the CLI maps each class to an exit code (contract §6)."""

from __future__ import annotations


class AuditError(Exception):
    """Base class. `exit_code` is what the CLI exits with; the message is one clear line."""

    exit_code = 2


class UsageError(AuditError):
    """Bad command-line usage or configuration (exit 2)."""

    exit_code = 2


class PackError(AuditError):
    """The rule pack or a profile is invalid (exit 2). `problems` lists every problem found."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or [message]
        super().__init__(message if not problems else message + "\n" + "\n".join(problems))


class WaiverError(AuditError):
    """The waiver file of `audit check --waivers` is invalid (exit 2). `problems` lists every
    problem found, each with file, line and column; nothing is stored."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None):
        self.problems = problems or [message]
        super().__init__(message if not problems else message + "\n" + "\n".join(problems))


class CalendarError(AuditError):
    """A date falls in a year the working-day calendar does not cover (exit 2).

    Inside SQL the working-day macros cannot raise this class: they call ``error()`` with a message
    that starts with `SQL_CODE`, and the engine turns exactly those errors into a CalendarError.
    """

    exit_code = 2
    SQL_CODE = "AUDIT-CALENDAR-RANGE"


class DatabaseBusy(AuditError):
    """The database file is locked by another process (exit 2): one writer at a time."""

    exit_code = 2


class InputError(AuditError):
    """An input file could not be loaded at all (exit 3)."""

    exit_code = 3
