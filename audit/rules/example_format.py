"""A rule's example cases: read from its YAML file and checked when the pack loads.

An example is one case that `audit.check.examples` runs through the engine: its attributes (``case``),
its events (``[环节, 时间, 经办人?]``), an audit date and a city. Every spelling is checked here,
with file:line:column, because a misspelling does not make an example fail, it makes it vacuous:
a pass example of REQ-TIME-LIMIT whose 受理 reads 受里 has no start step, so the rule never looks
at it and the example passes whatever the rule does. So:

- a step must be a canonical step name (contract §1.4): examples go straight into ``event_rows``,
  where ingest would have stored canonical names, so an alias (办理) would be as unseen as a typo;
  for a pack with its own list of steps (``vocabulary: {steps, aliases}``) one of those steps or of
  its aliases (which a template rule maps at check time); for ``vocabulary: open`` any name;
- a ``case`` key must be a case attribute (contract §1.3), and coded values (服务类型, 服务方式,
  评价) canonical ones;
- times must parse (`TIME_FORMATS`), and an example has only the keys of `EXAMPLE_KEYS`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from audit.vocabulary import CASE_ATTRIBUTES, CHANNELS, RATINGS, SERVICE_TYPES, STEPS, step_lookup

EXAMPLE_KEYS = {"name": True, "case": False, "events": False, "as_of": False, "city": False}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
# Case attributes whose values ingest turns into one of a few canonical words.
CODED_VALUES = {"service_type": tuple(dict.fromkeys(SERVICE_TYPES.values())),
                "channel": tuple(dict.fromkeys(CHANNELS.values())), "rating": tuple(RATINGS)}
NUMBER_ATTRIBUTES = ("promised_days", "fee", "visits")
TIME_ATTRIBUTES = ("rating_time",)


@dataclass
class Example:
    """One example case of a rule: attributes, events (step, time[, staff]) and the audit date."""

    name: str
    expect: str                       # pass | fail
    case: dict[str, Any]
    events: list[list[Any]]
    as_of: str | None = None
    city: str = "示例市"


def where(path: Path, node: yaml.Node | None) -> str:
    """``file:line:column`` of a YAML node (1:1 when there is none)."""
    if node is None:
        return f"{path}:1:1"
    return f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def key_nodes(node: yaml.Node | None) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node's entries: key → (key node, value node)."""
    if not isinstance(node, yaml.MappingNode):
        return {}
    return {k.value: (k, v) for k, v in node.value}


def parse_time(value: object) -> dt.datetime:
    """An example's time: a YAML date or timestamp, or text in one of `TIME_FORMATS`."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    text = str(value).strip()
    for fmt in TIME_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"{value!r} 不是可识别的时间 (应为 YYYY-MM-DD HH:MM、YYYY-MM-DD HH:MM:SS 或 YYYY-MM-DD)")


def parse_examples(path: Path, node, data, problems: list[str], steps=tuple(STEPS),
                   aliases: dict[str, str] | None = None) -> list[Example] | None:
    """The ``examples:`` of a rule file ({pass: [...], fail: [...]}); problems are appended. `steps`:
    the pack's step names (default: the canonical ones; None: any name), `aliases` its aliases."""
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"pass", "fail"}:
        problems.append(f"{where(path, node)}: examples 应为 {{pass: [...], fail: [...]}}")
        return None
    out: list[Example] = []
    nodes = key_nodes(node)
    for expect in ("pass", "fail"):
        items = data.get(expect) or []
        seq = nodes[expect][1] if expect in nodes else None
        item_nodes = seq.value if isinstance(seq, yaml.SequenceNode) else []
        for i, item in enumerate(items):
            item_node = item_nodes[i] if i < len(item_nodes) else node
            example = _example(path, item_node, item, expect, problems, steps, aliases or {})
            if example is not None:
                out.append(example)
    return out


def _example(path: Path, node, item, expect: str, problems: list[str], steps, aliases: dict[str, str]) -> Example | None:
    before = len(problems)
    if not isinstance(item, dict) or "name" not in item:
        problems.append(f"{where(path, node)}: 示例应有 name、case、events")
        return None
    nodes = key_nodes(node)
    for key in item:
        if key not in EXAMPLE_KEYS:
            at = where(path, nodes.get(str(key), (node,))[0])
            problems.append(f"{at}: 示例中未知的键 {key!r}；可用: {', '.join(EXAMPLE_KEYS)}")
    case_node, events_node, as_of_node = (nodes.get(k, (node, node))[1] for k in ("case", "events", "as_of"))
    case = item.get("case") or {}
    if not isinstance(case, dict):
        problems.append(f"{where(path, case_node)}: case 应为 办件属性: 值 的映射")
    else:
        _check_case(path, case_node, case, problems)
    events = item.get("events") or []
    if not isinstance(events, list):
        problems.append(f"{where(path, events_node)}: events 应为 [[环节, 时间, 经办人?], …]")
    else:
        _check_events(path, events_node, events, problems, steps, aliases)
    if item.get("as_of") is not None:
        _check_time(path, as_of_node, item["as_of"], "as_of", problems)
    if len(problems) > before:
        return None
    return Example(str(item["name"]), expect, dict(case), events,
                   str(item["as_of"]) if item.get("as_of") else None, str(item.get("city", "示例市")))


def _check_case(path: Path, node, case: dict, problems: list[str]) -> None:
    nodes = key_nodes(node)
    for key, val in case.items():
        key_node, val_node = nodes.get(str(key), (node, node))
        if key not in CASE_ATTRIBUTES:
            problems.append(f"{where(path, key_node)}: 示例 case 中未知的办件属性 {key!r} (不会被读入，示例将落空)；"
                            f"可用: {', '.join(CASE_ATTRIBUTES)}")
        elif val is None:
            continue
        elif key in CODED_VALUES and val not in CODED_VALUES[key]:
            problems.append(f"{where(path, val_node)}: {key} 应为 {'/'.join(CODED_VALUES[key])} 之一，而不是 {val!r}")
        elif key in NUMBER_ATTRIBUTES and (isinstance(val, bool) or not isinstance(val, (int, float))):
            problems.append(f"{where(path, val_node)}: {key} 应为数字，而不是 {val!r}")
        elif key in TIME_ATTRIBUTES:
            _check_time(path, val_node, val, key, problems)


def _check_events(path: Path, node, events: list, problems: list[str], steps, aliases: dict[str, str]) -> None:
    event_nodes = node.value if isinstance(node, yaml.SequenceNode) else []
    lookup = step_lookup()
    canonical = steps is not None and tuple(steps) == tuple(STEPS)
    for i, event in enumerate(events):
        ev_node = event_nodes[i] if i < len(event_nodes) else node
        if not (isinstance(event, list) and 2 <= len(event) <= 3):
            problems.append(f"{where(path, ev_node)}: events 的每一项应为 [环节, 时间, 经办人?]")
            continue
        parts = ev_node.value if isinstance(ev_node, yaml.SequenceNode) else [ev_node] * len(event)
        step = event[0]
        if not isinstance(step, str) or not step.strip():
            problems.append(f"{where(path, parts[0])}: 环节应为文字，而不是 {step!r}")
        elif canonical and step not in STEPS:
            name = lookup.get(str(step))
            hint = f"请写规范环节名 {name!r}" if name else f"可用: {'、'.join(STEPS)}"
            problems.append(f"{where(path, parts[0])}: 未知环节 {step!r} (示例将落空)；{hint}")
        elif steps is not None and not canonical and step not in steps and step not in aliases:
            problems.append(f"{where(path, parts[0])}: 环节 {step!r} 不在规则包的词表中 (示例将落空)；"
                            f"可用: {'、'.join([*steps, *aliases])}")
        _check_time(path, parts[1], event[1], "环节时间", problems)


def _check_time(path: Path, node, value, what: str, problems: list[str]) -> None:
    try:
        parse_time(value)
    except ValueError as exc:
        problems.append(f"{where(path, node)}: {what}: {exc}")
