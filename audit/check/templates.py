"""The SQL of a template rule: one set-based query per rule, generated from its validated template.

The query has the shape of any rule's SQL (city, case_id, message, evidence) and is checked by the
read-only guard like the rest. Every literal in it — activities, aliases, cities, values of ``when``
— is quoted (`lit`); numbers come from validated settings. A rule is judged in one of two ways:

- the existence templates of a canonical pack on ``case_facts`` alone (whether a step occurs and its
  first time are its ``t_<code>`` columns);
- every other rule on the trace strings of `audit.check.traces` (each case's steps as one string, a
  character per event, and their times, built once per run), with string functions; the bounds of
  ``within:`` are `audit.check.bounds`.

One finding per case: a sentence per violated pair, joined, and the evidence keys of the template
(`audit.rules.templates.TEMPLATE_EVIDENCE`) as the rule's ``evidence:`` selects and renames them
(`audit.check.verdicts`). This module also holds what a run checks of the pack's steps against the
database's (`check_steps`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.check.bounds import lit
from audit.check.traces import pack_chars, pack_steps, trace_parts
from audit.check.verdicts import existence_pairs, when_sql
from audit.errors import UsageError
from audit.rules.contract import step_column
from audit.rules.templates import as_plain, template_steps

if TYPE_CHECKING:
    from audit.rules.pack import Pack

# -- how each rule is judged ------------------------------------------------------------------------

FAST_TEMPLATES = ("existence", "responded_existence", "coexistence", "not_coexistence")


def reads_case_facts(template: dict, pack: Pack) -> bool:
    """Whether the rule is judged on ``case_facts`` alone: presence and first time of a canonical step
    are its ``t_<code>`` columns (contract §3), so these templates need no pass over the events."""
    return template["template"] in FAST_TEMPLATES and pack.vocabulary.kind == "canonical"


def needs_traces(pack: Pack) -> bool:
    """Whether a run of `pack` needs the trace strings (`audit.check.traces.build_traces`)."""
    return any(r.template and not reads_case_facts(r.template, pack) for r in pack.rules)


def template_sql(template: dict, pack: Pack) -> str:
    """The SELECT that judges `template` (a rule's parsed template) for `pack`'s settings, cities and
    vocabulary (see module doc)."""
    fields = ", ".join(f"{lit(out)}: e_{src}" for out, src in template["evidence"].items())
    if reads_case_facts(template, pack):
        header, parts = _header(template), _from_case_facts(template)
    else:
        header, parts = _header(template) + _legend(template, pack), trace_parts(template, pack)
    return header + "WITH " + ",\n".join(parts) + f"\nSELECT city, case_id, message, {{{fields}}} AS evidence FROM fin"


def _header(template: dict) -> str:
    """A comment naming the template, so that `audit rules RULE-ID` shows what the SQL was made from."""
    pairs = "; ".join(", ".join(p) for p in template["pairs"])
    text = f"模板 (template) {template['template']}({pairs})"
    if template["within"]:
        w = template["within"]
        text += f" within {w['unit']}: {w['setting'] or as_plain(w['value'])}"
    if template["when"]:
        text += " when " + ", ".join(f"{k} in {v}" for k, v in template["when"].items())
    return _comment(text)


def _legend(template: dict, pack: Pack) -> str:
    """A comment giving the characters that stand for the rule's steps in the trace strings."""
    chars = pack_chars(pack)
    shown = [f"{step} = {ch if ch.isascii() else f'U+{ord(ch):04X}'}" for step in template_steps(template)
             for ch in [chars[step]]]
    return _comment("环节串中的字符 (trace characters): " + "，".join(shown))


def _comment(text: str) -> str:
    """One SQL comment line; control characters are dropped: nothing written in the pack can end it."""
    return "-- " + "".join(c if c.isprintable() else " " for c in text) + "\n"


# -- on case_facts: existence of canonical steps ----------------------------------------------------

def _from_case_facts(template: dict) -> list[str]:
    name, pairs = template["template"], template["pairs"]
    where = " AND ".join(["n_events > 0", *when_sql(template["when"], "case_facts")])
    col = lambda step: step_column(step)    # noqa: E731  (validated canonical steps)
    if name == "existence":
        a = pairs[0][0]
        return [f"""fin AS (SELECT city, case_id, '没有 ' || {lit(a)} || ' 环节' AS message, {lit(a)} AS e_activity,
        0 AS e_count FROM case_facts WHERE {where} AND {col(a)} IS NULL)"""]
    selects = " UNION ALL ".join(
        f"SELECT city, case_id, {i + 1} AS k, {lit(a)} AS a, {lit(b)} AS b, ({col(a)} IS NOT NULL)::INTEGER AS n_a, "
        f"({col(b)} IS NOT NULL)::INTEGER AS n_b, {col(a)} AS fa_t, {col(b)} AS fb_t FROM case_facts "
        f"WHERE {where} AND ({col(a)} IS NOT NULL OR {col(b)} IS NOT NULL)"
        for i, (a, b) in enumerate(pairs))
    return existence_pairs(name, f"agg AS ({selects})", pairs)


# -- the database's steps and the pack's -----------------------------------------------------------

def check_steps(con, pack: Pack, cities: list[str] | None = None) -> list[str]:
    """Refuse (UsageError, exit 2) a pack none of whose steps the database uses (through the pack's
    aliases); return warning lines for steps its template rules name that the database never uses."""
    where = "WHERE city IN (SELECT unnest(?))" if cities else ""
    used = [r[0] for r in con.execute(f"SELECT DISTINCT step FROM event_rows {where} ORDER BY 1",
                                      [cities] if cities else []).fetchall()]
    aliases = dict(pack.vocabulary.aliases)
    seen = {aliases.get(s, s) for s in used}
    steps = pack_steps(pack)
    if used and steps and not seen & set(steps):
        raise UsageError(
            f"规则包 {pack.name} ({pack.path}) 的环节 ({_few(steps)}) 在数据库中都没有出现 (数据库中的环节: {_few(used)})："
            f"规则包与数据不符；请换用相应的规则包 (--pack)，或在 pack.yaml 的 vocabulary.aliases 中对应环节名")
    lines = []
    for rule in pack.rules:
        if rule.template:
            absent = [s for s in template_steps(rule.template) if s not in seen]
            if absent:
                lines.append(f"{rule.id}: {'、'.join(absent)}")
    if lines and used:
        return ["注意: 规则用到的环节在数据库中没有出现 (规则照常运行): " + "；".join(lines)]
    return []


def _few(names: list[str], n: int = 6) -> str:
    return "、".join(names[:n]) + (f" 等 {len(names)} 个" if len(names) > n else "")
