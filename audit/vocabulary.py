"""The canonical vocabulary of the input: field names, Chinese header aliases, steps, values.

Everything here is data (contract §1.2–§1.4). A profile (audit.ingest.profile) adds to it for
headers, step names and values that a particular hall uses.
"""

from __future__ import annotations

import re
import unicodedata

# ---------------------------------------------------------------------------------------------
# Steps (环节), contract §1.4: canonical Chinese name -> code, and accepted aliases.
STEPS: dict[str, str] = {
    "咨询": "consult",
    "申请": "apply",
    "受理": "accept",
    "需求分析": "analyse",
    "委托": "entrust",
    "承办": "undertake",
    "移交": "handover",
    "中止": "suspend",
    "续办": "resume",
    "办结": "complete",
    "终止": "terminate",
    "资料归档": "archive",
    "回访": "followup",
}
STEP_ALIASES: dict[str, str] = {
    "服务咨询": "咨询",
    "签订委托书": "委托",
    "委托授权": "委托",
    "办理": "承办",
    "交接": "移交",
    "服务中止": "中止",
    "归档": "资料归档",
}


def step_lookup(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Map every accepted step spelling (canonical, code, alias, profile alias) to its canonical name."""
    table = {name: name for name in STEPS}
    table.update({code: name for name, code in STEPS.items()})
    table.update(STEP_ALIASES)
    for src, dst in (extra or {}).items():
        table[normalize_value(src)] = canonical_step(dst, table)
    return table


def canonical_step(name: str, table: dict[str, str] | None = None) -> str:
    """The canonical step for `name` (a canonical name, code or alias); KeyError if unknown."""
    table = table if table is not None else step_lookup()
    return table[normalize_value(name)]


# ---------------------------------------------------------------------------------------------
# Fields. Case attributes (contract §1.3) and event fields (§1.2). `staff` is the case's assigned
# staff member; `event_staff` is who recorded a step (经办人 in an event log).
CASE_FIELDS = [
    "case_id", "city", "county", "hall", "service_type", "channel", "object_type", "item",
    "applicant", "id_number", "phone", "staff", "promised_days", "fee", "visits", "rating",
    "rating_time", "materials",
]
EVENT_FIELDS = ["step", "time", "event_staff", "note"]
ALL_FIELDS = CASE_FIELDS + EVENT_FIELDS
# Attributes that make a row a case row (beyond the keys case_id and city).
CASE_ATTRIBUTES = [f for f in CASE_FIELDS if f not in ("case_id", "city")]

HEADER_ALIASES: dict[str, list[str]] = {
    "case_id": ["办件编号", "服务编号", "编号", "办件号", "办件流水号", "业务编号"],
    "city": ["地市", "城市", "所属地市", "市"],
    "county": ["区县", "县区", "所属区县"],
    "hall": ["服务中心", "服务大厅", "大厅", "政务服务中心"],
    "service_type": ["服务类型", "帮办代办类型"],
    "channel": ["服务方式", "服务渠道"],
    "object_type": ["服务对象类别", "服务对象类型", "对象类别"],
    "item": ["事项名称", "办理事项", "事项"],
    "applicant": ["服务对象", "申请人", "姓名/单位", "姓名", "申请人/单位", "企业名称/姓名"],
    "id_number": ["证件号码", "身份证号", "身份证号码", "证件号"],
    "phone": ["联系电话", "手机号", "手机号码", "电话"],
    "staff": ["帮办代办员", "帮办员", "代办员", "帮办代办人员"],
    "promised_days": ["承诺时限", "承诺时限(工作日)", "承诺时限(天)", "承诺办结时限", "承诺期限"],
    "fee": ["收费金额", "收费", "收费金额(元)", "收费(元)"],
    "visits": ["到现场次数", "跑动次数"],
    "rating": ["评价", "评价等级", "满意度", "评价结果"],
    "rating_time": ["评价时间"],
    "materials": ["归档材料", "归档资料"],
    "step": ["环节", "步骤", "节点", "办理环节", "环节名称"],
    "time": ["时间", "发生时间", "办理时间", "环节时间"],
    "event_staff": ["经办人", "办理人"],
    "note": ["备注", "说明"],
}


def normalize_header(text: object) -> str:
    """Fold a header cell for matching: NFKC (full-width → half-width), no spaces, no `*`, lower."""
    s = unicodedata.normalize("NFKC", str(text or ""))
    s = re.sub(r"[\s*＊:：]", "", s)
    return s.lower()


def normalize_value(text: object) -> str:
    """Fold a cell value for vocabulary matching: NFKC and no surrounding white space."""
    return unicodedata.normalize("NFKC", str(text)).strip()


def header_lookup() -> dict[str, str]:
    """Map each normalised header spelling (Chinese aliases and canonical English) to its field."""
    table: dict[str, str] = {}
    for field, aliases in HEADER_ALIASES.items():
        table[normalize_header(field)] = field
        for alias in aliases:
            table[normalize_header(alias)] = field
    table["event_staff"] = "event_staff"
    return table


# ---------------------------------------------------------------------------------------------
# Values.
SERVICE_TYPES = {
    "帮办": "帮办", "帮办服务": "帮办", "帮办类": "帮办", "assist": "帮办", "assisted": "帮办",
    "代办": "代办", "代办服务": "代办", "代办类": "代办", "proxy": "代办",
}
CHANNELS = {
    "线上": "线上", "网上": "线上", "在线": "线上", "网办": "线上", "online": "线上", "线上服务": "线上",
    "线下": "线下", "现场": "线下", "窗口": "线下", "offline": "线下", "线下服务": "线下",
}
RATINGS = {"非常满意": 5, "满意": 4, "基本满意": 3, "不满意": 2, "非常不满意": 1}
# Spelling variants seen in exports, and the three-level words of many 好差评 systems (contract
# §1.3: 好评 = 满意, 中评 = 基本满意, 差评 = 不满意).
RATING_ALIASES = {"很满意": "非常满意", "比较满意": "基本满意", "一般": "基本满意", "很不满意": "非常不满意",
                  "好评": "满意", "中评": "基本满意", "差评": "不满意"}
