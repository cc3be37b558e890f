"""Ingest profiles: a small YAML file that maps a hall's own headers, steps and values.

```yaml
name: 榆林市帮办代办台账      # free text
city: 榆林                   # optional: the city of every row (like --city)
sheet: 台账                  # optional: the Excel sheet to read
header_row: 3                # optional: 1-based row of the header (detected when absent)
columns:                     # source header -> canonical field (README "字段")
  受理编号: case_id
wide:                        # wide ledger: time column -> step it stands for
  受理日期: 受理
steps:                       # extra step names -> canonical step (any name with `vocabulary: open`)
  现场核验: 承办
vocabulary: canonical        # optional: canonical (the 13 steps, default) | open (step names as written)
values:                      # per field: source value -> canonical value
  service_type: {帮办服务: 帮办}
constants:                   # a fixed value for a field the file lacks
  service_type: 代办
```

Every problem in a profile is reported at once, each with file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from audit.errors import PackError
from audit.vocabulary import ALL_FIELDS, normalize_header, normalize_value, step_lookup

KNOWN_KEYS = {"name", "city", "sheet", "header_row", "columns", "wide", "steps", "values", "constants", "vocabulary"}
VOCABULARIES = ("canonical", "open")


@dataclass
class Profile:
    """A parsed, validated ingest profile."""

    path: str | None = None
    name: str | None = None
    city: str | None = None
    sheet: str | None = None
    header_row: int | None = None
    columns: dict[str, str] = field(default_factory=dict)   # normalised header -> field
    wide: dict[str, str] = field(default_factory=dict)      # normalised header -> canonical step
    steps: dict[str, str] = field(default_factory=dict)     # step spelling -> canonical step
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    vocabulary: str | None = None                            # canonical | open, when the profile says


def _where(path: Path, node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{path}:{mark.line + 1}:{mark.column + 1}"


def _mapping(node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
    return node.value if isinstance(node, yaml.MappingNode) else []


def load_profile(path: str | Path, vocabulary: str | None = None) -> Profile:
    """Read and validate a profile; raise PackError listing every problem with file:line:column.

    `vocabulary` is the one the command line asks for (None: not given). Under the open vocabulary
    (asked for, or the profile's own `vocabulary: open`) the targets of `steps:` and `wide:` are
    any step names, kept as written (trimmed); else they must be canonical steps."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise PackError(f"无法读取配置文件 {path}: {exc.strerror}") from exc
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise PackError(f"{where}: YAML 语法错误 {getattr(exc, 'problem', exc)}") from exc
    problems: list[str] = []
    prof = Profile(path=str(path))
    if root is None:
        raise PackError(f"{path}:1:1: 配置文件为空")
    if not isinstance(root, yaml.MappingNode):
        raise PackError(f"{_where(path, root)}: 配置文件应为键值映射 (a mapping)")
    known_steps = step_lookup()
    # The vocabulary first: it decides what the targets of `steps:` and `wide:` may be.
    for key_node, val_node in _mapping(root):
        if key_node.value == "vocabulary":
            value = val_node.value if isinstance(val_node, yaml.ScalarNode) else None
            if value not in VOCABULARIES:
                problems.append(f"{_where(path, val_node)}: vocabulary 应为 canonical 或 open")
            elif vocabulary and value != vocabulary:
                problems.append(f"{_where(path, val_node)}: 配置文件写的是 vocabulary: {value}，命令行却是 "
                                f"--vocabulary {vocabulary}；请只用其中一种")
            else:
                prof.vocabulary = value
    open_steps = (vocabulary or prof.vocabulary) == "open"
    for key_node, val_node in _mapping(root):
        key = key_node.value
        if key not in KNOWN_KEYS:
            problems.append(f"{_where(path, key_node)}: 未知的键 {key!r}，可用: {', '.join(sorted(KNOWN_KEYS))}")
            continue
        if key == "vocabulary":
            continue
        if key in ("name", "city", "sheet"):
            if not isinstance(val_node, yaml.ScalarNode):
                problems.append(f"{_where(path, val_node)}: {key} 应为文字")
            else:
                setattr(prof, key, str(val_node.value))
        elif key == "header_row":
            try:
                prof.header_row = int(val_node.value)
                if prof.header_row < 1:
                    raise ValueError
            except (TypeError, ValueError):
                problems.append(f"{_where(path, val_node)}: header_row 应为正整数 (1 = 第一行)")
        elif not isinstance(val_node, yaml.MappingNode):
            problems.append(f"{_where(path, val_node)}: {key} 应为键值映射")
        elif key == "columns":
            for k, v in _mapping(val_node):
                if v.value not in ALL_FIELDS:
                    problems.append(f"{_where(path, v)}: 列 {k.value!r} 映射到未知字段 {v.value!r}；可用字段: {', '.join(ALL_FIELDS)}")
                else:
                    prof.columns[normalize_header(k.value)] = v.value
        elif key in ("wide", "steps"):
            for k, v in _mapping(val_node):
                name = normalize_value(v.value) if isinstance(v, yaml.ScalarNode) else ""
                if open_steps:
                    if not name:
                        problems.append(f"{_where(path, v)}: {key} 中 {k.value!r} 的环节名称为空")
                    elif key == "wide":
                        prof.wide[normalize_header(k.value)] = str(v.value).strip()
                    else:
                        prof.steps[normalize_value(k.value)] = str(v.value).strip()
                elif name not in known_steps:
                    problems.append(f"{_where(path, v)}: {v.value!r} 不是已知环节 (咨询/申请/受理/需求分析/委托/承办/移交/中止/续办/办结/终止/资料归档/回访)")
                elif key == "wide":
                    prof.wide[normalize_header(k.value)] = known_steps[name]
                else:
                    prof.steps[normalize_value(k.value)] = known_steps[name]
        elif key == "values":
            for k, v in _mapping(val_node):
                if k.value not in ALL_FIELDS:
                    problems.append(f"{_where(path, k)}: values 中的未知字段 {k.value!r}")
                elif not isinstance(v, yaml.MappingNode):
                    problems.append(f"{_where(path, v)}: values.{k.value} 应为 原值: 规范值 的映射")
                else:
                    prof.values[k.value] = {normalize_value(a.value): normalize_value(b.value) for a, b in _mapping(v)}
        elif key == "constants":
            for k, v in _mapping(val_node):
                if k.value not in ALL_FIELDS:
                    problems.append(f"{_where(path, k)}: constants 中的未知字段 {k.value!r}")
                else:
                    prof.constants[k.value] = normalize_value(v.value)
    if problems:
        raise PackError(f"配置文件 {path} 有 {len(problems)} 处错误:", problems)
    return prof
