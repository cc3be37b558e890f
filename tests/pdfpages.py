"""The pages of a PDF that Chromium printed: the text of each and the colours they fill, read with
the standard library only (a test helper for the report's printed pages, not a PDF parser).

Chromium (Skia) writes a plain PDF: numbered objects (no object streams, no cross-reference
streams), page content streams compressed with Flate, text in Type0/Identity-H fonts (2-byte
codes) or, for synthetic bold, Type3 fonts (1-byte codes), each with a ToUnicode map; glyphs are
shown as ``<hex> Tj`` (or in ``[...] TJ``) between ``BT`` and ``ET``, and a glyph it cannot map is
wrapped in ``/Span <</ActualText <FEFF…> >> BDC … EMC``. That is all this module reads; a PDF shaped
otherwise fails loudly (AttributeError, KeyError, ValueError), never silently.
"""

from __future__ import annotations

import re
import zlib

_OBJ = re.compile(rb"(\d+)\s+0\s+obj\b")
_REF = rb"(\d+)\s+0\s+R"
_TOKEN = re.compile(rb"<([0-9A-Fa-f\s]*)>|\[(.*?)\]\s*TJ|/(\w+)\s+[-\d.]+\s+Tf|\bTj\b|\bBT\b|\bET\b"
                    rb"|/ActualText\s*<([0-9A-Fa-f]*)>|\bEMC\b", re.S)
_FILL = re.compile(rb"([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+rg\b")


def page_texts(pdf: bytes) -> list[str]:
    """The text of every page, in page order; each text object (BT … ET) ends with a newline."""
    objects = _objects(pdf)
    return [_show(_contents(objects, page), _fonts(objects, page)) for page in _pages(objects)]


def fill_colours(pdf: bytes) -> set[tuple[int, int, int]]:
    """Every RGB fill colour (``r g b rg``, as 0–255) that the pages' content streams set."""
    objects = _objects(pdf)
    return {tuple(round(float(c) * 255) for c in rgb)
            for page in _pages(objects) for rgb in _FILL.findall(_contents(objects, page))}


def _objects(pdf: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """Object number → (dictionary text, decoded stream or None). A stream is read by its /Length,
    never by looking for ``endstream`` (compressed bytes may hold those letters)."""
    objects, pos = {}, 0
    while m := _OBJ.search(pdf, pos):
        end = pdf.index(b"endobj", m.end())
        start = pdf.find(b"stream", m.end(), end)
        if start < 0:
            objects[int(m.group(1))] = (pdf[m.end():end], None)
            pos = end
            continue
        head = pdf[m.end():start]
        length = re.search(rb"/Length\s+(\d+)(\s+0\s+R)?", head)
        size = int(length.group(1))
        if length.group(2):  # an indirect length: the number in that object
            size = int(re.search(rb"\b" + length.group(1) + rb"\s+0\s+obj\s*(\d+)", pdf).group(1))
        data_at = start + len(b"stream") + (2 if pdf[start + 6:start + 8] == b"\r\n" else 1)
        raw = pdf[data_at:data_at + size]
        objects[int(m.group(1))] = (head, zlib.decompress(raw) if b"/FlateDecode" in head else raw)
        pos = pdf.index(b"endobj", data_at + size)
    return objects


def _pages(objects: dict) -> list[bytes]:
    """The page dictionaries in page order (the page tree from the catalog)."""
    catalog = next(body for body, _ in objects.values() if re.search(rb"/Type\s*/Catalog\b", body))
    pages, todo = [], [int(re.search(rb"/Pages\s+" + _REF, catalog).group(1))]
    while todo:
        body = objects[todo.pop(0)][0]
        if re.search(rb"/Type\s*/Pages\b", body):
            kids = re.search(rb"/Kids\s*\[(.*?)\]", body, re.S).group(1)
            todo[:0] = [int(n) for n in re.findall(_REF, kids)]
        else:
            pages.append(body)
    return pages


def _contents(objects: dict, page: bytes) -> bytes:
    """A page's content streams, decoded and joined."""
    contents = re.search(rb"/Contents\s*(\[.*?\]|" + _REF + rb")", page, re.S).group(1)
    return b"\n".join(objects[int(n)][1] for n in re.findall(_REF, contents))


def _subdict(objects: dict, text: bytes, key: bytes) -> bytes:
    """The dictionary at `key` in `text`, inline or through a reference (empty when there is none)."""
    m = re.search(rb"/" + key + rb"\s*(?:" + _REF + rb"|<<)", text)
    if m is None:
        return b""
    if m.group(1):
        return objects[int(m.group(1))][0]
    depth, i = 1, m.end()
    while depth:
        if text.startswith(b"<<", i):
            depth, i = depth + 1, i + 2
        elif text.startswith(b">>", i):
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return text[m.end():i - 2]


def _fonts(objects: dict, page: bytes) -> dict[bytes, tuple[dict[bytes, str], int]]:
    """A page's fonts by resource name: (ToUnicode map, bytes per code)."""
    fonts = {}
    for name, num in re.findall(rb"/(\w+)\s+" + _REF, _subdict(objects, _subdict(objects, page, b"Resources"), b"Font")):
        font = objects[int(num)][0]
        width = 2 if re.search(rb"/Subtype\s*/Type0\b", font) else 1
        unicode = re.search(rb"/ToUnicode\s+" + _REF, font)
        fonts[name] = (_cmap(objects[int(unicode.group(1))][1]) if unicode else {}, width)
    return fonts


def _cmap(stream: bytes) -> dict[bytes, str]:
    """A ToUnicode map: glyph code (its bytes) → text."""
    def text(hexs: bytes) -> str:
        return bytes.fromhex(hexs.decode()).decode("utf-16-be")

    out = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", stream, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[bytes.fromhex(src.decode())] = text(dst)
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", stream, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first, size, prefix, start = int(lo, 16), len(lo) // 2, text(dst)[:-1], ord(text(dst)[-1])
            for code in range(first, int(hi, 16) + 1):
                out[code.to_bytes(size, "big")] = prefix + chr(start + code - first)
    return out


def _show(stream: bytes, fonts: dict[bytes, tuple[dict[bytes, str], int]]) -> str:
    """The text a content stream shows, text objects ending in a newline; an /ActualText span is
    read as its actual text instead of its glyphs."""
    out, cmap, width, codes, actual = [], {}, 2, b"", None

    def decode(raw: bytes) -> str:
        return "".join(cmap.get(raw[i:i + width], "") for i in range(0, len(raw), width))

    for m in _TOKEN.finditer(stream):
        hexcodes, array, font, actual_text = m.group(1), m.group(2), m.group(3), m.group(4)
        if font is not None:
            cmap, width = fonts[font]
        elif hexcodes is not None:
            codes = bytes.fromhex(re.sub(rb"\s", b"", hexcodes).decode())
        elif m.group(0) == b"Tj" and actual is None:
            out.append(decode(codes))
        elif array is not None and actual is None:
            out.extend(decode(bytes.fromhex(h.decode())) for h in re.findall(rb"<([0-9A-Fa-f]*)>", array))
        elif actual_text is not None:
            actual = bytes.fromhex(actual_text.decode()).decode("utf-16-be").lstrip("\ufeff")
        elif m.group(0) == b"EMC" and actual is not None:
            out.append(actual)
            actual = None
        elif m.group(0) == b"ET":
            out.append("\n")
    return "".join(out)
