"""Options and error handling shared by every command."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import typer

from audit.db import DEFAULT_DB, interrupt_all
from audit.errors import AuditError

DbOption = typer.Option(Path(DEFAULT_DB), "--db", help="DuckDB 数据库文件 (database file).")
DebugOption = typer.Option(False, "--debug", help="出错时显示完整堆栈 (show tracebacks).")

EXIT_INTERRUPTED = 130     # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143      # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a command unwinds like on Ctrl-C (the ingest's
    transaction rolled back, its temporary UTF-8 copies removed) instead of dying where it is."""


def run_guarded(debug: bool, fn: Callable[[], int | None]) -> None:
    """Run `fn`; turn an AuditError into one line on stderr and its exit code; SIGTERM and Ctrl-C
    into one line and 143 / 130."""
    with _signals_unwind() as stopped:
        try:
            code = fn()
        except AuditError as exc:
            if debug:
                raise
            typer.echo(f"错误 (error): {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            _stopped(stopped, isinstance(exc, Terminated))
        except typer.Exit:
            raise
        except Exception as exc:  # anything unexpected: one line, exit 2; details with --debug
            if stopped:     # DuckDB turns a signal during a statement into an error of its own
                _stopped(stopped, False)
            if debug:
                raise
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            typer.echo(f"错误 (error): 内部错误 {type(exc).__name__}: {first} (用 --debug 查看详情)", err=True)
            raise typer.Exit(2) from None
    raise typer.Exit(code or 0)


def _stopped(stopped: set[int], terminated: bool) -> None:
    if terminated or signal.SIGTERM in stopped:
        typer.echo("已终止 (terminated)：命令未完成，数据库保持原样", err=True)
        raise typer.Exit(EXIT_TERMINATED)
    typer.echo("已中断 (interrupted)", err=True)
    raise typer.Exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def _signals_unwind() -> Iterator[set[int]]:
    """While a command runs: SIGTERM raises `Terminated` in the main thread (Python's default is
    to die at once, leaving temporary files behind), and SIGTERM or Ctrl-C also interrupts the
    DuckDB statement that is running (a Python signal handler runs only once it returns, which can
    take many seconds). Yields the set of those signals received."""
    stopped: set[int] = set()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield stopped
        return

    raised = []

    def on_sigterm(signum, frame):
        stopped.add(signal.SIGTERM)
        if not raised:     # once: a second SIGTERM must not break the unwinding of the first
            raised.append(True)
            raise Terminated()

    # The C-level handler writes each signal's number to this pipe at once, whatever the main
    # thread is doing; the watcher interrupts DuckDB.
    read_fd, write_fd = os.pipe()
    old_handler = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        os.set_blocking(write_fd, False)
        old_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):     # e.g. Windows wants a socket: SIGTERM still unwinds
        old_fd = None
    watcher = None
    if old_fd is not None:
        watcher = threading.Thread(target=_interrupt_on_signal, args=(read_fd, stopped), daemon=True)
        watcher.start()
    try:
        yield stopped
    finally:
        if old_fd is not None:
            signal.set_wakeup_fd(old_fd)
        signal.signal(signal.SIGTERM, old_handler)
        os.close(write_fd)       # the watcher reads the end of the pipe, closes it and stops
        if watcher is not None:
            watcher.join(timeout=1)
        else:
            os.close(read_fd)


def _interrupt_on_signal(read_fd: int, stopped: set[int]) -> None:
    try:
        while data := os.read(read_fd, 64):
            signals = {s for s in data if s in (signal.SIGTERM, signal.SIGINT)}
            if signals:
                stopped.update(signals)
                interrupt_all()
    finally:
        os.close(read_fd)


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


def write_or_echo(text: str, out: Path | None, fmt: str, written: str) -> None:
    """A command's rendered output: to `out` (CSV with a BOM for Excel, its records already ending in
    CRLF), saying `已写出 out (written)`, or to stdout."""
    if out:
        out.write_text(text, encoding="utf-8-sig" if fmt == "csv" else "utf-8",
                       newline="" if fmt == "csv" else None)
        echo(f"已写出 {out} ({written})")
    else:
        echo(text.rstrip("\n"))


def eprint(text: str) -> None:
    print(text, file=sys.stderr)
