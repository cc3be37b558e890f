"""Quarantined rows and set-aside cells, listed for a clerk (`audit quarantine`, contract §1.5).

An ingest puts a row it cannot load in ``quarantine`` (file, row number, the column concerned,
the reason, and the row's cells as JSON) and records a cell it cannot use in ``set_aside`` (the
row is loaded with that field empty). `list_quarantine` gathers both, one entry per quarantined
row and per set-aside cell, ordered by ingest, file, row and kind (quarantined first); the
renderers write the entries as an aligned table, CSV or XLSX, reading them from DuckDB a chunk
at a time, so that a listing of millions of entries needs bounded memory.

An entry (CSV name / heading of the table and XLSX):

- ingest_id 导入批次;
- kind 类型: ``quarantined`` 隔离行 (the row was not loaded) or ``set_aside`` 搁置单元格 (the row
  was loaded with that field empty);
- file 文件: the file name, a workbook sheet as ``文件#工作表``;
- row 行: the row number in the file; column 列: the file's own header of the cell concerned;
- raw 原始值: a set-aside cell's text; for a quarantined row, the cell of its column when that is
  known and not empty, otherwise the row's non-empty cells as ``表头=值；…`` (``列N`` for a cell
  whose header the ingest did not record, e.g. a ragged row's);
- reason 原因: why, in Chinese. Older versions stored it behind ``第 N 行 ``; the row number has
  its own column, so that prefix is dropped.

Personal data is masked as in the report unless asked otherwise (`audit.outputs.mask`): cells of
columns whose header names the applicant, ID number or phone (the built-in header aliases, or the
field of a set-aside cell) by their masks, also where a reason quotes such a cell; ID and mobile
numbers inside every other cell (except the case id) and inside the reason; and name-shaped
values in cells whose column is not known.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import pandas as pd

from audit.errors import UsageError
from audit.outputs.mask import NUMBER_HINT, mask_id, mask_name, mask_phone, mask_unlabelled, scrub
from audit.spreadsheet import csv_text, heading_format, text_workbook, write_text
from audit.vocabulary import header_lookup, normalize_header

KINDS = {"quarantined": "隔离行", "set_aside": "搁置单元格"}
COLUMNS = ["ingest_id", "kind", "file", "row", "column", "raw", "reason"]
HEADINGS = ["导入批次", "类型", "文件", "行", "列", "原始值", "原因"]
PERSONAL = {"applicant": mask_name, "id_number": mask_id, "phone": mask_phone}
CHUNK_ROWS = 20_000                # entries fetched at a time for the table and XLSX
FRAME_VECTORS = 10                 # DuckDB vectors of 2,048 rows per CSV part
XLSX_MAX_ROWS = 1_048_575          # an Excel sheet has 1,048,576 rows; one is the header
XLSX_WIDTHS = [9, 11, 30, 8, 16, 50, 60]
# The table's widest file, column and raw value (display columns; longer ones end in …).
TABLE_CAPS = {"file": 40, "column": 16, "raw": 30}

# Stand-ins for the tables a database written by an older version does not have yet.
_EMPTY = {
    "quarantine": """SELECT NULL::BIGINT AS ingest_id, NULL::VARCHAR AS file_name, NULL::VARCHAR AS sha256,
                            NULL::BIGINT AS source_row, NULL::VARCHAR AS "column", NULL::VARCHAR AS reason,
                            NULL::JSON AS raw WHERE false""",
    "set_aside": """SELECT NULL::BIGINT AS ingest_id, NULL::VARCHAR AS file_name, NULL::VARCHAR AS sha256,
                           NULL::BIGINT AS source_row, NULL::VARCHAR AS "column", NULL::VARCHAR AS field,
                           NULL::VARCHAR AS raw, NULL::VARCHAR AS reason WHERE false""",
    "ingest_files": """SELECT NULL::BIGINT AS ingest_id, NULL::VARCHAR AS file_name, NULL::VARCHAR AS sha256,
                              NULL::VARCHAR AS sheet WHERE false""",
    "ingests": "SELECT NULL::BIGINT AS ingest_id WHERE false",
}


@dataclass
class QuarantineListing:
    """The entries of the chosen ingests (all when `ingest_id` is None), counted up front and
    read from DuckDB a chunk at a time by `chunks` or `frames` (one reader at a time)."""

    con: duckdb.DuckDBPyConnection
    ingest_id: int | None
    quarantined: int
    set_aside: int
    show_personal: bool
    sql: str
    widths_sql: str
    params: dict

    @property
    def total(self) -> int:
        """Entries in the listing."""
        return self.quarantined + self.set_aside

    def chunks(self) -> Iterator[list[tuple]]:
        """The entries as tuples in `COLUMNS` order, `CHUNK_ROWS` at a time."""
        result = self.con.execute(self.sql, self.params)
        while batch := result.fetchmany(CHUNK_ROWS):
            yield batch

    def frames(self) -> Iterator[pd.DataFrame]:
        """The entries as data frames with the `COLUMNS`, `FRAME_VECTORS` × 2,048 rows each."""
        result = self.con.execute(self.sql, self.params)
        while not (df := result.fetch_df_chunk(FRAME_VECTORS)).empty:
            yield df

    def widths(self) -> dict[str, int]:
        """Upper bounds of the display width (a Han character counts 2) of the file, column and
        raw value, and the digits of the largest ingest and row number, from the stored values
        (masking only narrows a value)."""
        params = {k: v for k, v in self.params.items() if k == "ingest"}
        file, column, raw, row, ingest = self.con.execute(self.widths_sql, params).fetchall()[0]
        return {"file": file or 0, "column": column or 0, "raw": raw or 0, "row": len(str(row or 0)),
                "ingest": len(str(ingest or 0))}


def list_quarantine(con: duckdb.DuckDBPyConnection, ingest_id: int | None = None,
                    show_personal: bool = False) -> QuarantineListing:
    """Every quarantined row and set-aside cell of ingest `ingest_id` (default: of every ingest).
    An ingest the database does not know is a UsageError naming the ones it does."""
    src = _sources(con)
    if ingest_id is not None:
        known = ingest_ids(con)
        if ingest_id not in known:
            have = f"已有的导入批次: {_ranges(known)}" if known else "数据库中还没有任何导入批次"
            raise UsageError(f"没有编号为 {ingest_id} 的导入批次；{have} (no ingest {ingest_id})")
    where, params = ("WHERE ingest_id = $ingest", {"ingest": ingest_id}) if ingest_id is not None else ("", {})
    quarantined, set_aside = con.execute(f"""
        SELECT (SELECT count(*) FROM {src['quarantine']} AS q {where}),
               (SELECT count(*) FROM {src['set_aside']} AS s {where})""", params).fetchall()[0]
    listing_params = dict(params)
    if not show_personal:
        _register_masks(con)
        listing_params.update(_header_classes(con, src, where, params))
    return QuarantineListing(con, ingest_id, quarantined, set_aside, show_personal,
                             _listing_sql(src, where, show_personal), _widths_sql(src, where), listing_params)


def ingest_ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Every ingest the database knows: its log, and any named in the quarantine or set-aside."""
    src = _sources(con)
    return [r[0] for r in con.execute(f"""
        SELECT ingest_id FROM {src['ingests']} AS i UNION SELECT ingest_id FROM {src['quarantine']} AS q
        UNION SELECT ingest_id FROM {src['set_aside']} AS s ORDER BY 1""").fetchall() if r[0] is not None]


def _sources(con) -> dict[str, str]:
    present = {r[0] for r in con.execute("""SELECT table_name FROM duckdb_tables()
                                            WHERE database_name = current_database() AND schema_name = 'main'""")
               .fetchall()}
    return {name: name if name in present else f"({empty})" for name, empty in _EMPTY.items()}


def _entries_sql(src: dict[str, str], where: str) -> str:
    """CTEs `names` (the file name shown for each file of the ingest log) and `entries` (both
    kinds, unmasked: `cell` is the cell concerned, `whole_row` the row's cells when that is
    what the raw value shows)."""
    # A workbook sheet is shown as name#sheet. The log has the sheet in its own column; a
    # quarantine row may already carry name#sheet (then it matches no log name and stays).
    # A bare workbook name whose ingest read several sheets cannot say which: shown as stored.
    json_key = """'$."' || replace(replace(q."column", '\\', '\\\\'), '"', '\\"') || '"'"""
    return f"""
        names AS (
            SELECT ingest_id, sha256, file_name,
                   CASE WHEN count(DISTINCT sheet) = 1 THEN file_name || '#' || min(sheet)
                        ELSE file_name END AS shown
            FROM {src['ingest_files']} AS f GROUP BY ingest_id, sha256, file_name),
        problems AS (
            SELECT q.ingest_id, 0 AS kind_no, q.file_name, q.sha256, q.source_row, q."column",
                   NULL::VARCHAR AS field,
                   CASE WHEN q."column" IS NOT NULL AND json_type(q.raw) = 'OBJECT'
                        THEN q.raw ->> ({json_key}) END AS cell,
                   q.raw, q.reason
            FROM {src['quarantine']} AS q {where}
            UNION ALL
            SELECT s.ingest_id, 1, s.file_name, s.sha256, s.source_row, s."column", s.field, s.raw,
                   NULL::JSON, s.reason
            FROM {src['set_aside']} AS s {where}),
        entries AS (
            SELECT p.*, coalesce(n.shown, p.file_name) AS file,
                   CASE WHEN p.kind_no = 0 AND coalesce(p.cell, '') = '' THEN p.raw END AS whole_row
            FROM problems p LEFT JOIN names n USING (ingest_id, sha256, file_name))"""


def _header_classes(con, src: dict[str, str], where: str, params: dict) -> dict[str, list[str]]:
    """The headers of the listing's cells that name personal data, and the other headers the
    built-in aliases know (`$personal`, `$known`): the listing calls the Python mask only for
    cells it may change (a call costs microseconds, a million of them seconds)."""
    headers = [r[0] for r in con.execute(f"""
        WITH {_entries_sql(src, where)}
        SELECT DISTINCT h FROM (
            SELECT "column" AS h FROM entries
            UNION ALL SELECT unnest(json_keys(whole_row)) FROM entries WHERE json_type(whole_row) = 'OBJECT')
        WHERE h IS NOT NULL""", params).fetchall()]
    fields = {h: _field_of(h) for h in headers}
    return {"personal": [h for h, f in fields.items() if f in PERSONAL],
            "known": [h for h, f in fields.items() if f and f not in PERSONAL]}


def _masked(header: str, fld: str, value: str) -> str:
    """SQL: `value` through `mask_cell` when that may change it (a superset of the cases it
    changes): a personal column; a value matching `NUMBER_HINT` (an ID or phone number for
    `scrub`); a Han character in a cell of an unknown column (a name for `mask_unlabelled`)."""
    return f"""CASE WHEN {_personal(header, fld)}
                         OR regexp_matches({value}, '{NUMBER_HINT}')
                         OR ({fld} IS NULL AND NOT coalesce(list_contains($known, {header}), false)
                             AND regexp_matches({value}, '[\u4e00-\u9fff]'))
                    THEN _audit_mask_cell({header}, {fld}, {value}) ELSE {value} END"""


def _personal(header: str, fld: str) -> str:
    """SQL: the cell's column holds personal data (by its field, or its header's)."""
    return f"""{fld} IN ({', '.join(f"'{f}'" for f in PERSONAL)}) OR list_contains($personal, {header})"""


def _listing_sql(src: dict[str, str], where: str, show_personal: bool) -> str:
    def mask(header: str, fld: str, value: str) -> str:
        return value if show_personal else _masked(header, fld, value)

    reason = "regexp_replace(e.reason, '^第 [0-9]+ 行 ', '')"
    # A reason quotes the cell it is about: masked like the cell when that is personal data.
    masked_reason = f"""CASE WHEN regexp_matches({reason}, '{NUMBER_HINT}')
                                  OR (coalesce(e.cell, '') <> '' AND ({_personal('e."column"', 'e.field')}))
                             THEN _audit_mask_reason({reason}, e."column", e.field, e.cell) ELSE {reason} END"""
    return f"""
        WITH {_entries_sql(src, where)}
        SELECT e.ingest_id, CASE e.kind_no WHEN 0 THEN 'quarantined' ELSE 'set_aside' END AS kind,
               e.file, e.source_row AS "row", e."column",
               CASE WHEN e.whole_row IS NULL THEN {mask('e."column"', 'e.field', 'e.cell')}
                    ELSE (SELECT string_agg(c.label || '=' || {mask('c.header', 'NULL', 'c.value')}, '；'
                                            ORDER BY c.id)
                          FROM (SELECT CASE WHEN json_type(e.whole_row) = 'ARRAY'
                                            THEN '列' || (j.key::BIGINT + 1) ELSE j.key END AS label,
                                       CASE WHEN json_type(e.whole_row) = 'OBJECT' THEN j.key END AS header,
                                       j.value ->> '$' AS value, j.id
                                FROM json_each(e.whole_row) AS j) AS c
                          WHERE coalesce(c.value, '') <> '') END AS raw,
               {reason if show_personal else masked_reason} AS reason
        FROM entries e
        ORDER BY e.ingest_id, e.file, e.source_row, e.kind_no, e."column" NULLS FIRST, reason, raw"""


def _widths_sql(src: dict[str, str], where: str) -> str:
    # Display width of a text, an upper bound: a Han character is 3 bytes in UTF-8 and 2 columns.
    def width(e: str) -> str:
        return f"(length({e}) + (strlen({e}) - length({e})) // 2)"

    # The cells of a whole row as `表头=值；` are no wider than the row's JSON text, plus
    # `列N=` for the cells of an array.
    whole = (f"{width('e.whole_row::VARCHAR')} + CASE WHEN json_type(e.whole_row) = 'ARRAY' "
             f"THEN 8 * json_array_length(e.whole_row) ELSE 0 END")
    return f"""
        WITH {_entries_sql(src, where)}
        SELECT max({width('e.file')}), max({width('e."column"')}),
               max(CASE WHEN e.whole_row IS NULL THEN {width('e.cell')} ELSE {whole} END), max(e.source_row),
               max(e.ingest_id)
        FROM entries e"""


@lru_cache(maxsize=1)
def _headers() -> dict[str, str]:
    return header_lookup()


@lru_cache(maxsize=4096)
def _field_of(header: str | None) -> str | None:
    return _headers().get(normalize_header(header)) if header is not None else None


def mask_cell(header: str | None, field: str | None, value: str | None) -> str | None:
    """A cell of column `header` (canonical `field`, when known) as shown without personal data:
    applicant, ID number and phone masked; the case id as written; ID and mobile numbers masked
    in any other cell; a name-shaped value masked too when the column is not known."""
    if not value:
        return value
    field = field or _field_of(header)
    if field in PERSONAL:
        return PERSONAL[field](value)
    if field == "case_id":
        return value
    return scrub(value) if field else mask_unlabelled(value)


def mask_reason(reason: str | None, header: str | None, field: str | None, cell: str | None) -> str | None:
    """A reason as shown without personal data: the cell it quotes (as written, or trimmed)
    masked like the cell when its column holds personal data, and ID and mobile numbers masked."""
    if reason and cell and (field or _field_of(header)) in PERSONAL:
        for text in {cell, cell.strip()} - {""}:
            reason = reason.replace(text, mask_cell(header, field, text))
    return scrub(reason)


def _register_masks(con) -> None:
    for name, fn, args in (("_audit_mask_cell", mask_cell, ["VARCHAR"] * 3),
                           ("_audit_mask_reason", mask_reason, ["VARCHAR"] * 4)):
        try:
            con.remove_function(name)
        except (duckdb.InvalidInputException, duckdb.CatalogException):
            pass   # not registered on this connection yet
        con.create_function(name, fn, args, "VARCHAR", null_handling="special", side_effects=False)


def _ranges(ids: list[int]) -> str:
    """1, 2, 3, 5 → 1–3, 5."""
    parts: list[str] = []
    start = prev = None
    for i in ids + [None]:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}–{prev}")
        start = prev = i
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# Renderers.

def counts_text(listing: QuarantineListing) -> str:
    """隔离行 N，搁置单元格 M."""
    return f"隔离行 {listing.quarantined:,}，搁置单元格 {listing.set_aside:,}"


def empty_text(listing: QuarantineListing) -> str:
    """The one line said when there is nothing to list."""
    scope = f"导入批次 {listing.ingest_id} " if listing.ingest_id is not None else ""
    return f"{scope}没有被隔离的行，也没有被搁置的单元格 (no quarantined rows or set-aside cells)"


def table_parts(listing: QuarantineListing) -> Iterator[str]:
    """Aligned text for the terminal, in parts of many lines: a heading, one line per entry
    (file, column and raw value cut to `TABLE_CAPS` with …), and the counts; one line saying so
    when there is nothing to list."""
    if listing.total == 0:
        yield empty_text(listing) + "\n"
        return
    w = listing.widths()
    kinds = [KINDS[k] for k, n in (("quarantined", listing.quarantined), ("set_aside", listing.set_aside)) if n]
    widths = [max(_width(HEADINGS[0]), w["ingest"]),
              max(_width(HEADINGS[1]), *map(_width, kinds)),
              max(_width(HEADINGS[2]), min(w["file"], TABLE_CAPS["file"])),
              max(_width(HEADINGS[3]), w["row"]),
              max(_width(HEADINGS[4]), min(w["column"], TABLE_CAPS["column"])),
              max(_width(HEADINGS[5]), min(w["raw"], TABLE_CAPS["raw"]))]
    cells = [_Cells(width) for width in widths]
    ingest_w, row_w = widths[0], widths[3]
    heading = [_left(h, widths[j]) if j not in (0, 3) else " " * (widths[j] - _width(h)) + h
               for j, h in enumerate(HEADINGS[:-1])]
    yield "  ".join(heading + [HEADINGS[-1]]) + "\n"
    kind_cell, file_cell, column_cell, raw_cell = cells[1], cells[2], cells[4], cells[5]
    # File names, columns and kinds repeat: each is fitted once (`_Cells` keeps them); raw values
    # are fitted line by line.
    for chunk in listing.chunks():
        yield "\n".join(
            f"{str(ingest).rjust(ingest_w)}  {kind_cell.cached(KINDS[kind])}  {file_cell.cached(file)}  "
            f"{str(row).rjust(row_w)}  {column_cell.cached(column)}  {raw_cell.fit(raw)}  "
            f"{_one_line(reason)}".rstrip()
            for ingest, kind, file, row, column, raw, reason in chunk) + "\n"
    cut = any(c.cut for c in cells)
    note = "；显示时截断的值以 … 结尾，完整内容用 --format csv 或 --format xlsx --out FILE" if cut else ""
    yield f"共 {listing.total:,} 条：{counts_text(listing)}{note}\n"


class _Cells:
    """Texts fitted to one column of the table: cut to its width with …, padded with spaces."""

    def __init__(self, width: int):
        self.width, self.cut, self._seen = width, False, {}

    def fit(self, value: object) -> str:
        """`value` on one line, cut to the width (… when cut) and padded to it."""
        text = _one_line(value)
        shown, used = _fit(text, self.width)
        self.cut = self.cut or shown is not text
        return shown + " " * (self.width - used)

    def cached(self, value: object) -> str:
        """`fit` for a value that repeats (a file name, a column): kept, up to 10,000 of them."""
        if (out := self._seen.get(value)) is None:
            out = self.fit(value)
            if len(self._seen) < 10_000:
                self._seen[value] = out
        return out


def _left(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def csv_parts(listing: QuarantineListing) -> Iterator[str]:
    """CSV with the `COLUMNS`, in parts, formula-safe as `audit findings --format csv` (the
    caller adds the BOM when writing a file); the header alone when there is nothing to list."""
    first = True
    for df in listing.frames():
        yield csv_text(df, header=first)
        first = False
    if first:
        yield csv_text(pd.DataFrame(columns=COLUMNS))


def write_xlsx(listing: QuarantineListing, path: Path) -> None:
    """One sheet (隔离清单) with the Chinese headings: every cell formula-safe text (as in the CSV),
    header frozen, autofilter, set column widths, A4 landscape one page wide. Written row by row
    (constant memory)."""
    if listing.total > XLSX_MAX_ROWS:
        raise UsageError(f"共 {listing.total:,} 条，超过 Excel 工作表的上限 {XLSX_MAX_ROWS:,} 行："
                         "请用 --format csv，或用 --ingest N 分批导出")
    wb = text_workbook(path, "帮办代办导入隔离清单", constant_memory=True)
    ws = wb.add_worksheet("隔离清单")
    head = heading_format(wb)
    plain = wb.add_format({"valign": "top"})
    wrapped = wb.add_format({"valign": "top", "text_wrap": True})
    formats = [plain] * 5 + [wrapped] * 2
    for j, (name, width) in enumerate(zip(HEADINGS, XLSX_WIDTHS)):
        ws.set_column(j, j, width)
        ws.write_string(0, j, name, head)
    ws.freeze_panes(1, 0)
    ws.set_landscape()
    ws.set_paper(9)            # A4
    ws.fit_to_pages(1, 0)      # one page wide
    ws.repeat_rows(0)
    r = 1
    for chunk in listing.chunks():
        for ingest, kind, file, row, column, raw, reason in chunk:
            for j, value in enumerate((ingest, KINDS[kind], file, row, column, raw, reason)):
                write_text(ws, r, j, value, formats[j])
            r += 1
    ws.autofilter(0, 0, max(r - 1, 1), len(HEADINGS) - 1)
    wb.close()


# Characters two columns wide on a terminal (Unicode East Asian Width W and F, main blocks):
# Hangul Jamo, CJK punctuation and symbols, kana, CJK ideographs, Yi, Hangul, compatibility
# ideographs, vertical and small forms, full-width forms, emoji, supplementary ideographs.
_WIDE = re.compile("[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
                   "\uac00-\ud7a3\uf900-\ufaff\ufe10-\ufe19\ufe30-\ufe6f\uff00-\uff60\uffe0-\uffe6"
                   "\U0001f300-\U0001f64f\U0001f900-\U0001f9ff\U00020000-\U0002fffd\U00030000-\U0003fffd]")


def _width(text: str) -> int:
    """Display columns of `text` on a terminal."""
    return len(text) if text.isascii() else len(text) + len(_WIDE.findall(text))


def _fit(text: str, width: int) -> tuple[str, int]:
    """`text` cut to `width` display columns, ending in … when cut; and its display width."""
    head = text[:width + 1]       # every character is at least one column wide
    used = _width(head)
    if used <= width and len(head) == len(text):
        return text, used
    out, used = [], 1             # the … takes one column
    for ch in head:
        cw = 2 if ch >= "\u1100" and _WIDE.match(ch) else 1
        if used + cw > width:
            break
        out.append(ch)
        used += cw
    return "".join(out) + "…", used


_ONE_LINE = str.maketrans({"\r": " ", "\n": " ", "\t": " "})


def _one_line(value: object) -> str:
    return "" if value is None else str(value).translate(_ONE_LINE)
