"""The SQL of a template rule: one set-based query per rule, generated from its validated template.

The query has the shape of any rule's SQL (city, case_id, message, evidence) and is checked by the
read-only guard like the rest. Every literal in it — activities, aliases, cities, values of ``when``
— is quoted (`lit`); numbers come from validated settings. A rule is judged in one of three ways:

- the existence templates of a canonical pack on ``case_facts`` alone (whether a step occurs and its
  first time are its ``t_<code>`` columns);
- every other template without a time bound on the trace strings (`audit.check.traces`: each case's
  steps as one string, a character per event, built once per run), with string functions;
- a template with a time bound (``within:``) on the numbered events (`build_events`, built once per
  run when a rule has a bound): ``template_cases`` — the cases judged, under an integer key — and
  ``template_events`` — their events, steps mapped through the pack's aliases, numbered 1… in the
  order ("time", seq), ties in file order. Each activation's target is found with window functions
  over the positions (next B, next A, latest A, previous B: min/max over the following or preceding
  rows) or, for the chain templates, the neighbour's step from the same window; the bounds are
  `audit.check.bounds`: a missing target of the response family is a violation only once a target
  at the audit date's first instant would be late.

One finding per case: a sentence per violated pair, joined, and the evidence keys of the template
(`audit.rules.templates.TEMPLATE_EVIDENCE`) as the rule's ``evidence:`` selects and renames them
(`audit.check.verdicts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.check.bounds import bound_ctes, lit
from audit.check.traces import pack_steps, trace_parts
from audit.check.verdicts import existence_pairs, findings, pairs_cte, when_sql
from audit.errors import UsageError
from audit.rules.contract import step_column
from audit.rules.templates import as_plain, template_steps

if TYPE_CHECKING:
    from audit.rules.pack import Pack

# -- how each rule is judged, and what a run builds for it ------------------------------------------

FAST_TEMPLATES = ("existence", "responded_existence", "coexistence", "not_coexistence")


def reads_case_facts(template: dict, pack: Pack) -> bool:
    """Whether the rule is judged on ``case_facts`` alone: presence and first time of a canonical step
    are its ``t_<code>`` columns (contract §3), so these templates need no pass over the events."""
    return template["template"] in FAST_TEMPLATES and pack.vocabulary.kind == "canonical"


def needs_traces(pack: Pack) -> bool:
    """Whether a run of `pack` needs the trace strings (`audit.check.traces.build_traces`)."""
    return any(r.template and not r.template["within"] and not reads_case_facts(r.template, pack)
               for r in pack.rules)


def needs_events(pack: Pack) -> bool:
    """Whether a run of `pack` needs the numbered events of `build_events` (a rule with a time bound)."""
    return any(r.template and r.template["within"] for r in pack.rules)


def build_events(con, pack: Pack) -> None:
    """The events the rules with a time bound read, once per run (after ``case_facts``, whose cases —
    those with events, of the run's cities — they are): ``template_cases(case_no, city, case_id,
    cal_key, as_of, n_events)`` and ``template_events(case_no, step, t, pos)``, the steps mapped
    through the pack's aliases and numbered 1… in the order ("time", seq) — ties in file order.
    Integer case keys keep every rule's grouping, windows and joins cheap."""
    con.execute("""CREATE OR REPLACE TEMP TABLE template_cases AS
        SELECT (row_number() OVER ())::INTEGER AS case_no, city, case_id, cal_key, as_of, n_events::INTEGER AS n_events
        FROM case_facts WHERE n_events > 0""")
    aliases = dict(pack.vocabulary.aliases)
    step = "e.step"
    if aliases:
        step = f"CASE e.step {' '.join(f'WHEN {lit(a)} THEN {lit(b)}' for a, b in aliases.items())} ELSE e.step END"
    # The chain templates judge an event by its neighbour's step: with them, the steps before and after
    # each event come from the same window (no join per rule to find the neighbour of every activation).
    chain = any(r.template and r.template["within"] and r.template["template"].startswith("chain_")
                for r in pack.rules)
    neighbours = (f", lead({step}) OVER w AS next_step, lag({step}) OVER w AS prev_step" if chain else "")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE template_events AS
        SELECT c.case_no, {step} AS step, e."time" AS t, row_number() OVER w::INTEGER AS pos{neighbours}
        FROM event_rows e JOIN template_cases c ON c.city = e.city AND c.case_id = e.case_id
        WINDOW w AS (PARTITION BY c.case_no ORDER BY e."time", e.seq)""")


def template_sql(template: dict, pack: Pack) -> str:
    """The SELECT that judges `template` (a rule's parsed template) for `pack`'s settings, cities and
    vocabulary (see module doc)."""
    fields = ", ".join(f"{lit(out)}: e_{src}" for out, src in template["evidence"].items())
    final = "SELECT city, case_id, message, {%s} AS evidence FROM fin"
    if reads_case_facts(template, pack):
        parts = _from_case_facts(template)
    elif not template["within"]:
        parts = trace_parts(template, pack)
    else:
        parts = [pairs_cte(template["pairs"]), _pop_cte(template["when"]), _events_cte(template),
                 *_bounded(template, pack)]
        final = "SELECT p.city, p.case_id, fin.message, {%s} AS evidence FROM fin JOIN pop p ON p.case_no = fin.case_no"
    return _header(template) + "WITH " + ",\n".join(parts) + "\n" + final % fields


def _header(template: dict) -> str:
    """A comment naming the template, so that `audit rules RULE-ID` shows what the SQL was made from.
    Control characters are dropped: nothing written in the pack can end the comment."""
    pairs = "; ".join(", ".join(p) for p in template["pairs"])
    text = f"模板 (template) {template['template']}({pairs})"
    if template["within"]:
        w = template["within"]
        text += f" within {w['unit']}: {w['setting'] or as_plain(w['value'])}"
    if template["when"]:
        text += " when " + ", ".join(f"{k} in {v}" for k, v in template["when"].items())
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


# -- sequence templates with a time bound: on the numbered events ------------------------------------

def _pop_cte(when: dict[str, list]) -> str:
    if not when:
        return "pop AS (SELECT case_no, city, case_id FROM template_cases)"
    return (f"pop AS (SELECT t.case_no, t.city, t.case_id FROM template_cases t "
            f"JOIN case_facts f ON f.city = t.city AND f.case_id = t.case_id WHERE {' AND '.join(when_sql(when, 'f'))})")


def _events_cte(template: dict) -> str:
    """``ev``: the events of the rule's activities (for the chain templates their activations, A for
    chain_response and B for chain_precedence, with the neighbours' steps)."""
    name = template["template"]
    side = {"chain_response": 0, "chain_precedence": 1}.get(name)
    steps = template_steps(template) if side is None else list(dict.fromkeys(p[side] for p in template["pairs"]))
    semi = "SEMI JOIN pop ON pop.case_no = e.case_no" if template["when"] else ""
    cols = ", e.next_step, e.prev_step" if side is not None else ""
    return (f"ev AS (SELECT e.case_no, e.step, e.t, e.pos{cols} FROM template_events e {semi} "
            f"WHERE e.step IN ({', '.join(lit(s) for s in steps)}))")


def _pair_events(template: dict) -> str:
    """``pe``: the events of the rule's activities, once per pair they belong to, marked A or B."""
    pairs = template["pairs"]
    if len(pairs) == 1:
        a, b = map(lit, pairs[0])
        return f"pe AS (SELECT ev.*, 1 AS k, {a} AS a, {b} AS b, ev.step = {a} AS is_a, ev.step = {b} AS is_b FROM ev)"
    return ("pe AS (SELECT ev.*, p.k, p.a, p.b, ev.step = p.a AS is_a, ev.step = p.b AS is_b "
            "FROM ev JOIN pairs p ON ev.step = p.a OR ev.step = p.b)")


_WINDOWS = {
    "nb": "min(CASE WHEN is_b THEN pos END) OVER nxt AS nb_pos, min(CASE WHEN is_b THEN t END) OVER nxt AS nb_t",
    "na": "min(CASE WHEN is_a THEN pos END) OVER nxt AS na_pos, min(CASE WHEN is_a THEN t END) OVER nxt AS na_t",
    "pa": "max(CASE WHEN is_a THEN pos END) OVER prv AS pa_pos, max(CASE WHEN is_a THEN t END) OVER prv AS pa_t",
    "pb": "max(CASE WHEN is_b THEN pos END) OVER prv AS pb_pos, max(CASE WHEN is_b THEN t END) OVER prv AS pb_t",
}
_NEEDS = {"response": ("nb",), "alternate_response": ("nb", "na"), "precedence": ("pa",),
          "alternate_precedence": ("pa", "pb"), "succession": ("nb", "pa")}
_CAND_COLUMNS = "case_no, k, a, b, pos, a_t, b_t, x_step, x_t, state, side"

# Each activation and its target, one row: state found (check the bound), missing (no target yet:
# may still come), gone (can no longer come: the next A came first), none/first (no A before the B),
# wrong (the neighbour is another step).
_CANDIDATES = {
    "response": """SELECT case_no, k, a, b, pos, t, nb_t, NULL::VARCHAR, NULL::TIMESTAMP,
                   CASE WHEN nb_pos IS NULL THEN 'missing' ELSE 'found' END, 'r' FROM w WHERE is_a""",
    "alternate_response": """SELECT case_no, k, a, b, pos, t,
                   CASE WHEN nb_pos < coalesce(na_pos, nb_pos + 1) THEN nb_t END, NULL::VARCHAR, na_t,
                   CASE WHEN nb_pos < coalesce(na_pos, nb_pos + 1) THEN 'found'
                        WHEN na_pos IS NULL THEN 'missing' ELSE 'gone' END, 'r' FROM w WHERE is_a""",
    "precedence": """SELECT case_no, k, a, b, pos, pa_t, t, NULL::VARCHAR, NULL::TIMESTAMP,
                   CASE WHEN pa_pos IS NULL THEN 'none' ELSE 'found' END, 'p' FROM w WHERE is_b""",
    "alternate_precedence": """SELECT case_no, k, a, b, pos,
                   CASE WHEN pa_pos > coalesce(pb_pos, 0) THEN pa_t END, t, NULL::VARCHAR, pb_t,
                   CASE WHEN pa_pos > coalesce(pb_pos, 0) THEN 'found'
                        WHEN pb_pos IS NULL THEN 'none' ELSE 'gone' END, 'p' FROM w WHERE is_b""",
    # the chain templates: the activation's neighbour in the whole trace (position ± 1)
    "chain_response": """SELECT s.case_no, p.k, p.a, p.b, s.pos, s.t, CASE WHEN n.step = p.b THEN n.t END, n.step, n.t,
                   CASE WHEN n.step IS NULL THEN 'missing' WHEN n.step = p.b THEN 'found' ELSE 'wrong' END, 'r'
                   FROM ev s JOIN pairs p ON s.step = p.a
                   LEFT JOIN template_events n ON n.case_no = s.case_no AND n.pos = s.pos + 1""",
    "chain_precedence": """SELECT s.case_no, p.k, p.a, p.b, s.pos, CASE WHEN n.step = p.a THEN n.t END, s.t, n.step, n.t,
                   CASE WHEN n.step IS NULL THEN 'first' WHEN n.step = p.a THEN 'found' ELSE 'wrong' END, 'p'
                   FROM ev s JOIN pairs p ON s.step = p.b
                   LEFT JOIN template_events n ON n.case_no = s.case_no AND n.pos = s.pos - 1""",
}


def _bounded(template: dict, pack: Pack) -> list[str]:
    """``ev`` … ``fin`` of a sequence template with a bound: every activation with its target (a kept
    order can still be late), the bound checked, the first violation of each case and pair."""
    name, within = template["template"], template["within"]
    if name.startswith("chain_"):
        parts = [f"cand({_CAND_COLUMNS}) AS ({_CANDIDATES[name]})"]
    else:
        windows = ",\n               ".join(_WINDOWS[n] for n in _NEEDS[name])
        parts = [_pair_events(template),
                 f"""w AS (SELECT *, {windows}
        FROM pe WINDOW nxt AS (PARTITION BY case_no, k ORDER BY pos ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING),
                       prv AS (PARTITION BY case_no, k ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))"""]
        if name == "succession":
            cand = _CANDIDATES["response"] + "\n    UNION ALL " + _CANDIDATES["precedence"]
        else:
            cand = _CANDIDATES[name]
        parts.append(f"cand({_CAND_COLUMNS}) AS ({cand})")
    parts += bound_ctes(within, pack)
    parts.append("""viol AS (SELECT * FROM bc WHERE state NOT IN ('found', 'missing')
                   OR (state = 'found' AND late) OR (state = 'missing' AND overdue))""")
    parts.append("""vp AS (SELECT case_no, k, any_value(a) AS a, any_value(b) AS b, count(*) AS n,
        arg_min({'a_t': a_t, 'b_t': b_t, 'x_step': x_step, 'x_t': x_t, 'state': state, 'side': side,
                 'lim': lim, 'bound': bound, 'as_of': as_of}, pos) AS f
    FROM viol GROUP BY case_no, k)""")
    return parts + findings(name, template, within)


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
