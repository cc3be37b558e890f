"""The values a database knows: its cities, and the rules and cities of a run.

A filter that names a value the database does not hold would select nothing, and an empty answer
would read as "no problems found". The commands therefore refuse such a value (UsageError, exit 2)
with the values that are known, compared exactly as the database holds them; a near miss
(延安市 for 延安) is pointed out. Nothing here writes to the database.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from audit.errors import UsageError

LIST_MAX = 20           # known values shown in a message; the rest are counted


def listing(values: Iterable[str], limit: int = LIST_MAX) -> str:
    """`宝鸡、延安、榆林`; beyond `limit` values the first `limit` and `…共 N 个`."""
    values = [str(v) for v in values]
    if not values:
        return "(无)"
    if len(values) <= limit:
        return "、".join(values)
    return "、".join(values[:limit]) + f"…共 {len(values)} 个"


def close_value(value: str, known: Iterable[str]) -> str | None:
    """The known value that `value` most likely meant, or None: the same up to letter case, one
    containing the other (延安市 / 延安; at least two characters), or a close spelling."""
    known = list(known)
    folded = {k.casefold(): k for k in known}
    if value.casefold() in folded:
        return folded[value.casefold()]
    value = value.casefold()
    nested = [k for f, k in folded.items() if min(len(f), len(value)) >= 2 and (f in value or value in f)]
    if len(nested) == 1:
        return nested[0]
    # 0.75: 延安 for 西安 (one character of two shared) is no suggestion.
    close = difflib.get_close_matches(value, list(folded), n=1, cutoff=0.75)
    return folded[close[0]] if close else None


def unknown_values(option: str, values: Iterable[str], known: list[str], where: str,
                   fold_case: bool = False, suggest: bool = True) -> str | None:
    """The message for the `values` of `option` that are not in `known` (None when all are):
    `--city 西安 不在数据库中；已有: 宝鸡、延安、榆林`. `where` says what was searched; `fold_case`
    ignores letter case; `suggest` points out a near miss (not for months: 2026-05 is no typo of
    2026-03)."""
    held = {k.casefold() for k in known} if fold_case else set(known)
    bad = [v for v in dict.fromkeys(values) if (v.casefold() if fold_case else v) not in held]
    if not bad:
        return None
    hints = [f"{v} (是否指 {hint}？)" if suggest and (hint := close_value(v, known)) else v for v in bad]
    return f"{option} {'、'.join(hints)} {where}；已有: {listing(known)}"


def refuse(problems: Iterable[str | None]) -> None:
    """Raise one UsageError naming every problem found (none: return)."""
    problems = [p for p in problems if p]
    if problems:
        raise UsageError("\n".join(problems))


def database_cities(con) -> list[str]:
    """Every city of the database: of its case rows and its events, sorted."""
    return [r[0] for r in con.execute(
        "SELECT city FROM case_rows UNION SELECT city FROM event_rows ORDER BY city").fetchall()]


def require_cities(con, cities: Iterable[str] | None, option: str = "--city") -> None:
    """Refuse any of `cities` that the database has no case or event of (`audit check --city`,
    before anything runs)."""
    cities = [c for c in cities or [] if c is not None]
    if not cities:
        return
    known = database_cities(con)
    if not known:
        raise UsageError(f"{option} {'、'.join(cities)}: 数据库中还没有办件；请先运行 audit ingest")
    refuse([unknown_values(option, cities, known, "不在数据库中")])


def run_rules(con, run_id: int) -> list[str]:
    """The rule ids of the pack a run was judged by (every rule, with findings or not)."""
    return [r[0] for r in con.execute(
        "SELECT DISTINCT rule_id FROM run_rules WHERE run_id = ? ORDER BY rule_id", [run_id]).fetchall()]


def run_cities(con, run_id: int) -> list[str]:
    """The cities a run judged: those of its `--city` filter, else every city of the database."""
    row = con.execute("SELECT city_filter FROM runs WHERE run_id = ?", [run_id]).fetchall()
    chosen = row[0][0] if row else None
    if chosen:
        return sorted(c for c in chosen.split(",") if c)
    return database_cities(con)


def require_finding_filters(con, run_id: int, rule: str | None = None, city: str | None = None) -> None:
    """Refuse a `--rule` the run's pack does not have (letter case aside, as the findings are
    matched) and a `--city` the run did not judge, both at once. A known rule or city without
    findings is a valid empty answer."""
    problems = []
    if rule is not None:
        problems.append(unknown_values("--rule", [rule], run_rules(con, run_id), f"不是审计 {run_id} 所用规则包中的规则",
                                       fold_case=True))
    if city is not None:
        problems.append(unknown_values("--city", [city], run_cities(con, run_id), f"不在审计 {run_id} 的地市中"))
    refuse(problems)


def close_case_ids(con, run_id: int, case_id: str, limit: int = 5) -> list[str]:
    """Case ids of a run that `case_id` may have meant, closest first: the same up to letter case
    and surrounding spaces, one containing the other (four characters or more), or within a few
    edits (a quarter of its length, at least 2). Found by DuckDB over the run's cases, not in Python:
    a run may hold millions."""
    rows = con.execute("""
        WITH c AS (SELECT DISTINCT case_id FROM run_cases WHERE run_id = $run),
        d AS (SELECT case_id, levenshtein(lower(case_id), lower(trim($id))) AS dist,
                     length(trim($id)) >= 4 AND (contains(lower(case_id), lower(trim($id)))
                                                 OR contains(lower(trim($id)), lower(case_id))) AS nested
              FROM c)
        SELECT case_id FROM d WHERE dist <= greatest(2, length(trim($id)) // 4) OR nested
        ORDER BY dist, case_id LIMIT $limit""", {"run": run_id, "id": case_id, "limit": limit}).fetchall()
    return [r[0] for r in rows]
