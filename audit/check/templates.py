"""The SQL of a template rule: one set-based query per rule, generated from its validated template.

The query has the shape of any rule's SQL (city, case_id, message, evidence) and is checked by the
read-only guard like the rest. Every literal in it — activities, aliases, cities, values of ``when``
— is quoted (`lit`); numbers come from validated settings. It reads:

- the run's traces (`build_traces`, once per run when a rule needs them): ``template_cases`` — the
  cases judged, those with at least one event of the run's cities, under an integer key — and
  ``template_events`` — their events, steps mapped through the pack's aliases, numbered 1… in the
  order ("time", seq): ties in file order; ``case_facts`` for ``when`` (case fields);
- or, for the existence templates of a canonical pack, ``case_facts`` alone (whether a step occurs
  and its first time are its ``t_<code>`` columns);
- the run's calendar tables ``cal_days`` / ``cal_workdays`` for the bounds.

Sequence templates find each activation's target with window functions over the positions (next B,
next A, latest A, previous B: min/max over the following or preceding rows) or, for the chain
templates, a join on position ± 1; existence templates count. The bounds (``within:``) are
`audit.check.bounds`: a missing target of the response family is a violation only once a target at
the audit date's first instant would be late. One finding per case: a sentence per
violated pair, joined, and the evidence keys of the template (`audit.rules.templates.TEMPLATE_EVIDENCE`)
as the rule's ``evidence:`` selects and renames them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.check.bounds import bound_ctes, fmt_time, lit, num
from audit.errors import UsageError
from audit.rules.contract import step_column
from audit.rules.templates import (
    NUMBER_FIELDS,
    UNARY,
    as_plain,
    template_steps,
)

if TYPE_CHECKING:
    from audit.rules.pack import Pack

# -- the judged cases and their traces (built once per run) --------------------------------------

FAST_TEMPLATES = ("existence", "responded_existence", "coexistence", "not_coexistence")


def reads_case_facts(template: dict, pack: Pack) -> bool:
    """Whether the rule is judged on ``case_facts`` alone: presence and first time of a canonical step
    are its ``t_<code>`` columns (contract §3), so these templates need no pass over the events."""
    return template["template"] in FAST_TEMPLATES and pack.vocabulary.kind == "canonical"


def needs_traces(pack: Pack) -> bool:
    """Whether a run of `pack` needs the trace tables of `build_traces`."""
    return any(r.template and not reads_case_facts(r.template, pack) for r in pack.rules)


def build_traces(con, pack: Pack) -> None:
    """The traces the template rules read, once per run (after ``case_facts``, whose cases — those
    with events, of the run's cities — they are): ``template_cases(case_no, city, case_id, cal_key,
    as_of, n_events)`` and ``template_events(case_no, step, t, pos)``, the steps mapped through the
    pack's aliases and numbered 1… in the order ("time", seq) — ties in file order. Integer case keys
    keep every rule's grouping, windows and joins cheap."""
    con.execute("""CREATE OR REPLACE TEMP TABLE template_cases AS
        SELECT (row_number() OVER ())::INTEGER AS case_no, city, case_id, cal_key, as_of, n_events::INTEGER AS n_events
        FROM case_facts WHERE n_events > 0""")
    aliases = dict(pack.vocabulary.aliases)
    step = "e.step"
    if aliases:
        step = f"CASE e.step {' '.join(f'WHEN {lit(a)} THEN {lit(b)}' for a, b in aliases.items())} ELSE e.step END"
    # The chain templates judge an event by its neighbour's step: with them, the steps before and after
    # each event come from the same window (no join per rule to find the neighbour of every activation).
    chain = any(r.template and r.template["template"].startswith("chain_") for r in pack.rules)
    neighbours = (f", lead({step}) OVER w AS next_step, lag({step}) OVER w AS prev_step" if chain else "")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE template_events AS
        SELECT c.case_no, {step} AS step, e."time" AS t, row_number() OVER w::INTEGER AS pos{neighbours}
        FROM event_rows e JOIN template_cases c ON c.city = e.city AND c.case_id = e.case_id
        WINDOW w AS (PARTITION BY c.case_no ORDER BY e."time", e.seq)""")


def template_sql(template: dict, pack: Pack) -> str:
    """The SELECT that judges `template` (a rule's parsed template) for `pack`'s settings, cities and
    vocabulary (see module doc)."""
    name = template["template"]
    fields = ", ".join(f"{lit(out)}: e_{src}" for out, src in template["evidence"].items())
    parts = [_pairs_cte(template["pairs"])]
    if reads_case_facts(template, pack):
        parts += _from_case_facts(template)
    else:
        parts += [_pop_cte(template["when"]), _events_cte(template)]
        if name in UNARY:
            parts += _unary(name, template["pairs"][0][0])
        elif name in ("responded_existence", "coexistence", "not_coexistence"):
            parts += _existence_pairs(name, _pair_agg(template), template["pairs"])
        else:
            parts += _sequence(name, template, pack)
    # unary and sequence templates end keyed by case_no, the existence of pairs by city and case
    by_case_no = not reads_case_facts(template, pack) and name not in FAST_TEMPLATES[1:]
    if by_case_no:
        final = "SELECT p.city, p.case_id, fin.message, {%s} AS evidence FROM fin JOIN pop p ON p.case_no = fin.case_no"
    else:
        final = "SELECT city, case_id, message, {%s} AS evidence FROM fin"
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


def _pairs_cte(pairs: list[list[str]]) -> str:
    rows = ", ".join(f"({i + 1}, {lit(p[0])}, {lit(p[1]) if len(p) > 1 else 'NULL'})" for i, p in enumerate(pairs))
    return f"pairs(k, a, b) AS (VALUES {rows})"


def _when_sql(when: dict[str, list], table: str) -> list[str]:
    conditions = []
    for field, values in when.items():
        items = ", ".join(num(v) if field in NUMBER_FIELDS else lit(v) for v in values)
        conditions.append(f'{table}."{field}" IN ({items})')     # a NULL field (or no case row) does not match
    return conditions


def _pop_cte(when: dict[str, list]) -> str:
    if not when:
        return "pop AS (SELECT case_no, city, case_id FROM template_cases)"
    return (f"pop AS (SELECT t.case_no, t.city, t.case_id FROM template_cases t "
            f"JOIN case_facts f ON f.city = t.city AND f.case_id = t.case_id WHERE {' AND '.join(_when_sql(when, 'f'))})")


def _events_cte(template: dict) -> str:
    name = template["template"]
    if name in ("init", "end"):
        where = "e.pos = 1" if name == "init" else "e.pos = c.n_events"
        join = "" if name == "init" else "JOIN template_cases c ON c.case_no = e.case_no"
    else:
        # the chain templates start from their activations (A for chain_response, B for
        # chain_precedence) and look up the neighbour; the others need only the rule's activities
        side = {"chain_response": 0, "chain_precedence": 1}.get(name)
        steps = template_steps(template) if side is None else list(dict.fromkeys(p[side] for p in template["pairs"]))
        where, join = f"e.step IN ({', '.join(lit(s) for s in steps)})", ""
    semi = "SEMI JOIN pop ON pop.case_no = e.case_no" if template["when"] else ""
    cols = ", e.next_step, e.prev_step" if name.startswith("chain_") else ""
    return f"ev AS (SELECT e.case_no, e.step, e.t, e.pos{cols} FROM template_events e {join} {semi} WHERE {where})"


# -- on case_facts: existence of canonical steps ----------------------------------------------------

def _from_case_facts(template: dict) -> list[str]:
    name, pairs = template["template"], template["pairs"]
    where = " AND ".join(["n_events > 0", *_when_sql(template["when"], "case_facts")])
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
    return _existence_pairs(name, f"agg AS ({selects})", pairs)


# -- unary templates -----------------------------------------------------------------------------

def _unary(name: str, activity: str) -> list[str]:
    a = lit(activity)
    if name in ("init", "end"):
        word, key = ("第一个", "first") if name == "init" else ("最后一个", "last")
        return [f"""fin AS (SELECT case_no,
        '{word}环节是 ' || step || ' (' || {fmt_time('t')} || ')，而不是 ' || {a} AS message,
        {a} AS e_activity, step AS e_{key}_step, {fmt_time('t')} AS e_{key}_at
    FROM ev WHERE step <> {a})"""]
    # the times are listed for the violating cases only (a count for every case is cheap, a list is not)
    keep = "n > 0" if name == "absence" else "n > 1"
    agg = f"""counts AS (SELECT case_no, count(*) AS n, min(t) AS first_t FROM ev GROUP BY case_no),
agg AS (SELECT c.case_no, any_value(c.n) AS n, any_value(c.first_t) AS first_t,
               list({fmt_time('e.t')} ORDER BY e.pos) AS times
    FROM counts c JOIN ev e ON e.case_no = c.case_no WHERE c.{keep} GROUP BY c.case_no
    UNION ALL SELECT case_no, n, first_t, NULL FROM counts WHERE NOT {keep})"""
    if name == "existence":
        cond, message = "a.n IS NULL", f"'没有 ' || {a} || ' 环节'"
    elif name == "absence":
        cond = "a.n > 0"
        message = (f"'出现了 ' || {a} || ' (' || {fmt_time('a.first_t')} || ')' "
                   f"|| CASE WHEN a.n > 1 THEN '，共 ' || a.n || ' 次' ELSE '' END")
    else:
        cond = "coalesce(a.n, 0) <> 1"
        message = (f"CASE WHEN a.n IS NULL THEN '没有 ' || {a} || ' (应恰好 1 次)' "
                   f"ELSE {a} || ' 出现 ' || a.n || ' 次 (应恰好 1 次)：' || array_to_string(a.times, '、') END")
    extra = "" if name == "existence" else ", coalesce(a.times, []) AS e_times"
    return [agg, f"""fin AS (SELECT p.case_no, {message} AS message, {a} AS e_activity, coalesce(a.n, 0) AS e_count{extra}
    FROM pop p LEFT JOIN agg a ON a.case_no = p.case_no WHERE {cond})"""]


# -- existence of pairs --------------------------------------------------------------------------

def _pair_events(template: dict, cte: str = "pe") -> str:
    """``pe``: the events of the rule's activities, once per pair they belong to, marked A or B."""
    pairs = template["pairs"]
    if len(pairs) == 1:
        a, b = map(lit, pairs[0])
        return (f"{cte} AS (SELECT ev.*, 1 AS k, {a} AS a, {b} AS b, ev.step = {a} AS is_a, ev.step = {b} AS is_b "
                f"FROM ev)")
    return (f"{cte} AS (SELECT ev.*, p.k, p.a, p.b, ev.step = p.a AS is_a, ev.step = p.b AS is_b "
            "FROM ev JOIN pairs p ON ev.step = p.a OR ev.step = p.b)")


# Which (case, pair) can break an unbounded sequence template, from per-case counts and first/last
# positions of A and B alone (one grouping, no sort): exactly the violated ones for response,
# precedence, succession and not_succession, a superset for the alternate templates (a repeated A or
# B may break the alternation). Only these cases go through the windows, which need a sort: most
# cases of a real log keep most rules.
_RESP = "n_a > 0 AND (n_b = 0 OR hi_a > hi_b)"
_PREC = "n_b > 0 AND (n_a = 0 OR lo_a > lo_b)"
_SUSPECT = {
    "response": _RESP,
    "precedence": _PREC,
    "succession": f"({_RESP}) OR ({_PREC})",
    "not_succession": "n_a > 0 AND n_b > 0 AND lo_a < hi_b",
    "alternate_response": f"({_RESP}) OR n_a > 1",
    "alternate_precedence": f"({_PREC}) OR n_b > 1",
}


def _suspects(template: dict) -> list[str]:
    """``pe`` restricted to the (case, pair)s that may break the rule (see `_SUSPECT`)."""
    return [_pair_events(template, "pe_all"),
            f"""sus AS (SELECT * FROM (
        SELECT case_no, k, any_value(a) AS a, any_value(b) AS b,
               count(*) FILTER (WHERE is_a) AS n_a, count(*) FILTER (WHERE is_b) AS n_b,
               min(t) FILTER (WHERE is_a) AS fa_t, min(t) FILTER (WHERE is_b) AS fb_t,
               min(pos) FILTER (WHERE is_a) AS lo_a, max(pos) FILTER (WHERE is_a) AS hi_a,
               min(pos) FILTER (WHERE is_b) AS lo_b, max(pos) FILTER (WHERE is_b) AS hi_b
        FROM pe_all GROUP BY case_no, k) WHERE {_SUSPECT[template["template"]]})""",
            "pe AS (SELECT pe_all.* FROM pe_all SEMI JOIN sus ON sus.case_no = pe_all.case_no AND sus.k = pe_all.k)"]


def _pair_agg(template: dict) -> str:
    return _pair_events(template) + """,
agg AS (SELECT p.city, p.case_id, x.* EXCLUDE (case_no) FROM (
        SELECT case_no, k, any_value(a) AS a, any_value(b) AS b,
               count(*) FILTER (WHERE is_a) AS n_a, count(*) FILTER (WHERE is_b) AS n_b,
               min(t) FILTER (WHERE is_a) AS fa_t, min(t) FILTER (WHERE is_b) AS fb_t
        FROM pe GROUP BY case_no, k) x JOIN pop p ON p.case_no = x.case_no)"""


def _existence_pairs(name: str, agg: str, pairs: list[list[str]]) -> list[str]:
    """From ``agg`` (city, case_id, k, a, b, n_a, n_b, fa_t, fb_t: one row per case and pair with A or B)
    to ``fin`` (one row per case). When the pairs share their A and name each B once (FLOW-BB-STEPS),
    one grouping gives everything; otherwise the sentences are grouped by A and the absent steps
    listed once each."""
    one_a = len({a for a, _ in pairs}) == 1 and len({b for _, b in pairs}) == len(pairs)
    if name == "responded_existence" and one_a:
        return [agg, "viol AS (SELECT * FROM agg WHERE n_a > 0 AND n_b = 0)",
                f"""fin AS (SELECT city, case_id,
        '有 ' || any_value(a) || ' (' || {fmt_time('min(fa_t)')} || ')，但没有 ' || string_agg(b, '、' ORDER BY k) AS message,
        list(a || ' → ' || b ORDER BY k) AS e_violated, list(b ORDER BY k) AS e_missing, {fmt_time('min(fa_t)')} AS e_a_at
    FROM viol GROUP BY city, case_id)"""]
    if name == "coexistence" and len({s for pair in pairs for s in pair}) == 2 * len(pairs):
        return [agg, """viol AS (SELECT *, CASE WHEN n_a > 0 THEN a ELSE b END AS here,
                       CASE WHEN n_a > 0 THEN b ELSE a END AS gone, coalesce(fa_t, fb_t) AS here_t
                FROM agg WHERE (n_a > 0) <> (n_b > 0))""",
                f"""fin AS (SELECT city, case_id,
        string_agg('有 ' || here || ' (' || {fmt_time('here_t')} || ')，但没有 ' || gone, '；' ORDER BY k) AS message,
        list(a || ' → ' || b ORDER BY k) AS e_violated, arg_min(here, k) AS e_present,
        arg_min({fmt_time('here_t')}, k) AS e_present_at, list(gone ORDER BY k) AS e_missing
    FROM viol GROUP BY city, case_id)"""]
    if name == "responded_existence":
        return [agg,
                "viol AS (SELECT *, b AS gone FROM agg WHERE n_a > 0 AND n_b = 0)",
                # one sentence per activation: "有 办结 (…)，但没有 申请、受理"
                f"""said AS (SELECT city, case_id, string_agg(line, '；' ORDER BY k) AS message FROM (
        SELECT city, case_id, min(k) AS k,
               '有 ' || a || ' (' || {fmt_time('min(fa_t)')} || ')，但没有 ' || string_agg(b, '、' ORDER BY k) AS line
        FROM viol GROUP BY city, case_id, a) GROUP BY city, case_id)""",
                _missing_cte(),
                f"""fin AS (SELECT v.city, v.case_id, any_value(s.message) AS message,
        list(v.a || ' → ' || v.b ORDER BY v.k) AS e_violated, any_value(m.missing) AS e_missing,
        arg_min({fmt_time('v.fa_t')}, v.k) AS e_a_at
    FROM viol v JOIN said s USING (city, case_id) JOIN missing m USING (city, case_id) GROUP BY v.city, v.case_id)"""]
    if name == "coexistence":
        return [agg,
                """viol AS (SELECT *, CASE WHEN n_a > 0 THEN a ELSE b END AS here,
                       CASE WHEN n_a > 0 THEN b ELSE a END AS gone, coalesce(fa_t, fb_t) AS here_t
                FROM agg WHERE (n_a > 0) <> (n_b > 0))""",
                _missing_cte(),
                f"""fin AS (SELECT v.city, v.case_id,
        string_agg('有 ' || here || ' (' || {fmt_time('here_t')} || ')，但没有 ' || gone, '；' ORDER BY v.k) AS message,
        list(v.a || ' → ' || v.b ORDER BY v.k) AS e_violated, arg_min(here, v.k) AS e_present,
        arg_min({fmt_time('here_t')}, v.k) AS e_present_at, any_value(m.missing) AS e_missing
    FROM viol v JOIN missing m USING (city, case_id) GROUP BY v.city, v.case_id)"""]
    return [agg,
            "viol AS (SELECT * FROM agg WHERE n_a > 0 AND n_b > 0)",
            f"""fin AS (SELECT city, case_id,
        string_agg(a || ' (' || {fmt_time('fa_t')} || ') 与 ' || b || ' (' || {fmt_time('fb_t')} || ') 同时出现', '；' ORDER BY k)
            AS message,
        list(a || ' → ' || b ORDER BY k) AS e_violated, arg_min({fmt_time('fa_t')}, k) AS e_a_at,
        arg_min({fmt_time('fb_t')}, k) AS e_b_at
    FROM viol GROUP BY city, case_id)"""]



def _missing_cte() -> str:
    """The absent activities of a case's violated pairs, each once, in the order of the pairs."""
    return """missing AS (SELECT city, case_id, list(gone ORDER BY k) AS missing FROM (
        SELECT city, case_id, gone, min(k) AS k FROM viol GROUP BY city, case_id, gone) GROUP BY city, case_id)"""


# -- sequence templates --------------------------------------------------------------------------

_WINDOWS = {
    "nb": "min(CASE WHEN is_b THEN pos END) OVER nxt AS nb_pos, min(CASE WHEN is_b THEN t END) OVER nxt AS nb_t",
    "na": "min(CASE WHEN is_a THEN pos END) OVER nxt AS na_pos, min(CASE WHEN is_a THEN t END) OVER nxt AS na_t",
    "pa": "max(CASE WHEN is_a THEN pos END) OVER prv AS pa_pos, max(CASE WHEN is_a THEN t END) OVER prv AS pa_t",
    "pb": "max(CASE WHEN is_b THEN pos END) OVER prv AS pb_pos, max(CASE WHEN is_b THEN t END) OVER prv AS pb_t",
}
_NEEDS = {"response": ("nb",), "alternate_response": ("nb", "na"), "precedence": ("pa",),
          "alternate_precedence": ("pa", "pb"), "succession": ("nb", "pa"), "not_succession": ("nb",)}
_CAND_COLUMNS = "case_no, k, a, b, pos, a_t, b_t, x_step, x_t, state, side"

# Each activation and its target, one row: state found (check the bound), missing (no target yet:
# may still come), gone (can no longer come: the next A came first), none/first (no A before the B),
# wrong (the neighbour is another step), after (not_succession: a B follows).
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
    "not_succession": """SELECT case_no, k, a, b, pos, t, nb_t, NULL::VARCHAR, NULL::TIMESTAMP, 'after', 'r'
                   FROM w WHERE is_a AND nb_pos IS NOT NULL""",
    # the chain templates: the activation's neighbour in the whole trace (position ± 1)
    "chain_response": """SELECT s.case_no, p.k, p.a, p.b, s.pos, s.t, CASE WHEN n.step = p.b THEN n.t END, n.step, n.t,
                   CASE WHEN n.step IS NULL THEN 'missing' WHEN n.step = p.b THEN 'found' ELSE 'wrong' END, 'r'
                   FROM ev s JOIN pairs p ON s.step = p.a {only}
                   LEFT JOIN template_events n ON n.case_no = s.case_no AND n.pos = s.pos + 1""",
    "chain_precedence": """SELECT s.case_no, p.k, p.a, p.b, s.pos, CASE WHEN n.step = p.a THEN n.t END, s.t, n.step, n.t,
                   CASE WHEN n.step IS NULL THEN 'first' WHEN n.step = p.a THEN 'found' ELSE 'wrong' END, 'p'
                   FROM ev s JOIN pairs p ON s.step = p.b {only}
                   LEFT JOIN template_events n ON n.case_no = s.case_no AND n.pos = s.pos - 1""",
}


# response and precedence without a bound: the suspects are exactly the violated (case, pair)s, and
# their first violation follows from the counts and positions — for response the first A after the
# last B (every A when there is no B), for precedence the first B (no A comes before it) — so no
# window is needed; a second grouping counts the violating activations where the other step occurs.
_DIRECT = {
    "response": ("is_a AND pos > s.hi_b", "n_b = 0", "n_a", "'missing'", "'r'", "a_t", "b_t"),
    "precedence": ("is_b AND pos < s.lo_a", "n_a = 0", "n_b", "'none'", "'p'", "b_t", "a_t"),
}


def _direct(name: str) -> str:
    """``vp`` of an unbounded response or precedence rule straight from ``sus`` (see `_DIRECT`)."""
    where, alone, count_all, state, side, known, absent = _DIRECT[name]
    first = "fa_t" if name == "response" else "fb_t"
    return f"""later AS (SELECT e.case_no, e.k, count(*) AS n, arg_min(e.t, e.pos) AS t
        FROM pe_all e JOIN sus s ON s.case_no = e.case_no AND s.k = e.k WHERE NOT s.{alone} AND {where}
        GROUP BY e.case_no, e.k),
vp AS (SELECT s.case_no, s.k, s.a, s.b, CASE WHEN s.{alone} THEN s.{count_all} ELSE l.n END AS n,
        {{'{known}': CASE WHEN s.{alone} THEN s.{first} ELSE l.t END, '{absent}': NULL::TIMESTAMP,
          'x_step': NULL::VARCHAR, 'x_t': NULL::TIMESTAMP, 'state': {state}, 'side': {side},
          'lim': NULL::VARCHAR, 'bound': NULL::VARCHAR, 'as_of': NULL::DATE}} AS f
    FROM sus s LEFT JOIN later l ON l.case_no = s.case_no AND l.k = s.k)"""


def _sequence(name: str, template: dict, pack: Pack) -> list[str]:
    within = template["within"]
    if name in _DIRECT and not within:
        return _suspects(template)[:-1] + [_direct(name)] + _findings(name, template, within)   # no pe: no window
    if name.startswith("chain_"):
        # without a bound only the activations whose neighbour is not the target can break the rule:
        # the others are left out before the neighbour is looked up
        only = "" if within else {"chain_response": "AND s.next_step IS DISTINCT FROM p.b",
                                  "chain_precedence": "AND s.prev_step IS DISTINCT FROM p.a"}[name]
        parts = [f"cand({_CAND_COLUMNS}) AS ({_CANDIDATES[name].format(only=only)})"]
    else:
        windows = ",\n               ".join(_WINDOWS[n] for n in _NEEDS[name])
        # with a bound, a kept order can still be late: every case goes through the windows
        events = [_pair_events(template)] if within else _suspects(template)
        parts = [*events,
                 f"""w AS (SELECT *, {windows}
        FROM pe WINDOW nxt AS (PARTITION BY case_no, k ORDER BY pos ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING),
                       prv AS (PARTITION BY case_no, k ORDER BY pos ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))"""]
        if name == "succession":
            cand = _CANDIDATES["response"] + "\n    UNION ALL " + _CANDIDATES["precedence"]
        else:
            cand = _CANDIDATES[name]
        parts.append(f"cand({_CAND_COLUMNS}) AS ({cand})")
    if within:
        parts += bound_ctes(within, pack)
        parts.append("""viol AS (SELECT * FROM bc WHERE state NOT IN ('found', 'missing')
                   OR (state = 'found' AND late) OR (state = 'missing' AND overdue))""")
    else:
        parts.append("viol AS (SELECT *, NULL::VARCHAR AS lim, NULL::VARCHAR AS bound, NULL::DATE AS as_of FROM cand "
                     "WHERE state <> 'found')")
    parts.append("""vp AS (SELECT case_no, k, any_value(a) AS a, any_value(b) AS b, count(*) AS n,
        arg_min({'a_t': a_t, 'b_t': b_t, 'x_step': x_step, 'x_t': x_t, 'state': state, 'side': side,
                 'lim': lim, 'bound': bound, 'as_of': as_of}, pos) AS f
    FROM viol GROUP BY case_no, k)""")
    return parts + _findings(name, template, within)


def _findings(name: str, template: dict, within) -> list[str]:
    """``fin`` from ``vp`` (one row per violated case and pair, with its first violation ``f``)."""
    parts = []
    line = _message(name, within is not None)
    if len(template["pairs"]) == 1:     # one row per case already
        bound_cols = ", f.bound AS e_bound, f.lim AS e_limit" if within else ""
        parts.append(f"""fin AS (SELECT case_no, {line} AS message, [a || ' → ' || b] AS e_violated,
        {fmt_time('f.a_t')} AS e_a_at, {fmt_time('f.b_t')} AS e_b_at, n AS e_count{bound_cols} FROM vp)""")
        return parts
    bound_cols = ", arg_min_null(f.bound, k) AS e_bound, arg_min_null(f.lim, k) AS e_limit" if within else ""
    parts.append(f"""fin AS (SELECT case_no, string_agg(line, '；' ORDER BY k) AS message,
        list(a || ' → ' || b ORDER BY k) AS e_violated,
        arg_min_null({fmt_time('f.a_t')}, k) AS e_a_at, arg_min_null({fmt_time('f.b_t')}, k) AS e_b_at,
        sum(n)::BIGINT AS e_count{bound_cols}
    FROM (SELECT *, {line} AS line FROM vp) GROUP BY case_no)""")
    return parts


def _message(name: str, bounded: bool) -> str:
    """The sentence for one violated pair (its first violation; "共 n 处" when there are more)."""
    A, B = "a", "b"
    at = lambda col: f"' (' || {fmt_time('f.' + col)} || ')'"   # noqa: E731
    chain = "紧接着的 " if name == "chain_response" else ""
    within = "' ' || f.bound || '内'" if bounded else "''"
    cases = {
        "missing": (f"{A} || {at('a_t')} || ' 之后' || {within} || '没有 {chain}' || {B}"
                    + (f" || '：时限 ' || f.lim || ' 已过，截至审计日 ' || strftime(f.as_of, '%Y-%m-%d') "
                       f"|| ' 仍没有 ' || {B}" if bounded else "")),
        "gone": f"{A} || {at('a_t')} || ' 之后、下一个 ' || {A} || {at('x_t')} || ' 之前没有 ' || {B}",
        "none": f"{B} || {at('b_t')} || ' 之前没有 ' || {A}",
        "after": f"{A} || {at('a_t')} || ' 之后出现了 ' || {B} || {at('b_t')}",
    }
    if name == "chain_response" and not bounded:
        cases["missing"] = f"{A} || {at('a_t')} || ' 是最后一个环节，之后没有 ' || {B}"
    if name == "alternate_precedence":
        cases["gone"] = f"{B} || {at('b_t')} || ' 之前、上一个 ' || {B} || {at('x_t')} || ' 之后没有 ' || {A}"
    if name == "chain_response":
        cases["wrong"] = f"{A} || {at('a_t')} || ' 之后紧接着的是 ' || f.x_step || {at('x_t')} || '，而不是 ' || {B}"
    if name == "chain_precedence":
        cases["first"] = f"{B} || {at('b_t')} || ' 是第一个环节，之前没有 ' || {A}"
        cases["wrong"] = f"{B} || {at('b_t')} || ' 紧前的是 ' || f.x_step || {at('x_t')} || '，而不是 ' || {A}"
    if bounded:
        late_r = (f"{A} || {at('a_t')} || ' 之后 ' || f.bound || '内没有 {chain}' || {B} || '：时限 ' || f.lim "
                  f"|| '，' || {B} || ' ' || {fmt_time('f.b_t')}")
        late_p = (f"{B} || {at('b_t')} || ' 与之前的 ' || {A} || {at('a_t')} || ' 相隔超过 ' || f.bound "
                  f"|| '：时限 ' || f.lim")
        cases["found"] = f"CASE f.side WHEN 'r' THEN {late_r} ELSE {late_p} END"
    whens = " ".join(f"WHEN '{state}' THEN {expr}" for state, expr in cases.items())
    return f"(CASE f.state {whens} END) || CASE WHEN n > 1 THEN '（共 ' || n || ' 处）' ELSE '' END"


# -- the database's steps and the pack's -----------------------------------------------------------

def pack_steps(pack: Pack) -> list[str]:
    """The steps a pack is written for: its vocabulary's, or for ``open`` those its template rules name."""
    names = pack.vocabulary.names
    if names is not None:
        return list(names)
    return list(dict.fromkeys(s for r in pack.rules if r.template for s in template_steps(r.template)))


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
