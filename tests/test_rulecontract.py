"""The rule-author contract (audit.rules.contract) against a real database: what a rule can read is
what is declared, and what the shipped rules read and return is declared."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from audit.calendar.workcalendar import WorkCalendar
from audit.check.engine import prepare, rule_sql, run_check, validate_sql
from audit.db import connect, ensure_schema
from audit.errors import CalendarError, PackError
from audit.ingest import ingest
from audit.rules import contract as rulecontract
from audit.rules.pack import NUMERIC_SETTINGS, load_pack
from audit.rules.sqltree import column_refs, evidence_fields, local_names
from tests.conftest import REPO, write_csv

PACKS = [load_pack(), load_pack(REPO / "examples" / "custom_pack")]
RULES = {r.id: r for pack in PACKS for r in pack.rules}


def small_db(path: Path):
    """Two real cases (帮办 completed late, 代办 suspended and resumed) ingested from a CSV."""
    rows = [["办件编号", "地市", "服务类型", "服务方式", "承诺时限", "评价", "环节", "时间", "经办人"],
            ["B1", "延安", "帮办", "线下", "3", "不满意", "受理", "2026-03-02 09:00", "张三"],
            ["B1", "延安", "帮办", "线下", "3", "不满意", "办结", "2026-03-12 09:00", "张三"],
            ["D1", "宝鸡", "代办", "线上", "2", "满意", "委托", "2026-03-02 09:00", "李四"],
            ["D1", "宝鸡", "代办", "线上", "2", "满意", "中止", "2026-03-03 09:00", "李四"],
            ["D1", "宝鸡", "代办", "线上", "2", "满意", "续办", "2026-03-05 09:00", "李四"]]
    con = connect(path)
    ingest(con, [write_csv(path.parent / "events.csv", rows)])
    ensure_schema(con)
    return con


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A real database with ``case_facts`` and everything a rule may use built for a run."""
    con = small_db(tmp_path_factory.mktemp("contract") / "audit.duckdb")
    prepare(con, load_pack(), dt.date(2026, 3, 20), WorkCalendar.load())
    yield con
    con.close()


def described(con, relation: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def test_case_facts_is_the_declaration(prepared):
    """Same names, same order, same types: `case_facts` is built from the declaration."""
    assert described(prepared, "case_facts") == [(c.name, c.type) for c in rulecontract.FACT_COLUMNS]
    assert prepared.execute("SELECT count(*) FROM case_facts").fetchall() == [(2,)]


def test_settings_columns_are_the_pack_settings(prepared):
    declared = [c.name for c in rulecontract.SETTING_COLUMNS]
    assert declared == list(NUMERIC_SETTINGS)
    assert [n for n, _ in described(prepared, "case_facts")][-len(declared):] == declared
    assert [n for n, _ in described(prepared, "cfg")][1:-1] == declared


@pytest.mark.parametrize("table", rulecontract.AUX_TABLES, ids=lambda t: t.name)
def test_every_other_table_is_its_declaration(prepared, table):
    assert described(prepared, table.name) == [(c.name, c.type) for c in table.columns]


@pytest.mark.parametrize("macro", rulecontract.MACROS, ids=lambda m: m.name)
def test_every_macro_is_its_declaration(prepared, macro):
    params = prepared.execute("SELECT parameters FROM duckdb_functions() WHERE function_name = ?",
                              [macro.name]).fetchall()
    assert params == [(list(macro.params),)]
    sample = {"k": "0", "start_day": "DATE '2026-03-02'", "n": "2", "day": "DATE '2026-03-09'",
              "from_day": "DATE '2026-03-02'", "to_day": "DATE '2026-03-09'"}
    call = f"{macro.name}({', '.join(sample[p] for p in macro.params)})"
    assert prepared.execute(f"SELECT typeof({call})").fetchall() == [(macro.returns,)]


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_column_a_shipped_rule_reads_is_declared(rule_id):
    """Read from DuckDB's parse tree: a column is declared (case_facts or another declared table)
    or named by the statement itself (an alias, a CTE, a lambda parameter, a struct key)."""
    declared = {c.name for c in rulecontract.FACT_COLUMNS}
    declared |= {c.name for t in rulecontract.AUX_TABLES for c in t.columns}
    sql = RULES[rule_id].sql
    unknown = sorted({".".join(ref) for ref in column_refs(sql) if ref[-1] not in declared | local_names(sql)})
    assert column_refs(sql) and not unknown, f"{rule_id} reads undeclared columns: {unknown}"


def test_every_shipped_rule_binds_against_the_declared_tables(prepared):
    for pack in PACKS:
        validate_sql(prepared, pack)


@pytest.mark.parametrize("rule_id", sorted(RULES))
def test_every_shipped_rule_returns_the_declared_shape_with_labelled_evidence(prepared, rule_id):
    """Bound by DuckDB: the columns and types of RULE_OUTPUT; the evidence struct's fields are those
    read from the parse tree at load time, and each has a label in the rule's file."""
    rule = RULES[rule_id]
    relation = prepared.sql(rule.sql.strip())
    assert relation.columns == [c.name for c in rulecontract.RULE_OUTPUT]
    for name, type_, declared in zip(relation.columns, relation.types, rulecontract.RULE_OUTPUT):
        assert str(type_).startswith(declared.type), (name, type_)
    fields = [name for name, _ in relation.types[-1].children]
    assert fields == evidence_fields(rule.sql) == list(rule.evidence)
    stored = described(prepared, f"({rule_sql(rule)})")
    assert [n for n, _ in stored] == [c.name for c in rulecontract.RULE_OUTPUT] and stored[-1][1] == "JSON"


def _pack_with_rule(tmp_path: Path, sql: str) -> Path:
    pack = tmp_path / "pack"
    (pack / "checks").mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: t\nversion: '1'\nextends: default\n", encoding="utf-8")
    body = "\n".join("  " + line for line in sql.strip().splitlines())
    (pack / "checks" / "LOCAL-CAL.yaml").write_text(f"""id: LOCAL-CAL
clause: "10 限时办结"
severity: warning
title: t
rationale: t
sql: |
{body}
examples:
  fail:
    - name: f
      case: {{service_type: 帮办}}
      events: [[受理, 2026-03-02 09:00]]
  pass:
    - name: p
      events: [[受理, 2026-03-02 09:00]]
""", encoding="utf-8")
    return pack


def test_a_rule_reaching_past_the_calendar_is_a_calendar_error(tmp_path):
    """Recognised by the code the calendar macros put first in their error, not by its wording."""
    con = small_db(tmp_path / "audit.duckdb")
    pack = _pack_with_rule(tmp_path, """
        SELECT city, case_id, 'x' AS message, {'d': add_workdays_k(cal_key, as_of, 5000)} AS evidence
        FROM case_facts""")
    with pytest.raises(CalendarError) as err:
        run_check(con, load_pack(pack), dt.date(2026, 3, 20))
    assert "工作日历" in str(err.value) and "--calendar" in str(err.value)
    assert CalendarError.SQL_CODE not in str(err.value)
    con.close()


def test_an_error_that_only_mentions_the_calendar_is_not_a_calendar_error(tmp_path):
    con = small_db(tmp_path / "audit.duckdb")
    pack = _pack_with_rule(tmp_path, """
        SELECT city, case_id, 'x' AS message, {'d': error('工作日历表 之外：自己写的错误')} AS evidence
        FROM case_facts""")
    with pytest.raises(PackError, match="LOCAL-CAL"):
        run_check(con, load_pack(pack), dt.date(2026, 3, 20))
    con.close()
