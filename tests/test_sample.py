"""The sample-data generator (audit.sample.generate) and its writers: real files in tmp_path."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import chinese_calendar
import openpyxl
import pandas as pd
import pytest
import yaml

from audit.sample.generate import RULES, generate_cases
from audit.sample.writers import write_sample

CASE_COLUMNS = ["case_id", "city", "county", "hall", "service_type", "channel", "object_type", "item",
                "applicant", "id_number", "phone", "staff", "promised_days", "fee", "visits", "rating",
                "rating_time", "materials"]
STEPS = {"咨询", "申请", "受理", "需求分析", "委托", "承办", "移交", "中止", "续办", "办结", "终止", "资料归档", "回访"}
OBJECT_TYPES = {"重大/重点项目", "新开办企业", "其他企业", "老年人", "残疾人", "其他特殊群体", "其他群众"}
FILES = ["延安_办件明细.csv", "宝鸡_环节日志.csv", "宝鸡_办件台账.xlsx", "榆林_台账.xlsx"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    write_sample(out, cases_per_city=200, seed=20251001)
    return out


@pytest.fixture(scope="module")
def big():
    return generate_cases(2000, "延安", 20251001, with_truth=True)


def test_same_seed_same_bytes_different_seed_different(tmp_path, sample_dir):
    again, other = tmp_path / "again", tmp_path / "other"
    entries = write_sample(again, cases_per_city=200, seed=20251001)
    write_sample(other, cases_per_city=200, seed=20251002)
    names = sorted(p.name for p in sample_dir.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    assert set(FILES) | {"manifest.yaml", "榆林_profile.yaml"} == set(names)
    for name in names:
        assert _sha(sample_dir / name) == _sha(again / name), name
    for name in FILES:
        assert _sha(sample_dir / name) != _sha(other / name), name
    assert [e["file"] for e in entries] == FILES


def test_manifest(sample_dir):
    manifest = yaml.safe_load((sample_dir / "manifest.yaml").read_text(encoding="utf-8"))
    files = manifest["files"]
    assert [f["file"] for f in files] == FILES                     # ingest order, events CSV first
    assert [f["city"] for f in files] == [None, "宝鸡", None, None]
    assert [f["profile"] for f in files] == [None, None, None, "榆林_profile.yaml"]
    assert manifest["seed"] == 20251001 and manifest["cases_per_city"] == 200
    for f in files:
        assert (sample_dir / f["file"]).is_file()


def test_yanan_gbk_combined_export(sample_dir):
    raw = (sample_dir / "延安_办件明细.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("gbk")
    assert raw.count(b"\r\n") == raw.count(b"\n")                  # CRLF only
    lines = text.split("\r\n")
    assert lines[0] == "延安市帮办代办办件明细表"
    assert lines[1] == ("办件编号,地市,区县,服务中心,服务类型,服务方式,服务对象类别,事项名称,服务对象,证件号码,"
                        "联系电话,帮办代办员,承诺时限(工作日),收费金额,到现场次数,评价,评价时间,归档材料,"
                        "环节,时间,经办人,备注")
    body = lines[2:-1]
    assert lines[-1] == ""
    assert sum(1 for line in body if line == "," * 21) == 1          # one fully blank row
    dupes = pd.Series(body).value_counts()
    assert (dupes > 1).sum() == 1 and dupes.max() == 2              # one exact duplicate row
    assert any(re.search(r",20\d\d/\d{1,2}/\d{1,2} \d{1,2}:\d\d,", line) for line in body)
    assert any(re.search(r",20\d\d年\d{1,2}月\d{1,2}日 \d{1,2}:\d\d,", line) for line in body)
    assert not re.search(r"/0\d/", text)                            # no zero padding


def test_baoji_bom_events_csv(sample_dir):
    raw = (sample_dir / "宝鸡_环节日志.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = raw[3:].decode("utf-8").splitlines()
    assert lines[0] == "办件编号,环节,发生时间,办理人,备注"
    steps = {line.split(",")[1] for line in lines[1:]}
    assert {"服务咨询", "签订委托书", "办理", "归档"} <= steps        # aliases occur
    stamp = re.compile(r"20\d\d-\d\d-\d\d \d\d:\d\d:\d\d")
    assert all(stamp.fullmatch(line.split(",")[2]) for line in lines[1:])


def test_baoji_xlsx_ledger(sample_dir):
    ws = openpyxl.load_workbook(sample_dir / "宝鸡_办件台账.xlsx")["办件台账"]
    assert ws["A1"].value == "宝鸡市帮办代办服务台账"
    assert "A1:R1" in {str(r) for r in ws.merged_cells.ranges}
    assert all(c.value is None for c in ws[2])
    header = [c.value for c in ws[3]]
    assert header == ["服务编号", "城市", "区县", "服务大厅", "服务类型", "服务方式", "服务对象类别", "事项名称",
                      "申请人", "身份证号", "手机号", "帮办员", "承诺时限", "收费", "跑动次数", "评价等级",
                      "评价时间", "归档资料"]
    rows = list(ws.iter_rows(min_row=4))
    assert len(rows) == 200
    rated = [r[16] for r in rows if r[16].value is not None]
    assert rated and all(isinstance(c.value, dt.datetime) and c.is_date for c in rated)
    assert {r[15].value for r in rows} - {None} <= {1, 2, 3, 4, 5}
    assert all(r[9].data_type == "s" and len(r[9].value) == 18 for r in rows)   # ID as text
    assert all(r[1].value == "宝鸡" for r in rows)


def test_yulin_wide_ledger_and_profile(sample_dir):
    profile = yaml.safe_load((sample_dir / "榆林_profile.yaml").read_text(encoding="utf-8"))
    assert profile["city"] == "榆林" and profile["sheet"] == "台账"
    assert profile["values"]["service_type"] == {"帮办服务": "帮办", "代办服务": "代办"}
    assert profile["values"]["channel"] == {"网上": "线上", "现场": "线下"}
    assert set(profile["wide"].values()) <= STEPS
    ws = openpyxl.load_workbook(sample_dir / "榆林_台账.xlsx")["台账"]
    header = [c.value for c in ws[1]]
    assert header == list(profile["columns"]) + list(profile["wide"])
    assert set(profile["columns"].values()) == set(CASE_COLUMNS) - {"city"}
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 200
    col = {h: i for i, h in enumerate(header)}
    assert {r[col["办理类型"]] for r in rows} == {"帮办服务", "代办服务"}
    assert {r[col["办理渠道"]] for r in rows} == {"网上", "现场"}
    times = [r[col[h]] for r in rows for h in profile["wide"] if r[col[h]] is not None]
    assert times and all(re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d", t) for t in times)


def test_generated_frames_are_canonical(big):
    cases, events, _ = big
    assert list(cases.columns) == CASE_COLUMNS
    assert list(events.columns) == ["case_id", "step", "time", "staff", "note"]
    assert cases.case_id.is_unique
    assert cases.case_id.str.fullmatch(r"YA20(25|26)\d{10}").all()
    assert set(events.case_id) <= set(cases.case_id)
    assert set(events.step) <= STEPS
    assert set(cases.object_type) == OBJECT_TYPES
    assert set(cases.service_type) == {"帮办", "代办"} and set(cases.channel) == {"线上", "线下"}
    assert cases.promised_days.between(0, 20).all()
    assert cases.phone.str.fullmatch(r"1\d{10}").all()
    assert cases.id_number.str.len().eq(18).all()
    persons = cases[~cases.object_type.isin(["重大/重点项目", "新开办企业", "其他企业"])]
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    for idn in persons.id_number.head(200):
        assert idn.startswith("61")
        assert "10X98765432"[sum(int(a) * w for a, w in zip(idn[:17], weights)) % 11] == idn[17]
    assert set(cases.rating.dropna()) <= {"非常满意", "满意", "基本满意", "不满意", "非常不满意"}
    assert (cases.fee == 0).mean() > 0.85


def test_calendar_and_period(big):
    cases, events, _ = big
    t = events.time
    assert t.min() >= pd.Timestamp("2025-09-01") and t.max() < pd.Timestamp("2026-04-01")
    workday = t.dt.date.map(chinese_calendar.is_workday)
    assert workday.mean() > 0.98
    # Only online requests come in on rest days (and steps swapped with them by FLOW-*-ORDER).
    assert set(events.step[~workday]) <= {"咨询", "申请", "需求分析"}
    nat_day = (t >= "2025-10-01") & (t < "2025-10-09")
    spring = (t >= "2026-02-15") & (t < "2026-02-24")
    assert set(events.step[nat_day | spring]) <= {"咨询", "申请", "需求分析"}
    assert (t.dt.date == dt.date(2026, 2, 14)).any() or (t.dt.date == dt.date(2026, 2, 28)).any()
    assert t.dt.hour.between(9, 17).mean() > 0.9
    months = t.dt.strftime("%Y-%m")
    assert {"2025-09", "2025-10", "2026-02", "2026-03"} <= set(months)


def test_realistic_situations_present(big):
    cases, events, _ = big
    per_case = events.groupby("case_id").step.agg(set)
    closed = per_case.map(lambda s: bool(s & {"办结", "终止"}))
    assert (~closed).sum() > 0                                      # open cases
    last = events.groupby("case_id").step.last()
    assert ((last == "中止") & ~closed).sum() > 0                   # suspended open cases
    terminated = per_case[per_case.map(lambda s: "终止" in s)].index
    mats = cases.set_index("case_id").materials
    assert len(terminated) and mats[terminated].dropna().str.contains("终止单").any()
    assert (events.step == "移交").any()
    bad = cases[cases.rating.isin(["不满意", "非常不满意"])].case_id
    followed = set(events.case_id[events.step == "回访"])
    assert bad.isin(followed).any() and (~bad.isin(followed)).any()
    assert mats.dropna().str.contains("帮办代办受理单|代办服务委托书").any()


def test_each_rule_is_broken_by_a_realistic_share(big):
    cases, events, truth = big
    n = len(cases)
    assert set(truth) == set(RULES)
    for rule in RULES:
        assert 0 < len(truth[rule]) / n <= 0.1, rule
    injected = set().union(*map(set, truth.values()))
    assert len(injected) / n < 0.6                                  # most cases compliant
    # A few shares computed straight from the frames.
    assert (cases.fee > 0).mean() > 0
    offline = cases[cases.channel == "线下"]
    assert (offline.visits > 1).mean() > 0
    first = events.groupby(["case_id", "step"]).time.min().unstack()
    db = cases[cases.service_type == "代办"].case_id
    f = first.reindex(db)
    no_mandate = f["承办"].notna() & (f["委托"].isna() | (f["委托"] > f["承办"]))
    assert no_mandate.sum() > 0
    bb = first.reindex(cases[cases.service_type == "帮办"].case_id)
    missing = bb["办结"].notna() & bb[["咨询", "申请", "受理", "承办"]].isna().any(axis=1)
    assert missing.sum() > 0
    assert cases.staff.isna().sum() > 0
    assert cases.rating.isna().sum() > 0


def test_wide_restrictions():
    cases, events = generate_cases(1500, "榆林", 3, wide=True)
    assert not (events.step == "移交").any()
    assert not events.duplicated(["case_id", "step"]).any()
    assert events.staff.isna().all()
    assert cases.case_id.str.startswith("YL").all()


def test_small_and_unknown_city():
    cases, events = generate_cases(0, "延安", 1)
    assert len(cases) == 0 and len(events) == 0
    cases, events = generate_cases(5, "某市", 1)
    assert len(cases) == 5 and cases.case_id.str.startswith("SX").all()


def test_cli_writes_files(tmp_path):
    from typer.testing import CliRunner

    import audit.cli.sample  # noqa: F401  (registers the command)
    from audit.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sample", "--out", str(out), "--cases", "20", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "manifest.yaml" in result.output
    for name in FILES:
        assert (out / name).is_file() and name in result.output
