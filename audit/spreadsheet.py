"""What every CSV and XLSX writer shares: formula-safe cells, text-only workbooks, valid sheet names.

Formula-like cells (CSV injection). A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return (or the full-width ``＝ ＋ － ＠``, which some spreadsheet programs read as the
ASCII ones) gets a leading apostrophe ``'``, as the OWASP guidance on CSV injection advises:
``=1+1`` is written ``'=1+1``. Numbers stay numbers (``-3`` as a number is not text and is not
prefixed); a text cell that merely looks like a negative number (``"-3"``) is prefixed like any
other text. XLSX cells are written with ``write_string`` (never a formula, URL or number) *and*
carry the same apostrophe: a workbook saved again as CSV, copied into another sheet, or a cell
edited and confirmed in Excel then stays text (decided for issue 10; the apostrophe is visible in
the cell, which is the price of that).

Sheet names. Excel refuses ``[ ] : * ? / \\`` in a sheet name, a name that starts or ends with an
apostrophe, an empty name, a name over 31 characters (UTF-16 units) and two names that differ only
by case; ``History`` is reserved. `sheet_names` turns any list of labels (cities) into valid,
unique names, in order and reproducibly.

File names. `file_names` does the same for the files of a folder (a workbook per hall): no
``< > : " / \\ | ? *`` or control characters, no leading or trailing dots and spaces, none of the
names Windows reserves (CON, NUL, COM1 …), at most 200 bytes of UTF-8, unique ignoring case and
Unicode normalisation (Windows and macOS file systems do).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # pandas is imported where a frame is written (`audit calendar` does without)
    import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
SHEET_NAME_MAX = 31                      # UTF-16 code units, as Excel counts
SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
SHEET_RESERVED = {"history"}             # Excel keeps it for the change history
EMPTY_SHEET = "(空)"
FILE_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
FILE_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
FILE_NAME_MAX = 200                      # bytes of UTF-8 before the suffix (file systems allow 255)


def safe_cell(value: object) -> object:
    """`value` as a spreadsheet will never run it: text starting with a formula character gets a
    leading apostrophe; anything else (numbers, dates, None) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def unguard_cell(value: object) -> object:
    """The text `safe_cell` was given, from a cell read back: the apostrophe it put before a
    formula character is dropped; anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def safe_row(values: Iterable[object]) -> list[object]:
    """`safe_cell` of each value: a row for ``csv.writer``."""
    return [safe_cell(v) for v in values]


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """`safe_cell` applied to every text cell of `df`, column by column (vectorised: 600,000 rows in
    about a second). Numeric columns are left as they are; `df` itself is not changed."""
    import pandas as pd

    out = None
    for col in df.columns:
        values = df[col]
        if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
            continue
        try:
            risky = values.str.startswith(FORMULA_START, na=False)
        except AttributeError:      # an object column without a single string
            continue
        risky = risky.fillna(False).astype(bool)
        if risky.any():
            if out is None:
                out = df.copy()
            out[col] = values.where(~risky, "'" + values.astype(str))
    return df if out is None else out


def csv_text(df: pd.DataFrame, header: bool = True, **options) -> str:
    """CSV text of `df` with formula-safe cells (UTF-8; the caller adds a BOM when writing a file
    for Excel). Without `header`, the rows only (a later part of a listing written in parts);
    `options` go to `DataFrame.to_csv` (e.g. ``float_format``).

    Records end in CRLF, as RFC 4180 says: Python's csv writer quotes a cell for the characters of
    the line ending only, so with LF endings a cell holding a bare CR went out unquoted and split
    its row in Excel (and in Python's own csv reader)."""
    return safe_frame(df).to_csv(index=False, header=header, lineterminator="\r\n", **options)


def text_workbook(path: Path, title: str, created=None, constant_memory: bool = False):
    """An xlsxwriter workbook that writes every string as text (never a formula, URL or number),
    with fixed document properties so that the same data gives the same bytes. `constant_memory`
    writes each row as it comes (rows must then be written in order): for long listings."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False, "constant_memory": constant_memory})
    wb.set_properties({"title": title, "created": created or dt.datetime(2000, 1, 1)})
    return wb


def heading_format(wb):
    """The format of a header row: bold on light blue, bordered, wrapped."""
    return wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"})


def write_text(ws, row: int, col: int, value: object, cell_format=None) -> None:
    """One cell as formula-safe text (`safe_cell`); None, NaN, NA and "" as a blank cell."""
    text = value if isinstance(value, str) else "" if value is None or _missing(value) else str(value)
    if text:
        ws.write_string(row, col, safe_cell(text), cell_format)
    else:
        ws.write_blank(row, col, None, cell_format)


def _missing(value: object) -> bool:
    try:
        return bool(value != value)       # NaN, NaT
    except TypeError:                     # pandas.NA has no truth value
        return True


def sheet_names(labels: Iterable[object]) -> list[str]:
    """A valid, unique Excel sheet name for each label, in order: forbidden characters and control
    characters become ``_``; apostrophes at either end are dropped; an empty label is ``(空)``;
    ``History`` becomes ``History_``; a name is cut to 31 characters; a name already taken (case
    ignored) gets `` (2)``, `` (3)`` … within the 31."""
    taken: set[str] = set()
    names = []
    for label in labels:
        base = _sheet_base(label)
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            suffix = f" ({n})"
            name = _cut(base, SHEET_NAME_MAX - len(suffix)).rstrip("'") + suffix
        taken.add(name.casefold())
        names.append(name)
    return names


def _sheet_base(label: object) -> str:
    text = label if isinstance(label, str) else "" if label is None or _missing(label) else str(label)
    text = "".join("_" if unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch for ch in text.strip())
    text = SHEET_FORBIDDEN.sub("_", text).strip("'").strip()
    text = _cut(text, SHEET_NAME_MAX).rstrip("'").rstrip() or EMPTY_SHEET
    if text.casefold() in SHEET_RESERVED:
        text += "_"
    return text


def _cut(text: str, units: int) -> str:
    """The longest start of `text` that is at most `units` UTF-16 code units long."""
    if len(text.encode("utf-16-le")) <= 2 * units:
        return text
    out, used = [], 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            break
        out.append(ch)
    return "".join(out)


def file_names(labels: Iterable[object], suffix: str = "") -> list[str]:
    """A valid, unique file name (ending in `suffix`) for each label, in order (see the module doc):
    forbidden and control characters become ``_``; dots and spaces at either end are dropped; an
    empty label is ``(空)``; a reserved name gets ``_``; a long one is cut; a name already taken
    (case and Unicode normalisation ignored) gets `` (2)``, `` (3)`` …"""
    taken: set[str] = set()
    names = []
    for label in labels:
        text = label if isinstance(label, str) else "" if label is None or _missing(label) else str(label)
        text = unicodedata.normalize("NFC", text)
        text = "".join("_" if unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch for ch in text)
        base = _cut_bytes(FILE_FORBIDDEN.sub("_", text).strip(" ."), FILE_NAME_MAX).rstrip(" .") or EMPTY_SHEET
        if base.split(".")[0].casefold() in FILE_RESERVED:
            base += "_"
        name, n = base, 1
        while (name + suffix).casefold() in taken:
            n += 1
            name = _cut_bytes(base, FILE_NAME_MAX - len(f" ({n})")).rstrip(" .") + f" ({n})"
        taken.add((name + suffix).casefold())
        names.append(name + suffix)
    return names


def _cut_bytes(text: str, limit: int) -> str:
    """The longest start of `text` that is at most `limit` bytes of UTF-8."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")
