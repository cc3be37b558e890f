"""Every rule's pass and fail examples, run through the real engine (`pytest -k RULE-ID`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from audit.check.examples import run_examples
from audit.errors import PackError
from audit.resources import pack_dir
from audit.rules.pack import load_pack

PACK = load_pack()


@pytest.mark.parametrize("rule", PACK.rules, ids=[r.id for r in PACK.rules])
def test_rule_examples(rule):
    outcomes = run_examples(rule, PACK)
    assert any(o.example.expect == "fail" for o in outcomes) and any(o.example.expect == "pass" for o in outcomes)
    wrong = [f"{o.example.expect}: {o.example.name} → {'flagged' if o.flagged else 'not flagged'} {o.messages}"
             for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)
    for o in outcomes:
        if o.flagged:
            assert all(m and isinstance(m, str) for m in o.messages)


# -- examples are checked when the pack loads: a misspelling must not make an example vacuous ---------

def copy_default_pack(tmp_path: Path) -> Path:
    pack = tmp_path / "pack"
    shutil.copytree(pack_dir(), pack, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    return pack


def edit_pass_example(rule_file: Path, old: str, new: str) -> tuple[int, int]:
    """Replace the first `old` after ``pass:`` in a rule file; return the (line, column) of the edit."""
    text = rule_file.read_text(encoding="utf-8")
    at = text.index(old, text.index("\n  pass:\n"))
    rule_file.write_text(text[:at] + new + text[at + len(old):], encoding="utf-8")
    return text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)


def load_error(pack: Path) -> str:
    with pytest.raises(PackError) as err:
        load_pack(pack)
    return str(err.value)


def test_misspelt_step_in_a_pass_example_is_named_with_file_line_and_column(tmp_path):
    """The issue's case: 受理 → 受里 in a pass example of REQ-TIME-LIMIT left the test green (the
    case simply had no start step); now the pack does not load."""
    pack = copy_default_pack(tmp_path)
    rule_file = pack / "checks" / "REQ-TIME-LIMIT.yaml"
    line, column = edit_pass_example(rule_file, "[[受理,", "[[受里,")
    message = load_error(pack)
    assert f"{rule_file}:{line}:{column + 2}: 未知环节 '受里'" in message  # the step, after "[["
    assert len(message.splitlines()) == 2  # the header and this one problem


@pytest.mark.parametrize("old, new, expected", [
    ("case: {service_type:", "case: {servce_type:", "未知的办件属性 'servce_type'"),
    ("[[受理,", "[[accept,", "请写规范环节名 '受理'"),
    ("2026-02-12 10:00]", "2026/02/12 10:00]", "环节时间: '2026/02/12 10:00' 不是可识别的时间"),
    ("service_type: 帮办", "service_type: 帮办服务", "service_type 应为 帮办/代办 之一"),
    ("- name:", "- nmae: x\n      name:", "示例中未知的键 'nmae'"),
])
def test_example_keys_steps_values_and_times_are_checked(tmp_path, old, new, expected):
    pack = copy_default_pack(tmp_path)
    rule_file = pack / "checks" / "REQ-TIME-LIMIT.yaml"
    line, _ = edit_pass_example(rule_file, old, new)
    message = load_error(pack)
    assert expected in message and f"{rule_file}:{line}:" in message


def test_an_unknown_case_key_is_not_dropped(tmp_path):
    pack = copy_default_pack(tmp_path)
    rule_file = pack / "checks" / "REQ-INTEGRITY.yaml"
    text = rule_file.read_text(encoding="utf-8")
    rule_file.write_text(text.replace("fee: 0", "fees: 0", 1), encoding="utf-8")
    assert "fees: 0" in rule_file.read_text(encoding="utf-8")
    message = load_error(pack)
    assert f"{rule_file}:" in message and "未知的办件属性 'fees'" in message


# -- evidence labels live in the rule's file --------------------------------------------------------

def test_evidence_labels_must_name_exactly_the_fields_of_the_evidence(tmp_path):
    pack = copy_default_pack(tmp_path)
    rule_file = pack / "checks" / "REQ-TIME-LIMIT.yaml"
    text = rule_file.read_text(encoding="utf-8")
    rule_file.write_text(text.replace("  deadline: 办结时限\n", "  dedline: 办结时限\n"), encoding="utf-8")
    message = load_error(pack)
    assert "evidence 缺少 SQL 证据字段 deadline 的中文名称" in message
    line = text.splitlines().index("  deadline: 办结时限") + 1
    assert f"{rule_file}:{line}:3: evidence 中的 'dedline' 不是 SQL 证据中的字段" in message


def test_evidence_built_elsewhere_is_checked_when_the_examples_run(tmp_path):
    """When the evidence is not a struct literal the fields are known only at run time: the examples
    runner reports those without a label."""
    pack = copy_default_pack(tmp_path)
    rule_file = pack / "checks" / "REQ-INTEGRITY.yaml"
    data = yaml.safe_load(rule_file.read_text(encoding="utf-8"))
    data["sql"] = ("SELECT city, case_id, '收费' AS message, ev AS evidence FROM "
                   "(SELECT city, case_id, {'fee': fee, 'visits': visits} AS ev FROM case_facts WHERE fee > 0)")
    data["evidence"] = {"fee": "收费 (元)"}
    rule_file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    loaded = load_pack(pack)
    outcomes = run_examples(loaded.rule("REQ-INTEGRITY"), loaded)
    flagged = [o for o in outcomes if o.flagged]
    assert flagged and all(o.unlabelled == ["visits"] and not o.ok for o in flagged)


# -- template rules of the default pack ----------------------------------------------------------------

def test_a_misspelt_activity_of_a_template_rule_is_named_with_file_line_and_column(tmp_path):
    """FLOW-BB-STEPS is a template: an activity that is not a canonical step (an alias here) is named
    where it is written, with the canonical name to use."""
    pack = copy_default_pack(tmp_path)
    rule_file = pack / "checks" / "FLOW-BB-STEPS.yaml"
    text = rule_file.read_text(encoding="utf-8")
    rule_file.write_text(text.replace("[办结, 承办]", "[办结, 办理]"), encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.startswith("activities:"))
    column = text.splitlines()[line - 1].index("[办结, 承办]") + len("[办结, ") + 1
    message = load_error(pack)
    assert f"{rule_file}:{line}:{column}: 环节 '办理' 不在规则包的词表中 (canonical)；请写规范环节名 '承办'" in message


def test_template_rules_of_the_default_pack_keep_the_evidence_of_their_sql():
    """The two FLOW-*-STEPS templates give the evidence fields the SQL rules gave (renamed with ``evidence:``)."""
    for rid in ("FLOW-BB-STEPS", "FLOW-DB-STEPS"):
        rule = PACK.rule(rid)
        assert rule.template["template"] == "responded_existence"
        assert rule.evidence == {"missing_steps": "缺少环节", "completed_at": "办结时间"}
        assert rule.template["evidence"] == {"missing_steps": "missing", "completed_at": "a_at"}
