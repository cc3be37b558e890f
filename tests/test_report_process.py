"""The report's process view (六、过程视图): variants and the directly-follows map, per city.

Every figure is computed again here in plain Python from the events as written (the raw rows of
``event_rows``, ordered by time then seq), the run's findings and the national calendar (the
``chinese_calendar`` package) with the override file the test wrote — then compared with what the
page shows, selected from the parsed HTML (never whole files).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import chinese_calendar
import pytest
import yaml

from audit.db import connect
from audit.ingest import ingest
from audit.report import process
from tests.conftest import REPO, query, write_csv
from tests.test_check import ingest_sample
from tests.test_report import invoke, parse

SEP = " → "


# --- the process view computed from the raw events ----------------------------------------
def run_of(db: Path) -> int:
    return query(db, "SELECT max(run_id) FROM runs")[0][0]


def traces(db: Path) -> dict[tuple[str, str], list[tuple[str, dt.date]]]:
    """Each case of the latest run with events: its (step, date) in time order, ties by seq."""
    run = run_of(db)
    in_run = set(query(db, "SELECT city, case_id FROM run_cases WHERE run_id = ?", [run]))
    by_case = defaultdict(list)
    for city, case_id, step, time, seq in query(db, 'SELECT city, case_id, step, "time", seq FROM event_rows'):
        if (city, case_id) in in_run:
            by_case[(city, case_id)].append((time, seq, step))
    return {key: [(step, time.date()) for time, _, step in sorted(events)] for key, events in by_case.items()}


def noncompliant(db: Path) -> set[tuple[str, str]]:
    return set(query(db, "SELECT city, case_id FROM findings WHERE run_id = ? AND severity = 'error' "
                         "AND waiver_id IS NULL", [run_of(db)]))


def workdays(a: dt.date, b: dt.date, rest: set[dt.date] = frozenset()) -> int:
    """Working days in [a, b) on the national calendar, `rest` days off as well."""
    return sum(chinese_calendar.is_workday(a + dt.timedelta(days=i)) and a + dt.timedelta(days=i) not in rest
               for i in range((b - a).days))


def expected(db: Path, city: str, rest: set[dt.date] = frozenset()) -> dict:
    """The city's variants, step counts and edges (with their waits), from the raw events."""
    cases = {cid: t for (c, cid), t in traces(db).items() if c == city}
    bad = {cid for c, cid in noncompliant(db) if c == city}
    variants = defaultdict(list)
    steps = Counter()
    waits = defaultdict(list)
    for cid, trace in cases.items():
        names = [s for s, _ in trace]
        variants[tuple(names)].append(cid)
        steps.update(names)
        waits[(None, names[0])].append(None)
        waits[(names[-1], None)].append(None)
        for (a, da), (b, db_) in zip(trace, trace[1:]):
            waits[(a, b)].append(workdays(da, db_, rest))
    ranked = sorted(variants.items(), key=lambda kv: (-len(kv[1]), kv[0]))  # ties: by the sequence
    return {"cases": len(cases), "variants": ranked, "bad": bad, "steps": steps,
            "edges": {k: (len(v), statistics.median(v) if v[0] is not None else None) for k, v in waits.items()}}


def end_key(name, source):
    return (0 if source else 2, "") if name is None else (1, name)


def expected_map(exp: dict) -> tuple[list[str], list[tuple]]:
    """The steps and edges the map should draw, by the documented rule (README 过程视图)."""
    shown = sorted(exp["steps"], key=lambda s: (-exp["steps"][s], s))[:process.MAX_STEPS]
    threshold = max(1, math.ceil(exp["cases"] * process.MIN_EDGE_SHARE))
    drawable = sorted(((a, b) for (a, b), (n, _) in exp["edges"].items()
                       if (a is None or a in shown) and (b is None or b in shown) and n >= threshold),
                      key=lambda e: (-exp["edges"][e][0], end_key(e[0], True), end_key(e[1], False)))
    best = {}
    for a, b in drawable:
        best.setdefault(a, (a, b))
        best.setdefault(b, (a, b))
    best.pop(None, None)
    for room in range(process.MAX_EDGES + 1):   # the most frequent, room kept for loose steps
        top = drawable[:process.MAX_EDGES - room]
        loose = {best[s] for s in best if all(s not in e for e in top)}
        if len(loose) <= room:
            return shown, top + sorted(loose, key=drawable.index)
    raise AssertionError("unreachable")


def days(v) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


# --- what the page shows ------------------------------------------------------------------
def city_view(doc, city: str):
    found = [d for d in doc.by_id("process").find_all("div", class_="process-city") if d.attrs["data-city"] == city]
    assert len(found) == 1, city
    return found[0]


def page_edges(view) -> dict[tuple, dict]:
    out = {}
    for g in view.find_all("g", class_="pm-edge"):
        key = (g.attrs.get("data-source"), g.attrs.get("data-target"))
        assert key not in out
        labels = [t for t in view.find_all("text", class_="pm-label")
                  if (t.attrs.get("data-source"), t.attrs.get("data-target")) == key]
        assert len(labels) == 1, key
        out[key] = {"count": int(g.attrs["data-count"]), "median": g.attrs.get("data-median"),
                    "label": labels[0].text()}
    return out


def page_variants(view) -> list[dict]:
    rows = view.find_all("table")[0].find_all("tbody")[0].find_all("tr")
    out = []
    for tr in rows:
        cells = [c for c in tr.children if not isinstance(c, str)]
        out.append({"steps": tuple(json.loads(tr.attrs["data-steps"])), "text": cells[1].text(),
                    "cases": cells[2].find_all("span", class_="cases")[0].text(),
                    "share": cells[2].find_all("span", class_="sub share")[0].text(),
                    "bad": cells[3].find_all("span", class_="bad")[0].text(),
                    "deviating": tr.attrs.get("class") == "deviating",
                    "tag": bool(cells[3].find_all("span", class_="tag deviating-tag"))})
    return out


def check_city(doc, exp: dict, city: str) -> None:
    """Everything the page says about `city` against `exp` (`expected`)."""
    view = city_view(doc, city)
    # variants: the top ones, their counts, shares, non-compliant cases and marks
    shown = page_variants(view)
    top = exp["variants"][:process.TOP_VARIANTS]
    assert [v["steps"] for v in shown] == [steps for steps, _ in top]
    for v, (_, cases) in zip(shown, top):
        bad = sum(c in exp["bad"] for c in cases)
        assert v["cases"] == f"{len(cases):,}"
        assert v["share"] == f"{100 * len(cases) / exp['cases']:.1f}%"
        assert v["bad"] == f"{bad:,}"
        assert v["deviating"] == v["tag"] == (bad == len(cases))
    hidden = len(exp["variants"]) - len(top)
    cut = view.find_all("p", class_="small variants-cut")[0].text()
    if hidden:
        left = sum(len(c) for _, c in exp["variants"][process.TOP_VARIANTS:])
        assert f"另有 {hidden:,} 个变体未列出，共 {left:,} 件" in cut
    else:
        assert "已列出全部变体" in cut
    assert f"{city}：{exp['cases']:,} 件，{len(exp['variants']):,} 个变体" in view.find_all("h3")[0].text()
    # the map: steps with their events, edges with count, median and label
    steps, edges = expected_map(exp)
    nodes = {g.attrs["data-step"]: int(g.attrs["data-events"]) for g in view.find_all("g", class_="pm-node")}
    assert nodes == {s: exp["steps"][s] for s in steps}
    drawn = page_edges(view)
    assert set(drawn) == set(edges)
    for (a, b), got in drawn.items():
        count, median = exp["edges"][(a, b)]
        assert got["count"] == count
        if a is None or b is None:
            assert got["median"] is None and got["label"] == f"{count:,}"
        else:
            assert got["median"] == days(median)
            assert got["label"] == f"{count:,} · 中位 {days(median)} 个工作日"
    caption = view.find_all("figcaption")[0].text()
    left_out = [e for e in exp["edges"] if e not in set(edges)]
    if left_out:
        total = sum(exp["edges"][e][0] for e in left_out)
        assert f"共 {len(exp['edges'])} 条；未画出 {len(left_out)} 条，共 {total:,} 次" in caption
    else:
        assert "(全部)" in caption


# --- the bundled sample -------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("process")
    db = tmp / "audit.duckdb"
    ingest_sample(db)
    code, out = invoke("check", "--db", db)
    assert code == 0, out
    html = tmp / "报告.html"
    code, out = invoke("report", "--db", db, "--out", html)
    assert code == 0, out
    return db, parse(html.read_text(encoding="utf-8"))


def test_sample_variants_and_map_per_city(sample):
    db, doc = sample
    section = doc.by_id("process")
    assert section.find_all("h2")[0].text() == "六、过程视图"
    assert doc.find_all("h1")[0].text() == "帮办代办服务审计报告"
    cities = [d.attrs["data-city"] for d in section.find_all("div", class_="process-city")]
    assert cities == sorted({c for c, _ in traces(db)})
    for city in cities:
        exp = expected(db, city)
        check_city(doc, exp, city)
        assert any(len(cases) == sum(c in exp["bad"] for c in cases) for _, cases in exp["variants"][:10])


def test_deviating_is_defined_on_the_page(sample):
    _, doc = sample
    note = doc.by_id("process-definitions").text()
    assert "偏离：该变体的每一件都不合规" in note and "未豁免的违规 (error)" in note


# --- working days across a holiday, on each city's calendar --------------------------------
HOLIDAY_CASES = {  # 2025 National Day: 10-01..10-08 off, Sunday 09-28 and Saturday 10-11 worked
    "H1": [("受理", "2025-09-30 10:00"), ("承办", "2025-10-09 09:00"), ("办结", "2025-10-13 09:00")],
    "H2": [("受理", "2025-09-26 16:00"), ("承办", "2025-09-29 09:00"), ("办结", "2025-09-29 15:00")],
    "H3": [("受理", "2025-10-10 09:00"), ("承办", "2025-10-13 09:00"), ("办结", "2025-10-14 09:00")],
    "H4": [("受理", "2025-09-30 09:00"), ("承办", "2025-09-30 15:00"), ("办结", "2025-10-10 09:00")],
}


def test_working_day_medians_across_a_holiday_on_the_city_calendar(tmp_path):
    rows = [["办件编号", "地市", "服务类型", "承诺时限", "环节", "时间"]]
    for city in ("甲市", "乙市"):
        for case_id, events in HOLIDAY_CASES.items():
            rows += [[case_id, city, "帮办", 5, step, time] for step, time in events]
    db = tmp_path / "audit.duckdb"
    con = connect(db)
    ingest(con, [write_csv(tmp_path / "events.csv", rows)])
    con.close()
    calendar = write_csv(tmp_path / "乙市.csv", [["date", "is_workday", "note"], ["2025-09-30", "0", "本地休息"]])
    code, out = invoke("check", "--db", db, "--calendar", f"乙市={calendar}")
    assert code == 0, out
    html = tmp_path / "r.html"
    code, out = invoke("report", "--db", db, "--out", html)
    assert code == 0, out
    doc = parse(html.read_text(encoding="utf-8"))
    for city, rest in (("甲市", set()), ("乙市", {dt.date(2025, 9, 30)})):
        exp = expected(db, city, rest)
        check_city(doc, exp, city)
        drawn = page_edges(city_view(doc, city))
        # by hand: 受理 → 承办 waits 1, 2, 2, 0 working days (甲市) and 0, 2, 2, 0 where 09-30 is off (乙市);
        # 承办 → 办结 3, 0, 1, 2 and 3, 0, 1, 1
        assert drawn[("受理", "承办")]["median"] == ("1.5" if city == "甲市" else "1")
        assert drawn[("承办", "办结")]["median"] == ("1.5" if city == "甲市" else "1")


# --- an open vocabulary: many activities, long traces -------------------------------------
ACTIVITIES = [f"{i // 10 + 1:02d}_ACT_{i % 10:02d}" for i in range(60)]
LONG = [ACTIVITIES[i % 25] for i in range(35)]   # longer than a variant key holds (6 bits × 21)
EVENT_LOGS = Path(os.environ.get("BANGBAN_EVENT_LOGS", REPO.parent / "shared" / "data" / "event-logs"))


def write_open_pack(root: Path, rules: list[tuple[str, str, list[str]]]) -> Path:
    """A pack for any step names (``vocabulary: open``) of error-level template rules
    (id, template, activities), each with a failing and a passing example."""
    (root / "checks").mkdir(parents=True)
    (root / "pack.yaml").write_text(yaml.safe_dump({
        "name": "过程视图测试", "standard": "test", "version": "1", "vocabulary": "open",
        "clauses": {"T": "测试"}, "settings": {}}, allow_unicode=True), encoding="utf-8")
    for rule_id, template, acts in rules:
        a = acts[0]
        fail, ok = {"existence": (["其他"], [a]), "exactly_one": ([a, a], [a])}[template]
        case = [{"name": name, "case": {}, "events": [[s, f"2025-09-01 {9 + i:02d}:00"] for i, s in enumerate(ev)]}
                for name, ev in (("违反", fail), ("满足", ok))]
        (root / "checks" / f"{rule_id}.yaml").write_text(yaml.safe_dump({
            "id": rule_id, "clause": "T", "severity": "error", "title": f"{template} {a}", "rationale": "测试",
            "template": template, "activities": acts, "examples": {"fail": case[:1], "pass": case[1:]}},
            allow_unicode=True), encoding="utf-8")
    return root


def open_vocabulary_db(tmp: Path) -> Path:
    """A CSV event log with 60 step names, ingested with ``vocabulary="open"`` and checked with an
    open pack: 40 cases share one short trace, 12 one trace longer than a variant key holds, the
    rest are drawn at random; some events share their time (kept in file order)."""
    rng = random.Random(13)
    traces_ = [ACTIVITIES[:7]] * 40 + [LONG] * 12
    for _ in range(148):
        trace, i = [ACTIVITIES[0]], 0
        for _ in range(rng.randrange(2, 40)):
            i = max(0, min(len(ACTIVITIES) - 1, i + rng.choice([-2, 0, 1, 1, 2, 3])))
            trace.append(ACTIVITIES[i if rng.random() < 0.85 else rng.randrange(len(ACTIVITIES))])
        traces_.append(trace)
    rows = [["办件编号", "地市", "服务类型", "环节", "时间"]]
    for k, trace in enumerate(traces_):
        time = dt.datetime(2025, 9, 1, 9) + dt.timedelta(days=k % 50)
        for step in trace:
            rows.append([f"C{k:04d}", "市1" if k % 4 else "市2", "帮办", step, time.strftime("%Y-%m-%d %H:%M")])
            time += dt.timedelta(hours=rng.choice([0, 2, 20, 70]))  # 0: a tie, kept in file order
    db = tmp / "audit.duckdb"
    con = connect(db)
    ingest(con, [write_csv(tmp / "events.csv", rows)], vocabulary="open")
    con.close()
    pack = write_open_pack(tmp / "pack", [("T-HAS-05", "existence", [ACTIVITIES[5]]),
                                          ("T-ONE-00", "exactly_one", [ACTIVITIES[0]])])
    code, out = invoke("check", "--db", db, "--pack", pack)
    assert code == 0, out
    return db


@pytest.fixture(scope="module")
def open_db(tmp_path_factory) -> Path:
    return open_vocabulary_db(tmp_path_factory.mktemp("open"))


def test_open_vocabulary_shows_the_most_frequent_steps_and_says_what_is_left_out(open_db, tmp_path):
    html = tmp_path / "r.html"
    code, out = invoke("report", "--db", open_db, "--out", html)
    assert code == 0, out
    doc = parse(html.read_text(encoding="utf-8"))
    # not a 帮办代办 audit: the report is named after the pack it was judged with
    assert doc.find_all("h1")[0].text() == "审计报告：过程视图测试"
    for city in ("市1", "市2"):
        exp = expected(open_db, city)
        assert len(exp["steps"]) > process.MAX_STEPS
        assert 0 < len(exp["bad"]) < exp["cases"]
        check_city(doc, exp, city)
        view = city_view(doc, city)
        caption = view.find_all("figcaption")[0].text()
        shown = sorted(exp["steps"], key=lambda s: (-exp["steps"][s], s))[:process.MAX_STEPS]
        hidden = [s for s in exp["steps"] if s not in shown]
        assert (f"共 {len(exp['steps'])} 个，未画出事件较少的 {len(hidden)} 个，"
                f"共 {sum(exp['steps'][s] for s in hidden):,} 个事件") in caption
        assert len(page_edges(view)) <= process.MAX_EDGES
    # the long shared trace: one variant of 12 cases, written with a gap, whole in data-steps
    rows = page_variants(city_view(doc, "市1"))
    long = [r for r in rows if r["steps"] == tuple(LONG)]
    assert len(long) == 1 and long[0]["cases"] == str(sum(1 for k in range(40, 52) if k % 4))
    assert "… 省略" in long[0]["text"] and "(共 35 个)" in long[0]["text"]
    first = long[0]["text"].split(SEP)[:process.HEAD_RUNS]
    assert [re.sub(r" ×\d+$", "", s) for s in first] == list(long[0]["steps"][:process.HEAD_RUNS])


@pytest.mark.skipif(not (EVENT_LOGS / "BPIC15_1.xes.gz").is_file(),
                    reason=f"the BPI Challenge 2015 logs are not on this machine ({EVENT_LOGS}; set BANGBAN_EVENT_LOGS)")
def test_bpic15_log_of_a_municipality(tmp_path):
    """A real log nobody here wrote (BPI Challenge 2015, municipality 1: 1,199 cases, 398 activity
    codes, half the events sharing a timestamp): the same figures, the same cut-offs."""
    db = tmp_path / "audit.duckdb"
    code, out = invoke("ingest", EVENT_LOGS / "BPIC15_1.xes.gz", "--city", "市1", "--vocabulary", "open", "--db", db)
    assert code == 0, out
    pack = write_open_pack(tmp_path / "pack", [("T-HAS-200", "existence", ["01_HOOFD_200"]),
                                               ("T-ONE-010", "exactly_one", ["01_HOOFD_010"])])
    code, out = invoke("check", "--db", db, "--pack", pack)
    assert code == 0, out
    html = tmp_path / "r.html"
    code, out = invoke("report", "--db", db, "--out", html)
    assert code == 0, out
    doc = parse(html.read_text(encoding="utf-8"))
    exp = expected(db, "市1")
    assert exp["cases"] == 1199 and len(exp["steps"]) > 300 and exp["bad"]
    check_city(doc, exp, "市1")


def test_report_bytes_are_reproducible(open_db, tmp_path):
    first, second = tmp_path / "a.html", tmp_path / "b.html"
    for out in (first, second):
        code, text = invoke("report", "--db", open_db, "--out", out)
        assert code == 0, text
    assert first.read_bytes() == second.read_bytes()
    assert b'class="process-map"' in first.read_bytes()


def test_edge_choice_keeps_room_for_a_step_that_would_hang_loose():
    """31 edges among steps A..F and one rare edge into G: the 30 drawn are the 29 most frequent
    and G's edge, not the 30 most frequent."""
    frequent = [(f"{a}", f"{b}", 100 - i, 0.0) for i, (a, b) in
                enumerate((a, b) for a in "ABCDEF" for b in "ABCDEF" if a != b)][:31]
    rare = ("A", "G", 2, 0.0)
    drawable = frequent + [rare]
    chosen = process._connected_first(drawable)
    assert len(chosen) == process.MAX_EDGES and rare in chosen
    assert chosen[:-1] == frequent[:process.MAX_EDGES - 1]
