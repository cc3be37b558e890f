"""Masking of personal data (`audit.outputs.mask`): names, organisations, phones and ID numbers in
every common form, on their own, inside free text and evidence, through the report and the
quarantine listing; `--show-personal-data` shows everything.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.db import connect
from audit.outputs.mask import (
    NUMBER_HINT,
    ORGANISATION_SUFFIXES,
    is_organisation,
    mask_id,
    mask_name,
    mask_phone,
    mask_unlabelled,
    scrub,
)
from tests.conftest import REPO, write_csv

# (as written, as a phone column shows it, inside free text)
PHONES = [
    ("13812345678", "138****5678"),
    ("138 1234 5678", "138 **** 5678"),
    ("138-1234-5678", "138-****-5678"),
    ("+86 138 1234 5678", "+86 138 **** 5678"),
    ("+8613812345678", "+86138****5678"),
    ("008613912345678", "0086139****5678"),
    ("(86)13712345678", "(86)137****5678"),
    ("（86）136-1234-5678", "（86）136-****-5678"),
    ("１３８１２３４５６７８", "１３８****５６７８"),
    ("029-88888888", "029-****8888"),
    ("0911-1234567", "0911-***4567"),
    ("(029)87654321", "(029)****4321"),
    ("+86 29 8765 4321", "+86 29 **** 4321"),
    ("０２９－８８８８７７７７", "０２９－****７７７７"),
]
# (as written, as an ID column shows it, inside free text)
IDS = [
    ("610102199001011234", "610***********1234", "610***********1234"),
    ("61010219900101123X", "610***********123X", "610***********123X"),
    ("61010219900101123x", "610***********123x", "610***********123x"),
    ("６１０１０２１９９００１０１１２３４", "６１０***********１２３４", "６１０***********１２３４"),
    ("610102900101123", "610********1123", "610********1123"),
    ("610102 19900101 1234", "610*************1234", "610*** ******** 1234"),
]
PEOPLE = [("张建社", "张**"), ("张学会", "张**"), ("李红社", "李**"), ("张三", "张*"), ("欧阳娜娜", "欧***"),
          ("张三（个体工商户）", "张********"), ("有限公司", "有***")]
ORGANISATIONS = ["延安市恒盛商贸有限公司", "宝塔区富民农民专业合作社", "枣园村村民委员会", "陕西秦风律师事务所",
                 "延安市政务服务中心", "延安某某投资管理中心（有限合伙）", "宝鸡市渭滨区人民政府"]


# --- the functions ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, masked", PEOPLE)
def test_people_are_masked(name, masked):
    assert not is_organisation(name)
    assert mask_name(name) == masked


@pytest.mark.parametrize("suffix", ORGANISATION_SUFFIXES)
def test_every_organisation_suffix_keeps_the_name_whole(suffix):
    assert len(suffix) >= 4
    name = "延安市宝塔区" + suffix
    assert mask_name(name) == name and mask_unlabelled(name) == name
    assert mask_name(name + "（筹）") == name + "（筹）"


@pytest.mark.parametrize("raw, masked", PHONES)
def test_phones(raw, masked):
    assert mask_phone(raw) == masked
    assert scrub(f"请回电 {raw}，谢谢") == f"请回电 {masked}，谢谢"
    assert scrub(f"电话:{raw}") == f"电话:{masked}"


@pytest.mark.parametrize("raw, column, text", IDS)
def test_id_numbers(raw, column, text):
    assert mask_id(raw) == column
    assert scrub(f"身份证号{raw}。") == f"身份证号{text}。"
    assert scrub(f"ID {raw}") == f"ID {text}"


def test_what_is_not_a_number_to_mask():
    for text in ("2026-03-02 10:00", "办结时限: 2026-03-09；超期 (工作日): 2", "YA20250901000001", "收费 150.00 元",
                 "来源行: 1234567", "1370000111"):
        assert scrub(text) == text
    assert mask_phone("1370000111") == "137***0111" and mask_phone("12345") == "*****"
    assert mask_phone("13812345678 或 029-88888888") == "138****5678 或 029-****8888"


def test_number_hint_finds_every_number_in_python_and_duckdb():
    """The hint a query uses to skip values without numbers matches every value `scrub` changes."""
    values = [f"电话{raw}" for raw, _ in PHONES] + [f"证件{raw}" for raw, _, _ in IDS]
    assert all(scrub(v) != v for v in values)
    assert all(re.search(NUMBER_HINT, v) for v in values)
    con = duckdb.connect()
    try:
        found = con.execute("SELECT list(regexp_matches(v, ?)) FROM unnest(?) t(v)", [NUMBER_HINT, values]).fetchone()[0]
    finally:
        con.close()
    assert found == [True] * len(values)
    assert not re.search(NUMBER_HINT, "2026-03-02 10:00:00")      # the common timestamp is left to SQL


# --- through the report and the quarantine listing ---------------------------------------------
LEDGER = ["办件编号", "地市", "服务类型", "服务对象", "证件号码", "联系电话", "环节", "时间", "经办人", "备注"]
NOTE_PACK = """name: 备注测试
version: "1.0.0-test"
extends: default
"""
NOTE_RULE = """id: LOCAL-NOTE
clause: "10 一站式办理"
severity: info
title: 备注原样引用
rationale: 测试用：问题与证据原样引用办件各环节的备注。
settings: []
sql: |
  SELECT city, case_id,
         '备注：' || coalesce(string_agg(note, '；' ORDER BY seq) FILTER (WHERE coalesce(note, '') <> ''), '无') AS message,
         {'note': string_agg(note, '；' ORDER BY seq) FILTER (WHERE coalesce(note, '') <> '')} AS evidence
  FROM event_rows GROUP BY city, case_id
examples:
  fail:
    - name: 有办理环节
      case: {service_type: 帮办}
      events: [[咨询, 2026-03-02 09:00]]
  pass:
    - name: 没有办理环节
      case: {service_type: 帮办}
      events: []
"""


def invoke(*args) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def ledger_rows() -> list[list[str]]:
    """A case per name, per phone form and per ID form; each note quotes that case's number."""
    rows = [LEDGER]
    people = [p for p, _ in PEOPLE] + ORGANISATIONS
    for i, name in enumerate(people):
        rows.append([f"N{i}", "延安", "帮办", name, "", "", "咨询", "2026-03-02 09:00", "王帮办", "申请人来电"])
    for i, (raw, _) in enumerate(PHONES):
        rows.append([f"P{i}", "延安", "帮办", "王五", "", raw, "咨询", "2026-03-02 09:00", "王帮办", f"回电 {raw}"])
    for i, (raw, _, _) in enumerate(IDS):
        rows.append([f"I{i}", "延安", "帮办", "王五", raw, "", "咨询", "2026-03-02 09:00", "王帮办", f"证件 {raw}"])
    return rows


@pytest.fixture(scope="module")
def mask_db(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("mask")
    db = tmp / "audit.duckdb"
    assert invoke("ingest", "--db", db, write_csv(tmp / "ledger.csv", ledger_rows()))[0] == 0
    pack = tmp / "pack"
    (pack / "checks").mkdir(parents=True)
    (pack / "pack.yaml").write_text(NOTE_PACK, encoding="utf-8")
    (pack / "checks" / "LOCAL-NOTE.yaml").write_text(NOTE_RULE, encoding="utf-8")
    code, out = invoke("check", "--db", db, "--pack", pack, "--as-of", "2026-03-20")
    assert code == 0, out
    return db


def report_rows(db: Path, out: Path, *args) -> tuple[str, list[dict]]:
    code, output = invoke("report", "--db", db, "--out", out, *args)
    assert code == 0, output
    html = out.read_text(encoding="utf-8")
    block = re.search(r'<script type="application/json" id="findings-data">(.*?)</script>', html, re.DOTALL)
    data = json.loads(block.group(1))
    return html, [dict(zip(data["columns"], row)) for row in data["rows"]]


def stored_values(db: Path) -> dict[str, tuple]:
    con = connect(db)
    try:
        return {r[0]: r[1:] for r in con.execute("SELECT case_id, applicant, id_number, phone FROM cases").fetchall()}
    finally:
        con.close()


def test_report_masks_names_phones_and_ids_everywhere(mask_db, tmp_path):
    html, rows = report_rows(mask_db, tmp_path / "报告.html")
    stored = stored_values(mask_db)
    by_case: dict[str, list[dict]] = {}
    for row in rows:
        by_case.setdefault(row["case_id"], []).append(row)
    notes = {case: next(r for r in found if r["rule_id"] == "LOCAL-NOTE") for case, found in by_case.items()}
    for i, (name, masked) in enumerate(PEOPLE):
        assert {r["applicant"] for r in by_case[f"N{i}"]} == {masked}
        assert name not in html or any(name in o for o in ORGANISATIONS)
    for i, name in enumerate(ORGANISATIONS, start=len(PEOPLE)):
        assert {r["applicant"] for r in by_case[f"N{i}"]} == {name}          # organisations stay whole
    for i, (raw, masked) in enumerate(PHONES):
        assert stored[f"P{i}"][2] == raw                                     # loaded as written
        assert {r["phone"] for r in by_case[f"P{i}"]} == {masked}
        assert notes[f"P{i}"]["message"] == f"备注：回电 {masked}"             # free text
        assert notes[f"P{i}"]["evidence"] == f"note: 回电 {masked}"           # evidence
        assert raw not in html
    for i, (raw, column, text) in enumerate(IDS):
        assert stored[f"I{i}"][1] == raw
        assert {r["id_number"] for r in by_case[f"I{i}"]} == {column}
        assert notes[f"I{i}"]["message"] == f"备注：证件 {text}"
        assert notes[f"I{i}"]["evidence"] == f"note: 证件 {text}"
        assert raw not in html


def test_report_shows_everything_when_asked(mask_db, tmp_path):
    _, rows = report_rows(mask_db, tmp_path / "full.html", "--show-personal-data")
    applicants = {r["applicant"] for r in rows}
    assert {p for p, _ in PEOPLE} | set(ORGANISATIONS) <= applicants
    for raw, _ in PHONES:
        assert any(r["phone"] == raw for r in rows) and any(r["message"] == f"备注：回电 {raw}" for r in rows)
    for raw, _, _ in IDS:
        assert any(r["id_number"] == raw for r in rows) and any(r["evidence"] == f"note: 证件 {raw}" for r in rows)


def test_findings_mask_numbers_in_messages_and_evidence(mask_db, tmp_path):
    """`audit findings` (csv and json) masks the phone and ID numbers a rule quotes in its message
    or evidence, as the report does; --show-personal-data gives them whole."""
    code, out = invoke("findings", "--db", mask_db, "--rule", "LOCAL-NOTE", "--format", "json")
    assert code == 0, out
    notes = {f["case_id"]: f for f in json.loads(out)["findings"]}
    for i, (_raw, masked) in enumerate(PHONES):
        assert notes[f"P{i}"]["message"] == f"备注：回电 {masked}"
        assert notes[f"P{i}"]["evidence"] == {"note": f"回电 {masked}"}
    for i, (_raw, _, text) in enumerate(IDS):
        assert notes[f"I{i}"]["message"] == f"备注：证件 {text}"
    code, out = invoke("findings", "--db", mask_db, "--rule", "LOCAL-NOTE", "--format", "csv")
    assert code == 0 and not any(raw in out for raw, _ in PHONES) and not any(raw in out for raw, _, _ in IDS)
    code, out = invoke("findings", "--db", mask_db, "--rule", "LOCAL-NOTE", "--format", "json", "--show-personal-data")
    whole = {f["case_id"]: f for f in json.loads(out)["findings"]}
    for i, (raw, _) in enumerate(PHONES):
        assert whole[f"P{i}"]["message"] == f"备注：回电 {raw}"


def test_quarantine_masks_numbers_in_any_cell(tmp_path):
    """Quarantined rows (no case id) whose cells hold every phone and ID form: masked by default,
    whole with --show-personal-data."""
    rows = [LEDGER]
    values = [raw for raw, _ in PHONES] + [raw for raw, _, _ in IDS]
    for raw in values:
        rows.append(["", "延安", "帮办", "张建社", raw, raw, "咨询", "2026-03-02 09:00", "王帮办", f"来电 {raw}"])
    db = tmp_path / "q.duckdb"
    assert invoke("ingest", "--db", db, write_csv(tmp_path / "q.csv", rows))[0] == 0
    code, out = invoke("quarantine", "--db", db, "--format", "csv")
    assert code == 0
    listed = [r[5] for r in csv.reader(io.StringIO(out))][1:]
    assert len(listed) == len(values)
    for raw, cell in zip(values, listed):
        assert raw not in cell and "张建社" not in cell and "服务对象=张**" in cell, cell
    masked_notes = [f"备注=来电 {m}" for _, m in PHONES] + [f"备注=来电 {t}" for _, _, t in IDS]
    assert all(note in cell for note, cell in zip(masked_notes, listed))
    code, out = invoke("quarantine", "--db", db, "--format", "csv", "--show-personal-data")
    shown = [r[5] for r in csv.reader(io.StringIO(out))][1:]
    assert all(f"备注=来电 {raw}" in cell and "张建社" in cell for raw, cell in zip(values, shown))


def test_suffixes_are_listed_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [s for s in ORGANISATION_SUFFIXES if s not in readme]
    assert not missing, f"organisation suffixes not in README.md: {missing}"
