"""Rule titles and definitions with the values in force (`audit.report.text.rule_title`).

Titles in a pack name their settings (``archive_days 个工作日内``, ``不超过 max_visits``, or
``{followup_days}``); the report writes the values the run used, per city where a city overrides
them ("1 个工作日 (榆林: 2) 内").
"""

from __future__ import annotations

import re

import pytest

from audit.resources import pack_dir
from audit.rules.pack import load_pack
from audit.rules.titles import fill_settings, rule_title

SETTINGS = {
    "default": {"max_visits": 1, "response_days": 1, "archive_days": 5, "followup_days": 5,
                "object_types": ["老年人", "残疾人"]},
    "榆林": {"max_visits": 2, "response_days": 2, "archive_days": 5, "followup_days": 5,
           "object_types": ["老年人", "残疾人"]},
    "延安": {"max_visits": 1, "response_days": 2, "archive_days": 5, "followup_days": 5,
           "object_types": ["老年人", "残疾人"]},
}


@pytest.mark.parametrize("title, city, want", [
    ("办结或终止后 archive_days 个工作日内资料归档", None, "办结或终止后 5 个工作日内资料归档"),
    ("差评须在 followup_days 个工作日内回访", "榆林", "差评须在 5 个工作日内回访"),
    ("线下办件到现场次数不超过 max_visits", None, "线下办件到现场次数不超过 1 (榆林: 2)"),
    ("线下办件到现场次数不超过 max_visits", "榆林", "线下办件到现场次数不超过 2"),
    ("线下办件到现场次数不超过 max_visits", "延安", "线下办件到现场次数不超过 1"),
    ("在 response_days 个工作日内", None, "在 1 个工作日 (延安、榆林: 2) 内"),
    ("在 {response_days} 个工作日内响应", "延安", "在 2 个工作日内响应"),
    ("{max_visits}次以内", None, "1次 (榆林: 2) 以内"),
    ("对象 object_types 不变，max_visits_extra 与 xmax_visits 也不变", None,
     "对象 object_types 不变，max_visits_extra 与 xmax_visits 也不变"),
    ("没有设置的标题", None, "没有设置的标题"),
])
def test_rule_title_writes_values_in_force(title, city, want):
    assert rule_title(title, SETTINGS, city=city) == want


def test_only_the_cities_asked_for_are_named():
    assert rule_title("不超过 max_visits", SETTINGS, cities=["延安", "宝鸡"]) == "不超过 1"
    assert fill_settings("在 response_days 个工作日内", SETTINGS, cities=["延安"]) == "在 1 个工作日 (延安: 2) 内"


def test_settings_as_stored_json_and_a_pack_rule():
    pack = load_pack(pack_dir())
    rule = pack.rule("EVAL-FOLLOWUP")
    stored = '{"default": {"followup_days": 3}}'
    assert rule_title(rule, stored) == rule.title.replace("followup_days", "3")


def test_no_default_pack_title_names_a_setting():
    """Every title of the default pack reads with numbers: no setting name survives."""
    pack = load_pack(pack_dir())
    settings = {"default": pack.settings}
    names = [k for k, v in pack.settings.items() if isinstance(v, (int, float, str))]
    quoted = [r for r in pack.rules if any(n in r.title for n in names)]
    assert {r.id for r in quoted} >= {"ARCHIVE-TIMELY", "EVAL-FOLLOWUP", "REQ-ONE-STOP", "REQ-RESPONSE"}
    for rule in pack.rules:
        title = rule_title(rule, settings)
        assert not [n for n in names if re.search(rf"(?<![A-Za-z0-9_]){n}(?![A-Za-z0-9_])", title)], title
    assert rule_title(pack.rule("ARCHIVE-TIMELY"), settings) == "办结或终止后 5 个工作日内资料归档"
