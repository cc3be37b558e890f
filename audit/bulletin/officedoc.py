"""The bulletin (`audit.bulletin.build.Bulletin`) written as an editable Word document (python-docx).

Layout after the practice of Chinese official documents (GB/T 9704-2012 《党政机关公文格式》):

- A4 paper; margins top 37 mm, bottom 35 mm, left 28 mm, right 26 mm (a text block of 156 × 225 mm);
- title in 二号 (22 pt), centred; body in 三号 (16 pt) with a first-line indent of two characters and a
  fixed line spacing of 28 pt (22 lines a page); level-1 headings (一、) in 黑体, level-2 headings
  (（一）) in 楷体; tables in 五号 (10.5 pt); page numbers "— 1 —" centred in the footer;
- fonts: every style names its font for both the Latin (ASCII/hAnsi) and the East-Asian slot
  (``w:eastAsia`` in ``w:rFonts``; Word and WPS read the latter for Chinese text; the theme fonts of
  the template are removed so that they cannot win). The fonts are those that every Chinese Windows
  and WPS install carries: 宋体 (title), 仿宋 (body, tables), 黑体 (level 1), 楷体 (level 2). An office
  with the GB/T 9704 fonts 方正小标宋简体 and 仿宋_GB2312 changes them in one place: the document uses
  named styles (通报标题, 通报正文, 一级标题, 二级标题, 表格文字 …), so editing a style restyles the
  whole document.

Every paragraph has a named style and no direct formatting but bold in table headers, so that the
document stays easy to edit. The core properties carry the bulletin's date, not the clock.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.style import WD_STYLE_TYPE
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt

TITLE_FONT = "宋体"
BODY_FONT = "仿宋"
H1_FONT = "黑体"
H2_FONT = "楷体"
TITLE_SIZE, BODY_SIZE, TABLE_SIZE, NOTE_SIZE = Pt(22), Pt(16), Pt(10.5), Pt(12)
LINE = Pt(28)
MARGINS = {"top_margin": Mm(37), "bottom_margin": Mm(35), "left_margin": Mm(28), "right_margin": Mm(26)}
TEXT_WIDTH = Mm(210 - 28 - 26)

# style name → (ASCII style id, font, size, bold, alignment, first-line indent in characters, outline level)
STYLES = {
    "通报标题": ("BulletinTitle", TITLE_FONT, TITLE_SIZE, True, WD_ALIGN_PARAGRAPH.CENTER, 0, None),
    "发文字号": ("BulletinNumber", BODY_FONT, BODY_SIZE, False, WD_ALIGN_PARAGRAPH.CENTER, 0, None),
    "主送": ("BulletinAddressee", BODY_FONT, BODY_SIZE, False, WD_ALIGN_PARAGRAPH.LEFT, 0, None),
    "通报正文": ("BulletinBody", BODY_FONT, BODY_SIZE, False, WD_ALIGN_PARAGRAPH.JUSTIFY, 2, None),
    "说明": ("BulletinNotice", H2_FONT, BODY_SIZE, False, WD_ALIGN_PARAGRAPH.JUSTIFY, 2, None),
    "一级标题": ("BulletinHeading1", H1_FONT, BODY_SIZE, False, WD_ALIGN_PARAGRAPH.LEFT, 2, 0),
    "二级标题": ("BulletinHeading2", H2_FONT, BODY_SIZE, False, WD_ALIGN_PARAGRAPH.LEFT, 2, 1),
    "表题": ("BulletinCaption", H1_FONT, Pt(14), False, WD_ALIGN_PARAGRAPH.CENTER, 0, None),
    "表格文字": ("BulletinTableText", BODY_FONT, TABLE_SIZE, False, WD_ALIGN_PARAGRAPH.CENTER, 0, None),
    "表注": ("BulletinTableNote", BODY_FONT, NOTE_SIZE, False, WD_ALIGN_PARAGRAPH.LEFT, 0, None),
    "落款": ("BulletinSignature", BODY_FONT, BODY_SIZE, False, WD_ALIGN_PARAGRAPH.RIGHT, 0, None),
}
BLOCK_STYLES = {"title": "通报标题", "number": "发文字号", "addressee": "主送", "body": "通报正文", "notice": "说明",
                "h1": "一级标题", "h2": "二级标题", "signature": "落款", "date": "落款"}


def write_docx(bulletin, out: Path) -> None:
    """Write `bulletin` (its `blocks`, in order) to `out` as a .docx file."""
    doc = Document()
    _page(doc)
    _styles(doc)
    for kind, content in bulletin.blocks():
        if kind == "table":
            _table(doc, content)
        else:
            paragraph = doc.add_paragraph(content, style=BLOCK_STYLES[kind])
            if kind == "title":        # a blank line under the title, as official documents have
                paragraph.paragraph_format.space_after = LINE
            elif kind == "addressee":
                paragraph.paragraph_format.space_before = LINE
    _footer_page_number(doc)
    _properties(doc, bulletin.title, bulletin.issuer, bulletin.date, bulletin.about.service)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(out))


# --- page and styles ----------------------------------------------------------------------------
def _page(doc) -> None:
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    for name, value in MARGINS.items():
        setattr(section, name, value)
    section.footer_distance = Mm(28)


def set_fonts(element, font: str) -> None:
    """Name `font` for the Latin and the East-Asian text of a style or run element (`w:rFonts`
    ascii, hAnsi, eastAsia, cs), removing any theme font that would override it."""
    rfonts = element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("asciiTheme", "hAnsiTheme", "eastAsiaTheme", "cstheme"):
        rfonts.attrib.pop(qn(f"w:{attr}"), None)
    for attr in ("ascii", "hAnsi", "eastAsia", "cs"):
        rfonts.set(qn(f"w:{attr}"), font)


def _styles(doc) -> None:
    styles = doc.styles
    # Document defaults: the body font in every slot, Chinese as the East-Asian language (line
    # breaking and punctuation), no spacing after paragraphs.
    defaults = styles.element.find(qn("w:docDefaults"))
    rpr = defaults.find(qn("w:rPrDefault")).find(qn("w:rPr"))
    rfonts = rpr.find(qn("w:rFonts"))
    for attr in list(rfonts.attrib):
        del rfonts.attrib[attr]
    for attr in ("ascii", "hAnsi", "eastAsia", "cs"):
        rfonts.set(qn(f"w:{attr}"), BODY_FONT)
    lang = rpr.find(qn("w:lang"))
    lang.set(qn("w:val"), "en-US")
    lang.set(qn("w:eastAsia"), "zh-CN")
    spacing = defaults.find(qn("w:pPrDefault")).find(qn("w:pPr")).find(qn("w:spacing"))
    spacing.set(qn("w:after"), "0")
    normal = styles["Normal"]
    set_fonts(normal.element, BODY_FONT)
    normal.font.size = BODY_SIZE
    for name, (style_id, font, size, bold, align, indent, level) in STYLES.items():
        style = styles.add_style(name, WD_STYLE_TYPE.PARAGRAPH)
        style.style_id = style_id       # ASCII ids, as Word writes them; the names are Chinese
        style.base_style = normal
        style.quick_style = True
        set_fonts(style.element, font)
        style.font.size = size
        style.font.bold = bold
        fmt = style.paragraph_format
        fmt.alignment = align
        fmt.first_line_indent = size * indent if indent else Pt(0)
        fmt.space_before = fmt.space_after = Pt(0)
        if name in ("表格文字", "表注"):
            fmt.line_spacing_rule = WD_LINE_SPACING.SINGLE
        else:
            fmt.line_spacing_rule = WD_LINE_SPACING.EXACTLY
            fmt.line_spacing = LINE if size <= BODY_SIZE else Pt(35)
        if name == "落款":
            fmt.right_indent = BODY_SIZE * 4
        if level is not None:       # shown in the navigation pane, usable for a table of contents
            outline = OxmlElement("w:outlineLvl")
            outline.set(qn("w:val"), str(level))
            style.element.get_or_add_pPr().append(outline)
        if name == "表题":
            fmt.space_before = Pt(6)
            fmt.keep_with_next = True


# --- tables -------------------------------------------------------------------------------------
def _table(doc, table) -> None:
    if table.caption:
        doc.add_paragraph(table.caption, style="表题")
    grid = doc.add_table(rows=1 + len(table.rows), cols=len(table.headers))
    grid.style = doc.styles["Table Grid"]
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    grid.autofit = False
    widths = _column_widths(len(table.headers))
    for column, width in zip(grid.columns, widths):
        column.width = width            # the grid (read by WPS and LibreOffice) as well as the cells
    for i, row in enumerate([table.headers, *table.rows]):
        cells = grid.rows[i].cells
        for j, text in enumerate(row):
            cells[j].width = widths[j]
            _cell_text(cells[j], text, bold=i == 0)
    _repeat_header(grid.rows[0])
    for note in table.notes:
        doc.add_paragraph(note, style="表注")


def _column_widths(n: int) -> list:
    """The first two columns (name, count) narrower than the figures."""
    if n <= 2:
        return [TEXT_WIDTH // max(n, 1)] * n
    first, second = Mm(24), Mm(14)
    rest = (TEXT_WIDTH - first - second) // (n - 2)
    return [first, second] + [rest] * (n - 2)


def _cell_text(cell, text: str, bold: bool) -> None:
    """A cell's lines as paragraphs of the 表格文字 style."""
    lines = str(text).split("\n")
    first = cell.paragraphs[0]
    first.style = "表格文字"
    first.add_run(lines[0]).bold = bold or None
    for line in lines[1:]:
        cell.add_paragraph(line, style="表格文字").runs[0].bold = bold or None


def _repeat_header(row) -> None:
    """The header row repeats on every page a table runs over."""
    trpr = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    trpr.append(header)


# --- footer and properties ----------------------------------------------------------------------
def _footer_page_number(doc) -> None:
    paragraph = doc.sections[0].footer.paragraphs[0]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.add_run("— ")
    field = OxmlElement("w:fldSimple")      # the page number, filled in by Word and WPS
    field.set(qn("w:instr"), "PAGE")
    number = OxmlElement("w:r")
    text = OxmlElement("w:t")
    text.text = "1"
    number.append(text)
    field.append(number)
    paragraph._p.append(field)
    paragraph.add_run(" —")
    for run in [*paragraph.runs, number]:
        run = getattr(run, "_r", run)
        set_fonts(run, TITLE_FONT)
        size = OxmlElement("w:sz")
        size.set(qn("w:val"), "28")         # 四号, in half-points
        run.get_or_add_rPr().append(size)


def _properties(doc, title: str, issuer: str, date: dt.date, service: str) -> None:
    """Core properties from the bulletin (no clock: the same database gives the same properties)."""
    props = doc.core_properties
    stamp = dt.datetime(date.year, date.month, date.day)
    props.title = title
    props.author = props.last_modified_by = issuer or ""
    props.created = props.modified = stamp
    props.revision = 1
    props.comments = ""
    props.keywords = f"{service} 通报"
