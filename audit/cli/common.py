"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable

import typer

from audit.db import DEFAULT_DB
from audit.errors import AuditError

DbOption = typer.Option(Path(DEFAULT_DB), "--db", help="DuckDB 数据库文件 (database file).")
DebugOption = typer.Option(False, "--debug", help="出错时显示完整堆栈 (show tracebacks).")


def run_guarded(debug: bool, fn: Callable[[], int | None]) -> None:
    """Run `fn`; turn an AuditError into one line on stderr and its exit code."""
    try:
        code = fn()
    except AuditError as exc:
        if debug:
            raise
        typer.echo(f"错误 (error): {exc}", err=True)
        raise typer.Exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("已中断 (interrupted)", err=True)
        raise typer.Exit(130)
    except typer.Exit:
        raise
    except Exception as exc:  # anything unexpected: one line, exit 2; details with --debug
        if debug:
            raise
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        if exc.__class__.__module__.startswith("duckdb") and ("lock" in first.lower() or "IO Error" in first):
            typer.echo(f"错误 (error): 无法打开数据库: {first}", err=True)
        else:
            typer.echo(f"错误 (error): 内部错误 {type(exc).__name__}: {first} (用 --debug 查看详情)", err=True)
        raise typer.Exit(2)
    raise typer.Exit(code or 0)


def guarded(fn: Callable) -> Callable:
    """Decorator form of `run_guarded` for commands that take a `debug` parameter."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = kwargs.get("debug", False)
        run_guarded(debug, lambda: fn(*args, **kwargs))

    return wrapper


def echo(text: str = "", nl: bool = True) -> None:
    """Print to stdout (kept in one place so output can be redirected in tests); `nl=False` for
    output written in parts."""
    typer.echo(text, nl=nl)


def eprint(text: str) -> None:
    print(text, file=sys.stderr)
