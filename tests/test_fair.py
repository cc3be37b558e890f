"""Fair comparison (contract §5.1, audit.figures.fair) against values worked out by hand: Wilson
intervals, case-mix-adjusted rates through real CSV → `audit ingest` → `audit check` → `audit kpi`,
ranks with their marks, and the pack setting ``min_cases``."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import PackError
from audit.figures.fair import ADJUSTED_FIGURES, MIN_CASES_DEFAULT, Z, add_intervals, min_cases, rank_with_marks, wilson
from audit.resources import pack_dir
from audit.rules import contract as rulecontract
from audit.rules.pack import load_pack
from tests.conftest import write_csv

Z2 = 1.959964 * 1.959964          # = 3.841458881296 (1.96² − 2·1.96·0.000036 + 0.000036²)


def by_hand(k: int, n: int) -> tuple[float, float]:
    """Contract §5.1 written out once more, for the fixture's many (k, n): the test's own oracle."""
    p = k / n
    centre = (p + Z2 / (2 * n)) / (1 + Z2 / n)
    half = 1.959964 * math.sqrt(p * (1 - p) / n + Z2 / (4 * n * n)) / (1 + Z2 / n)
    return centre - half, centre + half


# --- Wilson ---------------------------------------------------------------------------------
def test_z_is_the_contract_value():
    assert Z == 1.959964


def test_wilson_three_of_four():
    # p = 0.75, z²/n = 0.960364720324, z²/2n = 0.480182360162, scale = 1.960364720324
    # centre = 1.230182360162 / 1.960364720324 = 0.627527...
    # half = 1.959964 · sqrt(0.1875/4 + 3.841458881296/64) / scale
    #      = 1.959964 · sqrt(0.046875 + 0.0600227950203) / 1.960364720324 = 0.326885...
    centre = (0.75 + 0.480182360162) / 1.960364720324
    half = 1.959964 * math.sqrt(0.046875 + 0.0600227950203) / 1.960364720324
    low, high = wilson(3, 4)
    assert low == pytest.approx(centre - half, abs=1e-12)
    assert high == pytest.approx(centre + half, abs=1e-12)
    assert (round(low, 4), round(high, 4)) == (0.3006, 0.9544)


def test_wilson_none_of_five():
    # p = 0: centre = half = (z²/10) / (1 + z²/5), so low = 0 and high = (z²/5) / (1 + z²/5)
    #   = 0.7682917762592 / 1.7682917762592 = 0.434482...
    low, high = wilson(0, 5)
    assert low == 0.0
    assert high == pytest.approx(0.7682917762592 / 1.7682917762592, abs=1e-12)
    assert round(high, 4) == 0.4345


def test_wilson_all_of_thirty():
    # p = 1: centre + half = 1 and low = 1 / (1 + z²/30) = 1 / 1.1280486293765 = 0.886486...
    low, high = wilson(30, 30)
    assert high == 1.0
    assert low == pytest.approx(1 / 1.1280486293765, abs=1e-12)
    assert round(low, 4) == 0.8865


def test_wilson_published_example():
    """81 of 263: Wilson score interval (0.2553, 0.3662) — Newcombe (1998), Statistics in Medicine
    17:857, and Wikipedia's "Binomial proportion confidence interval" worked example."""
    low, high = wilson(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_wilson_empty_and_impossible():
    assert wilson(0, 0) == (None, None)
    assert wilson(None, None) == (None, None)
    assert wilson(3, None) == (None, None)
    with pytest.raises(ValueError):
        wilson(5, 4)
    with pytest.raises(ValueError):
        wilson(-1, 4)


def test_add_intervals_is_wilson_for_every_row():
    df = pd.DataFrame({"city": ["甲", "乙", "丙", "丁", "戊"],
                       "x_num": [3, 0, 30, 81, 0], "x_den": [4, 5, 30, 263, 0],
                       "y_num": [1, None, 2, 0, 0], "y_den": [2, None, 2, 0, 1]}, index=[10, 11, 12, 13, 14])
    out = add_intervals(df, ["x", "y"])
    assert list(out.index) == [10, 11, 12, 13, 14] and list(df.columns) == ["city", "x_num", "x_den", "y_num", "y_den"]
    assert list(out.columns) == list(df.columns) + ["x_low", "x_high", "y_low", "y_high"]
    assert [round(v, 4) for v in out["x_low"][:4]] == [0.3006, 0.0, 0.8865, 0.2553]
    assert [round(v, 4) for v in out["x_high"][:4]] == [0.9544, 0.4345, 1.0, 0.3662]
    assert math.isnan(out["x_low"].iloc[4]) and math.isnan(out["x_high"].iloc[4])        # 0 of 0
    assert math.isnan(out["y_low"].iloc[1]) and math.isnan(out["y_low"].iloc[3])         # missing, 0
    # 1 of 2: p = 0.5, centre = 0.5 exactly; half = z·sqrt(1/8 + z²/16) / (1 + z²/2)
    half = 1.959964 * math.sqrt(0.125 + Z2 / 16) / (1 + Z2 / 2)
    assert out["y_low"].iloc[0] == pytest.approx(0.5 - half, abs=1e-12)
    assert out["y_high"].iloc[0] == pytest.approx(0.5 + half, abs=1e-12)
    assert (out["y_low"].iloc[2], out["y_high"].iloc[2]) == (wilson(2, 2)[0], 1.0)
    assert out["y_low"].iloc[4] == 0.0


# --- case-mix-adjusted rates through the real commands ------------------------------------
HEADER = ["办件编号", "地市", "服务中心", "服务类型", "服务对象类别", "服务方式", "承诺时限", "收费金额", "到现场次数",
          "评价", "评价时间", "归档材料", "帮办代办员", "环节", "时间", "经办人"]


def case(cid, city, stype, otype, days, rating, rtime, materials, events):
    return [[cid, city, "中心", stype, otype, "线下", days, "0", "1", rating, rtime, materials, "张三", step, when, "张三"]
            for step, when in events]


def bb(cid, city, otype, rating="", followed=False, late_response=False, late_done=False):
    """帮办, 3 working days from 受理; audit date 2026-03-20, no holidays in March 2026. On time by
    default (受理 03-02 → deadline 03-05, 办结 03-04), responded on 03-02 (limit 03-03)."""
    accept, work, done = "2026-03-02 10:00", "2026-03-03 10:00", "2026-03-04 10:00"
    if late_response:         # 受理 03-05 > limit 03-03 (REQ-RESPONSE is a warning); deadline 03-10
        accept, work, done = "2026-03-05 10:00", "2026-03-05 14:00", "2026-03-06 10:00"
    if late_done:             # 办结 03-12 > deadline 03-05: REQ-TIME-LIMIT, an error
        done = "2026-03-12 10:00"
    day = done[:10]
    events = [("咨询", "2026-03-02 09:00"), ("申请", "2026-03-02 09:30"), ("受理", accept), ("承办", work),
              ("办结", done), ("资料归档", f"{day} 11:00")]
    if followed:              # a bad rating followed up the same day; without it EVAL-FOLLOWUP (error)
        events.append(("回访", f"{day} 16:00"))
    return case(cid, city, "帮办", otype, "3", rating, f"{day} 12:00" if rating else "", "受理单、办结单", events)


def db(cid, city, otype, rating="", followed=False, open_case=False):
    """代办, 5 working days from 委托: closed on time (委托 03-02 → deadline 03-09, 办结 03-04), or
    open and not yet due (委托 03-18 → deadline 03-25, after the audit date). Responded in time."""
    if open_case:
        return case(cid, city, "代办", otype, "5", "", "", "",
                    [("咨询", "2026-03-18 09:00"), ("需求分析", "2026-03-18 10:00"), ("委托", "2026-03-18 11:00"),
                     ("承办", "2026-03-19 10:00")])
    events = [("咨询", "2026-03-02 09:00"), ("需求分析", "2026-03-02 10:00"), ("委托", "2026-03-02 11:00"),
              ("承办", "2026-03-03 10:00"), ("办结", "2026-03-04 10:00"), ("资料归档", "2026-03-04 11:00")]
    if followed:
        events.append(("回访", "2026-03-04 16:00"))
    return case(cid, city, "代办", otype, "5", rating, "2026-03-04 12:00" if rating else "", "委托书、办结单", events)


# Strata: S1 = (帮办, 老年人), S2 = (帮办, 其他企业), S3 = (代办, no object type: NULL, a stratum of its own).
# Per case: response k/n, on_time k/n, satisfaction k/n, compliant.
ROWS = (
    # 延安 S1: resp 2/3, on_time 3/3, satisfaction 3/3, compliance 3/3
    bb("Y1", "延安", "老年人", "满意") + bb("Y2", "延安", "老年人", "满意")
    + bb("Y3", "延安", "老年人", "满意", late_response=True)
    # 延安 S2: resp 4/4, on_time 3/4, satisfaction 1/4, compliance 2/4
    + bb("Y4", "延安", "其他企业", "满意")
    + bb("Y5", "延安", "其他企业", "不满意", followed=True, late_done=True)   # late: not compliant
    + bb("Y6", "延安", "其他企业", "不满意")                                  # not followed up: not compliant
    + bb("Y7", "延安", "其他企业", "不满意", followed=True)
    # 延安 S3: resp 2/2, on_time 2/2, satisfaction 1/2, compliance 2/2
    + db("Y8", "延安", "", "满意") + db("Y9", "延安", "", "不满意", followed=True)
    # 宝鸡 S1: resp 1/2, on_time 2/2, satisfaction 1/2, compliance 1/2
    + bb("B1", "宝鸡", "老年人", "不满意")                                    # not followed up
    + bb("B2", "宝鸡", "老年人", "满意", late_response=True)
    # 宝鸡 has no S2.  宝鸡 S3: resp 2/2, on_time 1/1, satisfaction 0/0 (empty), compliance 2/2
    + db("B3", "宝鸡", "", open_case=True) + db("B4", "宝鸡", "")
)

# Weights: each stratum's share of the figure's denominator over both cities.
#   response:     S1 3+2 = 5, S2 4, S3 2+2 = 4  (of 13)
#   on_time:      S1 3+2 = 5, S2 4, S3 2+1 = 3  (of 12)
#   satisfaction: S1 3+2 = 5, S2 4, S3 2+0 = 2  (of 11)
#   compliance:   S1 3+2 = 5, S2 4, S3 2+2 = 4  (of 13)
# 延安 has every stratum:
#   response     (5/13·2/3 + 4/13·1 + 4/13·1) / (13/13) = (10/3 + 8) / 13 = 34/39
#   on_time      (5·1 + 4·3/4 + 3·1) / 12 = 11/12
#   satisfaction (5·1 + 4·1/4 + 2·1/2) / 11 = 7/11
#   compliance   (5·1 + 4·2/4 + 4·1) / 13 = 11/13
# 宝鸡 lacks S2, and its S3 has no rated case: the sums run over the strata it has a denominator in.
#   response     (5/13·1/2 + 4/13·1) / (5/13 + 4/13) = 6.5/9 = 13/18
#   on_time      (5/12·1 + 3/12·1) / (5/12 + 3/12) = 1
#   satisfaction (5/11·1/2) / (5/11) = 1/2
#   compliance   (5/13·1/2 + 4/13·1) / (9/13) = 13/18
CRUDE = {"延安": dict(response_rate=(8, 9), on_time_rate=(8, 9), satisfaction_rate=(5, 9), compliance_rate=(7, 9)),
         "宝鸡": dict(response_rate=(3, 4), on_time_rate=(3, 3), satisfaction_rate=(1, 2), compliance_rate=(3, 4))}
ADJUSTED = {"延安": dict(response_rate=34 / 39, on_time_rate=11 / 12, satisfaction_rate=7 / 11, compliance_rate=11 / 13),
            "宝鸡": dict(response_rate=13 / 18, on_time_rate=1.0, satisfaction_rate=1 / 2, compliance_rate=13 / 18)}


@pytest.fixture(scope="module")
def fair_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fair")
    db_file = tmp / "fair.duckdb"
    path = write_csv(tmp / "fair.csv", [HEADER] + ROWS)
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", str(path), "--db", str(db_file)]).exit_code == 0
    assert runner.invoke(app, ["check", "--db", str(db_file), "--as-of", "2026-03-20"]).exit_code == 0
    return db_file


def kpi(db_file, *args):
    result = CliRunner().invoke(app, ["kpi", "--db", str(db_file), "--as-of", "2026-03-20", *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_adjusted_rates_by_city(fair_db):
    data = json.loads(kpi(fair_db, "--by", "city", "--adjusted", "--detail", "--format", "json"))
    rows = {r["city"]: r for r in data["rows"]}
    assert set(rows) == {"延安", "宝鸡"}
    for city, figures in CRUDE.items():
        for fig, (k, n) in figures.items():
            row = rows[city]
            assert (row[f"{fig}_num"], row[f"{fig}_den"]) == (k, n), (city, fig)
            assert row[fig] == k / n, (city, fig)                      # full precision, not rounded
            low, high = by_hand(k, n)
            assert row[f"{fig}_low"] == pytest.approx(low, abs=1e-12), (city, fig)
            assert row[f"{fig}_high"] == pytest.approx(high, abs=1e-12), (city, fig)
            assert row[f"{fig}_adjusted"] == pytest.approx(ADJUSTED[city][fig], rel=1e-12), (city, fig)
    # 延安's adjusted response rate is below its crude 8/9: its late response is in the heaviest stratum
    assert rows["延安"]["response_rate_adjusted"] < rows["延安"]["response_rate"]


def test_detail_columns_in_order_and_mean_rating(fair_db):
    data = json.loads(kpi(fair_db, "--by", "city", "--adjusted", "--detail", "--format", "json"))
    row = {r["city"]: r for r in data["rows"]}["延安"]
    rates = ["response_rate", "resolution_rate", "on_time_rate", "satisfaction_rate", "followup_rate",
             "compliance_rate"]
    figures = ["cases", "response_rate", "resolution_rate", "on_time_rate", "satisfaction_rate", "mean_rating",
               "followup_rate", "compliance_rate"]
    detail = []
    for f in figures[1:]:
        detail += [f"{f}_num", f"{f}_den"] + ([f"{f}_low", f"{f}_high"] if f in rates else [])
    adjusted = ["response_rate_adjusted", "on_time_rate_adjusted", "satisfaction_rate_adjusted",
                "compliance_rate_adjusted"]
    assert list(row) == ["city"] + figures + detail + adjusted
    assert set(ADJUSTED_FIGURES) == {a.removesuffix("_adjusted") for a in adjusted}
    # mean rating: 满意 = 4 (Y1–Y4, Y8), 不满意 = 2 (Y5–Y7, Y9): (5·4 + 4·2) / 9 = 28/9; no interval
    assert (row["mean_rating_num"], row["mean_rating_den"], row["mean_rating"]) == (28, 9, 28 / 9)
    assert "mean_rating_low" not in row
    # follow-up: Y5, Y7, Y9 followed up in time, Y6 not: 3/4; compliance: Y5 and Y6 are not
    assert (row["followup_rate_num"], row["followup_rate_den"]) == (3, 4)
    assert (row["compliance_rate_num"], row["compliance_rate_den"]) == (7, 9)


def test_adjusted_without_grouping_is_the_crude_rate(fair_db):
    row = json.loads(kpi(fair_db, "--adjusted", "--format", "json"))["rows"][0]
    # both cities: response 11/13, on_time 11/12, satisfaction 6/11, compliance 10/13
    for fig, value in dict(response_rate=11 / 13, on_time_rate=11 / 12, satisfaction_rate=6 / 11,
                           compliance_rate=10 / 13).items():
        assert row[fig] == value
        assert row[f"{fig}_adjusted"] == pytest.approx(value, rel=1e-12)


def test_adjusted_weights_over_the_groups_of_the_output(fair_db):
    """--by city,service_type: the same strata weights; (宝鸡, 代办) has no rated case, so its adjusted
    satisfaction is empty; (延安, 帮办) = (5·1 + 4·1/4) / (5 + 4) = 2/3."""
    data = json.loads(kpi(fair_db, "--by", "city,service_type", "--adjusted", "--format", "json"))
    rows = {(r["city"], r["service_type"]): r for r in data["rows"]}
    assert rows[("宝鸡", "代办")]["satisfaction_rate_adjusted"] is None
    assert rows[("宝鸡", "代办")]["satisfaction_rate"] is None
    assert rows[("延安", "帮办")]["satisfaction_rate_adjusted"] == pytest.approx(2 / 3, rel=1e-12)
    # (延安, 代办) is S3 only: its adjusted rate is its rate there
    assert rows[("延安", "代办")]["satisfaction_rate_adjusted"] == pytest.approx(1 / 2, rel=1e-12)
    # --by object_type: the NULL object type is a group (and a stratum) like the others
    data = json.loads(kpi(fair_db, "--by", "object_type", "--adjusted", "--format", "json"))
    rows = {r["object_type"]: r for r in data["rows"]}
    assert set(rows) == {"老年人", "其他企业", None}
    assert rows[None]["on_time_rate_adjusted"] == pytest.approx(1.0, rel=1e-12)        # 3/3 in S3


def test_csv_full_precision_and_columns(fair_db):
    text = kpi(fair_db, "--by", "city", "--detail", "--adjusted", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    yanan = {r["city"]: r for r in rows}["延安"]
    assert float(yanan["response_rate"]) == 8 / 9                  # 0.8888888888888888, not 0.888889
    assert float(yanan["response_rate_adjusted"]) == pytest.approx(34 / 39, rel=1e-12)
    assert len(yanan["response_rate"]) > 10
    assert (yanan["satisfaction_rate_num"], yanan["satisfaction_rate_den"]) == ("5", "9")
    baoji = {r["city"]: r for r in rows}["宝鸡"]
    assert baoji["on_time_rate_high"] == "1.0"
    plain = list(csv.reader(io.StringIO(kpi(fair_db, "--by", "city", "--format", "csv"))))
    assert plain[0] == ["city", "cases", "response_rate", "resolution_rate", "on_time_rate", "satisfaction_rate",
                        "mean_rating", "followup_rate", "compliance_rate"]
    assert float({r[0]: r for r in plain[1:]}["延安"][2]) == 8 / 9


def test_table_shows_counts_and_interval(fair_db):
    out = kpi(fair_db, "--by", "city", "--detail", "--adjusted")
    line = [x for x in out.splitlines() if x.startswith("宝鸡")][0].split("\t")
    assert line[2] == "75.0% (3/4, 30.1–95.4%)"                   # response 3/4: wilson by hand above
    assert line[6] == "3.00 (6/2)"                                # mean rating: (不满意 2 + 满意 4) / 2
    assert line[5] == "50.0% (1/2, 9.5–90.5%)"
    assert "满意率(调整)" in out.splitlines()[1]
    assert "(" not in "".join(kpi(fair_db, "--by", "city").splitlines()[1:])       # no detail unless asked


# --- ranks ----------------------------------------------------------------------------------
def frame(rows, index=None):
    return pd.DataFrame(rows, columns=["city", "x", "x_den", "x_low", "x_high"], index=index)


def as_list(series):
    return [None if pd.isna(v) else v for v in series]


def test_ranks_distinguishable_when_intervals_do_not_overlap():
    df = frame([("甲", 0.90, 200, 0.85, 0.94),
                ("乙", 0.70, 200, 0.63, 0.76),
                ("丙", 0.66, 200, 0.59, 0.72),     # overlaps 乙
                ("丁", 0.30, 200, 0.24, 0.37)])
    out = rank_with_marks(df, "x", 30)
    assert as_list(out["x_rank"]) == [1, 2, 3, 4]
    assert as_list(out["x_distinct"]) == [True, False, False, True]
    assert as_list(out["x_distinct_next"]) == [True, False, True, None]
    assert as_list(out["x_small"]) == [False] * 4
    assert list(out.columns[:5]) == list(df.columns)


def test_ranks_with_ties_empty_small_and_touching_intervals():
    df = frame([("甲", 0.8, 50, 0.67, 0.89),
                ("乙", 0.8, 50, 0.67, 0.89),        # tied with 甲
                ("丙", None, 0, None, None),         # empty rate: no rank
                ("丁", 0.4, 10, 0.17, 0.66),
                ("戊", 0.1, 50, 0.04, 0.16),         # clear of every other
                ("己", 0.6, 29, 0.42, 0.67)],        # touches 甲 and 乙 at 0.67: overlapping
               index=[7, 3, 5, 1, 9, 2])
    out = rank_with_marks(df, "x", 30)
    assert list(out.index) == [7, 3, 5, 1, 9, 2]
    assert as_list(out["x_rank"]) == [1, 1, None, 4, 5, 3]
    assert as_list(out["x_distinct"]) == [False, False, None, False, True, False]
    # next rank below 1 is 3 (己, touching), below 3 is 4 (丁, overlapping), below 4 is 5 (戊, clear)
    assert as_list(out["x_distinct_next"]) == [False, False, None, True, None, False]
    assert as_list(out["x_small"]) == [False, False, True, True, False, True]
    assert as_list(rank_with_marks(df, "x", 0)["x_small"]) == [False] * 6

    low = rank_with_marks(df, "x", 30, higher_is_better=False)
    assert as_list(low["x_rank"]) == [4, 4, None, 2, 1, 3]
    assert as_list(low["x_distinct_next"]) == [None, None, None, False, True, False]


def test_a_single_ranked_group_is_distinct():
    out = rank_with_marks(frame([("甲", 0.5, 40, 0.35, 0.65), ("乙", None, 0, None, None)]), "x", 30)
    assert as_list(out["x_rank"]) == [1, None]
    assert as_list(out["x_distinct"]) == [True, None]
    assert as_list(out["x_distinct_next"]) == [None, None]


# --- the pack setting -----------------------------------------------------------------------
def test_min_cases_setting():
    pack = load_pack()
    assert pack.settings["min_cases"] == 30 == MIN_CASES_DEFAULT
    assert min_cases(pack.settings) == 30
    assert min_cases({"min_cases": 50}) == 50
    assert min_cases({}) == 30
    assert min_cases({"default": {"min_cases": 12}, "延安": {}}) == 12      # as stored in runs.settings
    # a comparison setting: not a column of case_facts or cfg
    assert "min_cases" not in [c.name for c in rulecontract.FACT_COLUMNS]
    assert "min_cases" not in [c.name for c in rulecontract.CFG.columns]


def _pack_copy(tmp_path, old, new):
    target = tmp_path / "pack"
    shutil.copytree(pack_dir(), target, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    meta = target / "pack.yaml"
    text = meta.read_text(encoding="utf-8")
    assert old in text
    meta.write_text(text.replace(old, new), encoding="utf-8")
    return target, meta


@pytest.mark.parametrize("value", ["-1", "thirty", "true", "2.5"])
def test_min_cases_is_validated(tmp_path, value):
    target, meta = _pack_copy(tmp_path, "min_cases: 30", f"min_cases: {value}")
    with pytest.raises(PackError) as exc:
        load_pack(target)
    assert any(p.startswith(f"{meta}:") and "min_cases" in p for p in exc.value.problems)


def test_min_cases_is_optional_and_not_per_city(tmp_path):
    target, _ = _pack_copy(tmp_path, "  min_cases: 30", "  # no min_cases")
    pack = load_pack(target)
    assert "min_cases" not in pack.settings and min_cases(pack.settings) == 30
    target, meta = _pack_copy(tmp_path / "b", "cities: {}", "cities:\n  榆林:\n    min_cases: 10")
    with pytest.raises(PackError) as exc:
        load_pack(target)
    assert any(p.startswith(f"{meta}:") and "min_cases" in p and "按市" in p for p in exc.value.problems)
