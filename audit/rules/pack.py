"""Rule packs: a standard's rules as data (one YAML file per rule) plus its settings.

A pack is a directory::

    pack.yaml            name, standard, edition, version, clauses, settings, per-city overrides
    checks/<RULE-ID>.yaml one file per rule: id, clause, severity, title, rationale, settings, either
                         sql (a SELECT) or template (a Declare template, `audit.rules.templates`),
                         evidence (the Chinese label of each field of the evidence the rule returns),
                         examples (cases that pass and cases that fail; see audit.rules.example_format)

`pack.yaml` may say which steps the pack is written for (``vocabulary:``, `audit.rules.templates.Vocabulary`).
`load_pack` validates everything before anything runs and reports every problem at once, each
with file, line and column (`PackError`). A template rule gets its SQL when the pack loads
(`audit.check.templates.template_sql`), so everything after the loader sees an ordinary rule.
Adding a rule is adding a file: no Python changes.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audit.errors import PackError
from audit.resources import pack_dir
from audit.rules.example_format import Example, parse_examples
from audit.rules.example_format import key_nodes as _key_nodes
from audit.rules.example_format import where as _where
from audit.rules.sqlguard import check_sql
from audit.rules.sqltree import evidence_fields
from audit.rules.templates import (
    TEMPLATE_KEYS,
    Vocabulary,
    bound_problem,
    parse_template,
    parse_vocabulary,
    parse_working_hours,
)

SEVERITIES = ("error", "warning", "info")
NUMERIC_SETTINGS = ("max_visits", "response_days", "archive_days", "rating_grace_days", "followup_days")
# The contract's defaults (contract §4) of the 帮办代办 settings, for a pack that does not set them (a pack
# for another standard has no use for them, but ``case_facts`` and ``cfg`` still carry the columns).
CONTRACT_DEFAULTS: dict[str, Any] = {"max_visits": 1, "response_days": 1, "archive_days": 5, "rating_grace_days": 7,
                                     "followup_days": 5, "object_types": [], "materials": {}}
# Settings of the comparison of groups (contract §5.1), not of a case: no column of ``case_facts`` or
# ``cfg``, the same for every city, optional (`audit.figures.fair.min_cases` gives the default).
COMPARISON_SETTINGS = ("min_cases",)
# Settings of the rectification lists (`audit rectify export`), not of a case either: no column of
# ``case_facts`` or ``cfg``, optional (`audit.rectify.lists.rectify_days` gives the default), a whole number
# of working days ≥ 1; a city may have its own (its deadline counts on its own calendar).
RECTIFY_SETTINGS = ("rectify_days",)
RULE_KEYS = {"id": True, "clause": True, "severity": True, "title": True, "rationale": True, "sql": False,
             "examples": True, "settings": False, "description": False, "evidence": False,
             **{k: False for k in TEMPLATE_KEYS}}
PACK_KEYS = {"name": True, "standard": True, "edition": False, "version": True, "clauses": True,
             "settings": True, "cities": False, "description": False, "extends": False, "vocabulary": False}
ID_RE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 10x faster


@dataclass
class Rule:
    """One rule of a pack."""

    id: str
    clause: str
    severity: str
    title: str
    rationale: str
    sql: str
    settings: list[str]
    examples: list[Example]
    path: str
    description: str = ""
    evidence: dict[str, str] = field(default_factory=dict)   # evidence field -> Chinese label
    template: dict | None = None        # a template rule's parsed template (audit.rules.templates.parse_template)


@dataclass
class Pack:
    """A validated rule pack."""

    path: Path
    name: str
    standard: str
    edition: str
    version: str
    clauses: dict[str, str]
    settings: dict[str, Any]
    cities: dict[str, dict[str, Any]]
    rules: list[Rule] = field(default_factory=list)
    description: str = ""
    files: list[Path] = field(default_factory=list)   # pack.yaml, then those of the packs it extends
    vocabulary: Vocabulary = field(default_factory=Vocabulary)

    def settings_for(self, city: str | None) -> dict[str, Any]:
        """The settings in force for a city: the pack's, overridden by the city's own."""
        merged = copy.deepcopy(self.settings)
        if city and city in self.cities:
            merged.update(copy.deepcopy(self.cities[city]))
        return merged

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (case-insensitive); PackError if the pack has none."""
        for r in self.rules:
            if r.id.upper() == rule_id.upper():
                return r
        raise PackError(f"规则包 {self.name} 中没有规则 {rule_id}；可用: {', '.join(r.id for r in self.rules)}")


# ---------------------------------------------------------------------------------------------
def _compose(path: Path, problems: list[str]) -> tuple[yaml.Node | None, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problems.append(f"{where}: YAML 语法错误: {getattr(exc, 'problem', exc)}")
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1:1: 无法读取 ({exc})")
        return None, None
    if not isinstance(data, dict):
        problems.append(f"{_where(path, node)}: 应为键值映射 (a mapping)")
        return None, None
    return node, data


def _check_keys(path: Path, node, data: dict, spec: dict[str, bool], problems: list[str]) -> dict:
    nodes = _key_nodes(node)
    for key in data:
        if key not in spec:
            problems.append(f"{_where(path, nodes.get(str(key), (node,))[0])}: 未知的键 {key!r}；可用: {', '.join(spec)}")
    for key, required in spec.items():
        if required and key not in data:
            problems.append(f"{_where(path, node)}: 缺少必需的键 {key!r}")
    return nodes


def load_pack(directory: str | Path | None = None) -> Pack:
    """Load and validate a pack (default: the one shipped with the package)."""
    directory = Path(directory) if directory else pack_dir()
    problems: list[str] = []
    meta_path = directory / "pack.yaml"
    if not meta_path.is_file():
        raise PackError(f"{directory}: 不是规则包 (缺少 pack.yaml)")
    node, meta = _compose(meta_path, problems)
    if meta is None:
        raise PackError(f"规则包 {directory} 无效:", problems)
    base = None
    if meta.get("extends"):
        # A pack that extends another starts from its clauses, settings, cities and rules; its own
        # settings override, and its own rule files add rules (or replace one with the same id).
        spec = dict(PACK_KEYS, clauses=False, settings=False, standard=False)
        nodes = _check_keys(meta_path, node, meta, spec, problems)
        target = str(meta["extends"])
        try:
            base = load_pack(None if target == "default" else (directory / target).resolve())
        except PackError as exc:
            problems.append(f"{_where(meta_path, nodes['extends'][1])}: extends {target!r} 无法加载: {exc.problems[0]}")
    else:
        nodes = _check_keys(meta_path, node, meta, PACK_KEYS, problems)
    settings = {**(base.settings if base else {}), **(meta.get("settings") or {})}
    # A pack that extends another may add settings only for its own rules (a `within:` bound, a rule's
    # `settings:`); any other new name is most likely a misspelt override, named once the rules are read.
    new_settings: list[tuple[str, str]] = []
    _check_settings(meta_path, nodes.get("settings", (None, node))[1], meta.get("settings") or {}, problems,
                    known=base.settings if base else None, new=new_settings)
    if "vocabulary" in meta or base is None:
        vocabulary = parse_vocabulary(meta_path, nodes.get("vocabulary", (None, node))[1], meta.get("vocabulary"),
                                      problems)
    else:
        vocabulary = base.vocabulary
    cities = meta.get("cities") or {}
    city_nodes = _key_nodes(nodes["cities"][1]) if "cities" in nodes else {}
    for city, overrides in cities.items():
        _check_settings(meta_path, city_nodes.get(str(city), (None, node))[1], overrides or {}, problems,
                        known=settings, city=True)
    clauses = {**(base.clauses if base else {}), **{str(k): str(v) for k, v in (meta.get("clauses") or {}).items()}}
    all_cities = {**(base.cities if base else {})}
    for c, o in cities.items():
        all_cities[str(c)] = {**all_cities.get(str(c), {}), **(o or {})}
    pack = Pack(directory, str(meta.get("name", "")), str(meta.get("standard", "") or (base.standard if base else "")),
                str(meta.get("edition", "") or (base.edition if base else "")),
                str(meta.get("version", "")), clauses, settings, all_cities,
                description=str(meta.get("description", "")), files=[meta_path, *(base.files if base else [])],
                vocabulary=vocabulary)
    rule_files = sorted((directory / "checks").glob("*.yaml"))
    own_ids = {p.stem for p in rule_files}
    if base:
        pack.rules = [r for r in base.rules if r.id not in own_ids]
    if not rule_files and not base:
        problems.append(f"{directory / 'checks'}: 规则包中没有规则文件 (checks/*.yaml)")
    seen: dict[str, Path] = {}
    for path in rule_files:
        rule = _load_rule(path, pack, problems)
        if rule is None:
            continue
        pack.rules = [r for r in pack.rules if r.id != rule.id] if base else pack.rules
        if rule.id in seen:
            problems.append(f"{path}:1:1: 规则编号 {rule.id} 与 {seen[rule.id]} 重复")
        seen[rule.id] = path
        pack.rules.append(rule)
    used = {k for r in pack.rules for k in r.settings}
    problems += [f"{where}: 未知的设置 {key!r} (没有规则使用它)" for key, where in new_settings if key not in used]
    if not problems:
        _generate_template_sql(pack, own_ids, problems)
    if problems:
        raise PackError(f"规则包 {directory} 有 {len(problems)} 处错误:", problems)
    families = ["FLOW", "REQ", "ARCHIVE", "EVAL"]
    pack.rules.sort(key=lambda r: (r.id.startswith("DATA-"), families.index(r.id.split("-")[0])
                                   if r.id.split("-")[0] in families else len(families), r.id))
    return pack


def _generate_template_sql(pack: Pack, own_ids: set[str], problems: list[str]) -> None:
    """Give every template rule its SQL for this pack's settings, vocabulary and cities (a rule inherited
    from the pack this one extends is generated again: its settings may be overridden here)."""
    from audit.check.templates import template_sql  # the engine's side: SQL from validated data

    for i, rule in enumerate(pack.rules):
        if rule.template is None:
            continue
        within = rule.template["within"]
        problem = bound_problem(within, pack.settings, pack.cities) if rule.id not in own_ids else None
        if problem:
            problems.append(f"{rule.path}:1:1: 规则 {rule.id}: {problem}")
            continue
        sql = template_sql(rule.template, pack)
        refused = check_sql(sql)
        if refused:    # generated from validated data: a refusal is this tool's fault, said plainly
            problems.append(f"{rule.path}:1:1: 模板规则 {rule.id} 生成的 SQL 不能运行: {refused[0]}")
            continue
        pack.rules[i] = dataclasses.replace(rule, sql=sql)


def _check_settings(path: Path, node, settings: dict, problems: list[str],
                    known: dict | None = None, city: bool = False, new: list | None = None) -> None:
    """Check the settings present (every one is optional: `CONTRACT_DEFAULTS` fills those of the
    帮办代办 contract; a pack may define its own, checked where a rule's ``within`` uses them)."""
    nodes = _key_nodes(node) if node is not None else {}
    if not isinstance(settings, dict):
        problems.append(f"{_where(path, node)}: settings 应为键值映射")
        return
    for key, value in settings.items():
        where = _where(path, nodes.get(str(key), (node, node))[1])
        if known is not None and key not in known and key not in COMPARISON_SETTINGS + RECTIFY_SETTINGS:
            if new is None:
                problems.append(f"{where}: 未知的设置 {key!r}")
                continue
            new.append((key, where))       # judged once the pack's rules are read
        if city and key in COMPARISON_SETTINGS:
            problems.append(f"{where}: {key} 用于地市之间的比较，对所有地市相同，不能按市覆盖")
        elif key in RECTIFY_SETTINGS and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            problems.append(f"{where}: {key} 应为正整数 (工作日数)，而不是 {value!r}")
        elif (key in NUMERIC_SETTINGS + COMPARISON_SETTINGS
              and (not isinstance(value, int) or isinstance(value, bool) or value < 0)):
            problems.append(f"{where}: {key} 应为非负整数，而不是 {value!r}")
        elif key == "object_types" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"{where}: object_types 应为文字列表")
        elif key == "materials" and not _materials_ok(value):
            problems.append(f"{where}: materials 应为 名称: [别名…] 的映射")
        elif key == "working_hours" and isinstance(parse_working_hours(value), str):
            problems.append(f"{where}: {parse_working_hours(value)}")
        elif key == "calendar":
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                problems.append(f"{where}: calendar 应为日历覆盖文件 (CSV) 路径的列表")
            else:
                for f in value:
                    if not (path.parent / f).is_file():
                        problems.append(f"{where}: 日历覆盖文件 {f} 不存在 (相对于 {path.parent})")


def _materials_ok(value) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, (list, type(None)))
                                           for k, v in value.items())


def _load_rule(path: Path, pack: Pack, problems: list[str]) -> Rule | None:
    before = len(problems)
    node, data = _compose(path, problems)
    if data is None:
        return None
    nodes = _check_keys(path, node, data, RULE_KEYS, problems)

    def at(key: str) -> str:
        return _where(path, nodes[key][1]) if key in nodes else _where(path, node)

    rid = str(data.get("id", ""))
    if rid and not ID_RE.match(rid):
        problems.append(f"{at('id')}: 规则编号 {rid!r} 应形如 REQ-TIME-LIMIT")
    if rid and rid != path.stem:
        problems.append(f"{at('id')}: 规则编号 {rid!r} 与文件名 {path.name} 不一致")
    severity = data.get("severity")
    if severity not in SEVERITIES:
        problems.append(f"{at('severity')}: severity 应为 {'/'.join(SEVERITIES)}，而不是 {severity!r}")
    if rid.startswith("DATA-") and severity == "error":
        problems.append(f"{at('severity')}: DATA-* 规则描述数据质量，severity 只能是 warning 或 info")
    clause = str(data.get("clause", ""))
    if clause and clause.split()[0] not in pack.clauses and clause not in pack.clauses:
        problems.append(f"{at('clause')}: 条款 {clause!r} 不在 pack.yaml 的 clauses 中")
    for key in data.get("settings") or []:
        if key not in pack.settings:
            problems.append(f"{at('settings')}: 规则使用了未定义的设置 {key!r}")
    sql, template, evidence = data.get("sql"), None, {}
    if ("sql" in data) == ("template" in data):
        problems.append(f"{_where(path, node)}: 规则应有 sql 或 template 之一 (而不是{'两者都有' if 'sql' in data else '都没有'})")
    elif "template" in data:
        template = parse_template(path, node, data, pack.settings, pack.cities, pack.vocabulary, problems)
        if template is not None:
            evidence = template.pop("labels")
        sql = ""
    else:
        for key in TEMPLATE_KEYS[1:]:
            if key in data:
                problems.append(f"{at(key)}: {key} 只用于模板规则 (template:)，sql 规则不能有")
        if not isinstance(sql, str) or not sql.strip():
            problems.append(f"{at('sql')}: sql 应为一段 SELECT 语句")
        else:
            # Before any database is opened: one SELECT that reads only the prepared tables.
            problems += [f"{at('sql')}: 规则 {rid} 的 SQL 不能运行: {p}" for p in check_sql(sql)]
        evidence = _evidence_labels(path, nodes.get("evidence", (None, node))[1], data, problems)
    examples = parse_examples(path, nodes.get("examples", (None, node))[1], data.get("examples"), problems,
                              pack.vocabulary.names, dict(pack.vocabulary.aliases))
    if examples is not None and not any(e.expect == "fail" for e in examples) and "examples" in data:
        problems.append(f"{at('examples')}: 至少需要一个 fail 示例")
    if examples is not None and not any(e.expect == "pass" for e in examples) and "examples" in data:
        problems.append(f"{at('examples')}: 至少需要一个 pass 示例")
    if len(problems) > before:
        return None
    used = list(data.get("settings") or [])
    if template and template["within"] and template["within"]["setting"] not in (None, *used):
        used.append(template["within"]["setting"])      # a template's bound is one of its settings
    return Rule(rid, clause, severity, str(data["title"]), _join_cjk(str(data["rationale"])), sql,
                used, examples or [], str(path), str(data.get("description", "")),
                evidence, template)


def _join_cjk(text: str) -> str:
    """Folded YAML joins lines with a space; between Chinese characters that space is noise."""
    text = " ".join(text.split())
    return re.sub(r"(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])", "", text)


def _evidence_labels(path: Path, node, data: dict, problems: list[str]) -> dict[str, str]:
    """The rule's ``evidence:`` labels; when the SQL's evidence is a struct literal, they must name
    exactly its fields (a field without a label would show in English, a label without a field is
    a misspelling)."""
    labels = data.get("evidence")
    if labels is None:
        return {}
    if not (isinstance(labels, dict) and all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                             for k, v in labels.items())):
        problems.append(f"{_where(path, node)}: evidence 应为 证据字段: 中文名称 的映射")
        return {}
    fields = evidence_fields(data["sql"]) if isinstance(data.get("sql"), str) else None
    if fields is None:
        return labels
    nodes = _key_nodes(node)
    missing = [f for f in fields if f not in labels]
    if missing:
        problems.append(f"{_where(path, node)}: evidence 缺少 SQL 证据字段 {', '.join(missing)} 的中文名称")
    for key in labels:
        if key not in fields:
            problems.append(f"{_where(path, nodes.get(key, (node,))[0])}: evidence 中的 {key!r} 不是 SQL 证据中的字段 "
                            f"(有: {', '.join(fields)})")
    return labels
