"""Template rules judged on each case's trace as a string: one character per event.

`build_traces` makes, once per run, ``template_traces(city, case_id, s, ts)`` for every case of the
run with events: ``s`` has one character per event — its step's (`step_char`) — in the order
("time", seq), ties in file order, and ``ts`` the events' times in the same order, so that
``ts[i]`` is the time of ``s[i]``. The pack's steps (after its aliases) take the characters A–Z,
a–z and then those of the Unicode private-use areas, in the order of `pack_steps`, so a rule's SQL
knows its characters from the pack alone; every other step of the data takes the next ones
(``template_chars`` gives a character's step, for the messages that name a neighbour).

A Declare template is then a property of the string, as in Declare's regular-expression semantics
(MINERful): whether a character occurs, where it first or last occurs, what is next to it. A rule
without a time bound is one scan of ``template_traces`` that keeps the violating cases (one regular
expression, or contains/strpos); only for those are the first violation and the number of
violating activations worked out, with string functions (strpos, replace, string_split):

=====================  ============================================  =================================
template (A, B)        violated when                                 first violation; count
=====================  ============================================  =================================
response               an A after the last B (or no B)               that first A; the As after it
precedence             a B before the first A (or no A)              the first B; the Bs before the A
succession             either of the two                             the earlier one; both counts
not_succession         a B after the first A                         the first A; the As before the last B
chain_response         an A whose next character is not B            with each AB written as ##: the
chain_precedence       a B whose previous character is not A         first A (B) left; those left
alternate_response     between an A and the next A (or the end)      split at A: the first piece
                       no B                                          after an A without B; those pieces
alternate_precedence   between the previous B (or the start) and     split at B: the first piece
                       a B no A                                      before a B without A; those pieces
=====================  ============================================  =================================

A rule with a time bound (``within:``) takes every activation (one row per occurrence of A, or of B
for the precedence family) and its target from the positions — the next B, the next A, the latest A
before, the previous B, the neighbour — and then the bound (`audit.check.bounds`). No rule sorts or
groups the events: the one sort is the trace's (`build_traces`). The findings' messages and
evidence are those of `audit.check.verdicts`.
"""

from __future__ import annotations

import string
from functools import partial
from typing import TYPE_CHECKING

from audit.check.bounds import bound_ctes, fmt_time, lit
from audit.check.verdicts import existence_pairs, findings, when_sql
from audit.errors import UsageError
from audit.rules.templates import UNARY, template_steps

if TYPE_CHECKING:
    from audit.rules.pack import Pack

LETTERS = string.ascii_uppercase + string.ascii_lowercase
PRIVATE_USE = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
PAIR_EXISTENCE = ("responded_existence", "coexistence", "not_coexistence")
CODE_BITS = 21  # every code point (≤ 0x10FFFF) fits
CODE_MASK = (1 << CODE_BITS) - 1


def step_char(i: int) -> str:
    """The `i`-th character of the trace alphabet (letters, then private-use characters): none of them
    is special in a regular expression, and none is ``#`` (the chain templates' filler)."""
    if i < len(LETTERS):
        return LETTERS[i]
    i -= len(LETTERS)
    for lo, hi in PRIVATE_USE:
        if i <= hi - lo:
            return chr(lo + i)
        i -= hi - lo + 1
    raise UsageError(f"数据中的环节超过 {len(LETTERS) + sum(hi - lo + 1 for lo, hi in PRIVATE_USE):,} 种，模板规则无法判断")


def pack_steps(pack: Pack) -> list[str]:
    """The steps a pack is written for: its vocabulary's, or for ``open`` those its template rules name."""
    names = pack.vocabulary.names
    if names is not None:
        return list(names)
    return list(dict.fromkeys(s for r in pack.rules if r.template for s in template_steps(r.template)))


def pack_chars(pack: Pack) -> dict[str, str]:
    """Step name -> its character in the traces, for the pack's steps."""
    return {name: step_char(i) for i, name in enumerate(pack_steps(pack))}


# -- the traces (built once per run) -------------------------------------------------------------

def build_traces(con, pack: Pack) -> None:
    """``template_traces`` (see module doc) for the cases of ``case_facts`` with events, with
    ``template_steps(step, code)`` (each step of the data, through the pack's aliases, to its
    character's code point) and ``template_chars(ch, name)``."""
    chars = pack_chars(pack)
    aliases = dict(pack.vocabulary.aliases)
    codes = []
    for (step,) in con.execute("""SELECT DISTINCT step FROM event_rows
                                  WHERE city IN (SELECT DISTINCT city FROM case_facts) ORDER BY step""").fetchall():
        name = aliases.get(step, step)
        if name not in chars:
            chars[name] = step_char(len(chars))
        codes.append((step, ord(chars[name])))
    con.execute("CREATE OR REPLACE TEMP TABLE template_steps AS SELECT unnest(?::VARCHAR[]) AS step, unnest(?::INTEGER[]) AS code",
                [[step for step, _ in codes], [code for _, code in codes]])
    con.execute("CREATE OR REPLACE TEMP TABLE template_chars AS SELECT unnest(?::VARCHAR[]) AS ch, unnest(?::VARCHAR[]) AS name",
                [list(chars.values()), list(chars)])
    # One grouping: each case's events as one sortable HUGEINT each — the time in µs times 2^64, plus
    # the file order (seq, far below 2^43) shifted past the character's code point (21 bits) — sorted
    # in the list (cheaper than an ordered aggregate, a window over all events or a list of structs:
    # 1M cases, 6.3M events: 0.7 s against 0.95 s for structs), then split into the string and the
    # times. The seq makes every key distinct, so ties in time keep file order.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE template_traces AS
        SELECT city, case_id, array_to_string(list_transform(k, lambda x: chr((x & {CODE_MASK})::INTEGER)), '') AS s,
               list_transform(k, lambda x: make_timestamp((x >> 64)::BIGINT)) AS ts
        FROM (SELECT e.city, e.case_id,
                     list_sort(list(epoch_us(e."time")::HUGEINT * {1 << 64} + (coalesce(e.seq, 0)::HUGEINT << {CODE_BITS}) + m.code)) AS k
              FROM event_rows e JOIN template_steps m ON m.step = e.step
              WHERE e.city IN (SELECT DISTINCT city FROM case_facts)
              GROUP BY e.city, e.case_id)""")


# -- a rule's SQL --------------------------------------------------------------------------------

def trace_parts(template: dict, pack: Pack) -> list[str]:
    """The CTEs that judge `template` on ``template_traces``, ending in ``fin`` (one row per violating
    case: city, case_id, message, e_* evidence)."""
    name, pairs, chars = template["template"], template["pairs"], pack_chars(pack)
    parts = [_traces_cte(template["when"])]
    if name in UNARY:
        return parts + _unary(name, pairs[0][0], chars[pairs[0][0]])
    if name in PAIR_EXISTENCE:
        return parts + existence_pairs(name, _pair_agg(pairs, chars), pairs)
    if template["within"]:
        return parts + _bounded(template, pack, chars)
    rows = "\n    UNION ALL ".join(_VIOLATIONS[name](k + 1, a, b, chars[a], chars[b]) for k, (a, b) in enumerate(pairs))
    return parts + [f"vp AS ({rows})"] + findings(name, template, None, states=_STATES[name], flat=True)


def _traces_cte(when: dict[str, list]) -> str:
    if not when:
        return "tr AS (SELECT city, case_id, s, ts FROM template_traces)"
    return (f"tr AS (SELECT t.city, t.case_id, t.s, t.ts FROM template_traces t SEMI JOIN "
            f"(SELECT city, case_id FROM case_facts f WHERE {' AND '.join(when_sql(when, 'f'))}) f "
            f"ON f.city = t.city AND f.case_id = t.case_id)")


def _count(text: str, ch: str) -> str:
    """How many times character `ch` (a literal) occurs in `text`."""
    return f"(length({text}) - length(replace({text}, {ch}, '')))"


def _matches(pattern: str) -> str:
    """Whether ``s`` contains a match of `pattern`, a regular expression over trace characters (letters
    and private-use characters: none needs escaping); the violating cases are kept by it first, so that
    positions and counts are worked out for those alone."""
    return f"regexp_matches(s, {lit(pattern)})"


def _last(ch: str) -> str:
    """The position of the last `ch` in ``s`` (0: none)."""
    return f"CASE WHEN contains(s, {ch}) THEN length(s) + 1 - strpos(reverse(s), {ch}) ELSE 0 END"


def _first_violation(state: str, a_t: str = "NULL", b_t: str = "NULL", x_step: str = "NULL", x_t: str = "NULL") -> str:
    """The first violation's columns (its times, neighbour and state), as `audit.check.verdicts.findings`
    reads them from ``vp f``."""
    return (f"{a_t}::TIMESTAMP AS a_t, {b_t}::TIMESTAMP AS b_t, {x_step}::VARCHAR AS x_step, "
            f"{x_t}::TIMESTAMP AS x_t, {state} AS state")


# -- unary templates and the existence of pairs ----------------------------------------------------

def _unary(name: str, activity: str, ch: str) -> list[str]:
    a, x = lit(activity), lit(ch)
    if name in ("init", "end"):
        word, key, i = ("第一个", "first", "1") if name == "init" else ("最后一个", "last", "length(tr.s)")
        at = fmt_time(f"tr.ts[{i}]")
        return [f"""fin AS (SELECT tr.city, tr.case_id, '{word}环节是 ' || c.name || ' (' || {at} || ')，而不是 ' || {a} AS message,
        {a} AS e_activity, c.name AS e_{key}_step, {at} AS e_{key}_at
    FROM tr JOIN template_chars c ON c.ch = tr.s[{i}] WHERE tr.s[{i}] <> {x})"""]
    if name == "existence":
        return [f"fin AS (SELECT city, case_id, '没有 ' || {a} || ' 环节' AS message, {a} AS e_activity, 0 AS e_count "
                f"FROM tr WHERE NOT contains(s, {x}))"]
    if name == "absence":
        keep, message = (f"contains(s, {x})",
                         f"'出现了 ' || {a} || ' (' || {fmt_time(f'ts[strpos(s, {x})]')} || ')' "
                         f"|| CASE WHEN n > 1 THEN '，共 ' || n || ' 次' ELSE '' END")
    else:
        keep, message = (f"NOT contains(s, {x}) OR {_count('s', x)} > 1",
                         f"CASE WHEN n = 0 THEN '没有 ' || {a} || ' (应恰好 1 次)' "
                         f"ELSE {a} || ' 出现 ' || n || ' 次 (应恰好 1 次)：' || array_to_string(times, '、') END")
    times = f"list_transform(list_filter(ts, lambda v, i: s[i] = {x}), lambda v: {fmt_time('v')})"
    return [f"""fin AS (SELECT city, case_id, {message} AS message, {a} AS e_activity, n AS e_count, times AS e_times
    FROM (SELECT city, case_id, s, ts, {_count('s', x)} AS n, {times} AS times FROM tr WHERE {keep}))"""]


def _pair_agg(pairs: list[list[str]], chars: dict[str, str]) -> str:
    """``agg`` as `existence_pairs` reads it: one row per case and pair where A or B occurs."""
    selects = "\n    UNION ALL ".join(
        f"SELECT city, case_id, {k + 1} AS k, {lit(a)} AS a, {lit(b)} AS b, contains(s, {xa})::INTEGER AS n_a, "
        f"contains(s, {xb})::INTEGER AS n_b, ts[strpos(s, {xa})] AS fa_t, ts[strpos(s, {xb})] AS fb_t "
        f"FROM tr WHERE contains(s, {xa}) OR contains(s, {xb})"
        for k, (a, b) in enumerate(pairs) for xa, xb in [(lit(chars[a]), lit(chars[b]))])
    return f"agg AS ({selects})"


# -- sequence templates: one SELECT per pair, its violating cases with n and the first violation --

def _head(k: int, a: str, b: str) -> str:
    return f"city, case_id, {k} AS k, {lit(a)} AS a, {lit(b)} AS b"


def _response(k, a, b, ca, cb) -> str:
    xa, xb = lit(ca), lit(cb)
    first = _first_violation("'missing'", a_t=f"ts[lb + strpos(rest, {xa})]")
    return f"""SELECT {_head(k, a, b)}, {_count('rest', xa)} AS n, {first}
    FROM (SELECT city, case_id, ts, lb, substr(s, lb + 1) AS rest
          FROM (SELECT *, {_last(xb)} AS lb FROM tr WHERE {_matches(f"{ca}[^{cb}]*$")}))"""


def _precedence(k, a, b, ca, cb) -> str:
    xa, xb = lit(ca), lit(cb)
    first = _first_violation("'none'", b_t=f"ts[strpos(s, {xb})]")
    return f"""SELECT {_head(k, a, b)}, {_count('head', xb)} AS n, {first}
    FROM (SELECT city, case_id, s, ts, CASE WHEN contains(s, {xa}) THEN left(s, strpos(s, {xa}) - 1) ELSE s END AS head
          FROM tr WHERE contains(s, {xb}) AND (NOT contains(s, {xa}) OR strpos(s, {xa}) > strpos(s, {xb})))"""


def _succession(k, a, b, ca, cb) -> str:
    xa, xb = lit(ca), lit(cb)
    resp = "rn > 0 AND (pn = 0 OR ri < pi)"     # the first violation is a response one
    first = _first_violation(f"CASE WHEN {resp} THEN 'missing' ELSE 'none' END", a_t=f"CASE WHEN {resp} THEN ts[ri] END",
                             b_t=f"CASE WHEN {resp} THEN NULL ELSE ts[pi] END")
    return f"""SELECT {_head(k, a, b)}, rn + pn AS n, {first}
    FROM (SELECT city, case_id, ts, {_count('rest', xa)} AS rn, lb + strpos(rest, {xa}) AS ri,
                 {_count('head', xb)} AS pn, strpos(s, {xb}) AS pi
          FROM (SELECT *, substr(s, lb + 1) AS rest,
                       CASE WHEN contains(s, {xa}) THEN left(s, strpos(s, {xa}) - 1) ELSE s END AS head
                FROM (SELECT *, {_last(xb)} AS lb FROM tr WHERE {_matches(f"{ca}[^{cb}]*$|^[^{ca}]*{cb}")})))"""


def _not_succession(k, a, b, ca, cb) -> str:
    xa, xb = lit(ca), lit(cb)
    first = _first_violation("'after'", a_t="ts[fa]", b_t=f"ts[fa + strpos(substr(s, fa + 1), {xb})]")
    return f"""SELECT {_head(k, a, b)}, {_count('left(s, lb - 1)', xa)} AS n, {first}
    FROM (SELECT *, strpos(s, {xa}) AS fa, {_last(xb)} AS lb FROM tr WHERE {_matches(f"{ca}.*{cb}")})"""


def _chain(response: bool):
    """chain_response / chain_precedence: with every AB written as ``##`` (A ≠ B, so they cannot
    overlap), the As (Bs) left are those not followed by B (not preceded by A)."""
    def sql(k, a, b, ca, cb) -> str:
        xa, xb = lit(ca), lit(cb)
        own, near = (xa, "i + 1") if response else (xb, "i - 1")
        if response:
            first = _first_violation("CASE WHEN i = length(s) THEN 'missing' ELSE 'wrong' END", a_t="ts[i]",
                                     x_step="c.name", x_t=f"ts[{near}]")
        else:
            first = _first_violation("CASE WHEN i = 1 THEN 'first' ELSE 'wrong' END", b_t="ts[i]",
                                     x_step="c.name", x_t=f"ts[{near}]")
        broken = f"{ca}(?:[^{cb}]|$)" if response else f"(?:^|[^{ca}]){cb}"    # an activation not next to its target
        return f"""SELECT {_head(k, a, b)}, {_count('r', own)} AS n, {first}
    FROM (SELECT *, strpos(r, {own}) AS i
          FROM (SELECT city, case_id, s, ts, replace(s, {lit(ca + cb)}, '##') AS r FROM tr WHERE {_matches(broken)})) v
    LEFT JOIN template_chars c ON c.ch = v.s[v.{near}]"""
    return sql


def _alternate(response: bool):
    """alternate_response: split at A, the piece after each A must hold a B (before the next A);
    alternate_precedence: split at B, the piece before each B must hold an A (since the previous B).
    A regular expression keeps the violating cases first."""
    def sql(k, a, b, ca, cb) -> str:
        xa, xb = lit(ca), lit(cb)
        if response:
            at, need, pattern = xa, xb, f"{ca}[^{ca}{cb}]*(?:{ca}|$)"
            pieces = "parts[2:]"
            first = _first_violation("CASE WHEN j < len(pieces) THEN 'gone' ELSE 'missing' END", a_t="ts[i]",
                                     x_t="CASE WHEN j < len(pieces) THEN ts[i + length(pieces[j]) + 1] END")
        else:
            at, need, pattern = xb, xa, f"(?:^|{cb})[^{ca}{cb}]*{cb}"
            pieces = "parts[1:len(parts) - 1]"
            first = _first_violation("CASE WHEN j = 1 THEN 'none' ELSE 'gone' END", b_t="ts[i]",
                                     x_t="CASE WHEN j > 1 THEN ts[i - length(pieces[j]) - 1] END")
        return f"""SELECT {_head(k, a, b)}, n, {first}
    FROM (SELECT *, length(array_to_string(parts[1:j], {at})) + 1 AS i
          FROM (SELECT *, list_position(ok, false) AS j, len(list_filter(ok, lambda o: NOT o)) AS n
                FROM (SELECT *, list_transform(pieces, lambda g: contains(g, {need})) AS ok
                      FROM (SELECT city, case_id, ts, parts, {pieces} AS pieces
                            FROM (SELECT city, case_id, ts, string_split(s, {at}) AS parts
                                  FROM tr WHERE {_matches(pattern)})))))"""
    return sql


# The states a template's first violation can have (the sentences of `audit.check.verdicts.message`).
_STATES = {"response": ("missing",), "precedence": ("none",), "succession": ("missing", "none"),
           "not_succession": ("after",), "chain_response": ("missing", "wrong"), "chain_precedence": ("first", "wrong"),
           "alternate_response": ("gone", "missing"), "alternate_precedence": ("none", "gone")}

_VIOLATIONS = {
    "response": _response,
    "precedence": _precedence,
    "succession": _succession,
    "not_succession": _not_succession,
    "chain_response": _chain(True),
    "chain_precedence": _chain(False),
    "alternate_response": _alternate(True),
    "alternate_precedence": _alternate(False),
}


# -- sequence templates with a time bound: every activation and its target -------------------------

def _activations(ch: str) -> str:
    """One row per occurrence of `ch` in a trace, at its position ``pos``."""
    return (f"(SELECT city, case_id, s, ts, unnest(list_filter(range(1, length(s) + 1), lambda i: s[i] = {ch})) AS pos "
            f"FROM tr WHERE contains(s, {ch}))")


def _cand_response(k, a, b, ca, cb, alternate: bool = False) -> str:
    """Each A and the next B (alternate: found only before the next A)."""
    xa, xb = lit(ca), lit(cb)
    found = "j > 0 AND (na = 0 OR j < na)" if alternate else "j > 0"
    state = f"CASE WHEN {found} THEN 'found' WHEN na = 0 THEN 'missing' ELSE 'gone' END" if alternate else \
        f"CASE WHEN {found} THEN 'found' ELSE 'missing' END"
    next_a = f", strpos(substr(s, pos + 1), {xa}) AS na" if alternate else ""
    return f"""SELECT {_head(k, a, b)}, pos, ts[pos] AS a_t, CASE WHEN {found} THEN ts[pos + j] END AS b_t,
               NULL::VARCHAR AS x_step, {"CASE WHEN na > 0 THEN ts[pos + na] END" if alternate else "NULL::TIMESTAMP"} AS x_t,
               {state} AS state, 'r' AS side
        FROM (SELECT *, strpos(substr(s, pos + 1), {xb}) AS j{next_a} FROM {_activations(xa)})"""


def _cand_precedence(k, a, b, ca, cb, alternate: bool = False) -> str:
    """Each B and the latest A before it (alternate: found only after the previous B)."""
    xa, xb = lit(ca), lit(cb)
    latest = lambda x: f"CASE WHEN contains(pre, {x}) THEN pos - strpos(reverse(pre), {x}) ELSE 0 END"   # noqa: E731
    found = "pa > pb" if alternate else "pa > 0"
    state = f"CASE WHEN {found} THEN 'found' WHEN pb = 0 THEN 'none' ELSE 'gone' END" if alternate else \
        f"CASE WHEN {found} THEN 'found' ELSE 'none' END"
    prev_b = f", {latest(xb)} AS pb" if alternate else ""
    return f"""SELECT {_head(k, a, b)}, pos, CASE WHEN {found} THEN ts[pa] END AS a_t, ts[pos] AS b_t,
               NULL::VARCHAR AS x_step, {"CASE WHEN pb > 0 THEN ts[pb] END" if alternate else "NULL::TIMESTAMP"} AS x_t,
               {state} AS state, 'p' AS side
        FROM (SELECT *, {latest(xa)} AS pa{prev_b} FROM (SELECT *, left(s, pos - 1) AS pre FROM {_activations(xb)}))"""


def _cand_chain(k, a, b, ca, cb, response: bool) -> str:
    """Each A (B) and the event right after (before) it."""
    xa, xb = lit(ca), lit(cb)
    if response:
        act, near, ends = xa, "pos + 1", "pos = length(v.s) THEN 'missing'"
        times = f"ts[pos] AS a_t, CASE WHEN v.s[pos + 1] = {xb} THEN ts[pos + 1] END AS b_t"
        match = f"v.s[pos + 1] = {xb}"
    else:
        act, near, ends = xb, "pos - 1", "pos = 1 THEN 'first'"
        times = f"CASE WHEN v.s[pos - 1] = {xa} THEN ts[pos - 1] END AS a_t, ts[pos] AS b_t"
        match = f"v.s[pos - 1] = {xa}"
    return f"""SELECT {_head(k, a, b)}, pos, {times}, c.name AS x_step, ts[{near}] AS x_t,
               CASE WHEN {ends} WHEN {match} THEN 'found' ELSE 'wrong' END AS state, '{"r" if response else "p"}' AS side
        FROM {_activations(act)} v LEFT JOIN template_chars c ON c.ch = v.s[v.{near}]"""


def _cand_succession(k, a, b, ca, cb) -> str:
    return _cand_response(k, a, b, ca, cb) + "\n    UNION ALL " + _cand_precedence(k, a, b, ca, cb)


_CANDIDATES = {
    "response": _cand_response,
    "alternate_response": partial(_cand_response, alternate=True),
    "precedence": _cand_precedence,
    "alternate_precedence": partial(_cand_precedence, alternate=True),
    "succession": _cand_succession,
    "chain_response": partial(_cand_chain, response=True),
    "chain_precedence": partial(_cand_chain, response=False),
}


def _bounded(template: dict, pack: Pack, chars: dict[str, str]) -> list[str]:
    """``cand`` … ``fin`` of a sequence template with a bound (`audit.check.bounds`): every activation
    with its target (a kept order can still be late), the bound checked, the first violation of each
    case and pair. States: found (check the bound), missing (no target yet: may still come), gone
    (can no longer come: the next A came first), none/first (no A before the B), wrong (the
    neighbour is another step)."""
    name = template["template"]
    cand = "\n    UNION ALL ".join(_CANDIDATES[name](k + 1, a, b, chars[a], chars[b])
                                   for k, (a, b) in enumerate(template["pairs"]))
    return [f"cand AS ({cand})", *bound_ctes(template["within"], pack),
            """viol AS (SELECT * FROM bc WHERE state NOT IN ('found', 'missing')
                   OR (state = 'found' AND late) OR (state = 'missing' AND overdue))""",
            """vp AS (SELECT city, case_id, k, any_value(a) AS a, any_value(b) AS b, count(*) AS n,
        arg_min({'a_t': a_t, 'b_t': b_t, 'x_step': x_step, 'x_t': x_t, 'state': state, 'side': side,
                 'lim': lim, 'bound': bound, 'as_of': as_of}, pos) AS f
    FROM viol GROUP BY city, case_id, k)""",
            *findings(name, template, template["within"])]
