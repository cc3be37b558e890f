"""What is written reads back equal. (Ingest is one transaction, kill -9 included: see
tests/test_cli_interrupted.py, which kills it inside the transaction, just before COMMIT.)"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.db import connect
from audit.ingest import ingest
from tests.conftest import write_csv, write_xlsx

HEADER = ["办件编号", "地市", "服务类型", "服务方式", "承诺时限", "收费金额", "到现场次数", "评价", "环节", "时间", "经办人", "备注"]


names = st.text(alphabet=st.sampled_from(list("张王李赵刘陈杨黄周吴abcXYZ0123456789-_ ")), min_size=1, max_size=8).map(str.strip).filter(bool)
case_rows = st.lists(
    st.tuples(
        names,                                                    # case_id
        st.sampled_from(["帮办", "代办"]),
        st.sampled_from(["线上", "线下"]),
        st.integers(0, 30),                                      # promised_days
        st.sampled_from(["非常满意", "满意", "基本满意", "不满意", "非常不满意", None]),
        st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 12, 31)).map(lambda d: d.replace(second=0, microsecond=0)),
        st.one_of(st.none(), names),                             # applicant
    ),
    min_size=1, max_size=25, unique_by=lambda r: r[0],
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=case_rows, fmt=st.sampled_from(["csv-utf8", "csv-gbk", "xlsx"]))
def test_round_trip_case_table(tmp_path_factory, rows, fmt):
    tmp = tmp_path_factory.mktemp("rt")
    header = ["办件编号", "地市", "服务类型", "服务方式", "承诺时限", "评价", "评价时间", "申请人"]
    data = [[cid, "宝鸡", st_, ch, days, rating, when, who] for cid, st_, ch, days, rating, when, who in rows]
    if fmt == "xlsx":
        path = write_xlsx(tmp / "cases.xlsx", [header] + data, title="台账")
    else:
        text_rows = [[c if not isinstance(c, dt.datetime) else c.strftime("%Y-%m-%d %H:%M") for c in r] for r in data]
        path = write_csv(tmp / "cases.csv", [header] + text_rows, encoding="gbk" if fmt == "csv-gbk" else "utf-8")
    con = connect(tmp / "rt.duckdb")
    report = ingest(con, [path])
    assert report.loaded == len(rows)
    got = con.execute("""SELECT case_id, service_type, channel, promised_days, rating, rating_time, applicant
                         FROM cases ORDER BY case_id""").fetchall()
    con.close()
    want = sorted((cid, st_, ch, days, rating, when, who) for cid, st_, ch, days, rating, when, who in rows)
    assert got == want


def test_the_hash_begun_at_start_up_is_the_files(tmp_path):
    """`audit ingest` starts hashing its first file (not an option's value) before the program
    is imported; the loader takes that hash only while the file is unchanged."""
    import hashlib

    from audit.ingest import filescan

    path = write_csv(tmp_path / "ev.csv", [HEADER, ["S1", "延安", "帮办", "线下", "3", "0", "1", "满意", "咨询",
                                                    "2025-03-03", "", ""]])
    db = tmp_path / "x.duckdb"
    filescan.start_early(["--db", str(db), "--city", "延安", str(path)])
    assert [key[0] for key in filescan._EARLY] == [os.path.realpath(path)]
    scan = filescan.FileScan.of(path).result()
    assert scan.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and not filescan._EARLY
    filescan.start_early([str(path)])
    stale = next(iter(filescan._EARLY.values())).result()     # the hash of the file as it was
    path.write_text(path.read_text(encoding="utf-8") + "S2,延安,帮办,线下,3,0,1,满意,咨询,2025-03-04,,\n", encoding="utf-8")
    scan = filescan.FileScan.of(path).result()     # changed since: hashed again
    assert scan is not stale and scan.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() != stale.sha256
    filescan._EARLY.clear()
    subprocess.run([sys.executable, "-m", "audit", "ingest", "--city", "延安", str(path), "--db", str(db)],
                   check=True, capture_output=True)
    con = connect(db)
    assert [r[0] for r in con.execute("SELECT sha256 FROM ingest_files").fetchall()] == [scan.sha256]
