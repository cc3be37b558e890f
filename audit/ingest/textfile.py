"""Text-file checks and the UTF-8 copies of CSV files, for `audit.ingest.readers`.

- Where a file stops decoding in an encoding (`first_undecodable`), so that a bad byte is
  reported with its line and byte offset instead of failing somewhere later.
- Whether the first bytes of a file look like text at all (`looks_binary`).
- UTF-8 copies of GBK / UTF-16 files (`transcode_to_utf8`). They can be hundreds of megabytes, so
  they live in one directory of their own with the owning process id in their names: every exit
  of that process removes them (the loader's own clean-up, `atexit` for anything left over, and
  the CLI turns SIGTERM into an exception so the stack unwinds), and the copies of a process that
  died without any of that (kill -9) are removed by the next ingest (`remove_stale_copies`).
- Where a record with an over-long cell ends (`record_end`): such a record is quarantined, it
  never fails the file.
"""

from __future__ import annotations

import atexit
import codecs
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from audit.errors import InputError
from audit.ingest.filescan import CHUNK

# The longest cell the readers accept (characters); a record with a longer one is quarantined. A
# note of a million characters is legal and far below it. DuckDB's fast path is given the same
# number as its max_line_size in bytes (a line within it in bytes has no cell over it in
# characters), so the fast path never loads a record the exact reader would refuse.
MAX_CELL_CHARS = 1 << 24

ENCODING_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "gb18030": "GBK/GB18030",
                  "big5": "Big5"}


# ---------------------------------------------------------------------------------------------
@dataclass
class BadBytes:
    """The first bytes of a file that do not decode in `encoding`."""

    encoding: str
    offset: int          # 0-based byte offset in the file
    data: bytes          # the undecodable bytes (at most a few)

    def where(self, path: Path) -> str:
        """第 N 行 (字节偏移 M, 0xFF)."""
        return f"第 {line_of_offset(path, self.offset, self.encoding)} 行 (字节偏移 {self.offset}, {self.data.hex(' ').upper()})"


def first_undecodable(path: Path, encoding: str, limit: int | None = None) -> BadBytes | None:
    """The first undecodable bytes of `path` in `encoding` (read whole, or its first `limit` bytes
    with a character cut at the end of them not counted), None when it decodes."""
    decoder = codecs.getincrementaldecoder(encoding)()
    fed = 0
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK if limit is None else min(CHUNK, limit - fed)):
                fed += len(chunk)
                decoder.decode(chunk)
            if limit is None or fed < limit:
                decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        # exc.object is what the decoder held back from earlier chunks plus this one.
        offset = fed - len(exc.object) + exc.start
        return BadBytes(encoding, offset, exc.object[exc.start:max(exc.end, exc.start + 1)][:4])
    return None


def line_of_offset(path: Path, offset: int, encoding: str) -> int:
    """The 1-based physical line of the byte at `offset` (line breaks are counted in the decoded
    text for UTF-16; in the ASCII-compatible encodings a byte 0x0A is always a line break)."""
    wide = encoding.startswith("utf-16")
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace") if wide else None
    lines, left = 1, offset
    with open(path, "rb") as fh:
        while left > 0 and (chunk := fh.read(min(CHUNK, left))):
            left -= len(chunk)
            lines += decoder.decode(chunk).count("\n") if wide else chunk.count(b"\n")
    return lines


def looks_utf8(path: Path, bad: BadBytes) -> bool:
    """Whether a file that stops decoding as UTF-8 at `bad` is UTF-8 with a bad byte (rather than
    a legacy encoding): at least 16 multi-byte UTF-8 characters before it. A GBK text hardly ever
    makes even two valid UTF-8 sequences in a row."""
    import numpy as np

    leads, left = 0, bad.offset
    with open(path, "rb") as fh:
        while left > 0 and (chunk := fh.read(min(CHUNK, left))):
            left -= len(chunk)
            # every byte before `bad` belongs to a valid sequence: count the lead bytes
            leads += int(np.count_nonzero(np.frombuffer(chunk, np.uint8) >= 0xC2))
            if leads >= 16:
                return True
    return False


def bad_bytes_error(path: Path, bad: BadBytes) -> InputError:
    """The error for a file of a known encoding (from its byte-order mark or its content) with
    bytes that are not in it."""
    name = ENCODING_NAMES.get(bad.encoding, bad.encoding)
    return InputError(f"{path}: {bad.where(path)} 不是合法的 {name} 文本 (invalid {name} at byte offset "
                      f"{bad.offset})；文件可能已损坏，请检查该处或重新导出")


def unknown_encoding_error(path: Path, tried: list[BadBytes]) -> InputError:
    """The error for a file that is none of the encodings tried; says where each one fails."""
    where = "；".join(f"按 {ENCODING_NAMES.get(b.encoding, b.encoding)} 读，{b.where(path)} 无法解码"
                     for b in tried)
    return InputError(f"{path}: 无法识别文本编码 (不是 UTF-8 或 GBK/GB18030)"
                      + (f"：{where}" if where else "") + "；请另存为 UTF-8 或 GBK 的 CSV")


# ---------------------------------------------------------------------------------------------
# C0 control bytes other than tab, line feed, carriage return (and ESC / form feed are rare in
# text too): a text export has almost none; a binary file (or UTF-16 without a byte-order mark)
# has many.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13))


def looks_binary(head: bytes) -> bool:
    """Whether the first bytes of a file are not text: more than one of them, and more than 1 %,
    are NUL or other control bytes. A text file with a few NUL bytes is still text (its records
    with NUL are quarantined); UTF-16 without a byte-order mark is half NUL."""
    controls = sum(head.count(bytes([b])) for b in _CONTROL)
    return controls > max(1, len(head) // 100)


# ---------------------------------------------------------------------------------------------
_COPIES: set[Path] = set()      # this process's UTF-8 copies not yet removed


def copies_dir() -> Path:
    """The directory of the UTF-8 copies (one per user, in the temp directory)."""
    uid = getattr(os, "getuid", lambda: "")()
    return Path(tempfile.gettempdir()) / f"bangban-audit-{uid}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True      # exists (another user's), or cannot tell: keep its files
    return True


def remove_stale_copies() -> list[Path]:
    """Remove the UTF-8 copies left by ingests that are no longer running (killed with -9, or
    the machine stopped); return them. Files of running processes are left alone."""
    removed = []
    try:
        entries = list(os.scandir(copies_dir()))
    except OSError:
        return removed
    for entry in entries:
        pid, sep, _ = entry.name.partition("-")
        if sep and pid.isdigit() and not _pid_alive(int(pid)):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def new_copy_path(suffix: str = ".csv") -> tuple[int, Path]:
    """An open file descriptor and the path of a new, empty UTF-8 copy (or another temporary file
    of an ingest, such as the Parquet rows of an XES file) owned by this process."""
    folder = copies_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{os.getpid()}-", suffix=suffix, dir=folder)
    path = Path(name)
    _COPIES.add(path)
    return fd, path


def remove_copy(path: Path) -> None:
    """Remove a UTF-8 copy (once it is read, or on any failure)."""
    path.unlink(missing_ok=True)
    _COPIES.discard(path)


@atexit.register
def _remove_own_copies() -> None:
    for path in list(_COPIES):
        remove_copy(path)


@dataclass
class Transcoded:
    """A UTF-8 copy of a text file: its path, line count, NUL characters, and whether it ends
    with a line break."""

    path: Path
    newlines: int
    nuls: int
    ends_with_newline: bool


class Undecodable(Exception):
    """The file does not decode in the encoding (raised by `transcode_to_utf8`)."""

    def __init__(self, bad: BadBytes):
        super().__init__(bad.encoding)
        self.bad = bad


def transcode_to_utf8(path: Path, encoding: str) -> Transcoded:
    """A UTF-8 copy of a text file in `copies_dir()`. Raises `Undecodable` (the copy removed)
    when the file does not decode in `encoding`: the transcoding is also the whole-file check."""
    decoder = codecs.getincrementaldecoder(encoding)()
    fd, copy = new_copy_path()
    newlines = nuls = fed = 0
    last = "\n"
    try:
        with open(path, "rb") as src, open(fd, "w", encoding="utf-8", newline="") as out:
            final = False
            while not final:
                chunk = src.read(CHUNK)
                fed += len(chunk)
                final = not chunk
                text = decoder.decode(chunk, final=final)
                if text:
                    newlines += text.count("\n")
                    if "\x00" in text:
                        nuls += text.count("\x00")
                    last = text[-1]
                    out.write(text)
    except UnicodeDecodeError as exc:
        remove_copy(copy)
        offset = fed - len(exc.object) + exc.start
        raise Undecodable(BadBytes(encoding, offset, exc.object[exc.start:max(exc.end, exc.start + 1)][:4])) from None
    except BaseException:
        remove_copy(copy)
        raise
    return Transcoded(copy, newlines, nuls, last == "\n")


# ---------------------------------------------------------------------------------------------
def record_end(path: Path, encoding: str, start: int, reached: int, quote: str = '"') -> tuple[int, str, bool]:
    """(last physical line, first characters, whether its quotes close) of the record that starts
    on line `start` of a text file and that a reader gave up on at line `reached` (a cell over
    MAX_CELL_CHARS).

    A record ends at the first line break outside quotes: at or after `reached`, the first line
    where the quote characters counted from `start` are even in number. That is exact for
    well-formed CSV; a quote that never closes runs to the end of the file. The file is read
    again from its start: this happens only for such records."""
    line, odd, sample = 0, 0, ""
    with open(path, encoding=encoding, newline="", errors="replace") as fh:
        for text in fh:
            line += 1
            if line < start:
                continue
            if line == start:
                sample = text[:200]
            odd ^= text.count(quote) & 1
            if line >= reached and not odd:
                break
    return line, sample, not odd
