"""A rule's text with the settings in force: the setting names a pack's titles and definitions
quote ("在 followup_days 个工作日内") replaced by the run's values ("在 5 个工作日内"), per city
where a city overrides them ("1 个工作日 (榆林: 2)"). Used by the report, the bulletin and
`audit compare`; the settings are the run's stored ``runs.settings``."""

from __future__ import annotations

import json
import re

# A unit written right after a setting's name in a title ("archive_days 个工作日内"): a city's
# different value goes after the unit ("5 个工作日 (榆林: 2)内" reads worse than "5 个工作日 (榆林: 2) 内").
_CLOSING = "，。；：、)）」』\"'"
_UNIT = r"(?P<sep>\s*)(?P<unit>个工作日|个自然日|工作日|自然日|个月|小时|天|日|次|件)?"


def run_settings(settings) -> dict[str, dict]:
    """A run's settings (``runs.settings``: JSON text or its dict) as {"default": {…}, city: {…}}.

    Each city entry holds the settings in force for that city (the pack's, overridden by its own).
    """
    if not settings:
        return {"default": {}}
    data = json.loads(settings) if isinstance(settings, str) else dict(settings)
    data.setdefault("default", {})
    return data


def _is_scalar(value) -> bool:
    return isinstance(value, (int, float, str)) and not isinstance(value, bool)


def setting_value(settings, name: str, city: str | None = None):
    """The value of setting `name` in force for `city` (the default when the city has none)."""
    data = run_settings(settings)
    if city and name in data.get(city, {}):
        return data[city][name]
    return data["default"].get(name)


def setting_overrides(settings, name: str, cities: list[str] | None = None) -> list[tuple[str, object]]:
    """(cities, value) where a city's value of `name` differs from the default, cities that share a
    value together ("榆林、延安"), in the order of the values' first city; `cities` limits the cities."""
    data = run_settings(settings)
    default = data["default"].get(name)
    groups: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    for city in sorted(c for c in data if c != "default"):
        if cities is not None and city not in cities:
            continue
        value = data[city].get(name, default)
        if value != default:
            key = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
            groups.setdefault(key, []).append(city)
            values[key] = value
    return [("、".join(cs), values[key]) for key, cs in groups.items()]


def _setting_names(settings, names) -> list[str]:
    data = run_settings(settings)
    known = {k for part in data.values() for k, v in part.items() if _is_scalar(v)}
    chosen = known if names is None else known & set(names)
    return sorted(chosen, key=lambda k: (-len(k), k))  # the longest first: no name eats a longer one


def fill_settings(text: str, settings, city: str | None = None, cities: list[str] | None = None,
                  names=None) -> str:
    """`text` with each setting name in it (written ``{name}`` or bare, e.g. ``followup_days``)
    replaced by the value in force.

    With `city`, that city's value. Otherwise the default value, followed by the cities (of
    `cities`, all when None) whose value differs: "1 个工作日 (榆林: 2)". Only settings whose
    value is a number or a word are replaced (lists such as ``object_types`` stay as names);
    `names` limits the replacement to those settings (a rule's own).
    """
    if not text:
        return text or ""
    for name in _setting_names(settings, names):
        pattern = re.compile(r"(?:\{" + re.escape(name) + r"\}|(?<![A-Za-z0-9_])" + re.escape(name)
                             + r"(?![A-Za-z0-9_]))" + _UNIT)
        text = pattern.sub(lambda m, name=name: _value_text(m, name, settings, city, cities), text)
    return text


def _value_text(m: re.Match, name: str, settings, city: str | None, cities: list[str] | None) -> str:
    sep, unit = m.group("sep"), m.group("unit") or ""
    out = f"{setting_value(settings, name, city)}{sep}{unit}" if unit else f"{setting_value(settings, name, city)}"
    others = setting_overrides(settings, name, cities) if city is None else []
    if others:
        out += " (" + "；".join(f"{cs}: {v}" for cs, v in others) + ")"
        rest = m.string[m.end():m.end() + 1]
        if unit and rest and not rest.isspace() and rest not in _CLOSING:
            out += " "
    return out if unit else out + sep


def rule_title(rule, settings, city: str | None = None, cities: list[str] | None = None) -> str:
    """A rule's title (a pack `Rule`, or the title text) with the values in force in place of the
    setting names it quotes: "差评须在 5 个工作日内回访"; where cities differ and no `city` is
    given, "在 1 个工作日 (榆林: 2) 内" (see `fill_settings`)."""
    title = rule if isinstance(rule, str) else getattr(rule, "title", "")
    return fill_settings(title, settings, city, cities)
