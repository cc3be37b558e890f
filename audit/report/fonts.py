"""The report's Chinese font: one CJK font for the charts (as glyph paths) and the page (subset).

The font comes from the PyPI package ``paperang-p2-fonts-cjk``, which carries WenQuanYi Micro Hei
(文泉驿微米黑, Apache-2.0; 2.3 MB wheel), so that a fresh ``pip install`` renders Chinese without any
system font. A system copy of a known CJK font is used when the package is missing.

Charts draw their text as SVG paths (no font needed by the viewer). The page embeds a subset of
the same font holding only the characters the page uses, as a WOFF ``data:`` URI: the HTML shows
Chinese offline on any machine.
"""

from __future__ import annotations

import base64
import functools
import importlib.resources
import io
from pathlib import Path

from audit.errors import UsageError

FONT_PACKAGE = "paperang_p2_fonts_cjk"
FONT_FILE = "fonts/wqy-microhei.ttc"
PAGE_FAMILY = "ReportSans"  # the name of the embedded subset in the page's CSS
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
# Always in the subset: what the browser may draw without it being in the page text (digits of
# counts the script computes, punctuation of its messages).
BASE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F)) + "，。：；、（）—…·％▲▼↑↓"


@functools.lru_cache(maxsize=1)
def font_path() -> Path:
    """The CJK font file (a TrueType collection; face 0 is the proportional font)."""
    try:
        path = Path(str(importlib.resources.files(FONT_PACKAGE).joinpath(FONT_FILE)))
        if path.is_file():
            return path
    except ModuleNotFoundError:
        pass
    for candidate in SYSTEM_FONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise UsageError("报告需要中文字体：请 pip install paperang-p2-fonts-cjk (WenQuanYi Micro Hei)")


@functools.lru_cache(maxsize=1)
def matplotlib_family() -> str:
    """Register the font with matplotlib (once per process) and return its family name."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    path = str(font_path())
    font_manager.fontManager.addfont(path)
    return FT2Font(path).family_name


@functools.lru_cache(maxsize=1)
def _ft2font():
    from matplotlib.ft2font import FT2Font

    return FT2Font(str(font_path()))


@functools.lru_cache(maxsize=4096)
def _advance(ch: str) -> float:
    """The advance width of `ch` in em (1 em when the font lacks it: the browser's fallback)."""
    from matplotlib.ft2font import LoadFlags

    font = _ft2font()
    if not font.get_char_index(ord(ch)):
        return 1.0
    return font.load_char(ord(ch), flags=LoadFlags.NO_SCALE | LoadFlags.NO_HINTING).horiAdvance / font.units_per_EM


def text_width(text: str, size: float) -> float:
    """The width in px of `text` set in the report's font at `size` px (for laying out labels that
    the page draws as SVG text in that font)."""
    return sum(_advance(ch) for ch in text) * size


def font_face_css(text: str) -> str:
    """A CSS ``@font-face`` rule embedding the font subset to the characters of `text`."""
    data = base64.b64encode(subset_woff(frozenset(text) | frozenset(BASE_CHARS))).decode("ascii")
    return (f"@font-face{{font-family:'{PAGE_FAMILY}';font-style:normal;font-weight:400;"
            f"src:url(data:font/woff;base64,{data}) format('woff');}}")


def subset_woff(chars: frozenset[str]) -> bytes:
    """The font reduced to `chars`, as WOFF (zlib) bytes; the same characters give the same bytes."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path()), fontNumber=0, recalcTimestamp=False, lazy=True)
    options = subset.Options()
    options.flavor = "woff"
    options.hinting = False
    options.layout_features = ["*"]
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    options.notdef_outline = True
    options.recalc_timestamp = False
    options.drop_tables = [*options.drop_tables, "FFTM"]  # FontForge's timestamps: not subsettable, not needed
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in chars if not 0xD800 <= ord(c) <= 0xDFFF))
    subsetter.subset(font)
    buf = io.BytesIO()
    font.flavor = "woff"
    font.save(buf, reorderTables=True)
    return buf.getvalue()
