"""`audit calendar --from-notice`: the State Council's holiday notice → a whole-year calendar file.

The oracle is the ``chinesecalendar`` package's own verdict for the years it has: the file made from
each year's published notice must agree with it on every day.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest
from typer.testing import CliRunner

from audit.calendar.notice import parse_notice, read_notice
from audit.calendar.workcalendar import WorkCalendar, read_override_file
from audit.cli import app
from audit.db import connect
from audit.errors import CalendarError, UsageError
from audit.ingest import ingest
from tests.conftest import table, write_csv

DATA = Path(__file__).parent / "data"
D = date.fromisoformat

# Not a published notice: 2027 as it might look (dates made up, weekdays true to the 2027 calendar).
NOTICE_2027 = """国务院办公厅关于2027年部分节假日安排的通知

各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
　　经国务院批准，现将2027年元旦、春节、清明节、劳动节、端午节、中秋节和国庆节放假调休日期的具体安排通知如下。
　　一、元旦：1月1日（周五）至3日（周日）放假，共3天。
　　二、春节：2月5日（农历除夕、周五）至13日（农历正月初八、周六）放假调休，共9天。2月14日（周日）、2月20日（周六）上班。
　　三、清明节：4月3日（周六）至5日（周一）放假，共3天。
　　四、劳动节：5月1日（周六）至5日（周三）放假调休，共5天。4月25日（周日）、5月8日（周六）上班。
　　五、端午节：6月9日（周三）放假，共1天。
　　六、中秋节：9月15日（周三）放假，共1天。
　　七、国庆节：10月1日（周五）至7日（周四）放假调休，共7天。9月26日（周日）、10月9日（周六）上班。
　　节假日期间，各地区、各部门要妥善安排好值班和安全、保卫等工作，遇有重大突发事件，要按规定及时报告并妥善处置，确保人民群众祥和平安度过节日假期。
"""


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def every_day(year: int):
    d = date(year, 1, 1)
    while d.year == year:
        yield d
        d += timedelta(days=1)


def notice_2027(tmp_path: Path) -> Path:
    path = tmp_path / "通知2027.txt"
    path.write_text(NOTICE_2027, encoding="utf-8")
    return path


# -- the published notices against chinesecalendar -----------------------------------------------

@pytest.mark.parametrize("year", [2025, 2026, 2023, 2024])
def test_published_notice_agrees_with_chinesecalendar_on_every_day(year, tmp_path):
    notice = read_notice(DATA / f"notice_{year}.txt")
    assert notice.year == year and notice.title == f"国务院办公厅关于{year}年部分节假日安排的通知"
    path = tmp_path / f"{year}.csv"
    path.write_text(notice.calendar_csv(), encoding="utf-8")
    cal = WorkCalendar.load([path])
    days = list(every_day(year))
    assert len(days) == len(read_override_file(path).keys() & set(days)) in (365, 366)
    wrong = [d for d in days if cal.is_workday(d) != chinese_calendar.is_workday(d)]
    assert wrong == []


def test_notes_say_which_festival_and_which_make_up_day():
    days = read_notice(DATA / "notice_2025.txt").days()
    assert days[D("2025-01-28")] == (False, "春节")
    assert days[D("2025-02-01")] == (False, "春节")          # a Saturday inside the range
    assert days[D("2025-01-26")] == (True, "春节调休上班")
    assert days[D("2025-10-08")] == (False, "国庆节、中秋节")
    assert days[D("2025-10-11")] == (True, "国庆节、中秋节调休上班")
    assert days[D("2025-03-01")] == (False, "周末") and days[D("2025-03-03")] == (True, "")


def test_a_range_across_the_new_year_names_its_years():
    notice = read_notice(DATA / "notice_2023.txt")
    assert notice.sections[0].days_off == [D("2022-12-31"), D("2023-01-01"), D("2023-01-02")]
    days = notice.days()
    assert days[D("2022-12-31")] == (False, "元旦") and min(days) == D("2022-12-31")
    assert sum(1 for d in days if d.year == 2023) == 365


def test_half_width_punctuation_one_line_and_ranges_across_months(tmp_path):
    text = ("国务院办公厅关于2026年部分节假日安排的通知 一、元旦:1月1日(周四)至3日(周六)放假调休,共3天."
            "1月4日(周日)上班. 二、国庆节、中秋节:9月25日(周五)至10月1日(周四)放假,共7天;"
            "9月20日(周日)、10月10日(星期六)上班。")
    notice = parse_notice(text, tmp_path / "x.txt")
    assert [s.name for s in notice.sections] == ["元旦", "国庆节、中秋节"]
    festival = notice.sections[1]
    assert festival.days_off[0] == D("2026-09-25") and festival.days_off[-1] == D("2026-10-01")
    assert len(festival.days_off) == 7 and festival.makeup_days == [D("2026-09-20"), D("2026-10-10")]


def test_full_width_digits_and_a_day_of_the_same_month_in_the_make_up_list(tmp_path):
    text = ("关于２０２６年部分节假日安排的通知\n"
            "三、劳动节：５月１日至５日放假调休，共５天。５月９日（周六）、１０日（周日）上班。\n")
    notice = parse_notice(text, tmp_path / "x.txt")
    assert notice.sections[0].makeup_days == [D("2026-05-09"), D("2026-05-10")]


# -- a year chinesecalendar does not have -----------------------------------------------------------

def test_a_notice_for_an_uncovered_year_makes_that_year_known(tmp_path):
    with pytest.raises(CalendarError):
        WorkCalendar.load().is_workday(D("2027-01-04"))
    out = tmp_path / "2027.csv"
    assert invoke("calendar", "--from-notice", notice_2027(tmp_path), "--out", out)[0] == 0
    cal = WorkCalendar.load([out])
    assert 2027 in cal.covered_years() and cal.fallback is None
    assert not cal.is_workday(D("2027-01-01")) and not cal.is_workday(D("2027-02-08"))
    assert cal.is_workday(D("2027-02-14")) and cal.note(D("2027-02-14")) == "覆盖: 春节调休上班"
    assert cal.add_workdays(D("2026-12-30"), 3) == D("2027-01-05")   # 31 Dec, 4 and 5 Jan
    assert cal.workdays(D("2027-01-01"), D("2028-01-01")) == 365 - 104 - 18 + 6  # 18 weekdays off
    assert cal.fallback_years == set()


def test_audit_check_judges_december_cases_with_the_notice_file(tmp_path):
    db = tmp_path / "dec.duckdb"
    rows = [["办件编号", "地市", "服务类型", "承诺时限", "环节", "时间", "经办人"],
            ["D1", "延安", "帮办", "3", "受理", "2026-12-30 09:00", "张三"],
            ["D1", "延安", "帮办", "3", "办结", "2027-01-05 16:00", "张三"]]
    con = connect(db)
    ingest(con, [write_csv(tmp_path / "dec.csv", rows)])
    con.close()
    code, out = invoke("check", "--db", db)
    assert code == 2 and "2027" in out and "--from-notice" in out

    out_csv = tmp_path / "2027.csv"
    assert invoke("calendar", "--from-notice", notice_2027(tmp_path), "--out", out_csv)[0] == 0
    code, out = invoke("check", "--db", db, "--calendar", out_csv)
    assert code == 0, out
    con = connect(db)
    late = table(con, "SELECT count(*) FROM findings WHERE rule_id = 'REQ-TIME-LIMIT' "
                      "AND run_id = (SELECT max(run_id) FROM runs)")
    fallback_years = table(con, "SELECT calendar_fallback_years FROM runs ORDER BY run_id DESC LIMIT 1")
    con.close()
    assert late == [(0,)]                  # due 5 Jan: 1–3 Jan are the notice's New Year holiday
    assert fallback_years[0][0] in (None, [])
    code, out = invoke("check", "--db", db, "--calendar-fallback", "weekdays")
    con = connect(db)
    assert table(con, "SELECT count(*) FROM findings WHERE rule_id = 'REQ-TIME-LIMIT' "
                      "AND run_id = (SELECT max(run_id) FROM runs)") == [(1,)]   # Mon–Fri only: due 4 Jan
    con.close()


def test_uncovered_year_error_names_the_notice_command(tmp_path):
    with pytest.raises(CalendarError) as err:
        WorkCalendar.load().is_workday(D("2027-03-01"))
    assert "--from-notice" in str(err.value) and "2027.csv" in str(err.value)
    # A limit that falls off the calendar table while the rules run (the data itself ends in 2026).
    db = tmp_path / "open.duckdb"
    rows = [["办件编号", "地市", "服务类型", "承诺时限", "环节", "时间", "经办人"],
            ["D2", "延安", "帮办", "3", "受理", "2026-12-30 09:00", "张三"]]
    con = connect(db)
    ingest(con, [write_csv(tmp_path / "open.csv", rows)])
    con.close()
    code, out = invoke("check", "--db", db)
    assert code == 2 and "2027 年不在工作日历范围内" in out
    assert "audit calendar --from-notice 通知.txt --out 2027.csv" in out


# -- the command ------------------------------------------------------------------------------------

def test_cli_without_out_shows_twelve_months_and_the_csv(tmp_path):
    code, out = invoke("calendar", "--from-notice", DATA / "notice_2026.txt")
    assert code == 0, out
    assert all(f"2026 年 {m} 月工作日历" in out for m in range(1, 13))
    assert "2026-02-14  周六  工作日  覆盖: 春节调休上班" in out
    assert "2026-02-15  周日  休息日  覆盖: 春节" in out
    assert "2026 年工作日 248 天 / 共 365 天" in out
    body = out[out.index("date,is_workday,note"):]
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["date", "is_workday", "note"] and len(rows) == 366
    assert ["2026-02-28", "1", "春节调休上班"] in rows and ["2026-10-07", "0", "国庆节"] in rows
    assert list(tmp_path.iterdir()) == []


def test_cli_out_writes_a_file_that_calendar_accepts(tmp_path):
    out = tmp_path / "2026.csv"
    code, text = invoke("calendar", "--from-notice", DATA / "notice_2026.txt", "--out", out)
    assert code == 0, text
    assert "2026 年 12 月工作日历" in text and str(out) in text and "date,is_workday" not in text
    code, month = invoke("calendar", "2026-02", "--calendar", out)
    assert code == 0, month
    assert "2026-02-14  周六  工作日  覆盖: 春节调休上班" in month
    assert "工作日 16 天 / 共 28 天" in month


def test_cli_one_month_of_the_notice(tmp_path):
    code, out = invoke("calendar", "2026-10", "--from-notice", DATA / "notice_2026.txt", "--out",
                       tmp_path / "2026.csv")
    assert code == 0 and "2026 年 10 月工作日历" in out and "2026 年 9 月工作日历" not in out
    code, out = invoke("calendar", "2025-10", "--from-notice", DATA / "notice_2026.txt")
    assert code == 2 and "2026" in out


def test_cli_needs_a_month_or_a_notice(tmp_path):
    code, out = invoke("calendar")
    assert code == 2 and "--from-notice" in out
    code, out = invoke("calendar", "--out", tmp_path / "x.csv")
    assert code == 2 and "--from-notice" in out
    code, out = invoke("calendar", "--from-notice", DATA / "notice_2026.txt", "--calendar", tmp_path / "x.csv")
    assert code == 2 and "--calendar" in out


def test_cli_garbage_is_exit_2_naming_file_and_line(tmp_path):
    garbage = tmp_path / "会议纪要.txt"
    garbage.write_text("\n会议纪要\n请各单位于下周一前报送材料。\n", encoding="utf-8")
    code, out = invoke("calendar", "--from-notice", garbage, "--out", tmp_path / "x.csv")
    assert code == 2
    assert "会议纪要.txt" in out and "第 2 行" in out and "找不到年份" in out and "放假安排" in out
    assert not (tmp_path / "x.csv").exists()


# -- problems in a notice are reported at once, each with its line -----------------------------------

def problems(text: str) -> str:
    with pytest.raises(UsageError) as err:
        parse_notice("国务院办公厅关于2026年部分节假日安排的通知\n" + text, Path("通知.txt"))
    return str(err.value)


def test_wrong_weekday_count_and_weekday_make_up_day_are_errors():
    msg = problems("一、元旦：1月1日（周五）至3日（周六）放假调休，共4天。1月5日（周一）上班。\n"
                   "二、春节：2月30日放假。\n")
    assert "通知.txt" in msg and "4 处" in msg
    assert "第 2 行 (元旦): 2026-01-01 是周四，通知写的是周五" in msg
    assert "共 4 天" in msg and "本来就上班" in msg
    assert "第 3 行 (春节): 2026年2月30日 不是有效日期" in msg


def test_dates_neither_off_nor_work_and_a_day_both_are_errors():
    msg = problems("一、元旦：1月1日至3日放假，共3天。1月4日，1月10日上班。\n"
                   "二、春节：1月10日放假，共1天。\n")
    assert "1月4日 之后没有“放假”或“上班”" in msg
    assert "1月10日 既是放假日 (第 3 行 春节) 又是调休上班日" in msg


def test_a_notice_without_holiday_lines_is_an_error():
    msg = problems("各省、自治区、直辖市人民政府：\n节假日期间，各地区要妥善安排好值班。\n")
    assert "没有可识别的放假安排" in msg and "第 1–3 行" in msg
