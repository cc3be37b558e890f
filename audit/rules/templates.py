"""Declarative template rules (Declare): a rule file with ``template:`` instead of ``sql:``.

::

    template: response                 # one of TEMPLATES
    activities: [受理, 答复]            # [A] (unary), [A, B] (binary), or [[A, B1], [A, B2]]
    within: {workdays: reply_days}     # optional (BOUNDED templates): workdays | days | hours | working_hours
    when: {channel: 线上}               # optional: case fields (value or list of values)
    evidence: {…}                      # optional: which evidence keys, renamed and labelled

This module reads and checks such a rule when the pack loads (every problem with file:line:column,
collected, never the first only) and gives it as plain data (`parse_template`); the SQL that judges
it is generated from that data by `audit.check.templates`. What each template means is the table of
the README section "模板规则 (Declare)".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.rules.example_format import CODED_VALUES
from audit.rules.example_format import key_nodes as _key_nodes
from audit.rules.example_format import where as _where
from audit.vocabulary import CASE_ATTRIBUTES, STEPS, step_lookup

UNARY = ("existence", "absence", "exactly_one", "init", "end")
BINARY = ("responded_existence", "coexistence", "not_coexistence", "response", "precedence", "succession",
          "chain_response", "chain_precedence", "alternate_response", "alternate_precedence", "not_succession")
TEMPLATES = UNARY + BINARY
# Templates that pair each activation with a target, so that a time bound applies to the pair.
BOUNDED = ("response", "precedence", "succession", "chain_response", "chain_precedence", "alternate_response",
           "alternate_precedence")
BOUND_UNITS = {"workdays": "个工作日", "days": "天", "hours": "小时", "working_hours": "个工作小时"}
WHOLE_UNITS = ("workdays", "days")         # bounds counted in whole days
TEMPLATE_KEYS = ("template", "activities", "within", "when")

# Evidence keys of each template (English key → default Chinese label). Scalars describe the first
# violated pair (in the order of `activities`) and its first violation; lists cover every violated pair.
_SEQUENCE = {"violated": "违反的环节对", "a_at": "前项 (A) 时间", "b_at": "后项 (B) 时间", "count": "违反次数"}
TEMPLATE_EVIDENCE: dict[str, dict[str, str]] = {
    "existence": {"activity": "环节", "count": "出现次数"},
    "absence": {"activity": "环节", "count": "出现次数", "times": "出现时间"},
    "exactly_one": {"activity": "环节", "count": "出现次数", "times": "出现时间"},
    "init": {"activity": "应为第一个的环节", "first_step": "第一个环节", "first_at": "第一个环节时间"},
    "end": {"activity": "应为最后一个的环节", "last_step": "最后一个环节", "last_at": "最后一个环节时间"},
    "responded_existence": {"violated": "违反的环节对", "missing": "缺少的环节", "a_at": "前项 (A) 首次时间"},
    "coexistence": {"violated": "违反的环节对", "present": "出现的环节", "present_at": "出现时间",
                    "missing": "缺少的环节"},
    "not_coexistence": {"violated": "违反的环节对", "a_at": "前项 (A) 首次时间", "b_at": "后项 (B) 首次时间"},
    **{name: dict(_SEQUENCE) for name in ("response", "precedence", "succession", "chain_response",
                                          "chain_precedence", "alternate_response", "alternate_precedence",
                                          "not_succession")},
}
BOUND_EVIDENCE = {"bound": "时限", "limit": "截止"}
# Case fields `when:` may test (contract §1.3), and those compared as numbers.
WHEN_FIELDS = ("city",) + tuple(f for f in CASE_ATTRIBUTES if f != "rating_time")
NUMBER_FIELDS = ("promised_days", "fee", "visits")
EVIDENCE_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class Vocabulary:
    """What a pack's steps are: ``canonical`` (the 13 steps of contract §1.4), ``open`` (any) or
    ``list`` (`steps`, with `aliases` mapping a database step name onto one of them)."""

    kind: str = "canonical"
    steps: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...] | None:
        """The pack's step names (None: any name)."""
        if self.kind == "canonical":
            return tuple(STEPS)
        return self.steps if self.kind == "list" else None

    def as_data(self) -> str | dict:
        """As written in pack.yaml (and stored with a run)."""
        if self.kind != "list":
            return self.kind
        return {"steps": list(self.steps), "aliases": dict(self.aliases)}


def vocabulary_from_data(data) -> Vocabulary:
    """A vocabulary as `Vocabulary.as_data` gave it (None: canonical)."""
    if data in (None, "canonical"):
        return Vocabulary()
    if data == "open":
        return Vocabulary("open")
    return Vocabulary("list", tuple(data["steps"]), tuple((str(k), str(v)) for k, v in data["aliases"].items()))


def parse_vocabulary(path: Path, node, value, problems: list[str]) -> Vocabulary:
    """The ``vocabulary:`` of pack.yaml: absent/``canonical``, ``open``, or {steps, aliases}."""
    if value is None or value == "canonical":
        return Vocabulary()
    if value == "open":
        return Vocabulary("open")
    nodes = _key_nodes(node)
    if not isinstance(value, dict) or set(value) - {"steps", "aliases"} or "steps" not in value:
        problems.append(f"{_where(path, node)}: vocabulary 应为 canonical、open 或 {{steps: [环节…], aliases: {{库中名称: 环节}}}}")
        return Vocabulary()
    steps = value.get("steps")
    at_steps = _where(path, nodes.get("steps", (node, node))[1])
    if not (isinstance(steps, list) and steps and all(_is_name(s) for s in steps)):
        problems.append(f"{at_steps}: vocabulary.steps 应为环节名称的非空列表")
        return Vocabulary()
    doubled = sorted({s for s in steps if steps.count(s) > 1})
    if doubled:
        problems.append(f"{at_steps}: vocabulary.steps 中重复的环节: {'、'.join(doubled)}")
    aliases = value.get("aliases") or {}
    at_aliases = nodes.get("aliases", (node, node))[1]
    if not (isinstance(aliases, dict) and all(_is_name(k) and isinstance(v, str) for k, v in aliases.items())):
        problems.append(f"{_where(path, at_aliases)}: vocabulary.aliases 应为 库中名称: 环节 的映射")
        aliases = {}
    alias_nodes = _key_nodes(at_aliases)
    for src, dst in aliases.items():
        if dst not in steps:
            where = _where(path, alias_nodes.get(str(src), (at_aliases, at_aliases))[1])
            problems.append(f"{where}: 别名 {src!r} 指向的 {dst!r} 不在 vocabulary.steps 中")
    return Vocabulary("list", tuple(steps), tuple((str(k), str(v)) for k, v in aliases.items()))


def _is_name(value) -> bool:
    return isinstance(value, str) and bool(value.strip()) and value == value.strip() \
        and not any(ord(c) < 32 for c in value)


def parse_working_hours(value) -> list[tuple[int, int]] | str:
    """``"09:00-12:00,13:30-17:30"`` → [(start, end) in seconds of the day]; a str is the problem."""
    if not isinstance(value, str) or not value.strip():
        return f"working_hours 应为 \"09:00-12:00,13:30-17:30\" 这样的时段列表，而不是 {value!r}"
    windows = []
    for part in value.split(","):
        m = _WINDOW_RE.match(part)
        if not m:
            return f"working_hours 的时段 {part.strip()!r} 应为 HH:MM-HH:MM"
        h1, m1, h2, m2 = map(int, m.groups())
        start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
        if m1 > 59 or m2 > 59 or end > 24 * 3600 or start >= end:
            return f"working_hours 的时段 {part.strip()!r} 不是一天之内由早到晚的时段"
        windows.append((start, end))
    windows.sort()
    for (s1, e1), (s2, e2) in zip(windows, windows[1:]):
        if s2 < e1:
            return f"working_hours 的时段 {_hm(s1)}-{_hm(e1)} 与 {_hm(s2)}-{_hm(e2)} 重叠"
    return windows


def _hm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def parse_template(path: Path, node, data: dict, settings: dict, cities: dict, vocabulary: Vocabulary,
                   problems: list[str]) -> dict | None:
    """The template part of a rule file as plain data (None when a problem was found):

    ``{"template": name, "pairs": [[A, B], …] ([[A]] when unary), "within": {"unit", "value", "setting"}
    or None, "when": {field: [values]}, "evidence": {out_key: template_key}, "labels": {out_key: 中文名}}``
    (the loader takes "labels" out as the rule's evidence labels).
    `settings` and `cities` are the pack's (for ``within`` settings and ``working_hours``).
    """
    before = len(problems)
    nodes = _key_nodes(node)

    def at(key: str) -> str:
        return _where(path, nodes[key][1]) if key in nodes else _where(path, node)

    name = data.get("template")
    if name not in TEMPLATES:
        problems.append(f"{at('template')}: 未知的模板 {name!r}；可用 (16 种): {', '.join(TEMPLATES)}")
        return None
    pairs = _pairs(path, nodes.get("activities", (node, node))[1], data.get("activities"), name, vocabulary, problems)
    within = None
    if data.get("within") is not None:
        within = _within(path, nodes["within"][1], data["within"], name, settings, cities, problems)
    when = _when(path, nodes.get("when", (node, node))[1], data.get("when"), problems)
    keys = list(TEMPLATE_EVIDENCE[name]) + (list(BOUND_EVIDENCE) if within else [])
    evidence, labels = _evidence(path, nodes.get("evidence", (node, node))[1], data.get("evidence"), name, keys,
                                 problems)
    if len(problems) > before:
        return None
    return {"template": name, "pairs": pairs, "within": within, "when": when, "evidence": evidence,
            "labels": labels}


def _pairs(path: Path, node, value, name: str, vocabulary: Vocabulary, problems: list[str]) -> list[list[str]]:
    unary = name in UNARY
    shape = "[A]" if unary else "[A, B] 或 [[A, B1], [A, B2], …]"
    if not isinstance(value, list) or not value:
        problems.append(f"{_where(path, node)}: 模板 {name} 的 activities 应为 {shape}")
        return []
    items = node.value if hasattr(node, "value") and isinstance(node.value, list) else []
    if unary:
        if len(value) != 1 or isinstance(value[0], list):
            problems.append(f"{_where(path, node)}: 模板 {name} 只有一个环节: activities 应为 [A]，而不是 {value!r}")
            return []
        _check_step(path, items[0] if items else node, value[0], vocabulary, problems)
        return [[value[0]]]
    if all(isinstance(v, list) for v in value):
        groups = [(v, items[i] if i < len(items) else node) for i, v in enumerate(value)]
    elif not any(isinstance(v, list) for v in value):
        groups = [(value, node)]
    else:
        problems.append(f"{_where(path, node)}: 模板 {name} 的 activities 应为 {shape}，不能混用")
        return []
    pairs = []
    for pair, pnode in groups:
        if len(pair) != 2:
            problems.append(f"{_where(path, pnode)}: 模板 {name} 有两个环节 (A, B)，而这里有 {len(pair)} 个: {pair!r}")
            continue
        parts = pnode.value if hasattr(pnode, "value") and isinstance(pnode.value, list) else [pnode, pnode]
        ok = all(_check_step(path, parts[i], pair[i], vocabulary, problems) for i in (0, 1))
        if ok and pair[0] == pair[1]:
            problems.append(f"{_where(path, pnode)}: 模板 {name} 的两个环节相同 ({pair[0]})")
        elif ok and list(pair) in pairs:
            problems.append(f"{_where(path, pnode)}: 环节对 {pair[0]} → {pair[1]} 重复")
        elif ok:
            pairs.append(list(pair))
    return pairs


def _check_step(path: Path, node, step, vocabulary: Vocabulary, problems: list[str]) -> bool:
    if not _is_name(step):
        problems.append(f"{_where(path, node)}: 环节应为不带首尾空白、不含控制字符的文字，而不是 {step!r}")
        return False
    names = vocabulary.names
    if names is None or step in names:
        return True
    if vocabulary.kind == "canonical":
        canonical = step_lookup().get(str(step))
        hint = f"请写规范环节名 {canonical!r}" if canonical else f"可用: {'、'.join(names)}"
    else:
        hint = f"规则包的环节 (pack.yaml vocabulary.steps): {'、'.join(names)}"
    problems.append(f"{_where(path, node)}: 环节 {step!r} 不在规则包的词表中 ({vocabulary.kind})；{hint}")
    return False


def _within(path: Path, node, value, name: str, settings: dict, cities: dict, problems: list[str]) -> dict | None:
    where = _where(path, node)
    if name not in BOUNDED:
        problems.append(f"{where}: 模板 {name} 不能有 within (时限只用于 {', '.join(BOUNDED)})")
        return None
    if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in BOUND_UNITS):
        problems.append(f"{where}: within 应为 {{workdays|days|hours|working_hours: 数字或设置名}}，而不是 {value!r}")
        return None
    unit, amount = next(iter(value.items()))
    at = _where(path, _key_nodes(node)[unit][1])
    if isinstance(amount, str):
        within = {"unit": unit, "value": None, "setting": amount}
    elif _number_ok(amount, unit in WHOLE_UNITS):
        within = {"unit": unit, "value": amount, "setting": None}
    else:
        kind = "非负整数" if unit in WHOLE_UNITS else "非负数"
        problems.append(f"{at}: within 的 {unit} 应为{kind}或数字设置的名称，而不是 {amount!r}")
        return None
    problem = bound_problem(within, settings, cities)
    if problem:
        problems.append(f"{at}: {problem}")
        return None
    return within


def bound_problem(within: dict | None, settings: dict, cities: dict) -> str | None:
    """Why a ``within`` cannot be judged with these settings (None when it can): its setting must be a
    number in the pack's settings and in every city's overrides (a whole number ≥ 0 for days), and a
    working-hours bound needs the ``working_hours`` setting."""
    if within is None:
        return None
    name, whole = within["setting"], within["unit"] in WHOLE_UNITS
    if name is not None:
        if name not in settings:
            return f"within 使用的设置 {name!r} 不在 pack.yaml 的 settings 中"
        values = [("settings", settings[name])] + [
            (f"cities.{c}", o[name]) for c, o in cities.items() if isinstance(o, dict) and name in o]
        bad = [f"{src} 中为 {v!r}" for src, v in values if not _number_ok(v, whole)]
        if bad:
            return f"within 使用的设置 {name} 应为{'非负整数' if whole else '非负数'} ({'；'.join(bad)})"
    if within["unit"] == "working_hours" and settings.get("working_hours") is None:
        return ("within 使用 working_hours，但 pack.yaml 的 settings 中没有 working_hours "
                "(工作时段，如 \"09:00-12:00,13:30-17:30\")")
    return None


def _number_ok(value, whole: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return value >= 0 and (not whole or float(value).is_integer())


def _when(path: Path, node, value, problems: list[str]) -> dict[str, list]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not value:
        problems.append(f"{_where(path, node)}: when 应为 办件字段: 取值 (或取值列表) 的映射")
        return {}
    nodes = _key_nodes(node)
    out: dict[str, list] = {}
    for key, wanted in value.items():
        key_node, val_node = nodes.get(str(key), (node, node))
        if key not in WHEN_FIELDS:
            problems.append(f"{_where(path, key_node)}: when 中的 {key!r} 不是办件字段；可用: {', '.join(WHEN_FIELDS)}")
            continue
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values:
            problems.append(f"{_where(path, val_node)}: when.{key} 的取值列表为空")
            continue
        for v in values:
            if key in NUMBER_FIELDS:
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    problems.append(f"{_where(path, val_node)}: when.{key} 应为数字，而不是 {v!r}")
            elif isinstance(v, (dict, list)) or v is None or isinstance(v, bool):
                problems.append(f"{_where(path, val_node)}: when.{key} 的取值应为文字或数字，而不是 {v!r}")
            elif key in CODED_VALUES and str(v) not in CODED_VALUES[key]:
                problems.append(f"{_where(path, val_node)}: when.{key} 应为 {'/'.join(CODED_VALUES[key])} 之一，"
                                f"而不是 {v!r}")
        out[str(key)] = [v if key in NUMBER_FIELDS else str(v) for v in values]
    return out


def _evidence(path: Path, node, value, name: str, keys: list[str],
              problems: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(output key → template key, output key → label). Without ``evidence:`` every key of the template
    with its default label; with it, exactly the keys it lists, each ``key: 标签`` (a template key) or
    ``new_key: {from: template_key, label: 标签}`` (a rename)."""
    defaults = {**TEMPLATE_EVIDENCE[name], **BOUND_EVIDENCE}
    if value is None:
        return {k: k for k in keys}, {k: defaults[k] for k in keys}
    if not isinstance(value, dict) or not value:
        problems.append(f"{_where(path, node)}: evidence 应为 证据字段: 中文名称 (或 {{from: 模板证据字段, label: 中文名称}}) 的映射")
        return {}, {}
    nodes = _key_nodes(node)
    mapping, labels = {}, {}
    for out, spec in value.items():
        key_node, val_node = nodes.get(str(out), (node, node))
        source, label = (spec.get("from", out), spec.get("label")) if isinstance(spec, dict) else (out, spec)
        if not (isinstance(out, str) and EVIDENCE_KEY_RE.match(out)):
            problems.append(f"{_where(path, key_node)}: 证据字段名 {out!r} 应为英文字母、数字和下划线")
        elif isinstance(spec, dict) and set(spec) - {"from", "label"}:
            problems.append(f"{_where(path, val_node)}: evidence.{out} 只能有 from 和 label")
        elif not (isinstance(label, str) and label.strip()):
            problems.append(f"{_where(path, val_node)}: evidence.{out} 需要中文名称 (label)")
        elif source not in keys:
            problems.append(f"{_where(path, val_node if isinstance(spec, dict) else key_node)}: {source!r} 不是模板 "
                            f"{name} 的证据字段 (有: {', '.join(keys)})")
        else:
            mapping[out], labels[out] = source, label
    return mapping, labels


def template_steps(template: dict) -> list[str]:
    """The activities a template rule names, in order, each once."""
    return list(dict.fromkeys(s for pair in template["pairs"] for s in pair))


def as_plain(value: Any) -> Any:
    """Numbers as written (3 stays 3, 0.5 stays 0.5) for messages and the stored pack."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
