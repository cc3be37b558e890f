"""Read an IEEE XES event log (plain or gzip-compressed) streaming, into temporary Parquet files.

The XML is parsed with lxml's `iterparse` and never built as a tree: each <event> is read when it
ends and then cleared and removed, each <trace> when it ends (its events were buffered as tuples,
since a trace's attributes may follow its events), and everything before it is deleted. Memory is
bounded by the largest trace, whatever the size of the file. The rows go to two temporary Parquet
files written in batches (`XesLog.traces`, `XesLog.events`), which the stage reads as it reads any
other file (`audit.ingest.stage.stage_xes`); rows that cannot be loaded at all go to a third.

Mapping (README "XES"): trace `concept:name` -> case_id; event `concept:name` -> step,
`time:timestamp` -> time (an offset or Z is converted to naive Asia/Shanghai time by the stage,
as for every input), `org:resource` -> the event's staff; other trace attributes -> case fields by
the header lookup (built-in names, the profile's `columns:`), the rest listed as unmapped; other
event attributes are not used. Values of the types string, date, int, float, boolean and id are
taken as written; list and container values are not used (noted). The log's <extension>,
<global> (its defaults are not filled in), <classifier> and log attributes are not used.

The XML is untrusted: entities are not resolved, nothing is fetched from the network, no DTD is
loaded, and a file with a DOCTYPE is refused (XES needs none; it is where entity attacks live).

Each trace and each event is a row of the file; its row number is the line where its element
starts (`sourceline`). The `_row` column holds line << 6 | k, k numbering the elements that start
on the same line (a minified file), so that the stage's positions keep the file order.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from audit.errors import InputError
from audit.ingest.normalize import ColumnPlan
from audit.ingest.textfile import new_copy_path, remove_copy
from audit.vocabulary import CASE_ATTRIBUTES, normalize_header

BATCH = 50_000                 # rows per Parquet row group: the parsed rows in memory at a time
TRACE_NAME = "trace concept:name"
EVENT_NAME = "event concept:name"
TIMESTAMP = "time:timestamp"
RESOURCE = "org:resource"
VALUE_TYPES = {"string", "date", "int", "float", "boolean", "id"}
NESTED_TYPES = {"list", "container"}
TRACE_FIELDS = ["city", *CASE_ATTRIBUTES]      # what a trace attribute may map to
EVENT_KEYS = ("concept:name", TIMESTAMP, RESOURCE)
SHOWN_KEYS = 20                # attribute keys named in a note at most


# ---------------------------------------------------------------------------------------------
def sniff(head: bytes) -> str | None:
    """'xes' or 'xes.gz' when the first bytes of a file are an XES log (its root element <log>,
    after the XML declaration, comments and processing instructions), plain or gzip-compressed;
    'gz' for another gzip file; None otherwise."""
    if head.startswith(b"\x1f\x8b"):
        try:
            inner = zlib.decompressobj(wbits=31).decompress(head, 1 << 16)
        except zlib.error:
            return "gz"
        return "xes.gz" if _is_xes(inner) else "gz"
    return "xes" if _is_xes(head) else None


def _is_xes(head: bytes) -> bool:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="replace")
    else:
        text = head.decode("utf-8", errors="replace")
    text = re.sub(r"<!--.*?-->|<\?.*?\?>", "", text.lstrip("\ufeff"), flags=re.S).lstrip()
    if text.startswith("<!DOCTYPE"):       # recognised here, refused by the reader
        end = text.find("]>") + 2 if "[" in text.split(">", 1)[0] else text.find(">") + 1
        text = re.sub(r"<!--.*?-->|<\?.*?\?>", "", text[end:], flags=re.S).lstrip() if end > 0 else ""
    return re.match(r"<([\w.-]+:)?log[\s/>]", text) is not None


# ---------------------------------------------------------------------------------------------
@dataclass
class XesPart:
    """One part of an XES file staged as a table: its temporary Parquet file (columns c0.. as
    text and `_row`), the header of each column, and what the columns mean."""

    path: Path
    plan: ColumnPlan
    columns: list[int]           # the Parquet columns staged, in plan order (c<i> of the file)
    rows: int = 0

    def sql(self) -> str:
        """The part as a relation with columns c0..cN-1 (the plan's) and `_row`."""
        path = str(self.path).replace("'", "''")
        cols = ", ".join(f"c{src} AS c{i}" for i, src in enumerate(self.columns))
        return f"(SELECT {cols}, _row FROM read_parquet('{path}'))"


@dataclass
class XesLog:
    """An XES file read: its traces (case rows) and events, the rows quarantined while reading
    (`bad`: a Parquet file of row, column, reason, raw), what was counted, and notes."""

    path: Path
    format: str                   # xes | xes.gz
    encoding: str | None
    traces: XesPart
    events: XesPart
    bad: Path
    bad_rows: int = 0
    traces_read: int = 0
    events_read: int = 0
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return self.traces_read + self.events_read

    def cleanup(self) -> None:
        """Remove the temporary files (once staged, or on any failure)."""
        for path in (self.traces.path, self.events.path, self.bad):
            remove_copy(path)


class _Writer:
    """Rows of one part, written to a temporary Parquet file BATCH rows at a time."""

    def __init__(self, names: list[str], types: dict[str, str] | None = None):
        import pyarrow as pa

        self.names = names
        self.schema = pa.schema([(n, pa.int64() if (types or {}).get(n) == "int" else pa.string()) for n in names])
        fd, self.path = new_copy_path(suffix=".parquet")
        os.close(fd)
        self.cols: list[list] = [[] for _ in names]
        self.count = 0
        self.writer = None
        self._line, self._k = -1, 0

    def key(self, line: int) -> int:
        """line << 6 | k: k counts the rows of this part that start on the same line (at most 63)."""
        if line == self._line:
            self._k = min(self._k + 1, 63)
        else:
            self._line, self._k = line, 0
        return line << 6 | self._k

    def add(self, values: list) -> None:
        for col, v in zip(self.cols, values):
            col.append(v)
        self.count += 1
        if len(self.cols[0]) >= BATCH:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.path), self.schema, compression="snappy")
        if self.cols[0] or self.count == 0:
            table = pa.Table.from_arrays([pa.array(c, t.type) for c, t in zip(self.cols, self.schema)],
                                         schema=self.schema)
            self.writer.write_table(table)
        for c in self.cols:
            c.clear()

    def close(self) -> None:
        if self.writer is None or self.cols[0]:
            self.flush()
        self.writer.close()


def _local(tag) -> str | None:
    """An element's name without its namespace (None for an entity reference)."""
    if not isinstance(tag, str):
        return None
    return tag[tag.rfind("}") + 1:] if tag[:1] == "{" else tag


def _syntax_error(path: Path, compressed: bool, exc) -> InputError:
    line, col = (exc.position if getattr(exc, "position", None) else (exc.lineno, 0))
    msg = re.sub(r",? line \d+, column \d+$", "", str(getattr(exc, "msg", "") or exc))
    where = "解压后 XML " if compressed else ""
    return InputError(f"{path}: {where}第 {line} 行第 {col} 列 XML 格式错误 ({msg})；文件可能已损坏或不完整")


class _Reader:
    """The state of one pass over an XES file (see module doc)."""

    def __init__(self, path: Path, known: dict[str, str]):
        self.path = path
        self.known = known
        self.fields: dict[str, str | None] = {}       # trace attribute key -> field (None: unmapped)
        self.headers: dict[str, str] = {}              # field -> the first key that gave it
        self.unmapped: dict[str, None] = {}            # ordered set of unmapped trace keys
        self.event_keys: dict[str, str | None] = {}   # other event attribute keys -> their type
        self.nested: dict[str, None] = {}              # keys of list/container values not used
        self.kinds: dict = {}                          # element tag -> its name without namespace
        self.traces = _Writer(["c0", *[f"c{i + 1}" for i in range(len(TRACE_FIELDS))], "_row"], {"_row": "int"})
        self.events = _Writer(["c0", "c1", "c2", "c3", "c4", "_row"], {"_row": "int"})
        self.bad = _Writer(["row", "column", "reason", "raw"], {"row": "int"})
        self.buffer: list[tuple] = []                  # the current trace's events
        self.traces_read = self.events_read = 0

    def writers(self) -> list[_Writer]:
        return [self.traces, self.events, self.bad]

    # -- one element at a time ----------------------------------------------------------------
    def event(self, el) -> None:
        """An <event> has ended: keep its three attributes, then free it (and the one before)."""
        self.events_read += 1
        got: dict[str, str] = {}
        seen = self.event_keys
        # (The key first: the element's type is looked at only for the keys used and for each
        # other key once. This loop is most of the time of a read.)
        for ch in el:
            key = ch.get("key")
            if key in EVENT_KEYS:
                if key not in got:
                    kind = self._kind(ch.tag)
                    if kind in VALUE_TYPES:
                        got[key] = ch.get("value")
                    elif kind in NESTED_TYPES:
                        self.nested[f"event {key}"] = None
            elif key not in seen and key is not None and len(seen) < 1000:
                seen[key] = self._kind(ch.tag)
        parent = el.getparent()
        line = el.sourceline or 0
        if parent is not None and self._kind(parent.tag) == "trace":
            self.buffer.append((line, got.get("concept:name"), got.get(TIMESTAMP), got.get(RESOURCE)))
        else:
            self._bad(line, None, "event 不在任何 trace 之中，无法确定它属于哪个办件",
                      {EVENT_NAME: got.get("concept:name"), TIMESTAMP: got.get(TIMESTAMP), RESOURCE: got.get(RESOURCE)})
        # The event is read: it is emptied now and removed once the next one ends (iterparse may
        # still refer to the element that has just ended).
        prev = el.getprevious()
        el.clear()
        if prev is not None and self._kind(prev.tag) == "event":
            parent.remove(prev)

    def trace(self, el) -> None:
        """A <trace> has ended: its case row, then its events; then free it and what preceded it."""
        self.traces_read += 1
        line = el.sourceline or 0
        name, values = None, {}
        for ch in el:
            kind = self._kind(ch.tag)
            if kind in VALUE_TYPES:
                key = ch.get("key")
                if key is None:
                    continue
                if key == "concept:name":
                    name = ch.get("value") if name is None else name
                    continue
                fld = self.fields.get(key, "?")
                if fld == "?":
                    fld = self.known.get(normalize_header(key))
                    fld = self.fields[key] = fld if fld in TRACE_FIELDS else None
                if fld is None:
                    self.unmapped[key] = None
                elif fld not in values:
                    values[fld] = ch.get("value")
                    self.headers.setdefault(fld, key)
            elif kind in NESTED_TYPES and ch.get("key") is not None:
                self.nested[f"trace {ch.get('key')}"] = None
        city = values.get("city")
        if name is None or not name.strip():
            n = len(self.buffer)
            self._bad(line, TRACE_NAME, f"trace 没有 concept:name (办件编号)，它的 {n} 个事件也未载入",
                      {TRACE_NAME: name, **{self.headers.get(f, f): v for f, v in values.items()}})
            for ev_line, step, ts, res in self.buffer:
                self._bad(ev_line, TRACE_NAME, f"所属 trace (第 {line} 行) 没有 concept:name，无法确定办件编号",
                          {TRACE_NAME: name, EVENT_NAME: step, TIMESTAMP: ts, RESOURCE: res})
        else:
            self.traces.add([name, *[values.get(f) for f in TRACE_FIELDS], self.traces.key(line)])
            for ev_line, step, ts, res in self.buffer:
                row = {TRACE_NAME: name, EVENT_NAME: step, TIMESTAMP: ts, RESOURCE: res}
                if step is None:
                    self._bad(ev_line, EVENT_NAME, "事件没有 concept:name 属性 (环节)", row)
                elif ts is None:
                    self._bad(ev_line, TIMESTAMP, "事件没有 time:timestamp 属性 (时间)", row)
                else:
                    self.events.add([name, step, ts, res, city, self.events.key(ev_line)])
        self.buffer.clear()
        el.clear()
        # What precedes the trace in the log (earlier traces, the log's extensions, globals,
        # classifiers and attributes) is not needed any more.
        parent = el.getparent()
        if parent is not None:
            while el.getprevious() is not None:
                del parent[0]

    def _kind(self, tag) -> str | None:
        """The element's name without its namespace (cached per tag)."""
        kind = self.kinds.get(tag)
        if kind is None:
            kind = self.kinds[tag] = _local(tag)
        return kind

    def _bad(self, line: int, column: str | None, reason: str, raw: dict) -> None:
        cells = {k: ("" if v is None else v) for k, v in raw.items()}
        self.bad.add([line, column, reason, json.dumps(cells, ensure_ascii=False)])

    # -- the result ---------------------------------------------------------------------------
    def notes(self) -> list[str]:
        """What of the file was not used, for the ingest summary."""
        out = []
        for keys, what in (([k for k, kind in self.event_keys.items() if kind not in NESTED_TYPES],
                            "事件的其它属性未使用 (只取 concept:name、time:timestamp、org:resource)"),
                           ([*self.nested, *(f"event {k}" for k, kind in self.event_keys.items() if kind in NESTED_TYPES)],
                            "list/container 属性未使用 (嵌套的值不导入)")):
            if keys:
                more = f" 等 {len(keys)} 个" if len(keys) > SHOWN_KEYS else ""
                out.append(f"{what}: {', '.join(keys[:SHOWN_KEYS])}{more}")
        return out

    def parts(self) -> tuple[XesPart, XesPart]:
        """The two parts with their plans: the trace attributes some trace gave, in field order."""
        given = [f for f in TRACE_FIELDS if f in self.headers]
        plan = ColumnPlan(headers=[TRACE_NAME] + [self.headers[f] for f in given], layout="cases",
                          unmapped=list(self.unmapped))
        plan.fields = {"case_id": 0, **{f: i + 1 for i, f in enumerate(given)}}
        traces = XesPart(self.traces.path, plan, [0] + [TRACE_FIELDS.index(f) + 1 for f in given], self.traces.count)
        ev_fields = ["case_id", "step", "time", "event_staff"] + (["city"] if "city" in self.headers else [])
        ev_plan = ColumnPlan(headers=[TRACE_NAME, EVENT_NAME, TIMESTAMP, RESOURCE, self.headers.get("city", "")][:len(ev_fields)],
                             layout="events")
        ev_plan.fields = {f: i for i, f in enumerate(ev_fields)}
        events = XesPart(self.events.path, ev_plan, list(range(len(ev_fields))), self.events.count)
        return traces, events


def read_xes(path: Path, known: dict[str, str], compressed: bool) -> XesLog:
    """Read an XES file (see module doc) into temporary Parquet files; InputError (exit 3) for XML
    that is not well-formed (with its line and column), a DOCTYPE, or a damaged gzip stream."""
    from lxml import etree

    reader = _Reader(path, known)
    encoding = None
    try:
        opener = gzip.open if compressed else open
        with opener(path, "rb") as fh:
            parse = etree.iterparse(fh, events=("end",), tag=("{*}trace", "{*}event"),
                                    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                                    remove_comments=True, remove_pis=True)
            for _, el in parse:
                if encoding is None:        # the first element read: the prolog is known by now
                    encoding = _prolog(path, el)
                if reader._kind(el.tag) == "event":
                    reader.event(el)
                else:
                    reader.trace(el)
            if encoding is None and parse.root is not None:
                encoding = _prolog(path, parse.root)
        for w in reader.writers():
            w.close()
    except etree.XMLSyntaxError as exc:
        _discard(reader)
        raise _syntax_error(path, compressed, exc) from None
    except (EOFError, OSError, zlib.error) as exc:
        _discard(reader)
        if isinstance(exc, FileNotFoundError):
            raise InputError(f"{path}: 文件不存在 (file not found)") from None
        what = "gzip 数据损坏或不完整" if compressed else "无法读取"
        raise InputError(f"{path}: {what} ({exc})；请检查文件或重新导出") from None
    except BaseException:
        _discard(reader)
        raise
    traces, events = reader.parts()
    return XesLog(path, "xes.gz" if compressed else "xes", encoding, traces, events, reader.bad.path,
                  bad_rows=reader.bad.count, traces_read=reader.traces_read, events_read=reader.events_read,
                  unmapped=list(reader.unmapped), notes=reader.notes())


def _prolog(path: Path, el) -> str:
    """The document's encoding; InputError for a document with a DOCTYPE (see module doc)."""
    info = el.getroottree().docinfo
    if info.doctype:
        raise InputError(f"{path}: XML 含有 DOCTYPE ({info.doctype[:60]})：XES 文件不需要 DTD，出于安全 "
                         "(实体展开、外部实体) 不读取含 DTD 的文件；请去掉 DOCTYPE 后再导入")
    return info.encoding or "UTF-8"


def _discard(reader: _Reader) -> None:
    for w in reader.writers():
        try:
            if w.writer is not None:
                w.writer.close()
        finally:
            remove_copy(w.path)
