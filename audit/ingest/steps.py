"""The step vocabulary of an ingest and of the database (README "词表").

- `canonical` (the default): step names are the 13 steps of contract §1.4 (with their codes, the
  built-in aliases and the profile's `steps:`); any other name quarantines its row.
- `open`: step names are kept as written (white space trimmed); the profile's `steps:` aliases
  still rename. For process logs of any service (an XES log, a complaints register …).

A database holds one vocabulary: the first ingest records it, later ingests without --vocabulary follow it (``db_meta`` row ``vocabulary``, and
``ingests.vocabulary`` for every ingest); an ingest with the other one is refused (exit 2).
"""

from __future__ import annotations

import duckdb

from audit.errors import UsageError
from audit.ingest.normalize import OpenSteps
from audit.vocabulary import step_lookup

VOCABULARIES = ("canonical", "open")


def vocabulary_of(con: duckdb.DuckDBPyConnection) -> str | None:
    """The step vocabulary of the database: 'canonical' | 'open', or None when nothing was ingested
    yet. A database ingested into before the vocabulary was recorded is canonical. Works on
    read-only connections and on databases whose schema is older."""
    tables = {r[0] for r in con.execute("""
        SELECT table_name FROM duckdb_tables()
        WHERE database_name = current_database() AND table_name IN ('db_meta', 'ingests')""").fetchall()}
    if "db_meta" in tables:
        row = con.execute("SELECT value FROM db_meta WHERE name = 'vocabulary'").fetchall()
        if row:
            return row[0][0]
    if "ingests" in tables and con.execute("SELECT count(*) FROM (SELECT 1 FROM ingests LIMIT 1)").fetchall()[0][0]:
        return "canonical"
    return None


def choose(asked: str | None, profile_says: str | None, held: str | None = None) -> str:
    """The vocabulary of an ingest: the one asked for on the command line, else the profile's, else
    the database's (`held`: a later ingest into an open database need not repeat --vocabulary open),
    else canonical (`load_profile` has refused the two disagreeing)."""
    vocabulary = asked or profile_says or held or "canonical"
    if vocabulary not in VOCABULARIES:
        raise UsageError(f"--vocabulary 应为 canonical 或 open，而不是 {vocabulary!r}")
    return vocabulary


def check_database(con: duckdb.DuckDBPyConnection, vocabulary: str) -> None:
    """Refuse (exit 2) an ingest whose vocabulary is not the database's."""
    held = vocabulary_of(con)
    if held is not None and held != vocabulary:
        raise UsageError(
            f"数据库已按 {held} 词表导入 (vocabulary: {held})，本次导入是 {vocabulary}：同一数据库只能用一种环节词表；"
            f"请加 --vocabulary {held} 重新运行，或导入到另一个数据库 (--db)")


def record(con: duckdb.DuckDBPyConnection, vocabulary: str) -> None:
    """Record the database's vocabulary (inside the ingest's transaction; kept if already there)."""
    con.execute("""INSERT INTO db_meta SELECT 'vocabulary', $1
                   WHERE NOT EXISTS (SELECT 1 FROM db_meta WHERE name = 'vocabulary')""", [vocabulary])


def step_names(vocabulary: str, aliases: dict[str, str] | None) -> dict[str, str]:
    """What the stage maps step cells with: every accepted spelling -> canonical step, or, under
    the open vocabulary, the profile's aliases alone (`OpenSteps`)."""
    if vocabulary == "open":
        return OpenSteps(aliases or {})
    return step_lookup(aliases)
