"""`audit rectify import`: the halls' filled-in rectification lists read back into ``rectify_answers``.

The workbooks may come back in any order and any subset, their rows sorted, filtered or deleted,
columns added or moved: a sheet is a list when one of its first rows holds the key header
(``审计键 (请勿修改)``), and every column is found by its header text. Each data row (a row under
the header with any cell filled) ends in exactly one place, counted per file:

- **rejected**, with sheet, row, column and reason: no key; a key that is not one; a key of another
  database; a key changed (its HMAC does not match, `audit.rectify.keys`); 地市, 办件编号 or 规则编号
  not those of the key (a sort that left the key column behind); a run or finding the database does
  not have; an answer without a valid 整改状态 (`audit.rectify.STATUSES`) or with a 整改完成日期
  that is not a date; the same finding twice in one file with different answers;
- **unchanged**: the finding's stored answer is already this one (the same file again), or the
  row has no answer at all (an empty answer never erases one);
- **recorded**: a new answer; it **supersedes** the finding's earlier answer (kept in
  ``rectify_superseded``), and the summary names the file that answer came from.

read = recorded + rejected + unchanged, checked before the commit. Files are taken in the order
given (a later file's answer supersedes an earlier one's) and the whole import is one transaction;
a file that cannot be read as a list is an `InputError` (exit 3) before anything is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import unicodedata
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from audit.db import database_identity, ensure_schema, transaction
from audit.errors import AuditError, InputError
from audit.rectify import STATUSES
from audit.rectify.keys import FindingKey, KeyProblem, authentic, read_key
from audit.rectify.lists import ACTION, DONE, KEY_HEADER, OWNER, STATUS
from audit.spreadsheet import unguard_cell

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # .xls, and .xlsx encrypted with a password
HEADER_ROWS = 30             # a list's header is within the first rows of its sheet
CHECKED = {"地市": "city", "办件编号": "case_id", "规则编号": "rule_id"}   # visible cells checked against the key
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:\s+0?0:00(?::00)?)?$")
ANSWER_FIELDS = ("owner", "status", "action", "done_on")


@dataclass
class Rejected:
    """A row that was not recorded, and why."""

    sheet: str
    row: int
    column: str | None
    reason: str


@dataclass
class _Row:
    sheet: str
    row: int
    key: FindingKey | None = None
    problem: tuple[str | None, str] | None = None   # (column, reason): rejects the row whatever else holds
    value_problem: tuple[str, str] | None = None    # … unless the key already rejects it
    answer: tuple = (None, None, None, None)        # owner, status, action, done_on
    mac: str = ""
    shown: dict[str, str | None] = field(default_factory=dict)   # 地市, 办件编号, 规则编号 as the row shows them
    run_id: int | None = None                       # the run the key's finding is in now

    @property
    def blank(self) -> bool:
        return all(v is None for v in self.answer)


@dataclass
class FileAnswers:
    """One returned workbook: what was read and what became of each row."""

    path: Path
    sha256: str
    size_bytes: int
    sheets: list[str]
    rows: list[_Row] = field(default_factory=list, repr=False)
    recorded: int = 0
    unchanged: int = 0
    blank: int = 0                  # of the unchanged: rows without any answer
    superseded: int = 0             # of the recorded: rows that replaced an earlier answer
    superseded_from: Counter = field(default_factory=Counter)     # "file (导入 N)" -> rows
    rejects: list[Rejected] = field(default_factory=list)
    runs_remade: dict[int, int] = field(default_factory=dict)      # run of the key -> run now

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def rows_read(self) -> int:
        return len(self.rows)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


@dataclass
class ImportReport:
    """The result of one `import_answers`."""

    import_id: int
    files: list[FileAnswers]

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)


# --- reading a workbook -------------------------------------------------------------------------
def read_workbook(path: Path) -> FileAnswers:
    """The data rows of every list sheet of a returned workbook, with their keys and answers parsed
    (nothing checked against a database yet). InputError when the file is not such a workbook."""
    import openpyxl  # here: `audit rectify export` does without it
    from openpyxl.utils.exceptions import InvalidFileException

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: 无法读取 ({exc.strerror or exc})") from None
    if data.startswith(OLE2_MAGIC):
        raise InputError(f"{path}: 是旧版 Excel (.xls) 或加密的工作簿，无法读取：请在 Excel 中另存为 .xlsx (不加密码) 后交回")
    try:
        # From the bytes, not the path: the content decides, not the file name's extension.
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: 不是可读的 XLSX 工作簿 (not a readable .xlsx workbook: {type(exc).__name__})") from None
    found = FileAnswers(path, hashlib.sha256(data).hexdigest(), len(data), [])
    try:
        for ws in wb.worksheets:
            if _read_sheet(ws, found):
                found.sheets.append(ws.title)
    finally:
        wb.close()
    if not found.sheets:
        raise InputError(f"{path}: 没有整改清单工作表 (找不到表头“{KEY_HEADER}”；"
                         "请交回 audit rectify export 写出的工作簿)")
    return found


def _read_sheet(ws, found: FileAnswers) -> bool:
    """Add the sheet's data rows to `found`; False when the sheet is not a list."""
    if hasattr(ws, "reset_dimensions"):
        ws.reset_dimensions()    # some writers store a wrong sheet size; read to the last row
    columns = None
    for r, values in enumerate(ws.iter_rows(values_only=True), start=1):
        if columns is None:
            if r > HEADER_ROWS:
                return False
            columns = _header(values)
            continue
        cells = {name: values[j] if j < len(values) else None for name, j in columns.items()}
        if all(_text(v) is None for v in values):
            continue
        found.rows.append(_parse_row(ws.title, r, cells))
    return columns is not None


def _header(values) -> dict[str, int] | None:
    """Column of each header this module reads (the first of a name), if the row has the key's."""
    heads = [_norm(v) for v in values]
    key = next((j for j, h in enumerate(heads) if h.startswith(_norm("审计键"))), None)
    if key is None:
        return None
    columns = {KEY_HEADER: key}
    for name in (OWNER, STATUS, ACTION, DONE, *CHECKED):
        if _norm(name) in heads:
            columns[name] = heads.index(_norm(name))
    return columns


def _norm(value) -> str:
    """A header as compared: NFKC, without spaces (全角括号 = ASCII ones)."""
    return "".join(unicodedata.normalize("NFKC", str(value or "")).split())


def _text(value) -> str | None:
    """A cell as text (None when empty); our formula guard's apostrophe dropped."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(unguard_cell(value) if isinstance(value, str) else value).strip()
    return text or None


def _parse_row(sheet: str, r: int, cells: dict) -> _Row:
    row = _Row(sheet, r)
    done = cells.get(DONE)
    row.answer = (_text(cells.get(OWNER)), _text(cells.get(STATUS)), _text(cells.get(ACTION)),
                  None if isinstance(done, str) and not done.strip() else done)
    key_text = _text(cells.get(KEY_HEADER))
    if key_text is None:
        row.problem = (KEY_HEADER, "没有审计键 (该行不是导出的发现，或审计键被删除)")
    else:
        try:
            row.key, row.mac = read_key(key_text)
        except KeyProblem as exc:
            row.problem = (KEY_HEADER, str(exc))
    row.shown = {name: _text(cells[name]) for name in CHECKED if name in cells}
    if not row.blank:
        _parse_answer(row)
    return row


def _parse_answer(row: _Row) -> None:
    owner, status, action, done = row.answer
    if status is None:
        row.value_problem = (STATUS, f"填写了答复但没有{STATUS} (应为 {'、'.join(STATUSES)} 之一)")
        return
    status = "".join(unicodedata.normalize("NFKC", status).split())
    if status not in STATUSES:
        row.value_problem = (STATUS, f"{STATUS} {row.answer[1]!r} 不是 {'、'.join(STATUSES)} 之一")
        return
    day, problem = _date(done)
    if problem:
        row.value_problem = (DONE, problem)
        return
    row.answer = (owner, status, action, day)


def _date(value) -> tuple[dt.date | None, str | None]:
    """A 整改完成日期 cell as a date, or the reason it is not one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return None, f"{DONE} 是数字 {_text(value)}，不是日期：请写成 2026-04-15 这样的日期 (或把该列设为日期格式)"
    else:
        text = _text(value) or ""
        m = _DATE.match(unicodedata.normalize("NFKC", text))
        try:
            day = dt.date(*map(int, m.groups())) if m else None
        except ValueError:
            day = None
        if day is None:
            return None, f"{DONE} {text!r} 不是日期 (应写成 2026-04-15 这样的日期)"
    if not 2000 <= day.year <= 2100:
        return None, f"{DONE} {day} 不在 2000–2100 年之间"
    return day, None


# --- checking against the database and storing ---------------------------------------------------
def import_answers(con, paths: list[Path]) -> ImportReport:
    """Read the returned lists `paths` (in this order) and store their answers (see the module
    doc) in one transaction; every workbook is read before anything is stored."""
    ensure_schema(con)
    files = [read_workbook(p) for p in paths]
    identity = database_identity(con, create=False)
    for f in files:
        for row in f.rows:
            _check_key(row, identity)
    with transaction(con):
        import_id = con.execute("SELECT nextval('rectify_import_seq')").fetchall()[0][0]
        for file_id, f in enumerate(files):
            _store(con, import_id, file_id, f)
            if f.rows_read != f.recorded + f.rejected + f.unchanged:
                raise AuditError(f"内部错误: {f.name} 读入 {f.rows_read} 行 ≠ 记录 {f.recorded} + 拒绝 {f.rejected} + "
                                 f"未变 {f.unchanged}；导入已撤销")
            con.execute("INSERT INTO rectify_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [import_id, file_id, str(f.path), f.name, f.sha256, f.size_bytes,
                         dt.datetime.now().replace(microsecond=0), f.rows_read, f.recorded, f.rejected, f.unchanged,
                         f.superseded])
    return ImportReport(import_id, files)


def _check_key(row: _Row, identity: tuple[str, bytes] | None) -> None:
    """Refuse a key of another database, a changed key, and visible cells that are not its finding's."""
    if row.problem or row.key is None:
        return
    key = row.key
    if identity is None or key.database_id != identity[0]:
        ours = f"本库 {identity[0]}" if identity else "本库还没有导出过整改清单"
        row.problem = (KEY_HEADER, f"审计键属于另一个数据库 ({key.database_id}，{ours})：这份清单不是从本数据库导出的，"
                                   "或审计键被改动")
        return
    if not authentic(identity[1], key, row.mac):
        row.problem = (KEY_HEADER, "审计键被改动 (校验码不符，tampered key)：请用导出时的原值")
        return
    for name, shown in row.shown.items():
        expected = getattr(key, CHECKED[name])
        if shown is not None and shown != expected:
            row.problem = (name, f"{name} {shown!r} 与审计键中的 {expected!r} 不符：排序或粘贴时该行与审计键错位了？"
                                 f"(排序时须选中整张表，含“{KEY_HEADER}”列)")
            return


def _store(con, import_id: int, file_id: int, f: FileAnswers) -> None:
    """Decide each row of one file against the database as it now is, and store its answers."""
    _resolve_findings(con, f)
    final: dict[tuple, list[_Row]] = defaultdict(list)
    for row in f.rows:
        if row.problem:
            _reject(f, row, *row.problem)
        elif row.blank:
            f.unchanged += 1
            f.blank += 1
        elif row.value_problem:
            _reject(f, row, *row.value_problem)
        else:
            final[_finding(row)].append(row)
    answers = []
    for rows in final.values():
        if len({r.answer for r in rows}) > 1:
            where = "、".join(f"{r.sheet} 第 {r.row} 行" for r in rows)
            for r in rows:
                _reject(f, r, None, f"同一条发现在本文件中出现多次且答复不同 ({where})：请只保留一行")
            continue
        answers.append(rows[0])
        f.unchanged += len(rows) - 1          # the same answer again in the same file
    if not answers:
        return
    # done_on as text: a column of dates and None would reach DuckDB as objects
    new = pd.DataFrame([(*_finding(r), *r.answer[:3], r.answer[3] and r.answer[3].isoformat(), import_id, file_id,
                         f.name, f.sha256, r.sheet, r.row) for r in answers],
                       columns=["run_id", "city", "case_id", "rule_id", *ANSWER_FIELDS, "import_id", "file_id",
                                "file_name", "sha256", "sheet", "source_row"], dtype=object)
    con.register("_rx_new", new)
    try:
        con.execute("""CREATE OR REPLACE TEMP TABLE _rx_changed AS
            SELECT n.*, a.file_name AS earlier_file, a.import_id AS earlier_import, a.run_id IS NOT NULL AS supersedes
            FROM _rx_new n LEFT JOIN rectify_answers a USING (run_id, city, case_id, rule_id)
            WHERE a.run_id IS NULL OR a.owner IS DISTINCT FROM n.owner OR a.status IS DISTINCT FROM n.status
               OR a.action IS DISTINCT FROM n.action OR a.done_on IS DISTINCT FROM n.done_on::DATE""")
    finally:
        con.unregister("_rx_new")
    changed = con.execute("SELECT count(*), count(*) FILTER (WHERE supersedes) FROM _rx_changed").fetchall()[0]
    f.recorded, f.superseded = changed
    f.unchanged += len(answers) - f.recorded
    for name, earlier, n in con.execute("""SELECT earlier_file, earlier_import, count(*) FROM _rx_changed
                                           WHERE supersedes GROUP BY ALL ORDER BY earlier_import, earlier_file""").fetchall():
        f.superseded_from[f"{name} (导入 {earlier})"] = n
    con.execute("""INSERT INTO rectify_superseded SELECT a.*, ? FROM rectify_answers a
                   SEMI JOIN _rx_changed c USING (run_id, city, case_id, rule_id)""", [import_id])
    con.execute("""DELETE FROM rectify_answers a USING _rx_changed c
                   WHERE a.run_id = c.run_id AND a.city = c.city AND a.case_id = c.case_id AND a.rule_id = c.rule_id""")
    con.execute("""INSERT INTO rectify_answers
                   SELECT run_id::BIGINT, city, case_id, rule_id, owner::VARCHAR, status, action::VARCHAR, done_on::DATE,
                          import_id::BIGINT, file_id::INTEGER, file_name, sha256, sheet, source_row::BIGINT
                   FROM _rx_changed""")
    con.execute("DROP TABLE _rx_changed")


def _resolve_findings(con, f: FileAnswers) -> None:
    """Each key's run as it is now (a run made again on the same data has a new number: found by
    its run key), and whether the run has the key's finding; rows without them are rejected."""
    keyed = [r for r in f.rows if not r.problem]
    if not keyed:
        return
    runs = {r.key.run_key for r in keyed}
    now = dict(con.execute("SELECT left(run_key, 12), run_id FROM runs WHERE list_contains(?, left(run_key, 12))",
                           [sorted(runs)]).fetchall())
    wanted = pd.DataFrame([(i, now.get(r.key.run_key), r.key.city, r.key.case_id, r.key.rule_id)
                           for i, r in enumerate(keyed)], columns=["i", "run_id", "city", "case_id", "rule_id"])
    con.register("_rx_wanted", wanted)
    try:
        present = {i for (i,) in con.execute("""
            SELECT w.i FROM _rx_wanted w SEMI JOIN findings x
              ON x.run_id = w.run_id AND x.city = w.city AND x.case_id = w.case_id AND x.rule_id = w.rule_id
            WHERE w.rule_id NOT LIKE 'DATA-%'""").fetchall()}
    finally:
        con.unregister("_rx_wanted")
    for i, row in enumerate(keyed):
        key, run_now = row.key, now.get(row.key.run_key)
        if run_now is None:
            row.problem = (KEY_HEADER, f"审计 {key.run_id} 已不在本数据库中 (审计结果被删除)")
        elif i not in present:
            row.problem = (KEY_HEADER, f"审计 {run_now} 中没有这条发现 ({key.city} {key.case_id} {key.rule_id})")
        else:
            row.run_id = run_now
            if run_now != key.run_id:
                f.runs_remade[key.run_id] = run_now


def _finding(row: _Row) -> tuple:
    return row.run_id, row.key.city, row.key.case_id, row.key.rule_id


def _reject(f: FileAnswers, row: _Row, column: str | None, reason: str) -> None:
    f.rejects.append(Rejected(row.sheet, row.row, column, reason))


# --- the summary --------------------------------------------------------------------------------
def format_import(report: ImportReport, limit: int = 200) -> str:
    """Per file: read = recorded + rejected + unchanged, what was superseded (naming the earlier
    files), and every rejected row with sheet, row, column and reason (the first `limit` per file)."""
    lines = [f"整改答复导入 {report.import_id}:"]
    for f in report.files:
        lines.append(f"  {f.name} (SHA-256 {f.sha256[:12]}…，工作表 {'、'.join(f.sheets)}): 读入 {f.rows_read} 行 = "
                     f"记录 {f.recorded} + 拒绝 {f.rejected} + 未变 {f.unchanged}"
                     + (f" (其中未填写答复 {f.blank})" if f.blank else ""))
        if f.superseded:
            earlier = "、".join(f"{name} {n} 条" for name, n in f.superseded_from.items())
            lines.append(f"    其中 {f.superseded} 条覆盖了较早的答复 (superseded): {earlier}")
        for old, new in sorted(f.runs_remade.items()):
            lines.append(f"    审计 {old} 已由审计 {new} 替换 (同样的数据重新审计)：答复记在审计 {new} 的发现上")
        for rej in f.rejects[:limit]:
            column = f" [{rej.column}]" if rej.column else ""
            lines.append(f"    拒绝: {f.name} 工作表 {rej.sheet} 第 {rej.row} 行{column}: {rej.reason}")
        if f.rejected > limit:
            lines.append(f"    … 另有 {f.rejected - limit} 行被拒绝")
    t = report.total
    lines.append(f"合计: 读入 {t('rows_read')} 行 = 记录 {t('recorded')} + 拒绝 {t('rejected')} + 未变 {t('unchanged')}"
                 + (f"；覆盖较早的答复 {t('superseded')} 条" if t("superseded") else ""))
    return "\n".join(lines)
