"""Turn a file's text cells into canonical values, set-based in DuckDB.

`plan_columns` decides what each column of a file means (its field, or the step of a wide
ledger's time column) and the file's layout. `stage_sql` builds one SELECT over the raw cells
that yields the canonical fields and, for a row that cannot be loaded, the first problem found
(`problem`, the column it concerns `problem_col`) in words a hall clerk can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from audit.errors import InputError
from audit.ingest.profile import Profile
from audit.ingest.vocab import (
    CASE_ATTRIBUTES, CHANNELS, RATING_ALIASES, RATINGS, SERVICE_TYPES, normalize_header,
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


def sql_str(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


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
-- The commonest style first: a cell it parses is parsed the same by _ts_any, only faster.
CREATE OR REPLACE TEMP MACRO _ts_first(s) AS coalesce(try_strptime(s, '%Y-%m-%d %H:%M:%S'), _ts_any(s));
CREATE OR REPLACE TEMP MACRO parse_ts(s) AS CASE
    WHEN year(_ts_first(s)) BETWEEN 1990 AND 2100 THEN _ts_first(s) END;
CREATE OR REPLACE TEMP MACRO parse_count(s) AS CASE
    WHEN s IN ('即办', '即办件', '当场', '当场办结', '立即办理', '当日办结') THEN 0
    WHEN regexp_full_match(s, '\\d+(\\.0+)?\\s*(个工作日|工作日|天|日|次|个)?') THEN
        CAST(regexp_extract(s, '^(\\d+)', 1) AS INTEGER) END;
CREATE OR REPLACE TEMP MACRO parse_money(s) AS CASE
    WHEN s IN ('免费', '无', '不收费', '否', '零', '-', '—') THEN 0.0
    WHEN regexp_full_match(replace(replace(s, ',', ''), '¥', ''), '\\d+(\\.\\d+)?\\s*元?') THEN
        CAST(regexp_extract(replace(replace(s, ',', ''), '¥', ''), '^(\\d+(\\.\\d+)?)', 1) AS DECIMAL(12, 2)) END;
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


# A row whose cells (joined by \x1f) have white space or `=` at a cell's edge, or a full-width space
# anywhere, gets the full clean-up of `_cell`; the cells of every other row are taken as they are.
# Testing the row once is several times cheaper than trimming each cell; a false alarm costs time only.
DIRTY_ROW = r"'(^|\x1f)[\s=]|\s(\x1f|$)|\x{3000}'"


def _cell(col: str) -> str:
    """A raw cell as a value: trimmed of white space (tabs and full-width spaces included), and
    unwrapped from the `="…"` form some systems export to keep leading zeros; '' becomes NULL."""
    trimmed = f"trim(replace({col}, chr(12288), ' '), ' \t\r\n')"
    full = (f"nullif(CASE WHEN starts_with({trimmed}, '=\"') AND ends_with({trimmed}, '\"') "
            f"THEN {trimmed}[3:-2] ELSE {trimmed} END, '')")
    return f"(CASE WHEN _dirty THEN {full} ELSE nullif({col}, '') END)"


def _value_map(expr: str, mapping: dict[str, str]) -> str:
    if not mapping:
        return expr
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in mapping.items())
    return f"(CASE {expr} {whens} ELSE {expr} END)"


def _vocab_map(expr: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in mapping.items())
    return f"(CASE {expr} {whens} END)"


def present_attributes(plan: ColumnPlan, profile: Profile | None) -> list[str]:
    """The case attributes a file gives values for (its columns, or constants of its profile)."""
    consts = profile.constants if profile else {}
    return [a for a in CASE_ATTRIBUTES if a in plan.fields or a in consts]


def stage_sql(plan: ColumnPlan, profile: Profile | None, city: str | None, source: str,
              steps: dict[str, str], has_row: bool) -> str:
    """SELECT over `source` (columns c0.., and `_row` when `has_row`) giving the canonical fields
    the file's layout needs; `problem`, why a row cannot be loaded in words a clerk can act on
    (the loader puts the row number in front); `problem_col`; `raw_json`, the raw cells of a
    problem row; and for event rows `h`, a hash of the event to find repeats fast.

    Projections only, never a join: DuckDB then keeps the file order, which the loader relies on
    for row numbers when DuckDB reads the file itself (a hash join does not keep it)."""
    prof_values = profile.values if profile else {}
    consts = dict(profile.constants) if profile else {}
    if profile and profile.city and "city" not in consts:
        consts["city"] = profile.city

    def raw(fld: str) -> str:
        if fld in plan.fields:
            expr = _cell(f"c{plan.fields[fld]}")
            if fld in consts:
                expr = f"coalesce({expr}, {sql_str(consts[fld])})"
        elif fld in consts:
            expr = sql_str(consts[fld])
        else:
            expr = "NULL::VARCHAR"
        if fld == "city" and city:
            expr = f"coalesce({expr}, {sql_str(normalize_value(city))})"
        return _value_map(expr, prof_values.get(fld, {}))

    ratings = {**{k: k for k in RATINGS}, **RATING_ALIASES,
               **{str(v): n for n, v in RATINGS.items()},
               **{f"{v}.0": n for n, v in RATINGS.items()},
               **{f"{v}星": n for n, v in RATINGS.items()}, **{f"{v}分": n for n, v in RATINGS.items()}}
    texts = ["county", "hall", "object_type", "item", "applicant", "id_number", "phone", "staff",
             "materials", "event_staff", "note"]
    # Level n: each field's cleaned text; level v: the typed values parsed from it (a macro
    # repeats its argument, so parsing a column reference is far cheaper than parsing an expression).
    cols = [f"{raw(t)} AS {t}" for t in texts]
    cols += [f"{raw(f)} AS {f}_raw" for f in ("case_id", "city", "service_type", "channel", "promised_days",
                                               "fee", "visits", "rating", "rating_time", "step", "time")]
    cols += [f"{_cell(f'c{i}')} AS w{i}_raw" for i in plan.wide]
    values = [
        f"{_vocab_map('service_type_raw', SERVICE_TYPES)} AS service_type",
        f"{_vocab_map('channel_raw', CHANNELS)} AS channel",
        "parse_count(promised_days_raw) AS promised_days",
        "parse_money(fee_raw) AS fee",
        "parse_count(visits_raw) AS visits",
        f"{_vocab_map('rating_raw', ratings)} AS rating",
        "parse_ts(rating_time_raw) AS rating_time",
        'parse_ts(time_raw) AS "time"',
    ]
    values += [f"parse_ts(w{i}_raw) AS w{i}" for i in plan.wide]
    events = plan.layout in ("events", "combined")
    raw_cells = [f"c{i}" for i in range(len(plan.headers))]
    all_blank = " AND ".join(f"coalesce(trim({c}), '') = ''" for c in raw_cells) or "TRUE"
    # A blank row has no case id: the cheap condition first, for all other rows.
    checks = [(f"case_id IS NULL AND {all_blank}", "'空行 (整行没有内容)'", "NULL")]

    def bad(fld: str, cond: str, what: str) -> None:
        if fld not in plan.fields and fld not in consts:
            return                      # the file has no such column: nothing to check
        head = plan.header(fld)
        checks.append((cond, f"{sql_str(head + ' ' + Q)} || {fld}_raw || {sql_str(Q + ' ' + what)}", sql_str(head)))

    checks.append(("case_id IS NULL", sql_str(plan.header('case_id') + ' 为空'), sql_str(plan.header("case_id"))))
    checks.append(("city IS NULL", "'缺少地市：文件没有 地市 列或本行为空，请用 --city 指定'",
                   sql_str(plan.header("city"))))
    if events:
        checks.append(("step_raw IS NULL", sql_str(plan.header('step') + ' 为空'), sql_str(plan.header("step"))))
        checks.append(("step IS NULL", f"{sql_str(plan.header('step') + ' ' + Q)} || step_raw || '\" 不在环节词表中 (见 README 环节)'",
                       sql_str(plan.header("step"))))
        checks.append(("time_raw IS NULL", sql_str(plan.header('time') + ' 为空'), sql_str(plan.header("time"))))
        bad("time", "time IS NULL", "无法识别")
    if plan.layout in ("cases", "wide"):
        checks.append(("service_type_raw IS NULL", sql_str(plan.header('service_type') + ' 为空 (应为 帮办 或 代办)'),
                       sql_str(plan.header("service_type"))))
    bad("service_type", "service_type_raw IS NOT NULL AND service_type IS NULL", "无法识别 (应为 帮办 或 代办)")
    bad("channel", "channel_raw IS NOT NULL AND channel IS NULL", "无法识别 (应为 线上 或 线下)")
    bad("promised_days", "promised_days_raw IS NOT NULL AND promised_days IS NULL", "不是工作日天数")
    bad("fee", "fee_raw IS NOT NULL AND fee IS NULL", "不是金额")
    bad("visits", "visits_raw IS NOT NULL AND visits IS NULL", "不是次数")
    bad("rating", "rating_raw IS NOT NULL AND rating IS NULL", "无法识别 (应为 非常满意/满意/基本满意/不满意/非常不满意 或 5..1)")
    bad("rating_time", "rating_time_raw IS NOT NULL AND rating_time IS NULL", "无法识别")
    for i in plan.wide:
        head = plan.headers[i]
        checks.append((f"w{i}_raw IS NOT NULL AND w{i} IS NULL", f"{sql_str(head + ' ' + Q)} || w{i}_raw || '\" 无法识别'",
                       sql_str(head)))
    # The conditions are tested once, giving the number of the first that holds; the message and
    # the column are looked up from that number.
    problem_no = "CASE " + " ".join(f"WHEN {c} THEN {k}" for k, (c, _, _) in enumerate(checks)) + " END"
    problem = "CASE _pno " + " ".join(f"WHEN {k} THEN {r}" for k, (_, r, _) in enumerate(checks)) + " END"
    problem_col = "CASE _pno " + " ".join(f"WHEN {k} THEN {h}" for k, (_, _, h) in enumerate(checks)) + " END"

    used = sorted(set(plan.fields.values()) | set(plan.wide))
    dirty = f"regexp_matches(concat_ws(chr(31), {', '.join(f'c{i}' for i in used)}), {DIRTY_ROW})"
    row = "_row, " if has_row else ""
    step_case = _vocab_map("step_raw", steps) if events else "NULL::VARCHAR"
    json_cells = ", ".join(f"{sql_str(h or f'列{i + 1}')}, coalesce(c{i}, '')" for i, h in enumerate(plan.headers))
    out = [f"{row}city, case_id"]
    if events:
        out.append('step, "time", event_staff, note, '
                   'hash(city, case_id, step, "time", event_staff, note) AS h')
    if plan.layout in ("cases", "wide", "combined"):
        out += present_attributes(plan, profile)
    out += [f"w{i}" for i in plan.wide]
    out.append(f"problem, problem_col, CASE WHEN problem IS NOT NULL THEN json_object({json_cells}) END AS raw_json")
    return f"""
        WITH d AS (SELECT *, {dirty} AS _dirty FROM {source}),
        n AS (SELECT {row}{', '.join(raw_cells)}, {', '.join(cols)} FROM d),
        v AS (SELECT *, {', '.join(values)} FROM n),
        c AS (SELECT *,
                     -- Some systems prefix an id with ' to keep it text.
                     nullif(CASE WHEN starts_with(case_id_raw, chr(39)) THEN case_id_raw[2:] ELSE case_id_raw END, '') AS case_id,
                     -- "延安市" and "延安" are the same city: a trailing 市 is dropped.
                     CASE WHEN ends_with(city_raw, '市') AND length(city_raw) > 2
                          THEN left(city_raw, length(city_raw) - 1) ELSE city_raw END AS city
              FROM v),
        s AS (SELECT *, {step_case} AS step FROM c),
        q AS (SELECT *, {problem_no} AS _pno FROM s),
        p AS (SELECT *, CASE WHEN _pno IS NOT NULL THEN {problem} END AS problem,
                        CASE WHEN _pno IS NOT NULL THEN {problem_col} END AS problem_col FROM q)
        SELECT {', '.join(out)} FROM p
    """
