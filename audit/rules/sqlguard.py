"""What a pack's SQL may do: read the prepared tables, nothing else.

A pack is data that travels (an inspector runs a colleague's pack), so its SQL is held to two
independent guards:

1. **The parser** (`check_sql`): DuckDB's own parser must read the rule's SQL as exactly one SELECT
   statement, and the query the engine runs (`wrap`: the rule as a subquery) as exactly one SELECT
   too, so a `)` in the rule cannot close the wrapper and chain a second statement. Walking the
   parse tree (`json_serialize_sql`, via `audit.rules.sqltree`), table functions must be in
   `TABLE_FUNCTIONS` (unnest, range, generate_series: no read_csv, read_text, glob, query …),
   functions in `REFUSED_FUNCTIONS` (sequences, settings, environment, logging …) are refused, and
   so are table names that look like files (`FROM 'x.csv'`), DuckDB's system views (settings,
   paths) and SHOW/DESCRIBE/SUMMARIZE. Anything that is not a single SELECT (ATTACH, COPY, SET,
   INSTALL, LOAD, PRAGMA, CALL, EXPORT, DDL, DML) never reaches a database. The pack loader runs
   this on every rule, before any database is opened; the engine runs it again, on the exact query
   it is about to bind or run.

2. **The seal** (`seal`): before the first rule's SQL is bound, the database instance gets
   ``enable_external_access = false`` (no file, network or extension access from SQL, no Python
   replacement scans) and ``lock_configuration = true`` (no setting can change any more). Measured
   with DuckDB 2.0.1 on an open file-backed connection: both apply at once; the database file itself
   is still read and written (inserts, commit, checkpoint), and DuckDB still spills to its
   ``temp_directory``; ``SET enable_external_access = true`` is refused even before the lock ("Cannot
   enable external access while database is running"), and after the lock every SET is refused.

The seal cannot be lifted: it holds for every connection to that database in this process until
all of them are closed (DuckDB keeps one instance per file per process). That is the choice made
here, rather than running rules elsewhere: the rules read the run's TEMP tables, which only the
run's connection sees. Pack SQL runs in `audit check` (the connection is closed after the run),
`audit demo` (after the run it only writes the report: queries of the stored run, no file access
from SQL) and `audit rules --verify` (one scratch database per example, closed after it), and the
process then exits. A library caller that wants to ingest more files after a check, or open a
second connection with `audit.db.connect`, must first close the connections that ran it (on a
sealed connection the ingest falls back to its slower exact reader, and `connect` fails because it
sets options); `sealed` tells whether a connection is sealed.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb

from audit.errors import UsageError
from audit.rules import sqltree

# The table functions rule SQL may call: they make rows from values, and touch nothing else.
TABLE_FUNCTIONS = ("unnest", "range", "generate_series")

# Functions refused anywhere in rule SQL, with the reason given to the rule's author. Everything
# else DuckDB offers (string, date, list, struct, JSON, aggregate and window functions, lambdas,
# the engine's calendar macros) stays available.
REFUSED_FUNCTIONS = {
    "nextval": "改变数据库中的序列 (changes a sequence)",
    "currval": "读取数据库序列的状态 (reads a sequence's state)",
    "setval": "改变数据库中的序列 (changes a sequence)",
    "setseed": "改变连接的随机数状态 (changes the connection's random state)",
    "current_setting": "读取本机数据库的设置 (路径等) (reads the database's settings, such as paths)",
    "getenv": "读取本机的环境变量 (reads the environment)",
    "getvariable": "读取连接的变量 (reads the connection's variables)",
    "write_log": "写入数据库日志 (writes to the log)",
    "sleep_ms": "使审计停顿 (stalls the audit)",
}

# A table name with one of these is a file or URL to DuckDB's replacement scans (FROM 'x.csv').
_PATH_CHARS = set("/\\.:~")


@dataclass(frozen=True)
class SqlProblem:
    """Why a piece of rule SQL is refused; `line` is the 1-based line in the SQL text, if known."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.message} (SQL 第 {self.line} 行)" if self.line else self.message


def wrap(sql: str, columns: str) -> str:
    """The query the engine runs for a rule: its SQL as the subquery ``r`` of a SELECT of
    `columns` (`audit.check.engine.rule_sql` gives the declared output columns)."""
    return f"""SELECT {columns} FROM (
{sql.strip().rstrip(';')}
) AS r"""


def check_sql(sql: str, wrapped: str | None = None) -> list[SqlProblem]:
    """Every reason to refuse a rule's SQL, on its own and as the engine wraps it (`wrapped`; by
    default `wrap(sql, "*")`, the same frame): empty when it is allowed.

    Parsed by DuckDB (a private in-memory database, sealed, never given anything to execute); the
    verdict is kept per text, so the engine's check right before a rule runs costs nothing more
    than the loader's, while still covering SQL that did not come through the loader.
    """
    return list(_verdict(sql, wrapped if wrapped is not None else wrap(sql, "*")))


@functools.lru_cache(maxsize=512)
def _verdict(sql: str, wrapped: str) -> tuple[SqlProblem, ...]:
    with _PARSER_LOCK:     # one thread at a time: a DuckDB connection is not for sharing
        problems = _one_select(sql, "")
        if not problems:
            # The wrapped query holds the rule's whole parse tree: its statement count and type
            # are all that is left to check.
            problems = _one_select(wrapped, "套入审计查询后 (as wrapped by the engine) ")
    if problems:
        return tuple(problems)
    node = sqltree.parse(sql)
    if node is None:
        return (SqlProblem("应为一条 SELECT 语句 (json_serialize_sql 不能读取)"),)
    return tuple(_refused_parts(node, sql))


def _one_select(sql: str, what: str) -> list[SqlProblem]:
    try:
        statements = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        return [SqlProblem(f"{what}无法解析 (规则 SQL 应单独就是一条完整的 SELECT 语句): {_first_line(exc)}")]
    kinds = [s.type.name for s in statements]
    if len(kinds) != 1:
        return [SqlProblem(f"{what}应为恰好一条 SELECT 语句，而这里有 {len(kinds)} 条 ({', '.join(kinds) or '空'})；"
                           "规则 SQL 不能用分号连接多条语句 (exactly one SELECT statement)")]
    if kinds[0] != "SELECT":
        return [SqlProblem(f"{what}应为 SELECT 语句，而不是 {kinds[0]} (only a SELECT statement may run)")]
    return []


def _refused_parts(node: dict, sql: str) -> Iterator[SqlProblem]:
    """Refused table functions, functions, table names and SHOW refs, in tree order."""
    for e in sqltree.walk(node):
        kind = e.get("type")
        if kind == "TABLE_FUNCTION":
            name = str(e.get("function", {}).get("function_name", "")).lower()
            if name not in TABLE_FUNCTIONS:
                yield SqlProblem(f"不允许的表函数 {name} (规则 SQL 只能读取数据库中的表；可用的表函数: "
                                 f"{', '.join(TABLE_FUNCTIONS)})", _line(sql, e))
        elif kind == "BASE_TABLE":
            name = str(e.get("table_name", ""))
            if _PATH_CHARS & set(name):
                yield SqlProblem(f"不允许的表名 {name!r}: 像文件或网址 (规则 SQL 只能读取数据库中的表)", _line(sql, e))
            elif (name.lower() in _system_views() or str(e.get("catalog_name", "")).lower() == "system"
                  or str(e.get("schema_name", "")).lower() in ("information_schema", "pg_catalog")):
                yield SqlProblem(f"不允许的表名 {name}: DuckDB 的系统视图 (设置、路径等；规则 SQL 只能读取审计的表)",
                                 _line(sql, e))
        elif kind == "SHOW_REF":
            yield SqlProblem("不允许 SHOW / DESCRIBE / SUMMARIZE (规则 SQL 应返回违规办件)", _line(sql, e))
        elif e.get("class") == "FUNCTION":
            name = str(e.get("function_name", "")).lower()
            if name in REFUSED_FUNCTIONS:
                yield SqlProblem(f"不允许的函数 {name}: {REFUSED_FUNCTIONS[name]}", _line(sql, e))


def _line(sql: str, node: dict) -> int | None:
    loc = node.get("query_location")
    if not isinstance(loc, int) or loc < 0 or loc >= 2 ** 63:   # 2^64-1: no location
        return None
    # DuckDB counts bytes of the UTF-8 text.
    return sql.encode("utf-8")[:loc].count(b"\n") + 1


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


# -- the private parser -------------------------------------------------------------------------

_PARSER_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _parser() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    seal(con)
    return con


@functools.lru_cache(maxsize=1)
def _system_views() -> frozenset[str]:
    """DuckDB's built-in views (duckdb_databases, pg_settings, information_schema's tables …):
    they show settings and paths of this machine, like current_setting."""
    with _PARSER_LOCK:
        rows = _parser().execute("SELECT DISTINCT view_name FROM duckdb_views() WHERE internal").fetchall()
    return frozenset(r[0].lower() for r in rows)


# -- the seal -----------------------------------------------------------------------------------

def sealed(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con`'s database can no longer reach files, the network or extensions, nor change
    its settings (see module doc)."""
    external, locked = con.execute("SELECT current_setting('enable_external_access'), "
                                   "current_setting('lock_configuration')").fetchall()[0]
    return not external and bool(locked)


def seal(con: duckdb.DuckDBPyConnection) -> None:
    """Turn off external access and lock the configuration of `con`'s database, for good (see
    module doc). Idempotent. Call it after everything that needs files (calendars) and before any
    pack SQL is bound or run."""
    if sealed(con):
        return
    try:
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:     # e.g. a caller locked the configuration with access still on
        raise UsageError(f"无法为规则包关闭数据库的外部访问 (cannot turn off external access): {_first_line(exc)}") from None
