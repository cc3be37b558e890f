"""A run is stored whole and read, never rebuilt (`audit.check.runstore`).

`audit check --pack` with a relative custom pack and a relative calendar file; then the pack and
the calendar are deleted, and `kpi`, `findings` and `report` run from another directory: they give
the same figures as right after the check, the report's figures equal `audit kpi`'s, and the report
names the custom pack and shows its own rule. The custom pack changes 响应率 on this data (checked
against a database checked with the default pack), so a silent fallback to the default pack would
show here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from audit.cli import app
from tests.conftest import write_csv
from tests.test_kpi import HEADER, ROWS, case
from tests.test_report import parse

ROOT = Path(__file__).resolve().parents[1]
# 受理 the next working day: on time with the default pack (1 working day), late with the custom
# pack's same-day response (response_days: 0).
ROWS = ROWS + case("H", "延安", "帮办", "3", "", "", "", "张三",
                   [("咨询", "2026-03-09 09:00"), ("受理", "2026-03-10 10:00"), ("办结", "2026-03-11 10:00")])


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def kpi_rows(db: Path, by: str = "city") -> dict:
    code, out = invoke("kpi", "--by", by, "--format", "json", "--db", db)
    assert code == 0, out
    return {r[by]: r for r in json.loads(out)["rows"]}


@pytest.fixture
def checked(tmp_path, monkeypatch):
    """A database checked with a relative custom pack and a relative calendar file, which are
    then deleted; the working directory is another one."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "examples" / "custom_pack", work / "mypack")
    # 2026-03-03 (a Tuesday) a local rest day: it moves working-day limits.
    (work / "local.csv").write_text("date,is_workday,note\n2026-03-03,0,local rest day\n", encoding="utf-8")
    db = tmp_path / "audit.duckdb"
    write_csv(tmp_path / "cases.csv", [HEADER] + ROWS)
    monkeypatch.chdir(work)
    assert invoke("ingest", tmp_path / "cases.csv", "--db", db)[0] == 0
    code, out = invoke("check", "--pack", "mypack", "--calendar", "local.csv", "--as-of", "2026-03-20", "--db", db)
    assert code == 0, out
    before = kpi_rows(db)
    code, findings_before = invoke("findings", "--format", "json", "--db", db)
    assert code == 0
    shutil.rmtree(work / "mypack")
    (work / "local.csv").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return db, before, json.loads(findings_before)


def test_the_custom_pack_changes_the_figures(checked, tmp_path):
    """The fixture's pack and calendar matter on this data: with the default pack and no local
    calendar, 响应率 of 延安 differs."""
    db, before, _ = checked
    plain = tmp_path / "plain.duckdb"
    assert invoke("ingest", tmp_path / "cases.csv", "--db", plain)[0] == 0
    assert invoke("check", "--as-of", "2026-03-20", "--db", plain)[0] == 0
    assert kpi_rows(plain)["延安"]["response_rate"] != before["延安"]["response_rate"]


def test_kpi_findings_report_read_the_stored_run_after_the_pack_is_gone(checked, tmp_path):
    db, before, findings_before = checked
    assert kpi_rows(db) == before
    code, out = invoke("findings", "--format", "json", "--db", db)
    assert code == 0 and json.loads(out) == findings_before
    html = _report(db, tmp_path)
    doc = parse(html)
    rows = {tr.attrs["data-city"]: tr for tr in doc.by_id("city-table").find_all("tr") if "data-city" in tr.attrs}
    for city, figures in before.items():
        for fig in ("response_rate", "resolution_rate", "on_time_rate", "compliance_rate"):
            cell = rows[city].find_all("td", **{"data-figure": fig})[0].find_all("span", class_="v")[0].text()
            want = "" if figures[fig] is None else f"{figures[fig] * 100:.1f}%"
            assert cell == want or (want == "" and cell in ("—", "")), (city, fig, cell, want)
    assert "延安从严规则包" in doc.by_id("provenance").text()
    assert "LOCAL-ONLINE-ZERO-VISIT" in html
    assert "local.csv" in doc.by_id("provenance").text()


def _report(db: Path, tmp_path: Path) -> str:
    out = tmp_path / "r.html"
    code, text = invoke("report", "--out", out, "--db", db)
    assert code == 0, text
    return out.read_text(encoding="utf-8")


def test_the_run_keeps_its_files_and_calendar(checked):
    db, _, _ = checked
    con = duckdb.connect(str(db), read_only=True)
    files = con.execute("SELECT kind, name, sha256, content FROM run_files ORDER BY kind, name").fetchall()
    pack_hash, pack = con.execute("SELECT pack_sha256, pack FROM runs").fetchall()[0]
    day = con.execute("""SELECT c.is_workday FROM run_calendar c JOIN run_city_calendar cc
                         ON cc.run_id = c.run_id AND cc.cal_key = c.cal_key
                         WHERE cc.city = '延安' AND c.d = DATE '2026-03-03'""").fetchall()
    con.close()
    names = {(k, Path(n).name) for k, n, _, _ in files}
    assert ("pack", "pack.yaml") in names and ("pack", "LOCAL-ONLINE-ZERO-VISIT.yaml") in names
    assert ("pack", "REQ-TIME-LIMIT.yaml") in names          # the default pack it extends
    assert ("calendar", "local.csv") in names
    for _, _, sha, content in files:
        assert hashlib.sha256(content.encode("utf-8")).hexdigest() == sha
    assert len(pack_hash) == 64
    assert json.loads(pack)["name"] == "延安从严规则包 (示例)"
    assert day == [(False,)]


def test_no_run_yet_says_what_to_run(tmp_path):
    db = tmp_path / "a.duckdb"
    write_csv(tmp_path / "cases.csv", [HEADER] + ROWS)
    assert invoke("ingest", tmp_path / "cases.csv", "--db", db)[0] == 0
    for args in (["kpi"], ["report", "--out", tmp_path / "r.html"], ["findings"]):
        code, out = invoke(*args, "--db", db)
        assert code == 2, (args, out)
        assert "audit check" in out
    assert not (tmp_path / "r.html").exists()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchall()[0][0] == 0   # nothing ran behind the user's back
    con.close()


def test_unknown_run_or_audit_date_lists_the_runs(checked, tmp_path):
    db, _, _ = checked
    for args in (["kpi", "--run", "99"], ["findings", "--run", "99"], ["report", "--out", tmp_path / "x.html", "--run", "99"],
                 ["kpi", "--as-of", "2026-02-28"], ["report", "--out", tmp_path / "x.html", "--as-of", "2026-02-28"]):
        code, out = invoke(*args, "--db", db)
        assert code == 2, (args, out)
        assert "审计日 2026-03-20" in out, out


def test_report_month_after_the_audit_date_says_so(tmp_path):
    """A report for March from a run whose audit date is mid-March tells it, on the page and on stderr."""
    db = tmp_path / "a.duckdb"
    write_csv(tmp_path / "cases.csv", [HEADER] + ROWS)
    assert invoke("ingest", tmp_path / "cases.csv", "--db", db)[0] == 0
    assert invoke("check", "--as-of", "2026-03-20", "--db", db)[0] == 0
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--month", "2026-03", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "早于 2026-03 月末" in result.output
    notice = [n for n in parse(out.read_text(encoding="utf-8")).find_all("div") if "scope-notice" in n.attrs.get("class", "")]
    assert notice and "audit check --as-of 2026-03-31" in notice[0].text()
