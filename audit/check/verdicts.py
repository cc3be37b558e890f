"""From a template rule's violations to its findings: one row per case with a Chinese message and the
evidence keys of the template — shared by the rules judged on the trace strings (`audit.check.traces`)
and on ``case_facts`` (`audit.check.templates`).

- `existence_pairs`: the existence of pairs (responded_existence, coexistence, not_coexistence)
  from ``agg`` (one row per case and pair where A or B occurs);
- `findings`: the sequence templates from ``vp`` (one row per violated case and pair, with the
  number of violating activations ``n`` and the first violation ``f``: its times, neighbour,
  state and bound), the sentences built by `message`.
"""

from __future__ import annotations

from audit.check.bounds import fmt_time, lit, num
from audit.rules.templates import NUMBER_FIELDS


def when_sql(when: dict[str, list], table: str) -> list[str]:
    """The conditions of a rule's ``when`` on the case fields of `table` (values as literals)."""
    conditions = []
    for field, values in when.items():
        items = ", ".join(num(v) if field in NUMBER_FIELDS else lit(v) for v in values)
        conditions.append(f'{table}."{field}" IN ({items})')     # a NULL field (or no case row) does not match
    return conditions


def existence_pairs(name: str, agg: str, pairs: list[list[str]]) -> list[str]:
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
                missing_cte(),
                f"""fin AS (SELECT v.city, v.case_id, any_value(s.message) AS message,
        list(v.a || ' → ' || v.b ORDER BY v.k) AS e_violated, any_value(m.missing) AS e_missing,
        arg_min({fmt_time('v.fa_t')}, v.k) AS e_a_at
    FROM viol v JOIN said s USING (city, case_id) JOIN missing m USING (city, case_id) GROUP BY v.city, v.case_id)"""]
    if name == "coexistence":
        return [agg,
                """viol AS (SELECT *, CASE WHEN n_a > 0 THEN a ELSE b END AS here,
                       CASE WHEN n_a > 0 THEN b ELSE a END AS gone, coalesce(fa_t, fb_t) AS here_t
                FROM agg WHERE (n_a > 0) <> (n_b > 0))""",
                missing_cte(),
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



def missing_cte() -> str:
    """The absent activities of a case's violated pairs, each once, in the order of the pairs."""
    return """missing AS (SELECT city, case_id, list(gone ORDER BY k) AS missing FROM (
        SELECT city, case_id, gone, min(k) AS k FROM viol GROUP BY city, case_id, gone) GROUP BY city, case_id)"""




def findings(name: str, template: dict, within, states: tuple[str, ...] | None = None, flat: bool = False) -> list[str]:
    """``fin`` from ``vp`` (one row per violated case and pair: city, case_id, k, a, b, the number of
    violating activations ``n`` and the first violation ``f``). With a bound, ``f`` is a struct
    column (the first of the activations, by position); without, `flat`: its fields are columns of
    ``vp`` itself, with the `states` its violation can have, and its times are formatted once, for the
    sentence and the evidence alike."""
    key = "city, case_id"
    line = message(name, within is not None, states, formatted=flat)
    if flat:
        vp, alias = (f"(SELECT *, {fmt_time('a_t')} AS a_at, {fmt_time('b_t')} AS b_at, {fmt_time('x_t')} AS x_at "
                     "FROM vp) f"), " f"
        a_at, b_at = "f.a_at", "f.b_at"
    else:
        vp, alias, a_at, b_at = "vp", "", fmt_time("f.a_t"), fmt_time("f.b_t")
    if len(template["pairs"]) == 1:     # one row per case already
        bound_cols = ", f.bound AS e_bound, f.lim AS e_limit" if within else ""
        violated = lit(" → ".join(template["pairs"][0]))
        return [f"""fin AS (SELECT {key}, {line} AS message, [{violated}] AS e_violated,
        {a_at} AS e_a_at, {b_at} AS e_b_at, n AS e_count{bound_cols} FROM {vp})"""]
    bound_cols = ", arg_min_null(f.bound, k) AS e_bound, arg_min_null(f.lim, k) AS e_limit" if within else ""
    return [f"""fin AS (SELECT {key}, string_agg(line, '；' ORDER BY k) AS message,
        list(a || ' → ' || b ORDER BY k) AS e_violated,
        arg_min_null({a_at}, k) AS e_a_at, arg_min_null({b_at}, k) AS e_b_at,
        sum(n)::BIGINT AS e_count{bound_cols}
    FROM (SELECT *, {line} AS line FROM {vp}){alias} GROUP BY {key})"""]


def message(name: str, bounded: bool, states: tuple[str, ...] | None = None, formatted: bool = False) -> str:
    """The sentence for one violated pair (its first violation; "共 n 处" when there are more), for
    the `states` its first violation can have (all when None); with `formatted`, ``f`` holds its
    times formatted too (``a_at`` for ``a_t`` …)."""
    A, B = "a", "b"
    when = (lambda col: f"f.{col[0]}_at") if formatted else (lambda col: fmt_time("f." + col))   # noqa: E731
    at = lambda col: f"' (' || {when(col)} || ')'"   # noqa: E731
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
    if states is not None:
        cases = {state: cases[state] for state in states}
    if len(cases) == 1:
        sentence = next(iter(cases.values()))
    else:
        sentence = "CASE f.state " + " ".join(f"WHEN '{state}' THEN {expr}" for state, expr in cases.items()) + " END"
    return f"({sentence}) || CASE WHEN n > 1 THEN '（共 ' || n || ' 处）' ELSE '' END"


