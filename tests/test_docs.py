"""Every command, option of note, setting and rule is documented; generated docs are current."""

from __future__ import annotations

from typer.testing import CliRunner

from audit.cli import app
from audit.docs import facts_block, rules_block
from audit.rules.pack import load_pack
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def command_names() -> list[str]:
    return [c.name or c.callback.__name__ for c in app.registered_commands]


def test_every_command_is_in_the_readme_and_has_an_example():
    names = command_names()
    assert {"demo", "sample", "ingest", "check", "findings", "kpi", "rules", "calendar", "quarantine"} <= set(names)
    runner = CliRunner()
    for name in names:
        assert f"`audit {name}" in README, f"audit {name} is not documented in README.md"
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0
        assert "--db" in result.output
        assert "Example" in result.output or "例" in result.output, f"audit {name} --help has no example"


def test_every_setting_is_documented():
    pack = load_pack()
    for key in pack.settings:
        assert f"| {key} |" in README, f"setting {key} is not in README.md"


def test_rule_table_is_generated_from_the_pack():
    assert rules_block() in README, "README rule table is stale: run `python -m audit.docs`"
    for rule in load_pack().rules:
        assert rule.title and rule.rationale and rule.clause


def test_rule_author_contract_is_generated_from_the_declaration():
    """The columns, tables, macros and output shape a rule author relies on (audit.rules.contract);
    tests/test_rulecontract.py checks the declaration against a real database."""
    from audit.rules import contract as rulecontract

    assert facts_block() in README, "README case_facts section is stale: run `python -m audit.docs`"
    for column in rulecontract.FACT_COLUMNS:
        assert f"| `{column.name}` |" in README
    for macro in rulecontract.MACROS:
        assert f"`{macro.signature}`" in README


def test_readme_opens_with_the_two_commands_and_ci_runs_them():
    head = README[:1500]
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert venv + "python3 -m pip install . && audit demo" in head
    install_tests = ("{ python3 -m pip install -e '.[test,crosscheck]' || python3 -m pip install -e '.[test]'; }")
    assert venv + install_tests + " && python3 -m pytest" in head
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for line in ("python3 -m venv .venv", ". .venv/bin/activate", "python3 -m pip install .",
                 "python3 -m pip install -e '.[test,crosscheck]' || python3 -m pip install -e '.[test]'",
                 "python3 -m pytest"):
        assert line in ci, f".ci/run does not run `{line}`"
