"""Human-readable descriptions of a pack and its rules (for `audit rules` and the docs)."""

from __future__ import annotations

from audit.rules import contract as rulecontract
from audit.rules.pack import Pack, Rule


def _setting_text(key: str, value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} ({'、'.join(v or []) or '—'})" for k, v in value.items())
    if isinstance(value, list):
        return "、".join(map(str, value))
    return str(value)


def catalogue(pack: Pack, city: str | None = None) -> str:
    """All rules with clause, severity, and the settings in force (for a city, if given)."""
    settings = pack.settings_for(city)
    lines = [f"{pack.name} {pack.version} — {pack.standard}" + (f" ({city})" if city else ""), ""]
    w = max([24] + [len(r.id) + 2 for r in pack.rules])     # long ids (other packs) stay aligned
    lines.append(f"{'规则':<{w}}{'条款':<18}{'级别':<9}名称 [设置]")
    for r in pack.rules:
        # the rule's settings that are one value (numbers, working hours), the pack's own as well as the
        # 帮办代办 ones; lists (object types, materials) are listed below
        used = ", ".join(f"{k}={_setting_text(k, settings[k])}" for k in r.settings
                         if k in settings and not isinstance(settings[k], (list, dict)))
        lines.append(f"{r.id:<{w}}{r.clause:<18}{r.severity:<9}{r.title}" + (f" [{used}]" if used else ""))
    lines.append("")
    lines.append("设置 (settings in force):")
    for k, v in settings.items():
        lines.append(f"  {k}: {_setting_text(k, v)}")
    if pack.cities:
        lines.append("各市覆盖: " + "; ".join(f"{c}: {o}" for c, o in pack.cities.items()))
    return "\n".join(lines)


def explain(pack: Pack, rule: Rule, city: str | None = None, verify: bool = False) -> tuple[str, bool]:
    """One rule in full: rationale, settings, SQL, examples (and their outcome with `verify`)."""
    settings = pack.settings_for(city)
    lines = [f"{rule.id} — {rule.title}", f"条款: {rule.clause} ({pack.clauses.get(rule.clause.split()[0], '')})",
             f"级别: {rule.severity}", "", rule.rationale, ""]
    if rule.settings:
        lines.append("设置: " + "; ".join(f"{k} = {_setting_text(k, settings.get(k))}" for k in rule.settings))
    lines += ["", "SQL:", rule.sql.rstrip(), "", "示例:"]
    ok = True
    outcomes = None
    if verify:
        from audit.check.examples import run_examples

        outcomes = {id(o.example): o for o in run_examples(rule, pack)}
    for ex in rule.examples:
        mark = ""
        if outcomes is not None:
            o = outcomes[id(ex)]
            ok &= o.ok
            mark = " ✓" if o.ok else f" ✗ ({_outcome_problem(o)})"
        lines.append(f"  [{'不通过' if ex.expect == 'fail' else '通过'}] {ex.name}{mark}")
        lines.append(f"      办件: {ex.case or '{}'}" + (f"  审计日: {ex.as_of}" if ex.as_of else ""))
        for ev in ex.events:
            lines.append("      " + "  ".join(str(x) for x in ev))
    return "\n".join(lines), ok


def _outcome_problem(o) -> str:
    problems = []
    if o.flagged != (o.example.expect == "fail"):
        problems.append("报出: " + "; ".join(o.messages) if o.flagged else "未报出")
    if o.unlabelled:
        problems.append(f"evidence 中没有中文名称的证据字段: {', '.join(o.unlabelled)}")
    return "；".join(problems)


def markdown(pack: Pack) -> str:
    """The rule catalogue as a Markdown table (kept in the README between markers)."""
    lines = ["| 规则 | 条款 | 级别 | 名称 | 判定 (何时违反) |", "| --- | --- | --- | --- | --- |"]
    for r in pack.rules:
        rationale = " ".join(r.rationale.split()).replace("|", "\\|")
        lines.append(f"| {r.id} | {r.clause} | {r.severity} | {r.title} | {rationale} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def contract_markdown() -> str:
    """The rule-author contract (`audit.rules.contract`) as Markdown: the ``case_facts`` columns, the
    other tables and the macros a rule may use, and what a rule returns (kept in the README)."""
    lines = ["**`case_facts`** (每个办件一行 / one row per case):", "",
             "| 列 (column) | 类型 (type) | 含义 | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| `{c.name}` | {_cell(c.type)} | {_cell(c.zh)} | {_cell(c.en)} |" for c in rulecontract.FACT_COLUMNS]
    lines += ["", "**其它可读的表 (other tables)**:", "", "| 表 (table) | 含义 | 列 (columns) |", "| --- | --- | --- |"]
    for t in rulecontract.AUX_TABLES:
        cols = "<br>".join(f"`{c.name}` {_cell(c.type)}：{_cell(c.zh)}" for c in t.columns)
        lines.append(f"| `{t.name}` | {_cell(t.zh)} ({_cell(t.en)}) | {cols} |")
    lines += ["", "**工作日宏 (working-day macros)**:", "", "| 宏 (macro) | 返回 | 含义 | meaning |",
              "| --- | --- | --- | --- |"]
    lines += [f"| `{m.signature}` | {m.returns} | {_cell(m.zh)} | {_cell(m.en)} |" for m in rulecontract.MACROS]
    lines += ["", "**规则的返回 (what a rule's SQL returns, one row per violating case)**:", "",
              "| 列 (column) | 类型 (type) | 含义 | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.type} | {_cell(c.zh)} | {_cell(c.en)} |" for c in rulecontract.RULE_OUTPUT]
    return "\n".join(lines)
