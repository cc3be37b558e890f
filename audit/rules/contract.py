"""The rule-author contract, declared once as data (contract §3–§5).

A rule's SQL (``checks/<RULE-ID>.yaml``) may read the temp table ``case_facts`` (one row per case),
the auxiliary tables and the working-day macros declared here, and must return the declared
output shape. Everything else follows from these declarations:

- `audit.check.facts` builds ``case_facts`` with exactly the declared columns, in the declared order,
  and creates ``cfg``, ``req_materials`` and ``city_calendar`` from their declarations;
- the engine wraps a rule's SQL in the declared output shape (`audit.check.engine.rule_sql`);
- the README's section for rule authors is generated from here (`python -m audit.docs`), and the
  tests compare the declarations with ``DESCRIBE`` on a real database.

The settings columns (of ``case_facts`` and ``cfg``) are the pack's numeric settings
(`audit.rules.pack.NUMERIC_SETTINGS`); the step columns are the step vocabulary (`audit.vocabulary.STEPS`).
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.rules.pack import NUMERIC_SETTINGS
from audit.vocabulary import STEPS


@dataclass(frozen=True)
class Column:
    """One column: name, DuckDB type (as ``DESCRIBE`` spells it), meaning in Chinese and in English."""

    name: str
    type: str
    zh: str
    en: str


@dataclass(frozen=True)
class Table:
    """A table (or view) a rule may read besides ``case_facts``."""

    name: str
    zh: str
    en: str
    columns: tuple[Column, ...]

    def ddl(self) -> str:
        """The column list of a ``CREATE TABLE`` for this table."""
        return ", ".join(f"{c.name} {c.type}" for c in self.columns)


@dataclass(frozen=True)
class Macro:
    """A working-day macro a rule may call."""

    name: str
    params: tuple[str, ...]
    returns: str
    zh: str
    en: str

    @property
    def signature(self) -> str:
        """``name(param, …)``."""
        return f"{self.name}({', '.join(self.params)})"


@dataclass(frozen=True)
class OutputColumn:
    """One column a rule's SQL returns, and how the engine stores it."""

    name: str
    type: str
    zh: str
    en: str
    stored_as: str              # SQL over the rule's row: what goes into ``findings``


# Steps on which the staff handling the case is recorded (REQ-ONE-TO-ONE, ``event_staff``).
STAFF_STEPS = ("受理", "需求分析", "委托", "承办", "中止", "续办", "办结")


def step_column(step: str) -> str:
    """The ``case_facts`` column holding the time of the first `step`: ``t_<code>``."""
    return f"t_{STEPS[step]}"


def _c(name: str, type_: str, zh: str, en: str) -> Column:
    return Column(name, type_, zh, en)


CASE_ATTRIBUTE_COLUMNS = (
    _c("city", "VARCHAR", "地市", "city"),
    _c("case_id", "VARCHAR", "办件编号 (地市内唯一)", "case id, unique within its city"),
    _c("county", "VARCHAR", "区县", "county"),
    _c("hall", "VARCHAR", "服务大厅", "service hall"),
    _c("service_type", "VARCHAR", "服务类型：帮办或代办", "assisted (帮办) or proxy (代办) handling"),
    _c("channel", "VARCHAR", "服务方式：线上或线下", "online (线上) or on site (线下)"),
    _c("object_type", "VARCHAR", "服务对象类别", "service-object category"),
    _c("item", "VARCHAR", "事项名称", "the government matter handled"),
    _c("applicant", "VARCHAR", "服务对象 (个人信息)", "applicant (personal data)"),
    _c("id_number", "VARCHAR", "证件号码 (个人信息)", "ID number (personal data)"),
    _c("phone", "VARCHAR", "联系电话 (个人信息)", "phone (personal data)"),
    _c("staff", "VARCHAR", "台账上的帮办代办员", "staff member assigned in the case table"),
    _c("promised_days", "INTEGER", "承诺时限 (工作日；0 = 即办)", "promised working days; 0 = same day"),
    _c("fee", "DECIMAL(12,2)", "帮办代办服务本身的收费金额 (元)", "money charged for the service itself"),
    _c("visits", "INTEGER", "到现场次数", "times the applicant came on site"),
    _c("rating", "VARCHAR", "评价：非常满意 / 满意 / 基本满意 / 不满意 / 非常不满意", "rating word"),
    _c("rating_score", "TINYINT", "评分：非常满意 = 5 … 非常不满意 = 1", "rating score 5..1"),
    _c("rating_time", "TIMESTAMP", "评价时间", "time of the rating"),
    _c("materials", "VARCHAR", "归档材料 (原文，以 ; ；、 , ，分隔)", "archived documents as written"),
    _c("has_case_row", "BOOLEAN", "台账中有此办件 (否：只从环节得知)", "the case table has the case (else known from events only)"),
)

EVENT_COLUMNS = (
    _c("request_time", "TIMESTAMP", "请求时间 = 第一个环节的时间", "request: time of the first event"),
    _c("last_time", "TIMESTAMP", "最后一个环节的时间", "time of the last event"),
    _c("n_events", "BIGINT", "环节数 (没有环节时为空)", "number of events (NULL when none)"),
    *(_c(step_column(step), "TIMESTAMP", f"首次{step}的时间", f"time of the first {code} step")
      for step, code in STEPS.items()),
    _c("n_handover", "BIGINT", "移交次数", "number of 移交 (handover) events"),
    _c("n_suspend", "BIGINT", "中止次数", "number of 中止 (suspend) events"),
    _c("n_resume", "BIGINT", "续办次数", "number of 续办 (resume) events"),
    _c("event_staff", "VARCHAR[]", f"{'、'.join(STAFF_STEPS)} 环节上的不同经办人 (按名排序)",
       "distinct staff recorded on the handling steps, sorted"),
    _c("suspended_wd", "INTEGER", "已结束中止的工作日数之和 Σ workdays(中止日期, 续办日期)",
       "working days in closed suspensions"),
    _c("has_open_suspension", "BOOLEAN", "最后一次中止尚未续办", "the last suspension has no 续办"),
    _c("suspensions", 'STRUCT("from" VARCHAR, "to" VARCHAR)[]', "各次中止：from 中止日期、to 续办日期 (未续办为空)",
       "each suspension: from (中止 date), to (续办 date or NULL)"),
)

DERIVED_COLUMNS = (
    _c("as_of", "DATE", "审计日", "audit date"),
    _c("month", "VARCHAR", "请求所在月份 YYYY-MM", "month of the request"),
    _c("closed", "BOOLEAN", "已关闭：有办结或终止", "closed: has 办结 or 终止"),
    _c("close_time", "TIMESTAMP", "关闭时间：首次办结与首次终止中较早者", "earlier of the first 办结 and 终止"),
    _c("start_time", "TIMESTAMP", "开始时间：帮办为受理、代办为委托", "start: 受理 (帮办) / 委托 (代办)"),
    _c("response_time", "TIMESTAMP", "响应时间：帮办为受理、代办为需求分析", "response: 受理 (帮办) / 需求分析 (代办)"),
    _c("response_step", "VARCHAR", "响应环节名：受理或需求分析", "name of the response step"),
    _c("rating_date", "DATE", "评价日期：评价时间，没有时取首次办结时间", "rating time, else first 办结"),
    _c("staff_any", "VARCHAR", "帮办代办员：台账的，未填则取第一个有经办人的办理环节", "assigned staff, else first handling staff"),
    _c("cal_key", "INTEGER", "该市工作日历的编号 (宏 add_workdays_k 等的第一个参数)", "the city's calendar key for the *_k macros"),
    _c("suspended", "BOOLEAN", "中止中：未关闭且最后一次中止未续办 (不判断时限)", "open and suspended: time limit not judged"),
    _c("deadline", "DATE", "办结时限 = add_workdays(开始日期, promised_days + suspended_wd)；无开始或无承诺时限为空",
       "completion deadline; NULL without start or promised_days"),
    _c("response_limit", "DATE", "响应时限 = add_workdays(请求日期, response_days)", "response limit"),
    _c("archive_limit", "DATE", "归档时限 = add_workdays(关闭日期, archive_days)", "archiving limit"),
    _c("followup_limit", "DATE", "回访时限 = add_workdays(评价日期, followup_days)", "follow-up limit"),
)


def setting_column(key: str) -> Column:
    """The column of one numeric pack setting (in ``case_facts`` and ``cfg``)."""
    return _c(key, "INTEGER", f"该市生效的设置 {key} (见设置表)", f"pack setting {key} in force for the city")


SETTING_COLUMNS = tuple(setting_column(k) for k in NUMERIC_SETTINGS)

# ``case_facts``: one row per case (audit.check.facts.build_facts), in this order.
FACT_COLUMNS: tuple[Column, ...] = CASE_ATTRIBUTE_COLUMNS + EVENT_COLUMNS + DERIVED_COLUMNS + SETTING_COLUMNS


def _attributes(names: str) -> tuple[Column, ...]:
    by_name = {c.name: c for c in CASE_ATTRIBUTE_COLUMNS}
    return tuple(by_name[n] for n in names.split())


SOURCE_ROW = _c("source_row", "BIGINT", "源文件中的行号", "row number in the source file")

EVENT_ROWS = Table("event_rows", "每个环节一行 (规范环节名)", "one row per recorded step", (
    _c("city", "VARCHAR", "地市", "city"),
    _c("case_id", "VARCHAR", "办件编号", "case id"),
    _c("step", "VARCHAR", "环节 (规范中文名，如 受理)", "step (canonical Chinese name)"),
    _c("time", "TIMESTAMP", "环节时间", "time of the step"),
    _c("staff", "VARCHAR", "经办人", "staff who recorded the step"),
    _c("note", "VARCHAR", "备注", "note"),
    SOURCE_ROW,
    _c("seq", "BIGINT", "同一时间的先后 (源文件行序)", "order among events with the same time"),
    _c("ingest_id", "BIGINT", "导入编号", "ingest id"),
    _c("file_id", "INTEGER", "来源文件编号 (与 ingest_id 对应 ingest_files)", "source file id"),
))

CASES = Table("cases", "每个办件一行：台账属性及来源文件", "one row per case with its source file", (
    *_attributes("case_id city county hall service_type channel object_type item applicant id_number phone staff "
                 "promised_days fee visits rating rating_score rating_time materials"),
    _c("source_file", "VARCHAR", "来源文件 (工作表为 文件#工作表)", "source file (file#sheet)"),
    _c("source_sha256", "VARCHAR", "来源文件的 SHA-256", "SHA-256 of the source file"),
    SOURCE_ROW,
))

CFG = Table("cfg", "每市一行：生效的设置", "one row per city: settings in force", (
    _c("city", "VARCHAR", "地市", "city"),
    *SETTING_COLUMNS,
    _c("object_types", "VARCHAR[]", "服务对象类别 (设置 object_types)", "service-object categories"),
))

REQ_MATERIALS = Table("req_materials", "每市每种必备归档材料一行", "one row per city and required document", (
    _c("city", "VARCHAR", "地市", "city"),
    _c("doc", "VARCHAR", "材料名称 (设置 materials 的键)", "document name"),
    _c("names", "VARCHAR[]", "材料名称及其别名", "the name and its aliases"),
))

CAL_DAYS = Table("cal_days", "工作日历：每个日历每天一行", "working-day calendar: one row per calendar and day", (
    _c("cal_key", "INTEGER", "日历编号", "calendar key"),
    _c("d", "DATE", "日期", "date"),
    _c("is_workday", "BOOLEAN", "是否工作日", "is a working day"),
    _c("wd_no", "INTEGER", "到该日为止 (含) 的工作日序号", "running working-day number up to d"),
    _c("wd_before", "INTEGER", "该日之前的工作日数", "working days before d"),
))

CAL_WORKDAYS = Table("cal_workdays", "工作日序号 → 日期", "working-day number to date", (
    _c("cal_key", "INTEGER", "日历编号", "calendar key"),
    _c("wd_no", "INTEGER", "工作日序号", "working-day number"),
    _c("d", "DATE", "该工作日的日期", "its date"),
))

CITY_CALENDAR = Table("city_calendar", "地市 → 日历编号 (未列出的地市用 0)", "city to calendar key (0 when absent)", (
    _c("city", "VARCHAR", "地市", "city"),
    _c("cal_key", "INTEGER", "日历编号", "calendar key"),
))

AUX_TABLES: tuple[Table, ...] = (EVENT_ROWS, CASES, CFG, REQ_MATERIALS, CAL_DAYS, CAL_WORKDAYS, CITY_CALENDAR)

MACROS: tuple[Macro, ...] = (
    Macro("add_workdays_k", ("k", "start_day", "n"), "DATE", "日历 k 中 start_day 之后的第 n 个工作日 (n = 0 为当日)",
          "n-th working day after start_day in calendar k"),
    Macro("workdays_k", ("k", "from_day", "to_day"), "INTEGER", "日历 k 中 [from_day, to_day) 内的工作日数",
          "working days in [from_day, to_day) in calendar k"),
    Macro("workdays_before_k", ("k", "day"), "INTEGER", "日历 k 中 day 之前的工作日数", "working days before day"),
    Macro("add_workdays", ("start_day", "n"), "DATE", "同 add_workdays_k，用共同日历 (没有自己日历文件的地市所用，编号 0)",
          "add_workdays_k over the common calendar (key 0)"),
    Macro("workdays", ("from_day", "to_day"), "INTEGER", "同 workdays_k，用共同日历", "workdays_k over the common calendar"),
    Macro("workdays_before", ("day",), "INTEGER", "同 workdays_before_k，用共同日历",
          "workdays_before_k over the common calendar"),
)

# What a rule's SQL returns: one row per violating case.
RULE_OUTPUT: tuple[OutputColumn, ...] = (
    OutputColumn("city", "VARCHAR", "地市", "city", "city"),
    OutputColumn("case_id", "VARCHAR", "办件编号", "case id", "case_id"),
    OutputColumn("message", "VARCHAR", "问题说明 (中文，一句话)", "what is wrong, in Chinese", "message"),
    OutputColumn("evidence", "STRUCT", "证据：英文键名的 STRUCT，存为 JSON；各键的中文名写在规则文件的 evidence 中",
                 "evidence struct with English keys, stored as JSON; labels in the rule file", "to_json(evidence)"),
)
