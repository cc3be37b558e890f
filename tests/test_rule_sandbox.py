"""Rule SQL can only read the prepared tables (issue 10, item 2).

A pack is something an inspector downloads from a colleague. Every attack seen on a pack rule is
written here as a rule file of a real pack; `audit check --pack` (and `audit rules --pack`) must
refuse the pack with one line naming the rule file and the line of its `sql:` block, before any
database is opened: the database file keeps its bytes, no file is written, no secret is read.
Behind the parser, the engine checks again and seals the database (`audit.rules.sqlguard`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from audit.check.engine import run_check
from audit.cli import app
from audit.db import connect
from audit.errors import PackError
from audit.rules.pack import load_pack
from audit.rules.sqlguard import REFUSED_FUNCTIONS, TABLE_FUNCTIONS, check_sql, seal, sealed
from tests.conftest import REPO, table, write_csv

SECRET = "SECRET-7f3a9c-host"

# Cases with the personal data an attacker is after (names, ID numbers).
SAMPLE = [["办件编号", "地市", "服务类型", "服务方式", "申请人", "证件号码", "承诺时限", "到现场次数", "环节", "时间", "经办人"]]
for i, (name, idn) in enumerate([("王小明", "610602199001011234"), ("李华", "610602198502023456"),
                                 ("张伟", "610602197703035678")]):
    case = f"YA{i:03d}"
    SAMPLE += [[case, "延安", "帮办", "线上" if i == 0 else "线下", name, idn, "3", str(i), step, when, "赵六"]
               for step, when in (("咨询", "2026-03-02 09:00"), ("申请", "2026-03-02 09:30"),
                                  ("受理", "2026-03-02 10:00"), ("承办", "2026-03-03 10:00"),
                                  ("办结", "2026-03-04 10:00"))]

EXAMPLES = """examples:
  fail:
    - name: 线上办件跑了一次
      case: {service_type: 帮办, channel: 线上, visits: 1}
      events: [[咨询, 2026-03-02 09:00]]
  pass:
    - name: 线上零跑动
      case: {service_type: 帮办, channel: 线上, visits: 0}
      events: [[咨询, 2026-03-02 09:00]]
"""
SQL_LINE = 7          # the line of `sql: |` in a rule file written by `rule_file`

# A well-formed finding row around an expression: the attacks hide in `message` or `evidence`.
def finding(message: str = "'x'", evidence: str = "{'channel': channel}", tail: str = "") -> str:
    return f"SELECT city, case_id, {message} AS message, {evidence} AS evidence FROM case_facts {tail}"


# The `) AS r; …; SELECT * FROM (` pattern: closes the engine's wrapper and chains statements.
def chained(*statements: str) -> str:
    return (finding(tail="LIMIT 1") + ") AS r; " + "; ".join(statements) + "; SELECT * FROM ("
            + finding())


ATTACKS = {
    "read-text": lambda d: finding(f"(SELECT content FROM read_text('{d / 'secret.txt'}'))"),
    "read-csv": lambda d: finding(f"(SELECT string_agg(column0, ',') FROM read_csv('{d / 'secret.txt'}', header = false))"),
    "read-blob": lambda d: finding(f"(SELECT content::VARCHAR FROM read_blob('{d / 'secret.txt'}'))"),
    "glob": lambda d: finding(f"(SELECT string_agg(file, ',') FROM glob('{d}/*'))"),
    "replacement-scan": lambda d: f"SELECT 'x' AS city, 'y' AS case_id, column0 AS message, 1 AS evidence FROM '{d / 'secret.txt'}'",
    "chained-delete": lambda d: chained("DELETE FROM main.event_rows"),
    "copy-to": lambda d: chained(f"COPY (SELECT applicant, id_number FROM main.case_rows) TO '{d / 'loot.csv'}'"),
    "copy-statement": lambda d: f"COPY (SELECT applicant, id_number FROM case_rows) TO '{d / 'loot.csv'}'",
    "attach-insert": lambda d: chained(f"ATTACH '{d / 'loot.duckdb'}' AS loot",
                                       "CREATE TABLE loot.cases AS SELECT applicant, id_number FROM main.case_rows",
                                       "INSERT INTO loot.cases SELECT applicant, id_number FROM main.case_rows"),
    "set": lambda d: chained("SET enable_external_access = true"),
    "set-statement": lambda d: "SET memory_limit = '1MB'",
    "install-load": lambda d: chained("INSTALL httpfs", "LOAD httpfs"),
    "load-statement": lambda d: "LOAD httpfs",
    "pragma": lambda d: chained("PRAGMA enable_profiling = 'json'", f"PRAGMA profiling_output = '{d / 'loot.json'}'"),
    "pragma-statement": lambda d: "PRAGMA database_list",
    "call-checkpoint": lambda d: chained("CHECKPOINT"),
    "checkpoint-function": lambda d: finding(tail=", checkpoint()"),
    "export": lambda d: chained(f"EXPORT DATABASE '{d / 'loot'}'"),
    "cte-query-delete": lambda d: ("WITH gone AS (SELECT * FROM query('DELETE FROM main.event_rows RETURNING case_id')) "
                                   + finding(tail="WHERE case_id IN (SELECT case_id FROM gone)")),
    "query-table": lambda d: "SELECT city, case_id, applicant AS message, {'id': id_number} AS evidence FROM query_table('case_rows')",
    "getenv": lambda d: finding("getenv('HOME')"),
    "current-setting": lambda d: finding("current_setting('temp_directory')"),
    "nextval": lambda d: finding(evidence="{'n': nextval('run_seq')}"),
    # a PIVOT without IN (...) is two statements to DuckDB: CREATE TYPE … AS ENUM, then the query
    "pivot-enum": lambda d: finding(evidence="{'n': 1}").replace(
        "FROM case_facts", "FROM (PIVOT case_facts ON channel USING count(*) GROUP BY city, case_id)"),
    "describe": lambda d: "DESCRIBE case_facts",
    "empty": lambda d: "-- nothing",
}


def rule_file(pack: Path, name: str, sql: str) -> Path:
    """Add checks/LOCAL-<NAME>.yaml to `pack` with this SQL (line SQL_LINE holds `sql: |`)."""
    rid = "LOCAL-" + name.upper()
    body = "\n".join("  " + line for line in sql.splitlines())
    text = (f"id: {rid}\nclause: \"10 一站式办理\"\nseverity: warning\ntitle: {name}\nrationale: 测试\n"
            f"settings: []\nsql: |\n{body}\n{EXAMPLES}")
    path = pack / "checks" / f"{rid}.yaml"
    path.write_text(text, encoding="utf-8")
    assert text.splitlines()[SQL_LINE - 1] == "sql: |"
    return path


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contents(db: Path) -> dict[str, object]:
    """Row counts and the rows of the tables a rule could damage, read without writing."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {t: table(con, f"SELECT count(*) FROM {t}")[0][0]
               for t in ("event_rows", "case_rows", "ingest_files", "runs", "findings")}
        out["cases"] = table(con, "SELECT * FROM case_rows ORDER BY ALL")
        out["sequences"] = table(con, "SELECT sequence_name, last_value FROM duckdb_sequences() ORDER BY 1")
        out["databases"] = table(con, "SELECT database_name FROM duckdb_databases() WHERE NOT internal")
    finally:
        con.close()
    return out


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> Path:
    """A real database: a small CSV export ingested through the CLI, then checked once."""
    d = tmp_path_factory.mktemp("ingested")
    db = d / "audit.duckdb"
    code, out = invoke("ingest", write_csv(d / "延安.csv", SAMPLE), "--db", db)
    assert code == 0, out
    code, out = invoke("check", "--db", db)
    assert code == 0, out
    assert not Path(str(db) + ".wal").exists()
    return db


@pytest.fixture
def attack_setup(ingested, tmp_path):
    """(database copy, pack directory copy, the secret file) in tmp_path."""
    db = tmp_path / "audit.duckdb"
    shutil.copy(ingested, db)
    pack = tmp_path / "pack"
    shutil.copytree(REPO / "examples" / "custom_pack", pack)
    (tmp_path / "secret.txt").write_text(SECRET + "\n", encoding="utf-8")
    return db, pack, tmp_path


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_is_refused_before_the_database_is_touched(name, attack_setup):
    db, pack, d = attack_setup
    rule = rule_file(pack, name, ATTACKS[name](d))
    before_hash, before = sha256(db), contents(db)
    files_before = sorted(p.name for p in d.iterdir())
    code, out = invoke("check", "--pack", pack, "--db", db)
    assert code == 2, out
    assert f"{rule}:{SQL_LINE}:" in out and "不能运行" in out, out
    assert "Traceback" not in out and SECRET not in out
    assert sorted(p.name for p in d.iterdir()) == files_before      # no COPY / ATTACH / profile target
    assert not Path(str(db) + ".wal").exists()
    assert sha256(db) == before_hash
    after = contents(db)
    assert after == before
    assert not any(SECRET in str(v) for v in after.values())
    # `audit rules` refuses the same pack, without a database at all.
    code, out = invoke("rules", "--pack", pack)
    assert code == 2 and f"{rule}:{SQL_LINE}:" in out


def test_every_refusal_names_its_reason():
    d = Path("/nonexistent")
    reasons = {name: " ".join(map(str, check_sql(make(d)))) for name, make in ATTACKS.items()}
    assert "read_text" in reasons["read-text"] and "read_csv" in reasons["read-csv"]
    assert "read_blob" in reasons["read-blob"] and "glob" in reasons["glob"]
    assert "secret.txt" in reasons["replacement-scan"]
    assert "无法解析" in reasons["chained-delete"]                    # on its own it does not parse
    assert "COPY" in reasons["copy-statement"] and "SET" in reasons["set-statement"]
    assert "LOAD" in reasons["load-statement"] and "PRAGMA" in reasons["pragma-statement"]
    assert "checkpoint" in reasons["checkpoint-function"]
    assert "query" in reasons["cte-query-delete"] and "query_table" in reasons["query-table"]
    assert "getenv" in reasons["getenv"] and "current_setting" in reasons["current-setting"]
    assert "nextval" in reasons["nextval"] and "DESCRIBE" in reasons["describe"]
    assert "MULTI" in reasons["pivot-enum"]
    assert "0 条" in reasons["empty"]


@pytest.mark.parametrize("sql", [
    # the wrapper's `)` closed by the rule, the rest of it swallowed by a comment or a string
    finding(tail="LIMIT 1) AS r; DELETE FROM event_rows; SELECT * FROM (SELECT 1 /*"),
    finding(tail="LIMIT 1) AS r; DELETE FROM event_rows --"),
    finding(tail=") AS r, (SELECT 1"),
    "SELECT 1; SELECT 2",
    finding(tail=", \"READ_TEXT\"('x')"),
    finding("system.main.nextval('run_seq')"),
    finding(tail="WHERE case_id IN (SELECT file FROM glob('/root/*'))"),
    finding(tail=", read_parquet('x.parquet')"),
    finding(tail=", parquet_metadata('x.parquet')"),
    finding(tail=", read_json_auto('x.json')"),
    finding(tail=", sniff_csv('x.csv')"),
    finding(tail=", duckdb_settings()"),
    finding(tail=", json_execute_serialized_sql('{}')"),
    finding("setseed(0.5)"),
    finding("write_log('x')"),
    "SELECT * FROM 'https://example.org/x.csv'",
    finding("(SELECT value FROM pg_settings WHERE name = 'temp_directory')"),
    finding("(SELECT path FROM duckdb_databases LIMIT 1)"),
    finding(tail="WHERE case_id IN (SELECT table_name FROM information_schema.tables)"),
    "UPDATE case_rows SET applicant = NULL",
    "CREATE TABLE x AS SELECT 1",
    "CALL pragma_version()",
    "PIVOT case_facts ON city USING count(*)",
])
def test_refused_sql(sql):
    assert check_sql(sql), sql


@pytest.mark.parametrize("sql", [
    finding(tail="WHERE message LIKE '%;%' -- a comment; DELETE FROM event_rows"),
    finding("'a;b' || ')' || '/*'"),
    finding(evidence="{'steps': list_transform(range(3), lambda x: x + 1), 'n': len(list_filter([1, 2], lambda x: x > 1))}"),
    "WITH t AS (SELECT city, case_id FROM case_facts) " + finding(tail="JOIN t USING (city, case_id)"),
    finding(tail=", unnest([1, 2]) AS u(x), range(2) AS r(i), generate_series(1, 2) AS g(j)") + ";",
    finding(evidence="{'deadline': add_workdays_k(cal_key, as_of, 1), 'wd': workdays_k(cal_key, as_of, as_of)}"),
    "(" + finding() + ")",
    finding() + " UNION ALL " + finding(),
])
def test_allowed_sql(sql):
    assert check_sql(sql) == [], sql


LIST_RULE = """\
SELECT city, case_id,
       '到现场 ' || visits || ' 次' AS message,
       {'visits': visits, 'trips': list_transform(range(visits), lambda i: i + 1),
        'odd': [x FOR x IN generate_series(1, visits) IF x % 2 = 1]} AS evidence
FROM case_facts
WHERE channel = '线上'
  AND (SELECT count(*) FROM unnest(range(coalesce(visits, 0))) AS t(n)) > 0"""


def test_a_rule_with_unnest_range_and_list_functions_still_runs(attack_setup):
    db, pack, d = attack_setup
    rule_file(pack, "trips", LIST_RULE)
    code, out = invoke("rules", "LOCAL-TRIPS", "--pack", pack, "--verify")
    assert code == 0 and "✓" in out and "✗" not in out, out
    extra = [SAMPLE[0], ["ON1", "延安", "帮办", "线上", "钱七", "610602196604047890", "3", "3", "咨询", "2026-03-02 09:00", "赵六"]]
    assert invoke("ingest", write_csv(d / "online.csv", extra), "--db", db)[0] == 0
    code, out = invoke("check", "--pack", pack, "--db", db)
    assert code == 0, out
    con = connect(db)
    rows = table(con, """SELECT case_id, evidence FROM findings WHERE rule_id = 'LOCAL-TRIPS'
                         AND run_id = (SELECT max(run_id) FROM runs)""")
    con.close()
    assert [(r[0], r[1]) for r in rows] == [("ON1", '{"visits":3,"trips":[1,2,3],"odd":[1,3]}')]


def test_the_bundled_and_example_packs_pass_the_guard():
    for directory in (None, REPO / "examples" / "custom_pack"):
        for rule in load_pack(directory).rules:
            assert check_sql(rule.sql) == [], rule.id
    code, out = invoke("rules", "LOCAL-ONLINE-ZERO-VISIT", "--pack", REPO / "examples" / "custom_pack", "--verify")
    assert code == 0 and "✗" not in out


def test_the_engine_refuses_again_when_the_loader_was_bypassed(attack_setup):
    """A Pack built in code (not by `load_pack`) meets the same check in the engine, after the
    seal and before the transaction: nothing is stored, nothing deleted."""
    db, pack, d = attack_setup
    good = load_pack(pack)
    before = contents(db)
    for name in ("chained-delete", "read-text", "nextval", "cte-query-delete"):
        evil = dataclasses.replace(good.rules[0], sql=ATTACKS[name](d))
        con = connect(db)
        try:
            with pytest.raises(PackError) as exc:
                run_check(con, dataclasses.replace(good, rules=[evil] + good.rules[1:]))
            assert f"{evil.path}:" in str(exc.value) and "不能运行" in str(exc.value)
            assert sealed(con)
        finally:
            con.close()
        after = contents(db)
        assert after == before, name        # `connect` itself rewrites the views: rows, not bytes
        assert not (d / "loot.csv").exists() and SECRET not in str(after)


def test_the_seal_stops_files_and_settings_but_not_the_database(tmp_path):
    """What `seal` guarantees even to SQL the parser let through (measured on DuckDB itself)."""
    (tmp_path / "secret.txt").write_text(SECRET, encoding="utf-8")
    db = tmp_path / "s.duckdb"
    con = connect(db)
    try:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(1000)")
        seal(con)
        seal(con)                                          # idempotent
        assert sealed(con)
        for sql in (f"SELECT content FROM read_text('{tmp_path / 'secret.txt'}')",
                    f"SELECT * FROM '{tmp_path / 'secret.txt'}'",
                    f"COPY t TO '{tmp_path / 'loot.csv'}'",
                    f"ATTACH '{tmp_path / 'loot.duckdb'}' AS loot",
                    "INSTALL httpfs",
                    "SET enable_external_access = true",
                    "SET lock_configuration = false",
                    "RESET enable_external_access"):
            with pytest.raises(duckdb.Error):
                con.execute(sql).fetchall()
        # The database itself is still read and written, and the run's temp tables work.
        con.execute("BEGIN; INSERT INTO t SELECT range FROM range(1000, 2000); COMMIT; CHECKPOINT")
        con.execute("CREATE TEMP TABLE w AS SELECT i, repeat('x', 50) AS s FROM t")
        assert table(con, "SELECT count(*), max(i) FROM t") == [(2000, 1999)]
    finally:
        con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.duckdb", "secret.txt"]
    con = connect(db)                                      # all closed: a fresh, unsealed instance
    try:
        assert not sealed(con) and table(con, "SELECT count(*) FROM t") == [(2000,)]
    finally:
        con.close()


def test_readme_lists_what_rule_sql_may_use():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### 规则 SQL 能做什么"):]
    section = section[:section.index("\n## ")]
    for name in TABLE_FUNCTIONS + tuple(REFUSED_FUNCTIONS):
        assert f"`{name}`" in section, f"{name} is not in the README's rule SQL section"
    for word in ("enable_external_access", "lock_configuration", "ATTACH", "COPY"):
        assert word in section
