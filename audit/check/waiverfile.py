"""The waiver file of `audit check --waivers FILE` (contract §5, §6): read and validated whole.

A waiver is an accepted deviation (豁免): it names a rule — its id or a glob such as ``REQ-*``
(letter case aside) — and a scope, which is exactly one of

- a case: ``case_id``, optionally with its ``city`` (a case id held by two cities needs it to pick one);
- a city: ``city``;
- a hall: ``city`` and ``hall`` (hall names repeat across cities, so a hall alone is refused);

with ``reason`` and ``approved_by`` (both required) and optionally ``expires``, the last day it holds
(YYYY-MM-DD; judged against the run's audit date by `audit.check.waivers`).

The file is a YAML list of mappings with those keys, or a CSV with those columns (header row first;
the Chinese headers 规则, 办件编号, 地市, 服务大厅, 原因, 批准人, 有效期至 also work), UTF-8 (BOM or not)
or GBK. It comes from outside the audit team, so every row is validated and every problem reported at
once with file, line and column (`WaiverError`, exit 2) before any database is opened: a rule that is
not in the pack and matches none of its rules, a missing reason or approver, a date that is not one, a
waiver without a scope, a hall without its city, a case together with a hall, unknown keys or columns.
YAML values are read as written (``case_id: 0012`` stays ``0012``; no number or date conversion).
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from audit.errors import WaiverError
from audit.known import close_value
from audit.rules.pack import Pack

FIELDS = ("rule", "case_id", "city", "hall", "reason", "approved_by", "expires")
REQUIRED = ("rule", "reason", "approved_by")
FIELD_ZH = {"rule": "规则", "case_id": "办件编号", "city": "地市", "hall": "服务大厅", "reason": "原因",
            "approved_by": "批准人", "expires": "有效期至"}
HEADER_ALIASES = {**{zh: f for f, zh in FIELD_ZH.items()}, "规则编号": "rule", "豁免原因": "reason", "理由": "reason",
                  "审批人": "approved_by", "到期日": "expires", "大厅": "hall", "城市": "city"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL_TAG = "tag:yaml.org,2002:null"


@dataclass(frozen=True)
class Waiver:
    """One waiver of the file (`waiver_id` 1, 2, … in file order; `line` where it starts)."""

    waiver_id: int
    line: int
    rule: str                      # as written: an id or a glob
    rules: tuple[str, ...]         # the pack's rules it names
    case_id: str | None
    city: str | None
    hall: str | None
    reason: str
    approved_by: str
    expires: dt.date | None

    def in_force(self, as_of: dt.date) -> bool:
        """Whether the waiver holds on the audit date `as_of` (no end date, or not before it)."""
        return self.expires is None or self.expires >= as_of

    @property
    def scope(self) -> str:
        """The scope in words: `延安 办件 A1`, `延安`, `延安 高新区政务服务中心`."""
        parts = [self.city] if self.city else []
        parts += [f"办件 {self.case_id}"] if self.case_id else ([self.hall] if self.hall else [])
        return " ".join(parts)


@dataclass(frozen=True)
class WaiverFile:
    """A validated waiver file: where it was read, its SHA-256 and text, and its waivers."""

    path: Path
    sha256: str
    content: str
    waivers: tuple[Waiver, ...] = field(default_factory=tuple)


@dataclass
class _Entry:
    """One waiver as read, before validation: values by field and where each was written."""

    line: int
    at: str                                           # file:line:column of the waiver itself
    values: dict[str, str | None] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)


def load_waivers(path: str | Path, pack: Pack) -> WaiverFile:
    """Read and validate a waiver file against `pack`; a WaiverError lists every problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WaiverError(f"{path}:1:1: 无法读取豁免文件 (cannot read the waiver file): {exc.strerror or exc}") from None
    text = _decode(path, data)
    problems: list[str] = []
    entries = _read_yaml(path, text, problems) if _is_yaml(path, text) else _read_csv(path, text, problems)
    rule_ids = [r.id for r in pack.rules]
    waivers = []
    for entry in entries:
        waiver = _validate(entry, len(waivers) + 1, rule_ids, pack.name, problems)
        if waiver is not None:
            waivers.append(waiver)
    if problems:
        problems.sort(key=lambda p: _position(str(path), p))
        raise WaiverError(f"豁免文件 {path} 有 {len(problems)} 处错误，未审计、未保存 (invalid waiver file):", problems)
    return WaiverFile(path, hashlib.sha256(data).hexdigest(), text, tuple(waivers))


def rules_named(pattern: str, rule_ids: list[str]) -> list[str]:
    """The rule ids that `pattern` (an id or a glob: ``*``, ``?``, ``[…]``) names, letter case aside."""
    return [r for r in rule_ids if fnmatch.fnmatchcase(r.upper(), pattern.upper())]


# --- reading ----------------------------------------------------------------------------------
def _decode(path: Path, data: bytes) -> str:
    if b"\0" in data[:8192]:
        raise WaiverError(f"{path}:1:1: 不是文本文件 (not a text file)；豁免文件应为 YAML 或 CSV")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise WaiverError(f"{path}:1:1: 无法识别编码 (neither UTF-8 nor GBK)")


def _is_yaml(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return True
    if suffix in (".csv", ".txt"):
        return False
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    return first.startswith("-") or first == "[]"


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _read_yaml(path: Path, text: str, problems: list[str]) -> list[_Entry]:
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        problems.append(f"{where}: YAML 语法错误: {getattr(exc, 'problem', None) or exc}")
        return []
    if root is None or (root.tag == _NULL_TAG):
        return []
    if not isinstance(root, yaml.SequenceNode):
        problems.append(f"{_where(path, root)}: 应为豁免的列表 (a YAML list of waivers, each `- rule: …`)")
        return []
    entries = []
    for item in root.value:
        if not isinstance(item, yaml.MappingNode):
            problems.append(f"{_where(path, item)}: 每条豁免应为键值映射 (rule:, case_id:, city:, hall:, reason:, "
                            "approved_by:, expires:)")
            continue
        entry = _Entry(item.start_mark.line + 1, _where(path, item))
        for key_node, value_node in item.value:
            key = str(key_node.value)
            if key not in FIELDS:
                problems.append(f"{_where(path, key_node)}: 未知的键 {key!r}；可用: {', '.join(FIELDS)}")
                continue
            if key in entry.where:
                problems.append(f"{_where(path, key_node)}: 键 {key!r} 重复 (duplicate key)")
                continue
            entry.where[key] = _where(path, value_node)
            if not isinstance(value_node, yaml.ScalarNode):
                problems.append(f"{_where(path, value_node)}: {key}: 应为单个值 (a single value, not a list or mapping)")
                continue
            entry.values[key] = None if value_node.tag == _NULL_TAG else value_node.value
        entries.append(entry)
    return entries


def _read_csv(path: Path, text: str, problems: list[str]) -> list[_Entry]:
    reader = csv.reader(io.StringIO(text, newline=""))
    entries: list[_Entry] = []
    columns: list[str | None] = []
    last = 0
    try:
        for cells in reader:
            line, last = last + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if not columns:
                columns = _header(path, line, cells, problems)
                if not columns:
                    return []
                continue
            if len(cells) > len(columns):
                problems.append(f"{path}:{line}:{len(columns) + 1}: 本行有 {len(cells)} 个单元格，表头只有 {len(columns)} 列")
                continue
            entry = _Entry(line, f"{path}:{line}:1")
            for j, (name, cell) in enumerate(zip(columns, cells)):
                if name:
                    entry.where[name] = f"{path}:{line}:{j + 1}"
                    entry.values[name] = cell
            entries.append(entry)
    except csv.Error as exc:
        problems.append(f"{path}:{reader.line_num}:1: CSV 无法解析: {exc}")
    return entries


def _header(path: Path, line: int, cells: list[str], problems: list[str]) -> list[str | None]:
    """The field of each column (every problem with the header is reported; [] when unusable)."""
    names: list[str | None] = []
    bad = []
    for j, cell in enumerate(cells):
        head = cell.strip().lstrip("\ufeff")
        name = head.lower() if head.lower() in FIELDS else HEADER_ALIASES.get(head)
        if head and name is None:
            bad.append(f"{path}:{line}:{j + 1}: 未知的列 {head!r}；可用: {', '.join(FIELDS)} "
                       f"(或 {'、'.join(FIELD_ZH.values())})")
        elif name in names:
            bad.append(f"{path}:{line}:{j + 1}: 列 {head!r} 重复 (duplicate column)")
        names.append(name if head else None)
    for req in REQUIRED:
        if req not in names:
            bad.append(f"{path}:{line}:1: 表头缺少列 {req} ({FIELD_ZH[req]})；第一行应为表头: {', '.join(FIELDS)}")
    problems += bad
    return [] if bad else names


# --- validating -------------------------------------------------------------------------------
def _clean(name: str, value: str | None) -> str | None:
    """A value as the ingest would hold it: trimmed; a case id without Excel's ' or ="…" shell; a
    city without its trailing 市 (延安市 = 延安)."""
    value = (value or "").strip()
    if name == "case_id":
        if value.startswith('="') and value.endswith('"'):
            value = value[2:-1]
        value = value.removeprefix("'").strip()
    if name == "city" and value.endswith("市") and len(value) > 2:
        value = value[:-1]
    return value or None


def _validate(entry: _Entry, waiver_id: int, rule_ids: list[str], pack_name: str,
              problems: list[str]) -> Waiver | None:
    v = {name: _clean(name, entry.values.get(name)) for name in FIELDS}
    found = []

    def bad(name: str | None, message: str) -> None:
        where = entry.where.get(name, entry.at) if name else entry.at
        found.append(f"{where}: {name + ': ' if name else ''}{message}")

    for name in REQUIRED:
        if v[name] is None:
            bad(name if name in entry.where else None, f"缺少 {name} ({FIELD_ZH[name]})，每条豁免都必须有")
    rules: list[str] = []
    if v["rule"]:
        rules = rules_named(v["rule"], rule_ids)
        if not rules:
            hint = close_value(v["rule"], rule_ids)
            bad("rule", f"{v['rule']!r} 不是规则包 {pack_name} 中的规则，也不匹配其中任何规则"
                        + (f" (是否指 {hint}？)" if hint else "") + " (unknown rule)")
    expires = None
    if v["expires"]:
        expires = _date(v["expires"])
        if expires is None:
            bad("expires", f"{v['expires']!r} 不是日期 (应为 YYYY-MM-DD)")
    if not (v["case_id"] or v["city"] or v["hall"]):
        bad(None, "没有范围：豁免须指明办件 (case_id)、地市 (city) 或地市与服务大厅 (city + hall)，不能只有规则")
    elif v["hall"] and v["case_id"]:
        bad("hall", "办件编号与服务大厅不能同时给出：豁免一个办件 (case_id，可加 city)，或一个服务大厅 (city + hall)")
    elif v["hall"] and not v["city"]:
        bad("hall", "服务大厅须与地市一起给出 (a hall needs its city: 各市的大厅可能同名)")
    problems += found
    if found:
        return None
    return Waiver(waiver_id, entry.line, v["rule"], tuple(rules), v["case_id"], v["city"], v["hall"], v["reason"],
                  v["approved_by"], expires)


def _position(path: str, problem: str) -> tuple[int, int]:
    """(line, column) of a problem `path:line:column: …`, to list the problems in file order."""
    line, column = problem[len(path) + 1:].split(":", 2)[:2]
    return int(line), int(column)


def _date(text: str) -> dt.date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None
