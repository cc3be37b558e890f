"""What a rule's SQL says, read from DuckDB's own parse tree (``json_serialize_sql``), not by regex.

Used when a pack loads (the fields of a rule's evidence struct, so that its labels can be checked)
and by the tests (every column a shipped rule reads is declared in `audit.rules.contract`). Parsing
needs no tables: it works before any database exists.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import duckdb


@functools.lru_cache(maxsize=1)
def _parser() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@functools.lru_cache(maxsize=256)
def _tree_text(sql: str) -> str:
    return _parser().execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]


def parse(sql: str) -> dict[str, Any] | None:
    """The parse tree of one SELECT statement, or None when DuckDB cannot parse it (the engine
    reports the error, with the rule file, when it binds the SQL)."""
    tree = json.loads(_tree_text(sql))
    statements = tree.get("statements") or []
    if tree.get("error") or len(statements) != 1:
        return None
    return statements[0]["node"]


def arguments(expr: dict) -> list[tuple[str, dict]]:
    """(name, expression) of a function's arguments; the name is a struct field's key."""
    if "arguments" in expr:  # DuckDB 1.5+
        return [(a.get("name") or a["expression"].get("alias", ""), a["expression"]) for a in expr["arguments"]]
    return [(c.get("alias", ""), c) for c in expr.get("children", [])]


def _outermost_select(node: dict) -> dict:
    while node.get("type") == "SET_OPERATION_NODE":  # UNION …: the left side names the columns
        node = node["left"]
    return node


def evidence_fields(sql: str) -> list[str] | None:
    """The keys of the ``evidence`` struct the statement returns, when it is written as a struct
    literal (``{'k': …}`` or ``struct_pack(k := …)``); None when that cannot be read statically."""
    node = parse(sql)
    if node is None:
        return None
    for expr in _outermost_select(node).get("select_list", []):
        if expr.get("alias") == "evidence":
            if expr.get("class") == "FUNCTION" and expr.get("function_name") == "struct_pack":
                return [name for name, _ in arguments(expr)]
            return None
    return None


def walk(tree: Any) -> Iterator[dict]:
    """Every mapping in the tree, depth first."""
    if isinstance(tree, dict):
        yield tree
        for value in tree.values():
            yield from walk(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from walk(value)


def column_refs(sql: str) -> list[tuple[str, ...]]:
    """Every column reference, as written (``f.city`` is ``('f', 'city')``)."""
    node = parse(sql)
    return [tuple(e["column_names"]) for e in walk(node) if e.get("class") == "COLUMN_REF"] if node else []


def local_names(sql: str) -> set[str]:
    """Names the statement defines for itself: column and table aliases, CTE names, lambda
    parameters, struct keys."""
    node = parse(sql)
    names: set[str] = set()
    for e in walk(node):
        if e.get("alias"):
            names.add(e["alias"])
        if e.get("class") == "LAMBDA":
            names |= {n for ref in walk(e["lhs"]) if ref.get("class") == "COLUMN_REF" for n in ref["column_names"]}
        if "cte_map" in e:
            names |= {entry["key"] for entry in e["cte_map"].get("map", [])}
        if e.get("class") == "FUNCTION" and e.get("function_name") == "struct_pack":
            names |= {name for name, _ in arguments(e)}
    return names
