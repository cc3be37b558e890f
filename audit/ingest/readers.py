"""Read one input file into a table of text cells with the file row of each record.

Detects the format from the file's bytes (never from its name alone), the text encoding of CSV
files (UTF-8, UTF-8 with BOM, UTF-16 with BOM, GBK/GB18030; charset-normalizer arbitrates when
UTF-8 fails), the delimiter, and the header row (title rows and blank rows above it are
tolerated). Every record below the header is returned, blank ones included, so that the loader
can account for each of them.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from audit.errors import InputError
from audit.ingest import xes
from audit.ingest.filescan import CHUNK, FileScan
from audit.ingest.textfile import (
    MAX_CELL_CHARS,
    Undecodable,
    bad_bytes_error,
    first_undecodable,
    looks_binary,
    looks_utf8,
    record_end,
    remove_copy,
    remove_stale_copies,
    transcode_to_utf8,
    unknown_encoding_error,
)
from audit.vocabulary import normalize_header

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where it is used: the common case (a CSV file DuckDB reads itself) does
# without it, and it takes a tenth of a second to import.

HEADER_SCAN_ROWS = 50
NUL_REASON = "含有 NUL 字符 (\\x00)：文件可能在此处已损坏，请检查该行或重新导出"


@dataclass
class DuckSource:
    """A UTF-8 CSV file that DuckDB's own parallel reader can stage directly (the fast path).

    DuckDB gives no line numbers, so they are derived: with `skip` lines above the first record,
    record k (0-based, in file order) is line `skip + 1 + k` -- true exactly when every line below
    the header holds one record (no blank lines, no line breaks inside quoted cells). The loader
    checks that by comparing the record count with `expected_records(...)`, and falls back to the
    exact reader when they differ or DuckDB rejects the file (ragged rows, bad UTF-8, mixed line ends,
    a line longer than MAX_CELL_CHARS bytes), and when the file has NUL bytes (the exact reader
    quarantines the records that have them).
    """

    text_path: Path                  # the file DuckDB reads (a UTF-8 copy for GBK/UTF-16 input)
    skip: int                        # physical lines above the first record (title rows + header)
    delim: str
    names: list[str]
    newlines: int | None = None      # line count of a transcoded copy (else taken from the scan)
    ends_with_newline: bool | None = None
    temporary: bool = False          # text_path is a transcoded copy to delete after staging
    nuls: int | None = None          # NUL characters of a transcoded copy (else taken from the scan)

    @property
    def first_row(self) -> int:
        return self.skip + 1

    def sql(self) -> str:
        path = str(self.text_path).replace("'", "''")
        cols = ", ".join(f"'{n}': 'VARCHAR'" for n in self.names)
        delim = {"\t": "\\t"}.get(self.delim, self.delim)
        return (f"read_csv('{path}', skip={self.skip}, header=false, auto_detect=false, delim='{delim}', "
                f"quote='\"', escape='\"', columns={{{cols}}}, strict_mode=true, null_padding=false, "
                # long cells are legal; the buffer size given, else DuckDB's grows with max_line_size
                # (+150 MB peak for a 470 MB file)
                f"max_line_size={MAX_CELL_CHARS}, buffer_size={2 * MAX_CELL_CHARS})")

    def expected_records(self, newlines: int, ends_with_newline: bool) -> int:
        if self.newlines is not None:
            newlines, ends_with_newline = self.newlines, bool(self.ends_with_newline)
        return newlines + (0 if ends_with_newline else 1) - self.skip

    def reads_exactly(self, rows: int, scan: FileScan) -> bool:
        """Whether the `rows` records DuckDB read are the file's, each on the line derived for it:
        the scan of the file succeeded, the file has no NUL (the exact reader quarantines the
        records that have one), and the record count is the line count's."""
        if scan.error is not None:
            return False
        nuls = self.nuls if self.newlines is not None else scan.nul_bytes
        return not nuls and rows == self.expected_records(scan.newlines, scan.ends_with_newline)

    def cleanup(self) -> None:
        if self.temporary:
            remove_copy(self.text_path)


@dataclass
class RawTable:
    """The text cells of one file (or sheet) below its header.

    Either `table` holds the cells (columns c0..cN-1 as strings, `_row` the file row), or `duck`
    says how DuckDB reads them straight from the file; `fallback()` then gives the exact reading.
    """

    path: Path
    format: str                       # csv | xlsx | xls | parquet
    encoding: str | None              # for CSV
    sheet: str | None                 # for Excel
    header_row: int                   # 1-based file row of the header (0 for Parquet)
    headers: list[str]                # header cells as written
    table: pa.Table | None            # columns c0..cN-1 (string) and _row (int64)
    bad_rows: list[tuple[int, str, list[str]]] = field(default_factory=list)  # (row, reason, cells)
    duck: DuckSource | None = None
    fallback: Callable[[], RawTable] | None = None


# ---------------------------------------------------------------------------------------------
def sniff_format(path: Path) -> str:
    """The file's format from its first bytes: csv, xlsx, xls, parquet, xes or xes.gz (an XES
    log, gzip-compressed); InputError otherwise."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192)
    except FileNotFoundError:
        raise InputError(f"{path}: 文件不存在 (file not found)") from None
    except OSError as exc:
        raise InputError(f"{path}: 无法读取 ({exc.strerror})") from None
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        with open(path, "rb") as fh:
            blob = fh.read(1 << 20)
        if "EncryptedPackage".encode("utf-16-le") in blob:
            raise InputError(f"{path}: Excel 文件受密码保护，无法读取；请去除密码后另存为 .xlsx 再导入")
        return "xls"
    if head.startswith(b"PAR1"):
        return "parquet"
    if not head:
        raise InputError(f"{path}: 文件为空 (empty file)")
    xml = xes.sniff(head)
    if xml == "gz":
        raise InputError(f"{path}: gzip 压缩的文件只支持 XES 事件日志 (.xes.gz)；其它文件请解压后再导入")
    if xml:
        return xml
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "csv"
    if looks_binary(head):   # a few NUL bytes do not make a binary file: see _without_nul_rows
        raise InputError(f"{path}: 不支持的文件类型 (既不是 CSV、XLSX/XLS、Parquet，也不是 XES)")
    return "csv"


def detect_encoding(path: Path) -> str:
    """The text encoding of a CSV file: utf-8-sig, utf-16, utf-8 or gb18030 (checked whole). A
    file of a known encoding (byte-order mark, or plainly UTF-8) with a byte that is not in it is
    an InputError naming the line and byte offset of that byte."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-16"
        # utf-8-sig is checked as utf-8 so that offsets count the byte-order mark too
        bad = first_undecodable(path, "utf-8" if encoding == "utf-8-sig" else encoding)
        if bad is not None:
            raise bad_bytes_error(path, bad)
        return encoding
    bad = first_undecodable(path, "utf-8")
    if bad is None:
        return "utf-8"
    if looks_utf8(path, bad):
        raise bad_bytes_error(path, bad)
    tried = [bad]
    for enc in _legacy_candidates(path):
        legacy = first_undecodable(path, enc)
        if legacy is None:
            return enc
        tried.append(legacy)
    raise unknown_encoding_error(path, tried)


def _legacy_candidates(path: Path) -> list[str]:
    """Encodings to try for a file that is not UTF-8, most likely first (charset-normalizer
    arbitrates between Big5 and GB18030 on a sample)."""
    from charset_normalizer import from_bytes

    with open(path, "rb") as fh:
        sample = fh.read(1 << 18)
    best = from_bytes(sample, cp_isolation=["gb18030", "big5", "utf_16", "cp1252"]).best()
    guess = (best.encoding if best else "gb18030").replace("_", "").lower()
    return ["big5", "gb18030"] if guess == "big5" else ["gb18030"]


def _allow_long_fields() -> None:
    """Python's csv module refuses fields over 131,072 characters by default; a note can be
    longer. (The limit is the process's: it is only ever raised, to MAX_CELL_CHARS.)"""
    if csv.field_size_limit() < MAX_CELL_CHARS:
        csv.field_size_limit(MAX_CELL_CHARS)


DELIMITERS = (",", "\t", ";", "|")


def _sniff_delimiter(lines: list[str], known: dict[str, str], header_row: int | None) -> str:
    """The delimiter under which the header reads best: the most recognised fields on the header
    line (the given one, or the first with the case id). Judged by the header, not by the cells:
    a materials list with several `;`, or cells padded with tabs, must not make a comma file
    unreadable. Without any recognisable header, the delimiter giving the most fields on a line."""
    best, best_score = None, 0
    for delim in DELIMITERS:
        rows = [next(csv.reader([ln], delimiter=delim), []) if ln.strip() else [] for ln in lines]
        candidates = [rows[header_row - 1]] if header_row and header_row <= len(rows) else rows
        for row in candidates:
            fields = {known.get(normalize_header(c)) for c in row if str(c).strip()} - {None}
            if "case_id" in fields or header_row:
                if len(fields) > best_score:
                    best, best_score = delim, len(fields)
                break
    if best is not None:
        return best
    counts = {d: max((len(next(csv.reader([ln], delimiter=d))) for ln in lines if ln.strip()), default=0)
              for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: (counts[d], -DELIMITERS.index(d)))


def find_header(rows: list[list[str]], known: dict[str, str], path: Path, where: str = "") -> int:
    """Index of the first row with at least two recognised headers, one of them the case id."""
    for i, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        fields = {known.get(normalize_header(c)) for c in row if str(c).strip()}
        fields.discard(None)
        if "case_id" in fields and len(fields) >= 2:
            return i
    raise InputError(
        f"{path}{where}: 前 {HEADER_SCAN_ROWS} 行中找不到可识别的表头 (需要 办件编号 及其他列)；"
        "请检查文件，或用 --profile 说明列名"
    )


# ---------------------------------------------------------------------------------------------
def read_csv(path: Path, known: dict[str, str], header_row: int | None = None) -> RawTable:
    """A CSV file (any supported encoding), read by DuckDB straight from the file when it can be."""
    encoding, utf8_bad = _quick_encoding(path)
    copy = None
    if encoding in ("utf-8", "utf-8-sig"):
        text_path = path
    else:
        # Not UTF-8 from the first bytes on: the transcoding to a UTF-8 copy is also the check of
        # the whole file in each candidate encoding.
        tried = [utf8_bad] if utf8_bad else []
        for candidate in [encoding] if encoding else _legacy_candidates(path):
            try:
                copy = transcode_to_utf8(path, candidate)
            except Undecodable as exc:
                tried.append(exc.bad)
                continue
            encoding, text_path = candidate, copy.path
            break
        else:
            raise bad_bytes_error(path, tried[-1]) if encoding else unknown_encoding_error(path, tried)
    try:
        h, headers, delim, fields = _header(text_path, "utf-8-sig", known, header_row, path)
    except BaseException:
        if copy:
            remove_copy(copy.path)
        raise
    # Exports often end every line with empty fields under empty header cells (`a,b,c,,`): DuckDB
    # reads those too (a row with content there is quarantined by the stage, as the exact reader does).
    names = [f"c{i}" for i in range(max(fields, len(headers)))]
    duck = None
    if delim in (",", "\t", ";", "|") and not any(ch in str(text_path) for ch in "*?[]{}"):
        duck = (DuckSource(text_path, h + 1, delim, names, copy.newlines, copy.ends_with_newline, True, copy.nuls)
                if copy else DuckSource(text_path, h + 1, delim, names))
    elif copy:
        remove_copy(copy.path)
    return RawTable(path, "csv", encoding, None, h + 1, headers, None, duck=duck,
                    fallback=lambda: read_csv_exact(path, known, header_row))


def read_csv_exact(path: Path, known: dict[str, str], header_row: int | None = None) -> RawTable:
    """A CSV file read through pyarrow (or Python's csv module for files with ragged rows or line
    breaks inside cells), after checking the encoding of the whole file."""
    encoding = detect_encoding(path)
    h, headers, delim, _ = _header(path, encoding, known, header_row, path)
    names = [f"c{i}" for i in range(len(headers))]
    table, bad = _read_csv_fast(path, encoding, delim, h + 1, names)
    if table is None:
        table, bad = _read_csv_exact(path, encoding, delim, h + 1, names)
    if _has_nul(path, encoding):
        table, bad = _without_nul_rows(table, bad)
    return RawTable(path, "csv", encoding, None, h + 1, headers, table, bad)


def _header(path: Path, encoding: str, known: dict[str, str], header_row: int | None,
            shown: Path) -> tuple[int, list[str], str, int]:
    """(0-based header line, header cells, delimiter, fields on the header line including empty
    trailing ones) from the first lines of a text file."""
    _allow_long_fields()
    with open(path, encoding=encoding, newline="", errors="replace") as fh:
        head_lines = [fh.readline(MAX_CELL_CHARS) for _ in range(HEADER_SCAN_ROWS)]
    delim = _sniff_delimiter(head_lines, known, header_row)
    head_rows = [next(csv.reader([ln], delimiter=delim), []) if ln.strip() else [] for ln in head_lines]
    try:
        h = header_row - 1 if header_row else find_header(head_rows, known, shown)
    except InputError:
        nul = next((i for i, ln in enumerate(head_lines) if "\x00" in ln), None)
        if nul is None:
            raise
        raise InputError(f"{shown}: 第 {nul + 1} 行含有 NUL 字符 (\\x00)，前 {HEADER_SCAN_ROWS} 行中找不到可识别的表头；"
                         "文件可能已损坏，请检查或重新导出") from None
    if h < len(head_rows) and any("\x00" in c for c in head_rows[h]):
        raise InputError(f"{shown}: 表头 (第 {h + 1} 行) 含有 NUL 字符 (\\x00)；文件可能已损坏，请检查该行或重新导出")
    headers = head_rows[h] if h < len(head_rows) else []
    fields = len(headers)
    while headers and not headers[-1].strip():
        headers = headers[:-1]
    if not headers:
        raise InputError(f"{shown}: 第 {h + 1} 行不是表头")
    return h, headers, delim, fields


def _quick_encoding(path: Path):
    """(encoding, None): utf-8-sig / utf-16 from a byte-order mark; utf-8 when the first 64 KiB
    decode as UTF-8 (the rest is checked by DuckDB while it reads). (None, where UTF-8 fails) when
    the whole file must be examined; an InputError when the first 64 KiB are plainly UTF-8 with a
    bad byte."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", None
    # not final: a character cut at the end of the sample is not an error
    bad = first_undecodable(path, "utf-8", limit=1 << 16)
    if bad is None:
        return "utf-8", None
    if looks_utf8(path, bad):
        raise bad_bytes_error(path, bad)
    return None, bad


def _read_csv_fast(path, encoding, delim, skip, names):
    """pyarrow's multi-threaded reader; None when the file needs the exact (slow) reader."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    invalid: list[int] = []

    def on_invalid(row):
        invalid.append(1)
        return "skip"

    pa_encoding = "utf8" if encoding in ("utf-8", "utf-8-sig") else encoding
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(skip_rows=skip, column_names=names, encoding=pa_encoding,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delim, ignore_empty_lines=False,
                                             newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None, []
    if invalid:
        return None, []
    for name in names:  # a value with a line break shifts physical line numbers: be exact then
        col = table.column(name)
        if pc.any(pc.match_substring(col, "\n")).as_py():
            return None, []
    if table.num_rows and path.stat().st_size > MAX_CELL_CHARS:
        # pyarrow takes a cell of any size: a file with a cell over the bound in bytes goes to
        # Python's reader, which quarantines the records with a cell over it in characters.
        for name in names:
            if pc.max(pc.binary_length(table.column(name))).as_py() > MAX_CELL_CHARS:
                return None, []
    rows = pa.array(range(skip + 1, skip + 1 + table.num_rows), pa.int64())
    return table.append_column("_row", rows), []


def _read_csv_exact(path, encoding, delim, skip, names):
    """Python's csv module: exact starting line of each record, ragged rows handled, a record with
    a cell over MAX_CELL_CHARS quarantined."""
    import pyarrow as pa

    _allow_long_fields()
    width = len(names)
    cols: list[list[str]] = [[] for _ in range(width)]
    rows: list[int] = []
    bad: list[tuple[int, str, list[str]]] = []
    with open(path, encoding=encoding, newline="") as fh:
        for _ in range(skip):
            fh.readline()
        reader = csv.reader(fh, delimiter=delim)
        line = skip
        passed = 0      # lines skipped here, past the end of a record the reader gave up on
        while True:
            start = line + 1
            try:
                rec = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:     # a cell over the field size limit
                reached = reader.line_num + skip + passed
                line, sample, closed = record_end(path, encoding, start, reached)
                for _ in range(line - reached):
                    next(fh, None)
                passed += line - reached
                cells = next(csv.reader([sample.rstrip("\r\n")], delimiter=delim), []) or [""]
                cells[-1] += "…"       # the record's first cells, the last one cut short
                bad.append((start, _unread_record(exc, start, line, closed), cells))
                continue
            line = reader.line_num + skip + passed
            if len(rec) > width and any(c.strip() for c in rec[width:]):
                bad.append((start, f"本行有 {len(rec)} 个字段，表头只有 {width} 列", rec))
                continue
            rec = rec[:width] + [""] * (width - len(rec))
            for i, c in enumerate(rec):
                cols[i].append(c)
            rows.append(start)
    arrays = [pa.array(c, pa.string()) for c in cols] + [pa.array(rows, pa.int64())]
    return pa.Table.from_arrays(arrays, names=names + ["_row"]), bad


def _unread_record(exc: csv.Error, start: int, end: int, closed: bool) -> str:
    span = "" if end == start else f" (到第 {end} 行为止)" if closed else f" (到第 {end} 行文件末尾为止；引号没有闭合)"
    if "field limit" in str(exc):
        return f"单元格超过 {MAX_CELL_CHARS:,} 个字符，未载入{span}"
    return f"无法按 CSV 读取 ({exc})，未载入{span}"


def _has_nul(path: Path, encoding: str) -> bool:
    """Whether a text file has a NUL character (bytes for the ASCII-compatible encodings; UTF-16
    files are checked in their cells)."""
    if encoding.startswith("utf-16"):
        return True
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            if b"\x00" in chunk:
                return True
    return False


def _without_nul_rows(table, bad):
    """Records with a NUL character in a cell move from `table` to the bad rows: NUL is not text,
    and such a record is where a file was damaged (zero-filled by a crash, cut and joined)."""
    import pyarrow.compute as pc

    mask = None
    for name in table.column_names[:-1]:
        has = pc.match_substring(table.column(name), "\x00")
        mask = has if mask is None else pc.or_(mask, has)
    if mask is None or not pc.any(mask).as_py():
        return table, bad
    nul = table.filter(mask)
    cells = zip(*(nul.column(n).to_pylist() for n in table.column_names[:-1]))
    bad = bad + [(row, NUL_REASON, list(c)) for row, c in zip(nul.column("_row").to_pylist(), cells)]
    return table.filter(pc.invert(mask)), bad


# ---------------------------------------------------------------------------------------------
def _cell_text(value) -> str:
    """An Excel cell as text: dates as ISO timestamps, whole numbers without `.0`."""
    if value is None or value == "":
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S")
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 2 ** 53:
            # Beyond 2^53 a number has lost digits (Excel keeps 15): written as Excel shows it,
            # in scientific notation, so that an id stored this way is recognised as damaged.
            return f"{value:.15E}"
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    return str(value).strip("\ufeff")


def read_excel(path: Path, fmt: str, known: dict[str, str], sheet: str | None = None,
               header_row: int | None = None) -> Iterator[RawTable]:
    """The sheet named `sheet`, or else every sheet that has a recognisable header, one at a time
    (a workbook of several million-row sheets is never in memory as a whole)."""
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for damaged/encrypted files
        msg = str(exc)
        if "password" in msg.lower() or "encrypt" in msg.lower():
            raise InputError(f"{path}: Excel 文件受密码保护，无法读取；请去除密码后再导入") from None
        raise InputError(f"{path}: 无法作为 Excel 文件读取 ({msg.splitlines()[0] if msg else type(exc).__name__})") from None
    names = book.sheet_names
    if sheet is not None and sheet not in names:
        raise InputError(f"{path}: 没有名为 {sheet!r} 的工作表；有: {', '.join(names)}")
    read = 0
    errors: list[InputError] = []
    for name in [sheet] if sheet else names:
        try:
            raw = _read_sheet(path, fmt, book.get_sheet_by_name(name), name, known, header_row)
        except CalamineError as exc:   # a damaged sheet (cut short, broken XML): the file is unusable
            msg = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InputError(f"{path} 工作表 {name!r}: 无法读取 ({msg})；文件可能已损坏，请用 Excel 打开后另存再导入") from None
        except InputError as exc:
            if sheet:
                raise
            errors.append(exc)
            continue
        read += 1
        yield raw
    if not read:
        if errors and len(names) == 1:
            raise errors[0]
        raise InputError(f"{path}: 所有工作表 ({', '.join(names)}) 中都找不到可识别的表头 (需要 办件编号 及其他列)")


def _read_sheet(path, fmt, sh, name, known, header_row) -> RawTable:
    import pyarrow as pa

    rows_iter = sh.iter_rows()
    head: list[list[str]] = []
    for row in rows_iter:
        head.append([_cell_text(v) for v in row])
        if len(head) >= HEADER_SCAN_ROWS:
            break
    where = f" 工作表 {name!r}"
    h = header_row - 1 if header_row else find_header(head, known, path, where)
    if h >= len(head):
        raise InputError(f"{path}{where}: 第 {h + 1} 行不是表头")
    headers = list(head[h])
    while headers and not headers[-1].strip():
        headers.pop()
    width = len(headers)
    names = [f"c{i}" for i in range(width)] + ["_row"]
    batches: list[pa.RecordBatch] = []
    cols: list[list[str]] = [[] for _ in range(width)]
    rows: list[int] = []
    bad: list[tuple[int, str, list[str]]] = []
    trailing_empty = 0   # empty rows at the end so far: Excel's used range may include them

    def flush() -> None:
        # Cells go to Arrow every 64 Ki rows: Python strings for a whole sheet take gigabytes.
        if rows:
            batches.append(pa.RecordBatch.from_arrays(
                [pa.array(c, pa.string()) for c in cols] + [pa.array(rows, pa.int64())], names=names))
            for c in cols:
                c.clear()
            rows.clear()

    def take(rownum: int, cells: list[str]) -> None:
        nonlocal trailing_empty
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            bad.append((rownum, f"本行在表头之外的列 ({len(cells)} 列) 有内容", cells))
            trailing_empty = 0
            return
        # A row with nothing at all in it ends the sheet if only such rows follow; a row with only
        # white space is a record (quarantined as blank, like a blank CSV line).
        trailing_empty = 0 if any(cells) else trailing_empty + 1
        cells = cells[:width] + [""] * (width - len(cells))
        for i, c in enumerate(cells):
            cols[i].append(c)
        rows.append(rownum)
        if len(rows) >= 1 << 16:
            flush()

    for i in range(h + 1, len(head)):
        take(i + 1, head[i])
    rownum = len(head)
    for row in rows_iter:
        rownum += 1
        take(rownum, [v.strip("\ufeff") if v.__class__ is str else _cell_text(v) for v in row])
    flush()
    schema = pa.schema([(n, pa.string()) for n in names[:-1]] + [("_row", pa.int64())])
    table = pa.Table.from_batches(batches, schema=schema)
    # Empty rows at the end of a sheet are not records.
    table = table.slice(0, table.num_rows - trailing_empty)
    return RawTable(path, fmt, None, name, h + 1, headers, table, bad)


# ---------------------------------------------------------------------------------------------
def read_parquet(path: Path) -> RawTable:
    """Read a Parquet file; every column becomes text, timestamps as ISO text."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise InputError(f"{path}: 无法作为 Parquet 文件读取 ({exc})") from None
    headers = list(table.column_names)
    arrays = []
    for col in table.columns:
        if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
            fmt = "%Y-%m-%d %H:%M:%S" if pa.types.is_timestamp(col.type) else "%Y-%m-%d"
            col = pc.strftime(col, format=fmt)
        elif pa.types.is_floating(col.type):
            col = pa.chunked_array([pa.array([_cell_text(v) for v in col.to_pylist()], pa.string())])
        col = pc.cast(col, pa.string())
        arrays.append(pc.fill_null(col, ""))
    names = [f"c{i}" for i in range(len(headers))]
    arrays.append(pa.array(range(1, table.num_rows + 1), pa.int64()))
    return RawTable(path, "parquet", None, None, 0, headers,
                    pa.Table.from_arrays(arrays, names=names + ["_row"]))


def read_any(path: Path, known: dict[str, str], sheet: str | None = None,
             header_row: int | None = None) -> Iterator[RawTable | xes.XesLog]:
    """Read a file of any supported format; one RawTable per sheet read (an XesLog for XES)."""
    remove_stale_copies()     # UTF-8 copies of ingests killed before they could remove them
    fmt = sniff_format(path)
    if fmt in ("xes", "xes.gz"):
        return [xes.read_xes(path, known, compressed=fmt == "xes.gz")]
    if fmt == "csv":
        return [read_csv(path, known, header_row)]
    if fmt in ("xlsx", "xls"):
        return read_excel(path, fmt, known, sheet, header_row)
    return [read_parquet(path)]


__all__ = ["RawTable", "DuckSource", "FileScan", "read_any", "read_csv_exact", "sniff_format", "detect_encoding"]
