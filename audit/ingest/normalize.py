"""Turn a file's text cells into canonical values, set-based in DuckDB.

`plan_columns` decides what each column of a file means (its field, or the step of a wide
ledger's time column) and the file's layout. `stage_sql` builds one SELECT over the raw cells
that yields the canonical fields and, for a row that cannot be loaded, the first problem found
(`problem`: the reason in words a hall clerk can act on, the column it concerns, the raw cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.errors import InputError
from audit.ingest.profile import Profile
from audit.vocabulary import (
    CASE_ATTRIBUTES,
    CHANNELS,
    RATING_ALIASES,
    RATINGS,
    SERVICE_TYPES,
    normalize_header,
    normalize_value,
)

# Timestamp styles of contract §1.1, most common first. DuckDB's %m/%d/%H accept 1 or 2 digits.
TIME_FORMATS = [
    "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f",
    "%Y年%m月%d日 %H:%M", "%Y年%m月%d日 %H:%M:%S", "%Y年%m月%d日%H:%M", "%Y年%m月%d日%H:%M:%S",
    "%Y年%m月%d日 %H时%M分", "%Y年%m月%d日",
    "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d %H:%M", "%Y.%m.%d", "%Y%m%d %H:%M:%S", "%Y/%m/%d %H:%M:%S.%f",
]


Q = '"'
ZERO_DAYS = ["即办", "即办件", "当场", "当场办结", "立即办理", "当日办结"]
NO_FEE = ["免费", "无", "不收费", "否", "零", "-", "—"]


def _one_of(expr: str, words: list[str]) -> str:
    """`expr` is one of `words`, as a CASE (not IN: see MACROS)."""
    return f"(CASE {expr} " + " ".join(f"WHEN {sql_str(w)} THEN true" for w in words) + " ELSE false END)"


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def has_rows(con, relation: str) -> bool:
    """The table, view or subquery `relation` has at least one row."""
    return con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {relation} LIMIT 1)").fetchall()[0][0] > 0


MACROS = f"""
CREATE OR REPLACE TEMP MACRO _ts_plain(s) AS
    try_strptime(s, [{', '.join(sql_str(f) for f in TIME_FORMATS)}]);
CREATE OR REPLACE TEMP MACRO _ts_zoned(s) AS
    -- ISO 8601 with an offset or Z: convert to naive Asia/Shanghai time (UTC+8, no DST).
    _ts_plain(regexp_extract(s, '^(.*?)(Z|[+-]\\d\\d:?\\d\\d)$', 1))
    - to_minutes(CASE WHEN s LIKE '%Z' THEN 0 ELSE
        (CASE WHEN regexp_extract(s, '([+-])\\d\\d:?\\d\\d$', 1) = '-' THEN -1 ELSE 1 END)
        * (CAST(regexp_extract(s, '[+-](\\d\\d):?(\\d\\d)$', 1) AS INTEGER) * 60
           + CAST(regexp_extract(s, '[+-](\\d\\d):?(\\d\\d)$', 2) AS INTEGER)) END)
    + INTERVAL 8 HOUR;
CREATE OR REPLACE TEMP MACRO _ts_any(s) AS CASE
    WHEN s IS NULL THEN NULL
    WHEN regexp_full_match(s, '[1-9]\\d{{4}}(\\.\\d+)?') AND CAST(s AS DOUBLE) BETWEEN 20000 AND 80000
        -- an Excel date serial that reached us as a number (days since 1899-12-30)
        THEN TIMESTAMP '1899-12-30' + to_microseconds(CAST(round(CAST(s AS DOUBLE) * 86400) AS BIGINT) * 1000000)
    WHEN s LIKE '%T%' AND regexp_matches(s, '(Z|[+-]\\d\\d:?\\d\\d)$') THEN _ts_zoned(s)
    WHEN regexp_full_match(s, '(19|20)\\d{{6}}') THEN try_strptime(s, '%Y%m%d')
    WHEN regexp_full_match(s, '(19|20)\\d{{12}}') THEN try_strptime(s, '%Y%m%d%H%M%S')
    ELSE _ts_plain(s) END;
-- The commonest style first, its year checked on the text (a macro's argument used twice is
-- evaluated twice: the parse runs once here); every other cell through _ts_any, checked after.
CREATE OR REPLACE TEMP MACRO _ts_common(s) AS CASE
    WHEN left(s, 4) BETWEEN '1990' AND '2100' THEN try_strptime(s, '%Y-%m-%d %H:%M:%S') END;
CREATE OR REPLACE TEMP MACRO parse_ts(s) AS coalesce(_ts_common(s), CASE
    WHEN year(_ts_any(s)) BETWEEN 1990 AND 2100 THEN _ts_any(s) END);
-- Word lists are CASE branches, never IN (…): DuckDB turns an IN list of six or more values into
-- a hash join, which does not keep the stage's row order (row numbers are taken from that order).
CREATE OR REPLACE TEMP MACRO parse_count(s) AS CASE
    WHEN {_one_of("s", ZERO_DAYS)} THEN 0
    WHEN regexp_full_match(s, '\\d+(\\.0+)?\\s*(个工作日|工作日|天|日|次|个)?') THEN
        CAST(regexp_extract(s, '^(\\d+)', 1) AS INTEGER) END;
-- An amount without its thousands separators and yen sign (¥, or the full-width ￥ of GBK files).
CREATE OR REPLACE TEMP MACRO _money_text(s) AS replace(replace(replace(s, ',', ''), '¥', ''), '￥', '');
CREATE OR REPLACE TEMP MACRO parse_money(s) AS CASE
    WHEN {_one_of("s", NO_FEE)} THEN 0.0
    WHEN regexp_full_match(_money_text(s), '\\d+(\\.\\d+)?\\s*元?') THEN
        CAST(regexp_extract(_money_text(s), '^(\\d+(\\.\\d+)?)', 1) AS DECIMAL(12, 2)) END;
"""


@dataclass
class ColumnPlan:
    """What the columns of one file mean."""

    fields: dict[str, int] = field(default_factory=dict)   # field -> column index
    wide: dict[int, str] = field(default_factory=dict)     # column index -> step
    unmapped: list[str] = field(default_factory=list)      # header names not used
    layout: str = ""                                        # events | combined | cases | wide
    headers: list[str] = field(default_factory=list)

    def header(self, fld: str) -> str:
        """The file's own header for a field (for messages)."""
        return self.headers[self.fields[fld]] if fld in self.fields else fld


def known_headers(builtin: dict[str, str], profile: Profile | None) -> dict[str, str]:
    """Header spelling -> field, with the profile's columns (and wide columns) taking precedence."""
    table = dict(builtin)
    if profile:
        table.update(profile.columns)
        table.update({h: "_wide" for h in profile.wide})
    return table


def plan_columns(headers: list[str], builtin: dict[str, str], profile: Profile | None,
                 where: str) -> ColumnPlan:
    """Map each header to a field (or a wide step), and decide the file's layout."""
    plan = ColumnPlan(headers=headers)
    prof_cols = profile.columns if profile else {}
    prof_wide = profile.wide if profile else {}
    for i, head in enumerate(headers):
        key = normalize_header(head)
        if key in prof_wide:
            plan.wide[i] = prof_wide[key]
            continue
        fld = prof_cols.get(key) or builtin.get(key)
        if fld and fld not in plan.fields:
            plan.fields[fld] = i
        elif head.strip():
            plan.unmapped.append(head)
    if "staff" not in plan.fields and "step" not in plan.fields and "event_staff" in plan.fields:
        plan.fields["staff"] = plan.fields.pop("event_staff")   # a case table's 经办人 is its staff
    if ("step" in plan.fields and "staff" in plan.fields and "event_staff" not in plan.fields
            and normalize_header(headers[plan.fields["staff"]]) == "staff"):
        # Contract §1.2: an event log's English `staff` column is who recorded the step.
        plan.fields["event_staff"] = plan.fields.pop("staff")
    has_step, has_time = "step" in plan.fields, "time" in plan.fields
    has_attrs = any(a in plan.fields for a in CASE_ATTRIBUTES) or bool(profile and profile.constants)
    if has_step != has_time:
        missing = "时间 (time)" if has_step else "环节 (step)"
        raise InputError(f"{where}: 有{'环节' if has_step else '时间'}列却没有 {missing} 列，无法作为事件日志读取")
    if has_step and plan.wide:
        raise InputError(f"{where}: 同时有 环节 列和宽表时间列 ({', '.join(headers[i] for i in plan.wide)})；请检查配置文件")
    if has_step:
        plan.layout = "combined" if any(a in plan.fields for a in CASE_ATTRIBUTES) else "events"
    elif plan.wide:
        plan.layout = "wide"
    elif has_attrs:
        plan.layout = "cases"
    else:
        raise InputError(f"{where}: 既没有 环节/时间 列，也没有办件属性列，无法判断文件内容；请用 --profile 说明列名")
    return plan


# Free-text fields are taken as written unless their row fails this test: a row whose free-text
# cells (joined by \x1f) have white space or `=` at a cell's edge, or a full-width space anywhere,
# gets the full clean-up of `_clean`. Testing the row once is several times cheaper than cleaning
# every cell; a false alarm costs time only. Typed fields (times, steps, numbers, vocabularies)
# need no test: a cell that parses as written parses the same after clean-up, and only a cell that
# does not is cleaned and parsed again.
DIRTY_ROW = r"'(^|\x1f)[\s=]|\s(\x1f|$)|\x{3000}'"
# Most rows have none of the characters `_clean` acts on: `contains` (a memchr) on the row's cells
# run together rules them out faster than the regex, which then runs only for the rest. (\f,
# matched by the regex's \s, is not trimmed by `_clean`: a row it alone flags comes out the same.)
DIRTY_CHARS = ["' '", "chr(9)", "chr(10)", "chr(13)", "'='", "chr(12288)"]
NOT_BLANK = r"'\S'"
# Footer rows of an export (合计, 制表人 …): their words stand first in the row.
FOOTER = (r"'^\s*(合\s*计|总\s*计|小\s*计|累\s*计|制\s*表|填\s*表|填\s*报|审\s*核\s*人|负\s*责\s*人|"
          r"统\s*计\s*(时\s*间|日\s*期|人)|打\s*印\s*(时\s*间|日\s*期|人)|导\s*出\s*(时\s*间|日\s*期|人)|数\s*据\s*来\s*源|"
          r"单\s*位\s*负\s*责\s*人|(注|说\s*明|备\s*注)\s*[:：])'")
FOOTER_FIRST = "合总小累制填审负统打导数单注说备"     # the first character of each footer word above
# A case id Excel turned into a number in scientific notation (2.02603E+11): its digits are lost,
# and distinct cases would merge.
SCIENTIFIC = r"'[+-]?\d+(\.\d+)?[eE][+-]?\d+'"
EXCEL_ID = ("是 Excel 改成科学计数法的编号，原编号已丢失 (不同办件会被并为一件)；"
            "请在导出时把 办件编号 列设为文本 (或直接导出 CSV，不经 Excel 打开另存) 后重新导出")
# The hash of an event, to find repeats fast: not the city, which may only be known after staging
# (the exact comparison and the grouping by case include it).
EVENT_HASH_COLUMNS = 'case_id, step, "time", event_staff, note'
FREE_TEXT = ["case_id", "city", "county", "hall", "object_type", "item", "applicant", "id_number",
             "phone", "staff", "materials", "event_staff", "note"]
FIELD_TYPES = {"promised_days": "INTEGER", "visits": "INTEGER", "fee": "DECIMAL(12, 2)",
               "rating_time": "TIMESTAMP", "time": "TIMESTAMP"}
RATING_TEXT = {**{k: k for k in RATINGS}, **RATING_ALIASES,
               **{str(v): n for n, v in RATINGS.items()},
               **{f"{v}.0": n for n, v in RATINGS.items()},
               **{f"{v}星": n for n, v in RATINGS.items()}, **{f"{v}分": n for n, v in RATINGS.items()}}


def _clean(col: str) -> str:
    """A raw cell as a value: trimmed of white space (tabs and full-width spaces included), and
    unwrapped from the `="…"` form some systems export to keep leading zeros; '' becomes NULL.
    `col` appears once: DuckDB evaluates a sub-expression repeated within one SELECT list for
    every row, even where it sits in a CASE branch that few rows take."""
    return (f"nullif(regexp_replace(trim(replace({col}, chr(12288), ' '), ' \t\r\n'), "
            f"'^=\"(.*)\"$', '\\1', 's'), '')")


class OpenSteps(dict):
    """The step names of an ingest under the open vocabulary: the profile's `steps:` aliases
    (spelling -> name); any other step name is kept as written, trimmed of white space."""


def _open_step(expr: str, aliases: dict[str, str]) -> str:
    """`expr` (a column) as a step name of the open vocabulary: NULL when it has white space to
    trim (the cleaned text is then parsed again), else its alias or itself."""
    return f"(CASE WHEN {expr} = trim(replace({expr}, chr(12288), ' '), ' \t\r\n') THEN {_value_map(expr, aliases)} END)"


def _value_map(expr: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return expr
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in mapping.items())
    return f"(CASE {expr} {whens} ELSE {expr} END)"


def _vocab_map(expr: str, mapping: dict[str, str]) -> str:
    """`expr` (a column: CASE repeats it) looked up in a vocabulary; NULL when not in it."""
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in mapping.items())
    return f"(CASE {expr} {whens} END)"


def present_attributes(plan: ColumnPlan, profile: Profile | None) -> list[str]:
    """The case attributes a file gives values for (its columns, or constants of its profile)."""
    consts = profile.constants if profile else {}
    return [a for a in CASE_ATTRIBUTES if a in plan.fields or a in consts]


def stage_sql(plan: ColumnPlan, profile: Profile | None, city: str | None, source: str,
              steps: dict[str, str], has_row: bool, fields: int = 0, tabular: bool = True) -> str:
    """SELECT over `source` (columns c0.., and `_row` when `has_row`) giving the canonical fields
    the file's layout needs; `problem`, NULL for a row that can be loaded, else a JSON object:
    `reason`, why not in words a clerk can act on (the loader puts the row number in front),
    `column`, the header of the cell concerned, and `raw`, the row's raw cells (one column, not
    three: a column costs time to stage even when it is empty); and for event rows `h`, a hash of
    the event to find repeats fast. `fields` > the
    number of headers: the source has that many columns, the ones past the headers empty unless
    the row is ragged. `steps`: spelling -> canonical step (a step not in it is quarantined), or
    `OpenSteps` (the open vocabulary: names kept as written, after the profile's aliases).
    `tabular`: the rows come from a table a person or a spreadsheet program may have touched (not
    from an XES log): blank rows, footer rows and case ids Excel turned into numbers are checked.

    Projections only, never a join: DuckDB then keeps the file order, which the loader relies on
    for row numbers when DuckDB reads the file itself (a hash join does not keep it)."""
    prof_values = profile.values if profile else {}
    consts = dict(profile.constants) if profile else {}
    if profile and profile.city and "city" not in consts:
        consts["city"] = profile.city

    def given(fld: str) -> bool:
        return fld in plan.fields or fld in consts

    def text(fld: str, how: str, option: bool = True) -> str:
        """A field's text: `row` (cleaned when the row test says so), `as_is` or `clean`; the
        city with --city filling an empty one (`option`)."""
        if fld in plan.fields:
            col = f"c{plan.fields[fld]}"
            expr = {"row": f"(CASE WHEN _dirty THEN {_clean(col)} ELSE nullif({col}, '') END)",
                    "as_is": f"nullif({col}, '')", "clean": _clean(col)}[how]
            if fld in consts:
                expr = f"coalesce({expr}, {sql_str(consts[fld])})"
        elif fld in consts:
            expr = sql_str(consts[fld])
        else:
            expr = "NULL::VARCHAR"
        if fld == "city" and city and option:
            expr = f"coalesce({expr}, {sql_str(normalize_value(city))})"
        return _value_map(expr, prof_values.get(fld, {}))

    parsers = {
        "service_type": lambda e: _vocab_map(e, SERVICE_TYPES),
        "channel": lambda e: _vocab_map(e, CHANNELS),
        "promised_days": lambda e: f"parse_count({e})",
        "fee": lambda e: f"parse_money({e})",
        "visits": lambda e: f"parse_count({e})",
        "rating": lambda e: _vocab_map(e, RATING_TEXT),
        "rating_time": lambda e: f"parse_ts({e})",
        "step": (lambda e: _open_step(e, steps)) if isinstance(steps, OpenSteps) else (lambda e: _vocab_map(e, steps)),
        "time": lambda e: f"parse_ts({e})",
    }
    typed = {f: p for f, p in parsers.items() if given(f)}
    typed.update({f"w{i}": parsers["time"] for i in plan.wide})

    def typed_text(f: str, how: str) -> str:
        return text(f, how) if not f.startswith("w") else (
            f"nullif(c{f[1:]}, '')" if how == "as_is" else _clean(f"c{f[1:]}"))

    # n: the text of each field. v: typed fields parsed as written (`_x1`). w: the cleaned text of
    # typed cells that did not parse (`_x_clean`). x: the typed values.
    n = [f"{text(t, 'row')} AS {t}" for t in FREE_TEXT if t not in ("case_id", "city")]
    n += [f"{text('case_id', 'row')} AS case_id_raw", f"{text('city', 'row')} AS city_raw"]
    n += [f"{typed_text(f, 'as_is')} AS _{f}_as_is" for f in typed]
    if city:
        n.append(f"{text('city', 'row', option=False)} AS city_given")
    v = [f"{p(f'_{f}_as_is')} AS _{f}1" for f, p in typed.items()] or ["NULL AS _none1"]
    w = [f"CASE WHEN _{f}1 IS NULL THEN {typed_text(f, 'clean')} END AS _{f}_clean" for f in typed] \
        or ["NULL AS _none_clean"]
    x = [f'coalesce(_{f}1, CASE WHEN _{f}_clean IS NOT NULL THEN {p(f"_{f}_clean")} END) AS "{f}"'
         for f, p in typed.items()]
    x += [f'NULL::{FIELD_TYPES.get(f, "VARCHAR")} AS "{f}"' for f in parsers if f not in typed]

    events = plan.layout in ("events", "combined")
    raw_cells = [f"c{i}" for i in range(max(len(plan.headers), fields))]
    # White space as `_clean` trims it (tabs and full-width spaces too): a row of it is blank.
    trimmed = [f"trim(replace({c}, chr(12288), ' '), ' \t\r\n')" for c in raw_cells]
    all_blank = " AND ".join(f"coalesce({t}, '') = ''" for t in trimmed) or "TRUE"
    first_cell = "coalesce(" + ", ".join(f"nullif({t}, '')" for t in trimmed) + ")"
    def label(fld: str) -> str:
        """The file's own header of a field (or of a wide time column `w<i>`)."""
        return plan.header(fld) if not fld.startswith("w") else plan.headers[int(fld[1:])]

    def head(fld: str) -> str:
        return sql_str(label(fld))

    def raw_text(fld: str) -> str:
        """The cell of a field as written (a profile constant for a field the file lacks)."""
        col = plan.fields.get(fld) if not fld.startswith("w") else int(fld[1:])
        return f"c{col}" if col is not None else sql_str(consts.get(fld, ""))

    # Key problems (contract §1.5) quarantine the row: (condition, message, column), the first that
    # holds wins. Content past the header: the same words as the exact reader's.
    checks = []
    width = len(plan.headers)
    if fields > width:
        extra = " OR ".join(f"regexp_matches(coalesce(c{i}, ''), {NOT_BLANK})" for i in range(width, fields))
        checks.append((extra, sql_str(f"本行有 {fields} 个字段，表头只有 {width} 列"), "NULL"))
    # A blank row has no case id: that cheap test first. A footer (合计, 制表人 …) is named as one:
    # its words stand in the case id's cell, or in the first non-empty cell of a row without one.
    if tabular:
        checks.append((f"case_id_raw IS NULL AND {all_blank}", "'空行 (整行没有内容)'", "NULL"))
        # (The footer words begin with one of a few characters: the regex runs only on those cells.)
        lead = f"CASE WHEN case_id_raw IS NULL THEN {first_cell} ELSE case_id_raw END"
        checks.append((f"CASE WHEN contains({sql_str(FOOTER_FIRST)}, left(ltrim({lead}), 1)) "
                       f"THEN regexp_matches({lead}, {FOOTER}) END",
                       "'表尾行 (合计、制表人、填表说明等)，不是办件记录'", "NULL"))
    checks.append(("case_id IS NULL", sql_str(plan.header('case_id') + ' 为空'), head("case_id")))
    if tabular:
        # (`contains` first: the regex on every row would cost a tenth of the whole stage.)
        checks.append((f"CASE WHEN contains(case_id, 'E') OR contains(case_id, 'e') THEN regexp_full_match(case_id, {SCIENTIFIC}) END",
                       f"{sql_str(plan.header('case_id') + ' ' + Q)} || case_id || {sql_str(Q + ' ' + EXCEL_ID)}",
                       head("case_id")))

    def key(fld: str, what: str, empty: str) -> None:
        """A key typed value (an event's step or time) that is missing or not understood."""
        bad = f"{sql_str(label(fld) + ' ' + Q)} || _{fld}_clean || {sql_str(Q + ' ' + what)}"
        checks.append((f'"{fld}" IS NULL', f"CASE WHEN _{fld}_clean IS NULL THEN {sql_str(empty)} ELSE {bad} END",
                       head(fld)))

    if events:
        key("step", "不在环节词表中 (见 README 环节)", plan.header("step") + " 为空")
        key("time", "无法识别", plan.header("time") + " 为空")

    # Any other typed cell that is not understood is set aside (contract §1.5): the row loads with
    # that field empty, and the cell is recorded with its column, raw text and reason.
    aside: list[tuple[str, str, str, str, str]] = []   # (condition, field, header, reason, typed name)

    def set_aside(fld: str, what: str) -> None:
        if fld in typed:
            aside.append((f'"{fld}" IS NULL AND _{fld}_clean IS NOT NULL',
                          f"time ({plan.wide[int(fld[1:])]})" if fld.startswith("w") else fld, label(fld), what, fld))

    set_aside("service_type", "无法识别 (应为 帮办 或 代办)，已留空")
    set_aside("channel", "无法识别 (应为 线上 或 线下)，已留空")
    set_aside("promised_days", "不是工作日天数，已留空")
    set_aside("fee", "不是金额，已留空")
    set_aside("visits", "不是次数，已留空")
    set_aside("rating", "无法识别 (应为 非常满意/满意/基本满意/不满意/非常不满意、好评/中评/差评 或 5..1)，已留空")
    set_aside("rating_time", "无法识别，已留空")
    for i in plan.wide:
        set_aside(f"w{i}", f"无法识别，该行的 {plan.wide[i]} 环节未载入")

    # The conditions are tested once, giving the number of the first that holds; the message and
    # the column are looked up from that number, for the few rows that have a problem.
    problem_no = "CASE " + " ".join(f"WHEN {c} THEN {k}" for k, (c, _, _) in enumerate(checks)) + " END"
    # (`aside` and `filled` below are columns of their own, NULL / false on most rows.)
    problem = "CASE _pno " + " ".join(f"WHEN {k} THEN {r}" for k, (_, r, _) in enumerate(checks)) + " END"
    problem_col = "CASE _pno " + " ".join(f"WHEN {k} THEN {h}" for k, (_, _, h) in enumerate(checks)) + " END"
    if aside:
        items = ", ".join(
            f"CASE WHEN {c} THEN {{'field': {sql_str(f)}, 'column': {sql_str(h)}, 'raw': {raw_text(src)}, "
            f"'reason': {sql_str(h + ' ' + Q)} || _{src}_clean || {sql_str(Q + ' ' + r)}}} END"
            for c, f, h, r, src in aside)
        aside_expr = (f"CASE WHEN _pno IS NULL AND ({' OR '.join(f'({a[0]})' for a in aside)}) "
                      f"THEN [a FOR a IN [{items}] IF a IS NOT NULL] END")
    else:
        aside_expr = "NULL"

    free = sorted(plan.fields[f] for f in FREE_TEXT if f in plan.fields)
    if free:
        cells = ", ".join(f"c{i}" for i in free)
        maybe = " OR ".join(f"contains(concat({cells}), {ch})" for ch in DIRTY_CHARS)
        dirty = f"CASE WHEN {maybe} THEN regexp_matches(concat_ws(chr(31), {cells}), {DIRTY_ROW}) ELSE false END"
    else:
        dirty = "false"
    row = "_row, " if has_row else ""
    json_cells = ", ".join(f"{sql_str(h or f'列{i + 1}')}, coalesce(c{i}, '')" for i, h in enumerate(plan.headers))
    json_cells += "".join(f", {sql_str(f'列{i + 1}')}, coalesce(c{i}, '')" for i in range(width, fields))
    out = [f"{row}city, case_id"]
    if events:
        out.append(f'step, "time", event_staff, note, hash({EVENT_HASH_COLUMNS}) AS h')
    if plan.layout in ("cases", "wide", "combined"):
        out += present_attributes(plan, profile)
    out += [f"w{i}" for i in plan.wide]
    if city:
        # rows whose empty city --city filled (the ingest reports how many)
        out.append("city_given IS NULL AS filled")
    out += ["problem", "aside"]
    return f"""
        WITH d AS (SELECT *, {dirty} AS _dirty FROM {source}),
        n AS (SELECT {row}{', '.join(raw_cells)}, {', '.join(n)} FROM d),
        v AS (SELECT *, {', '.join(v)} FROM n),
        w AS (SELECT *, {', '.join(w)} FROM v),
        x AS (SELECT *, {', '.join(x)} FROM w),
        c AS (SELECT *,
                     -- Some systems prefix an id with ' to keep it text.
                     nullif(CASE WHEN starts_with(case_id_raw, chr(39)) THEN case_id_raw[2:] ELSE case_id_raw END, '') AS case_id,
                     -- "延安市" and "延安" are the same city: a trailing 市 is dropped.
                     CASE WHEN ends_with(city_raw, '市') AND length(city_raw) > 2
                          THEN left(city_raw, length(city_raw) - 1) ELSE city_raw END AS city
              FROM x),
        q AS (SELECT *, {problem_no} AS _pno FROM c),
        p AS (SELECT *, CASE WHEN _pno IS NOT NULL THEN json_object('reason', {problem}, 'column', {problem_col},
                                                                    'raw', json_object({json_cells})) END AS problem,
                     {aside_expr} AS aside
              FROM q)
        SELECT {', '.join(out)} FROM p
    """
