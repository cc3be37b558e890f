"""SHA-256 and line count of an input file, computed in a background thread.

This module imports nothing heavy on purpose: `audit ingest` starts the scan of its first file
(`start_early`, called from `audit.__main__`) before the rest of the program is imported, so the
hash runs on the otherwise idle second core during start-up instead of competing with DuckDB
later. The loader takes that scan with `FileScan.of(path)` when the file is unchanged since.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

CHUNK = 1 << 24

# Scans started before the loader asked, by (real path, size, mtime, inode) at their start.
_EARLY: dict[tuple, FileScan] = {}
# Options of `audit ingest` that take a value: their values are not input files.
_VALUE_OPTIONS = {"--city", "--profile", "--sheet", "--db", "--vocabulary"}


class FileScan(threading.Thread):
    """SHA-256, line count, NUL bytes and last byte of a file, computed in a background thread
    (hashlib releases the GIL) while DuckDB reads the same file."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.sha256 = ""
        self.newlines = 0
        self.nul_bytes = 0          # a file with NUL goes to the exact reader, which quarantines those records
        self.ends_with_newline = True
        self.error: BaseException | None = None
        self.start()

    @classmethod
    def of(cls, path: Path) -> FileScan:
        """The scan of `path`: the one `start_early` began, if the file is unchanged since, else a
        new one."""
        key = _identity(path)
        early = _EARLY.pop(key, None) if key else None
        return early if early is not None else cls(Path(path))

    def run(self) -> None:
        import numpy as np

        h = hashlib.sha256()
        last = b"\n"
        try:
            with open(self.path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
                    # numpy counts twice as fast as bytes.count
                    self.newlines += int(np.count_nonzero(np.frombuffer(chunk, np.uint8) == 10))
                    if b"\0" in chunk:     # memchr: a few milliseconds for 16 MiB
                        self.nul_bytes += chunk.count(b"\0")
                    last = chunk[-1:]
        except OSError as exc:   # a missing file is reported by the reader, with its own message
            self.error = exc
            return
        self.sha256 = h.hexdigest()
        self.ends_with_newline = last == b"\n"

    def result(self) -> FileScan:
        self.join()
        return self


def _identity(path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.realpath(path), st.st_size, st.st_mtime_ns, st.st_ino


def start_early(args: list[str]) -> None:
    """Start the scan of the first input file among `audit ingest`'s arguments `args` (the next
    files are scanned as the loader reaches them)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUE_OPTIONS
        else:
            key = _identity(arg)
            if key and os.path.isfile(arg):
                _EARLY[key] = FileScan(Path(arg))
            return
