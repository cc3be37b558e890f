"""`audit compare` and the report's 整改跟踪: the whole rectification cycle on the sample, through the CLI.

The sample is written, ingested and checked at the end of its period; the halls' lists are exported,
filled in with openpyxl as a hall would (the sheet sorted first; some findings marked 已整改, some
整改中) and read back; some cases are corrected in a re-exported copy of their events (the missing
资料归档 for 延安 cases flagged ARCHIVE-TIMELY, a 回访 for 宝鸡 cases flagged EVAL-FOLLOWUP),
re-ingested and checked again a month later with a waiver file (one rule in a city, another in one
hall). Every expected status is derived here, by set arithmetic over the two runs' findings as
`audit findings --format json` lists them and the answers this test wrote — not from the
comparison's code — and 整改期限 on `chinese_calendar`.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from collections import Counter
from pathlib import Path

import chinese_calendar
import openpyxl
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.rectify.keys import read_key
from audit.sample.writers import write_sample
from tests.conftest import query
from tests.test_report import parse

FIRST, SECOND = dt.date(2026, 3, 31), dt.date(2026, 4, 30)
DONE_ON = dt.datetime(2026, 4, 10)
# What the halls answer, by rule (every other finding is left unanswered).
ANSWERS = {"ARCHIVE-TIMELY": "已整改", "EVAL-FOLLOWUP": "已整改", "REQ-INTEGRITY": "已整改", "REQ-ONE-STOP": "整改中",
           "FLOW-DB-ENTRUST": "有异议"}
# The cases corrected in the data: (city, rule, how many, the step recorded late).
CORRECTED = [("延安", "ARCHIVE-TIMELY", 5, "资料归档"), ("宝鸡", "EVAL-FOLLOWUP", 4, "回访")]
STATUSES = ("new", "persisting", "claimed_fixed", "fixed", "waived", "gone")
COUNTED = ("base_findings", "new", "persisting", "claimed_fixed", "fixed", "waived", "gone", "overdue")


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def run_ok(*args) -> str:
    code, out = invoke(*args)
    assert code == 0, out
    return out


def add_workdays(day: dt.date, n: int) -> dt.date:
    while n:
        day += dt.timedelta(days=1)
        if chinese_calendar.is_workday(day):
            n -= 1
    return day


def findings_of(db: Path, run_id: int, tmp: Path) -> dict[tuple, dict]:
    """The run's findings as `audit findings --format json` lists them, DATA-* left out (they are
    not rectified), by (city, case_id, rule_id)."""
    out = tmp / f"findings_{run_id}.json"
    run_ok("findings", "--run", run_id, "--format", "json", "--out", out, "--db", db)
    rows = json.loads(out.read_text(encoding="utf-8"))["findings"]
    return {(r["city"], r["case_id"], r["rule_id"]): r for r in rows if not r["rule_id"].startswith("DATA-")}


def fill_lists(lists: Path, target: Path) -> dict[tuple, tuple]:
    """Every hall's list sorted by case (descending) and answered by rule (`ANSWERS`); the answers
    by finding: (owner, status, action, done_on, file name)."""
    target.mkdir()
    answers = {}
    for path in sorted(lists.iterdir()):
        wb = openpyxl.load_workbook(path)
        ws = wb["整改清单"]
        header = [c.value for c in ws[1]]
        col = {name: j for j, name in enumerate(header, start=1)}
        rows = sorted((list(r) for r in ws.iter_rows(min_row=2, values_only=True)),
                      key=lambda r: r[col["办件编号"] - 1], reverse=True)
        ws.delete_rows(2, ws.max_row)
        for r in rows:
            ws.append(r)
        for i in range(2, ws.max_row + 1):
            status = ANSWERS.get(ws.cell(i, col["规则编号"]).value)
            if status is None:
                continue
            key = read_key(ws.cell(i, col["审计键 (请勿修改)"]).value)[0]
            owner, action = f"{key.case_id} 责任人", f"{key.rule_id} 的整改情况"
            done = DONE_ON if status == "已整改" else None
            ws.cell(i, col["责任人"], owner)
            ws.cell(i, col["整改状态"], status)
            ws.cell(i, col["整改情况"], action)
            if done:
                ws.cell(i, col["整改完成日期"], done)
            answers[(key.city, key.case_id, key.rule_id)] = (owner, status, action, done and done.date(), path.name)
        wb.save(target / path.name)
    return answers


def correct_cases(db: Path, first: dict[tuple, dict], out: Path) -> set[tuple]:
    """A re-export of the events of a few flagged cases with the step that was not recorded added
    (dated with the close or the rating, so within its limit); the (city, case_id, rule_id) corrected."""
    corrected, rows = set(), []
    for city, rule, n, step in CORRECTED:
        cases = sorted(case for (c, case, r) in first if c == city and r == rule)[:n]
        assert len(cases) == n, (city, rule, cases)
        for case_id in cases:
            events = query(db, """SELECT step, "time", staff, note FROM events WHERE city = ? AND case_id = ?
                                  ORDER BY "time", seq""", [city, case_id])
            close = min(t for s, t, _, _ in events if s in ("办结", "终止"))
            rated = query(db, "SELECT rating_time FROM cases WHERE city = ? AND case_id = ?", [city, case_id])[0][0]
            when = (rated or close) + dt.timedelta(minutes=30)
            for s, t, staff, note in [*events, (step, when, "整改补录", f"补录{step}")]:
                rows.append([case_id, city, s, t.strftime("%Y-%m-%d %H:%M:%S"), staff or "", note or ""])
            corrected.add((city, case_id, rule))
    with open(out, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["办件编号", "地市", "环节", "时间", "经办人", "备注"])
        writer.writerows(rows)
    return corrected


def write_waivers(first: dict[tuple, dict], path: Path) -> str:
    """Waive REQ-TIME-LIMIT in 榆林 (findings that persist and new ones) and REQ-ONE-STOP in the 榆林
    hall with the most such findings in the first run (returned)."""
    halls = Counter(f["hall"] for (city, _, rule), f in first.items() if city == "榆林" and rule == "REQ-ONE-STOP")
    hall = halls.most_common(1)[0][0]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["rule", "case_id", "city", "hall", "reason", "approved_by", "expires"])
        writer.writerow(["REQ-TIME-LIMIT", "", "榆林", "", "系统升级期间的时限", "榆林市政务服务局", "2026-12-31"])
        writer.writerow(["REQ-ONE-STOP", "", "榆林", hall, "大厅搬迁期间", "榆林市政务服务局", ""])
    return hall


def expected_statuses(first: dict, second: dict, answers: dict, judged: set[tuple],
                      waived: set[tuple] = frozenset()) -> dict[tuple, str]:
    """Each finding's status by the definitions of README 整改跟踪, from the two runs' findings,
    the answers written and the cases the later run judged."""
    out = {}
    for key in first.keys() | second.keys():
        if key in second:
            out[key] = ("waived" if key in waived else "new" if key not in first
                        else "claimed_fixed" if answers.get(key, (None, None))[1] == "已整改" else "persisting")
        else:
            out[key] = "fixed" if key[:2] in judged else "gone"
    return out


@pytest.fixture(scope="module")
def cycle(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("compare")
    db, sample = tmp / "audit.duckdb", tmp / "sample"
    for entry in write_sample(sample, cases_per_city=120):
        args = ["--city", entry["city"]] if entry.get("city") else []
        args += ["--profile", sample / entry["profile"]] if entry.get("profile") else []
        run_ok("ingest", sample / entry["file"], "--db", db, *args)
    run_ok("check", "--as-of", FIRST, "--db", db)
    run_ok("rectify", "export", "--out", tmp / "lists", "--db", db)
    answers = fill_lists(tmp / "lists", tmp / "returned")
    run_ok("rectify", "import", *sorted((tmp / "returned").iterdir()), "--db", db)
    first = findings_of(db, 1, tmp)
    corrected = correct_cases(db, first, tmp / "更正_环节.csv")
    out = run_ok("ingest", tmp / "更正_环节.csv", "--db", db)
    assert f"替换办件 {len(corrected)}" in out, out
    waived_hall = write_waivers(first, tmp / "豁免.csv")
    run_ok("check", "--as-of", SECOND, "--waivers", tmp / "豁免.csv", "--db", db)
    second = findings_of(db, 2, tmp)
    compared = tmp / "compare.json"
    run_ok("compare", "--format", "json", "--out", compared, "--db", db)
    return {"db": db, "tmp": tmp, "answers": answers, "first": first, "second": second, "corrected": corrected,
            "judged": set(query(db, "SELECT city, case_id FROM cases")),
            "waived": {k for k, f in second.items() if f["waived"]}, "waived_hall": waived_hall,
            "result": json.loads(compared.read_text(encoding="utf-8"))}


def test_every_finding_gets_the_status_its_definition_gives(cycle):
    result = cycle["result"]
    assert (result["base_run"]["run_id"], result["run"]["run_id"]) == (1, 2)
    assert (result["base_run"]["as_of"], result["run"]["as_of"]) == (str(FIRST), str(SECOND))
    got = {(f["city"], f["case_id"], f["rule_id"]): f["status"] for f in result["findings"]}
    expected = expected_statuses(cycle["first"], cycle["second"], cycle["answers"], cycle["judged"],
                                 cycle["waived"])
    assert got == expected
    assert result["count"] == len(expected)
    counts = Counter(expected.values())
    assert all(counts[s] for s in ("new", "persisting", "claimed_fixed", "fixed", "waived")), counts
    # The waivers cover exactly what they name: waived both where the base had the finding and where it is new.
    assert cycle["waived"] == {k for k, f in cycle["second"].items() if k[0] == "榆林" and (
        k[2] == "REQ-TIME-LIMIT" or (k[2] == "REQ-ONE-STOP" and f["hall"] == cycle["waived_hall"]))}
    assert {k in cycle["first"] for k in cycle["waived"]} == {True, False}
    for f in result["findings"]:
        if f["status"] == "waived":
            assert f["waiver_reason"] in ("系统升级期间的时限", "大厅搬迁期间") and f["waiver_approved_by"]
        else:
            assert f["waiver_id"] is None and f["waiver_reason"] is None
    # The corrected cases' findings are fixed; the halls' 已整改 on a finding that is still there is a claim.
    assert all(expected[key] == "fixed" for key in cycle["corrected"])
    assert {r for (_, _, r), s in expected.items() if s == "claimed_fixed"} <= {r for r, a in ANSWERS.items()
                                                                                   if a == "已整改"}


def test_each_row_carries_the_halls_answer_and_its_file(cycle):
    rows = {(f["city"], f["case_id"], f["rule_id"]): f for f in cycle["result"]["findings"]}
    answered = 0
    for key, row in rows.items():
        answer = cycle["answers"].get(key) if key in cycle["first"] else None
        if answer is None:
            assert (row["owner"], row["answer_status"], row["action"], row["done_on"], row["answer_file"]) == \
                (None,) * 5
            continue
        answered += 1
        owner, status, action, done_on, file_name = answer
        assert (row["owner"], row["answer_status"], row["action"], row["answer_file"]) == (owner, status, action,
                                                                                         file_name)
        assert row["done_on"] == (done_on.isoformat() if done_on else None)
        assert row["answer_sheet"] == "整改清单" and row["answer_row"] >= 2 and len(row["answer_sha256"]) == 64
    assert answered == len([k for k in cycle["answers"] if k in cycle["first"]]) > 0
    for row in rows.values():
        base = cycle["first"].get((row["city"], row["case_id"], row["rule_id"]))
        later = cycle["second"].get((row["city"], row["case_id"], row["rule_id"]))
        assert row["severity"] == (later or base)["severity"]
        assert row["hall"] == (base or later)["hall"]           # the hall the list went to
        assert (row["in_base"], row["in_run"]) == (base is not None, later is not None)


def test_overdue_answers_after_the_deadline_on_the_base_runs_calendar(cycle):
    deadline = add_workdays(FIRST, 10)
    assert deadline < SECOND
    result = cycle["result"]
    assert {d["deadline"] for d in result["deadlines"].values()} == {deadline.isoformat()}
    rows = result["findings"]
    unanswered = {k for k in cycle["first"] if k not in cycle["answers"]}
    assert {(f["city"], f["case_id"], f["rule_id"]) for f in rows if f["overdue"]} == unanswered
    assert all(f["deadline"] == deadline.isoformat() for f in rows if f["in_base"])
    assert all(f["deadline"] is None for f in rows if not f["in_base"])


def summary_by_hand(findings: dict[tuple, str], first: dict, second: dict, answers: dict) -> dict:
    """The summary per level computed here from the expected statuses."""
    levels: dict[str, dict] = {"total": {}, "city": {}, "hall": {}, "rule": {}}
    for key, status in findings.items():
        city, _, rule = key
        hall = (first.get(key) or second.get(key))["hall"]
        for level, group in (("total", ()), ("city", (city,)), ("hall", (city, hall)), ("rule", (rule,))):
            c = levels[level].setdefault(group, Counter())
            c[status] += 1
            c["base_findings"] += key in first
            c["overdue"] += key in first and key not in answers
    return levels


def test_summary_per_city_hall_and_rule_with_the_rectification_rate(cycle):
    expected = expected_statuses(cycle["first"], cycle["second"], cycle["answers"], cycle["judged"],
                                 cycle["waived"])
    by_hand = summary_by_hand(expected, cycle["first"], cycle["second"], cycle["answers"])
    summary = cycle["result"]["summary"]
    keys = {"total": (), "city": ("city",), "hall": ("city", "hall"), "rule": ("rule_id",)}
    for level, names in keys.items():
        rows = [summary[level]] if level == "total" else summary[level]
        assert {tuple(r[n] for n in names) for r in rows} == set(by_hand[level])
        for r in rows:
            counts = by_hand[level][tuple(r[n] for n in names)]
            assert {c: r[c] for c in COUNTED} == {c: counts[c] for c in COUNTED}
            assert (r["rectification_rate_num"], r["rectification_rate_den"]) == (counts["fixed"],
                                                                                  counts["base_findings"])
            if counts["base_findings"]:
                assert r["rectification_rate"] == counts["fixed"] / counts["base_findings"]
                assert r["rectification_rate_low"] <= r["rectification_rate"] <= r["rectification_rate_high"]
            else:
                assert r["rectification_rate"] is None


def test_csv_has_the_columns_and_one_row_per_finding(cycle, tmp_path):
    out = tmp_path / "compare.csv"
    run_ok("compare", "--format", "csv", "--out", out, "--db", cycle["db"])
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for col in ("city", "hall", "case_id", "rule_id", "severity", "status", "owner", "answer_status", "action",
                "done_on", "answer_file"):
        assert col in rows[0]
    assert Counter(r["status"] for r in rows) == Counter(f["status"] for f in cycle["result"]["findings"])
    titles = {r["rule_id"]: r["title"] for r in rows}
    assert titles["EVAL-FOLLOWUP"] == "差评须在 5 个工作日内回访"        # the values in force, not setting names
    summary = tmp_path / "summary.csv"
    run_ok("compare", "--format", "csv", "--summary", "--out", summary, "--db", cycle["db"])
    with open(summary, encoding="utf-8-sig", newline="") as fh:
        levels = Counter(r["level"] for r in csv.DictReader(fh))
    assert levels == {"total": 1, "city": 3, "hall": len(cycle["result"]["summary"]["hall"]),
                      "rule": len(cycle["result"]["summary"]["rule"])}


def test_table_and_xlsx(cycle, tmp_path):
    out = run_ok("compare", "--db", cycle["db"])
    total = cycle["result"]["summary"]["total"]
    assert "基准审计 1 (审计日 2026-03-31) → 审计 2 (审计日 2026-04-30)" in out
    assert f"({total['fixed']}/{total['base_findings']})" in out
    book = tmp_path / "整改跟踪.xlsx"
    run_ok("compare", "--format", "xlsx", "--out", book, "--db", cycle["db"])
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames == ["说明", "合计", "按地市", "按服务大厅", "按规则", "逐条"]
    rows = list(wb["逐条"].iter_rows(min_row=2, values_only=True))
    assert len(rows) == cycle["result"]["count"]
    assert all(c.data_type == "s" for row in wb["逐条"].iter_rows() for c in row if c.value is not None)
    city = {r[0]: r for r in wb["按地市"].iter_rows(min_row=2, values_only=True)}
    for rec in cycle["result"]["summary"]["city"]:
        assert city[rec["city"]][1] == rec["base_findings"]


def test_report_tracking_section_equals_the_comparison(cycle, tmp_path):
    out = tmp_path / "报告.html"
    run_ok("report", "--out", out, "--db", cycle["db"])
    doc = parse(out.read_text(encoding="utf-8"))
    section = doc.by_id("tracking")
    assert "整改跟踪" in section.find_all("h2")[0].text() and section.attrs["data-base-run"] == "1"
    summary = cycle["result"]["summary"]
    want = {("total", "", ""): summary["total"],
            **{("city", r["city"], ""): r for r in summary["city"]},
            **{("hall", r["city"], r["hall"] or ""): r for r in summary["hall"]}}
    got = {}
    for tr in doc.by_id("tracking-table").find_all("tr"):
        if "data-level" not in tr.attrs:
            continue
        cells = {td.attrs["data-key"]: int(td.attrs["data-value"]) for td in tr.find_all("td")}
        got[(tr.attrs["data-level"], tr.attrs.get("data-city", ""), tr.attrs.get("data-hall", ""))] = cells
    assert set(got) == set(want)
    for key, cells in got.items():
        rec = want[key]
        assert {k: cells[k] for k in COUNTED} == {k: rec[k] for k in COUNTED}, key
        assert cells["rectification_rate"] == rec["rectification_rate_num"]
    # The trend: every run's 合规率 over the scope, as `audit kpi` gives it.
    trend = doc.by_id("compliance-trend").find_all("tbody")[0].find_all("tr")
    assert [tr.attrs["data-run"] for tr in trend] == ["1", "2"]
    for tr in trend:
        kpi = tmp_path / f"kpi{tr.attrs['data-run']}.json"
        run_ok("kpi", "--run", tr.attrs["data-run"], "--format", "json", "--out", kpi, "--db", cycle["db"])
        rate = json.loads(kpi.read_text(encoding="utf-8"))["rows"][0]["compliance_rate"]
        cell = [td for td in tr.find_all("td") if td.attrs.get("data-key") == "compliance_rate"][0]
        assert cell.text().startswith(f"{rate * 100:.1f}%")
    assert [tr.attrs.get("data-mark") for tr in trend] == ["基准", "本报告"]
    toc = [a.attrs["href"] for a in doc.find_all("nav")[0].find_all("a")]
    assert toc[-3:] == ["#tracking", "#definitions", "#provenance"]
    assert doc.by_id("definitions").find_all("h2")[0].text().startswith("九、")
    again = tmp_path / "again.html"
    run_ok("report", "--out", again, "--base", 1, "--db", cycle["db"])
    assert again.read_bytes() == out.read_bytes()          # reproducible; --base 1 is the default here
    code, text = invoke("report", "--out", tmp_path / "x.html", "--base", 9, "--db", cycle["db"])
    assert code == 2 and "没有编号为 9 的审计" in text, text


def test_report_of_the_first_run_has_no_tracking(cycle, tmp_path):
    out = tmp_path / "first.html"
    run_ok("report", "--run", 1, "--out", out, "--db", cycle["db"])
    doc = parse(out.read_text(encoding="utf-8"))
    assert not doc.find_all(id="tracking")
    assert doc.by_id("definitions").find_all("h2")[0].text().startswith("八、")


def test_a_case_the_later_run_did_not_judge_is_gone_not_fixed(cycle, tmp_path):
    db = tmp_path / "audit.duckdb"
    shutil.copy(cycle["db"], db)
    run_ok("check", "--as-of", SECOND, "--city", "延安", "--city", "宝鸡", "--db", db)
    third = findings_of(db, 3, tmp_path)
    out = tmp_path / "gone.json"
    run_ok("compare", "--base", 1, "--run", 3, "--format", "json", "--out", out, "--db", db)
    result = json.loads(out.read_text(encoding="utf-8"))
    judged = {k for k in cycle["judged"] if k[0] != "榆林"}
    expected = expected_statuses(cycle["first"], third, cycle["answers"], judged)        # no waivers in run 3
    got = {(f["city"], f["case_id"], f["rule_id"]): (f["status"], f["gone_reason"]) for f in result["findings"]}
    assert got == {k: (s, "case" if s == "gone" else None) for k, s in expected.items()}
    assert {k[0] for k, s in expected.items() if s == "gone"} == {"榆林"}
    yulin = next(r for r in result["summary"]["city"] if r["city"] == "榆林")
    assert yulin["fixed"] == 0 and yulin["gone"] == yulin["base_findings"] > 0
    assert yulin["rectification_rate"] == 0
    assert any("未再审计" in n for n in result["notices"])
    # --city narrows the comparison; a city neither run has is refused with the known ones.
    out = tmp_path / "yanan.json"
    run_ok("compare", "--base", 1, "--run", 3, "--city", "延安", "--format", "json", "--out", out, "--db", db)
    assert {f["city"] for f in json.loads(out.read_text(encoding="utf-8"))["findings"]} == {"延安"}


def test_a_finding_waived_in_the_base_run_was_on_no_list_and_is_never_overdue(cycle, tmp_path):
    """Run 2 (with waivers) as the base of a check two months later without them: its waived
    findings were left off the halls' lists, so no answer is overdue for them; still there, they persist."""
    db = tmp_path / "audit.duckdb"
    shutil.copy(cycle["db"], db)
    later = dt.date(2026, 6, 30)
    assert add_workdays(SECOND, 10) < later
    run_ok("check", "--as-of", later, "--db", db)
    third = findings_of(db, 3, tmp_path)
    out = tmp_path / "after_waivers.json"
    run_ok("compare", "--format", "json", "--out", out, "--db", db)
    result = json.loads(out.read_text(encoding="utf-8"))
    assert (result["base_run"]["run_id"], result["run"]["run_id"]) == (2, 3)
    rows = {(f["city"], f["case_id"], f["rule_id"]): f for f in result["findings"]}
    second = cycle["second"]
    assert {k for k, f in rows.items() if f["base_waived"]} == cycle["waived"]
    assert {k for k, f in rows.items() if f["overdue"]} == {k for k in second if k not in cycle["waived"]}
    assert {rows[k]["status"] for k in cycle["waived"] if k in third} == {"persisting"}
    assert result["summary"]["total"]["overdue"] == len(second) - len(cycle["waived"])


@pytest.mark.parametrize("args, message", [
    (["--run", 9], "没有编号为 9 的审计；已有: 1 (审计日 2026-03-31)、2 (审计日 2026-04-30)"),
    (["--base", 9], "没有编号为 9 的审计"),
    (["--base", 2, "--run", 2], "同一次审计"),
    (["--run", 1], "审计 1 之前没有审计"),
    (["--city", "西安"], "--city 西安 不在审计 1 和 2 的地市中；已有: 宝鸡、延安、榆林"),
    (["--city", "延安市"], "是否指 延安"),
    (["--format", "pdf"], "--format"),
    (["--format", "xlsx"], "--out"),
    (["--month", "2026-13"], "YYYY-MM"),
])
def test_usage_errors_exit_2(cycle, args, message):
    code, out = invoke("compare", *args, "--db", cycle["db"])
    assert code == 2 and message in out, out


def test_one_run_only_says_to_check_again_after_new_data(tmp_path):
    db = tmp_path / "audit.duckdb"
    sample = tmp_path / "sample"
    entry = write_sample(sample, cases_per_city=20)[0]
    run_ok("ingest", sample / entry["file"], "--db", db)
    run_ok("check", "--as-of", FIRST, "--db", db)
    code, out = invoke("compare", "--db", db)
    assert code == 2 and "只有一次审计" in out and "audit check" in out, out


def test_command_and_section_are_documented():
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`audit compare" in readme and "### 整改跟踪" in readme
    for status in STATUSES:
        assert f"`{status}`" in readme
