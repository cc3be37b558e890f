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
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from audit.errors import InputError
from audit.filescan import CHUNK, FileScan
from audit.ingest.vocab import normalize_header

if TYPE_CHECKING:
    import pyarrow as pa

# pyarrow is imported where it is used: the common case (a CSV file DuckDB reads itself) does
# without it, and it takes a tenth of a second to import.

HEADER_SCAN_ROWS = 50


@dataclass
class DuckSource:
    """A UTF-8 CSV file that DuckDB's own parallel reader can stage directly (the fast path).

    DuckDB gives no line numbers, so they are derived: with `skip` lines above the first record,
    record k (0-based, in file order) is line `skip + 1 + k` -- true exactly when every line below
    the header holds one record (no blank lines, no line breaks inside quoted cells). The loader
    checks that by comparing the record count with `expected_records(...)`, and falls back to the
    exact reader when they differ or DuckDB rejects the file (ragged rows, bad UTF-8, mixed line ends).
    """

    text_path: Path                  # the file DuckDB reads (a UTF-8 copy for GBK/UTF-16 input)
    skip: int                        # physical lines above the first record (title rows + header)
    delim: str
    names: list[str]
    newlines: int | None = None      # line count of a transcoded copy (else taken from the scan)
    ends_with_newline: bool | None = None
    temporary: bool = False          # text_path is a transcoded copy to delete after staging

    @property
    def first_row(self) -> int:
        return self.skip + 1

    def sql(self) -> str:
        path = str(self.text_path).replace("'", "''")
        cols = ", ".join(f"'{n}': 'VARCHAR'" for n in self.names)
        delim = {"\t": "\\t"}.get(self.delim, self.delim)
        return (f"read_csv('{path}', skip={self.skip}, header=false, auto_detect=false, delim='{delim}', "
                f"quote='\"', escape='\"', columns={{{cols}}}, strict_mode=true, null_padding=false)")

    def expected_records(self, newlines: int, ends_with_newline: bool) -> int:
        if self.newlines is not None:
            newlines, ends_with_newline = self.newlines, bool(self.ends_with_newline)
        return newlines + (0 if ends_with_newline else 1) - self.skip

    def cleanup(self) -> None:
        if self.temporary:
            self.text_path.unlink(missing_ok=True)


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
    fallback: Callable[[], "RawTable"] | None = None


# ---------------------------------------------------------------------------------------------
def sniff_format(path: Path) -> str:
    """The file's format from its first bytes: csv, xlsx, xls, parquet; InputError otherwise."""
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
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "csv"
    if b"\x00" in head:
        raise InputError(f"{path}: 不支持的文件类型 (既不是 CSV、XLSX/XLS，也不是 Parquet)")
    return "csv"


def detect_encoding(path: Path) -> str:
    """The text encoding of a CSV file: utf-8-sig, utf-16, utf-8 or gb18030 (checked whole)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _decodes(path, "utf-8"):
        return "utf-8"
    for enc in _legacy_candidates(path):
        if _decodes(path, enc):
            return enc
    raise _unknown_encoding(path)


def _legacy_candidates(path: Path) -> list[str]:
    """Encodings to try for a file that is not UTF-8, most likely first (charset-normalizer
    arbitrates between Big5 and GB18030 on a sample)."""
    from charset_normalizer import from_bytes

    with open(path, "rb") as fh:
        sample = fh.read(1 << 18)
    best = from_bytes(sample, cp_isolation=["gb18030", "big5", "utf_16", "cp1252"]).best()
    guess = (best.encoding if best else "gb18030").replace("_", "").lower()
    return ["big5", "gb18030"] if guess == "big5" else ["gb18030"]


def _unknown_encoding(path: Path) -> InputError:
    return InputError(f"{path}: 无法识别文本编码 (不是 UTF-8 或 GBK/GB18030)；请另存为 UTF-8 或 GBK 的 CSV")


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _sniff_delimiter(lines: list[str]) -> str:
    best, best_count = ",", 0
    for delim in (",", "\t", ";", "|"):
        count = max((len(next(csv.reader([ln], delimiter=delim))) for ln in lines if ln.strip()), default=0)
        if count > best_count:
            best, best_count = delim, count
    return best


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
    encoding = _quick_encoding(path)
    if encoding in ("utf-8", "utf-8-sig"):
        text_path, newlines, ends_nl, temporary = path, None, None, False
    else:
        # Not UTF-8 from the first bytes on: the transcoding to a UTF-8 copy is also the check of
        # the whole file in each candidate encoding.
        for candidate in [encoding] if encoding else _legacy_candidates(path):
            try:
                text_path, newlines, ends_nl = transcode_to_utf8(path, candidate)
            except UnicodeDecodeError:
                continue
            encoding, temporary = candidate, True
            break
        else:
            raise _unknown_encoding(path)
    try:
        h, headers, delim, fields = _header(text_path, "utf-8-sig", known, header_row, path)
    except BaseException:
        if temporary:
            text_path.unlink(missing_ok=True)
        raise
    # Exports often end every line with empty fields under empty header cells (`a,b,c,,`): DuckDB
    # reads those too (a row with content there is quarantined by the stage, as the exact reader does).
    names = [f"c{i}" for i in range(max(fields, len(headers)))]
    duck = None
    if delim in (",", "\t", ";", "|") and not any(ch in str(text_path) for ch in "*?[]{}"):
        duck = DuckSource(text_path, h + 1, delim, names, newlines, ends_nl, temporary)
    elif temporary:
        text_path.unlink(missing_ok=True)
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
    return RawTable(path, "csv", encoding, None, h + 1, headers, table, bad)


def _header(path: Path, encoding: str, known: dict[str, str], header_row: int | None,
            shown: Path) -> tuple[int, list[str], str, int]:
    """(0-based header line, header cells, delimiter, fields on the header line including empty
    trailing ones) from the first lines of a text file."""
    with open(path, encoding=encoding, newline="", errors="replace") as fh:
        head_lines = [fh.readline() for _ in range(HEADER_SCAN_ROWS)]
    delim = _sniff_delimiter([ln for ln in head_lines if ln])
    head_rows = [next(csv.reader([ln], delimiter=delim), []) if ln.strip() else [] for ln in head_lines]
    h = header_row - 1 if header_row else find_header(head_rows, known, shown)
    headers = head_rows[h] if h < len(head_rows) else []
    fields = len(headers)
    while headers and not headers[-1].strip():
        headers = headers[:-1]
    if not headers:
        raise InputError(f"{shown}: 第 {h + 1} 行不是表头")
    return h, headers, delim, fields


def _quick_encoding(path: Path) -> str | None:
    """utf-8-sig / utf-16 from a byte-order mark; utf-8 when the first 64 KiB decode as UTF-8 (the
    rest is checked by DuckDB while it reads); None when the whole file must be examined."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:   # not final: a character cut at the end of the sample is not an error
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return "utf-8"


def transcode_to_utf8(path: Path, encoding: str) -> tuple[Path, int, bool]:
    """A UTF-8 copy of a text file in the temp directory: (copy, its line count, ends with \\n)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    fd, name = tempfile.mkstemp(prefix="audit-ingest-", suffix=".csv")
    newlines, last = 0, "\n"
    try:
        with open(path, "rb") as src, open(fd, "w", encoding="utf-8", newline="") as out:
            while chunk := src.read(CHUNK):
                text = decoder.decode(chunk)
                if text:
                    newlines += text.count("\n")
                    last = text[-1]
                    out.write(text)
            text = decoder.decode(b"", final=True)
            if text:
                newlines += text.count("\n")
                last = text[-1]
                out.write(text)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), newlines, last == "\n"


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
    rows = pa.array(range(skip + 1, skip + 1 + table.num_rows), pa.int64())
    return table.append_column("_row", rows), []


def _read_csv_exact(path, encoding, delim, skip, names):
    """Python's csv module: exact starting line of each record, ragged rows handled."""
    import pyarrow as pa

    width = len(names)
    cols: list[list[str]] = [[] for _ in range(width)]
    rows: list[int] = []
    bad: list[tuple[int, str, list[str]]] = []
    with open(path, encoding=encoding, newline="") as fh:
        for _ in range(skip):
            fh.readline()
        reader = csv.reader(fh, delimiter=delim)
        line = skip
        for rec in reader:
            start = line + 1
            line = reader.line_num + skip
            if len(rec) > width and any(c.strip() for c in rec[width:]):
                bad.append((start, f"本行有 {len(rec)} 个字段，表头只有 {width} 列", rec))
                continue
            rec = rec[:width] + [""] * (width - len(rec))
            for i, c in enumerate(rec):
                cols[i].append(c)
            rows.append(start)
    arrays = [pa.array(c, pa.string()) for c in cols] + [pa.array(rows, pa.int64())]
    return pa.Table.from_arrays(arrays, names=names + ["_row"]), bad


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
    from python_calamine import CalamineWorkbook

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
    trailing_blank = 0   # blank rows at the end so far: Excel's used range may include them

    def flush() -> None:
        # Cells go to Arrow every 64 Ki rows: Python strings for a whole sheet take gigabytes.
        if rows:
            batches.append(pa.RecordBatch.from_arrays(
                [pa.array(c, pa.string()) for c in cols] + [pa.array(rows, pa.int64())], names=names))
            for c in cols:
                c.clear()
            rows.clear()

    def take(rownum: int, cells: list[str]) -> None:
        nonlocal trailing_blank
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            bad.append((rownum, f"本行在表头之外的列 ({len(cells)} 列) 有内容", cells))
            trailing_blank = 0
            return
        cells = cells[:width] + [""] * (width - len(cells))
        trailing_blank = trailing_blank + 1 if not any(c.strip() for c in cells) else 0
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
    # Trailing blank rows at the end of a sheet are not records.
    table = table.slice(0, table.num_rows - trailing_blank)
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
             header_row: int | None = None) -> Iterator[RawTable]:
    """Read a file of any supported format; one RawTable per sheet read."""
    fmt = sniff_format(path)
    if fmt == "csv":
        return [read_csv(path, known, header_row)]
    if fmt in ("xlsx", "xls"):
        return read_excel(path, fmt, known, sheet, header_row)
    return [read_parquet(path)]


__all__ = ["RawTable", "DuckSource", "FileScan", "read_any", "read_csv_exact", "sniff_format", "detect_encoding"]
