"""Where the report's numbers come from: the run's inputs, pack, settings, audit date, calendar."""

from __future__ import annotations

import json

from audit import __version__
from audit.outputs.findings import run_metadata
from audit.report.text import BANGBAN, subject
from audit.rules.pack import Pack
from audit.rules.templates import vocabulary_from_data
from audit.rules.titles import fill_settings, run_settings, setting_overrides, setting_value

SETTING_ZH = {
    "max_visits": "一站式办理：线下办件到现场次数上限 (次)",
    "response_days": "响应时限 (工作日)：帮办受理 / 代办需求分析 距首次事件",
    "archive_days": "资料归档时限 (工作日)：办结或终止之后",
    "rating_grace_days": "评价宽限 (自然日)：办结后超过即视为未评价",
    "followup_days": "差评回访时限 (工作日)：评价日之后",
    "min_cases": "地市对比：分母少于此数的比率，名次标注仅供参考 (比较设置，对所有地市相同)",
    "object_types": "服务对象类别",
    "materials": "归档必备材料 (及其别名)",
}


def setting_text(value) -> str:
    """A setting's value as one line of text."""
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k}" + (f" ({setting_text(v)})" if v else "") for k, v in value.items())
    return "" if value is None else str(value)


def calendar_files(meta: dict) -> list[str]:
    """The calendar files the run used (common ones, then per city as 'city: file')."""
    spec = meta.get("calendar_spec")
    if spec:
        spec = json.loads(spec) if isinstance(spec, str) else spec
        return [*spec.get("common", []),
                *(f"{city}: {f}" for city, files in sorted(spec.get("per_city", {}).items()) for f in files)]
    return [str(f) for f in meta.get("calendar_files") or []]


def report_title(meta: dict) -> str:
    """帮办代办服务审计报告, or named after the pack when it is not written for the 帮办代办 steps
    (`audit.report.text.subject`, as the bulletin)."""
    stored = json.loads(meta.get("pack") or "{}")
    about = subject(vocabulary_from_data(stored.get("vocabulary")), meta.get("pack_name") or stored.get("name"))
    return "帮办代办服务审计报告" if about == BANGBAN else f"审计报告：{about.service}"


def provenance(meta: dict) -> dict:
    """The run's metadata as the report shows it."""
    inputs = json.loads(meta.get("input_files") or "[]")
    settings = json.loads(meta.get("settings") or "{}")
    default = settings.get("default", {})
    rows = []
    for key, value in default.items():
        overrides = [f"{city}: {setting_text(s[key])}" for city, s in settings.items()
                     if city != "default" and key in s and s[key] != value]
        rows.append({"key": key, "name": SETTING_ZH.get(key, key), "value": setting_text(value),
                     "overrides": "；".join(overrides)})
    return {
        "title": report_title(meta),
        "run_id": meta["run_id"], "pack_name": meta.get("pack_name"), "pack_version": meta.get("pack_version"),
        "standard": meta.get("standard"), "pack_path": meta.get("pack_path"),
        "as_of": str(meta["as_of"])[:10], "as_of_source": meta.get("as_of_source"),
        "calendar": meta.get("calendar"), "fallback_years": list(meta.get("calendar_fallback_years") or []),
        "calendar_files": calendar_files(meta),
        "city_filter": meta.get("city_filter") or "",
        "inputs": [{"file": i.get("file"), "sha256": i.get("sha256"), "rows_read": i.get("rows_read"),
                    "loaded": i.get("loaded")} for i in inputs],
        "settings": rows, "check_version": meta.get("tool_version"), "report_version": __version__,
        "cases": meta.get("cases"), "findings": meta.get("findings"),
    }


def rule_definitions(rules: list[dict], pack: Pack | None, settings, city: str | None = None,
                     cities: list[str] | None = None) -> list[dict]:
    """Each rule of the run (in the order of `rules`, titles already with their values) with its
    rationale and settings from the pack, the setting names in the rationale replaced by the
    values in force (`audit.report.text.fill_settings`: for `city`, or the default with the
    differing values of `cities`)."""
    by_id = {r.id: r for r in pack.rules} if pack else {}
    default = run_settings(settings)["default"]
    out = []
    for row in rules:
        rule = by_id.get(row["rule_id"])
        used = []
        for k in (rule.settings if rule else []):
            if k not in default:
                continue
            value = setting_value(settings, k, city)
            others = [] if city else setting_overrides(settings, k, cities)
            used.append(f"{k} = {setting_text(value)}"
                        + (" (" + "；".join(f"{cs}: {setting_text(v)}" for cs, v in others) + ")" if others else ""))
        out.append({**row, "rationale": fill_settings(rule.rationale.strip(), settings, city, cities) if rule else "",
                    "description": (rule.description or "").strip() if rule else "", "settings": "；".join(used)})
    return out


def load_meta(con, run_id: int) -> dict:
    """The stored row of the run."""
    return run_metadata(con, run_id)
