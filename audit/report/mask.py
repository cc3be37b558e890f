"""Masking of personal data in the report (shown in full only with ``--show-personal-data``).

- a person's name keeps its first character: 张三 → 张*, 欧阳娜娜 → 欧***; an organisation's name
  (contains 公司, 中心, 合作社 … or ends in 店, 厂, 社, 局 …) is not personal data and stays;
- an ID number keeps its first 3 and last 4 characters: 610102199001011234 → 610***********1234;
- a phone number keeps its first 3 and last 4 digits: 13812345678 → 138****5678.

Staff (public servants acting in office) are not masked. `scrub` masks ID and mobile numbers
inside free text (messages, evidence) as a second line of defence. `mask_unlabelled` is for a
cell whose column is not known (a cell of a ragged row, a header no alias names): it may hold
anything, so a value shaped like a person's name is masked too.
"""

from __future__ import annotations

import re

# Words that only an organisation's name contains, anywhere in it.
ORGANISATION_WORDS = (
    "公司", "中心", "合作社", "委员会", "协会", "学会", "学校", "大学", "银行", "集团", "工作室", "事务所",
    "基金会", "商行", "门市", "超市", "农场", "牧场", "政府", "办公室", "联社", "企业", "有限", "股份",
    "经营部", "分行", "支行", "医院", "诊所", "药店", "幼儿园", "村委", "居委",
)
# Last characters of an organisation's name. Some also occur in given names (会, 院 …): those
# count only in names longer than a person's (over-masking a shop is harmless, a leak is not).
ORGANISATION_ENDINGS = {"店": 3, "厂": 3, "社": 3, "局": 3, "行": 5, "所": 5, "部": 5, "处": 5, "站": 5,
                        "馆": 5, "院": 5, "会": 5, "场": 5}
_ID_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(\d{3})(\d{11})(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
# A person's name: two to four Han characters, or Han parts joined by middle dots (买买提·艾力).
_NAME_SHAPED = re.compile(r"[\u4e00-\u9fff]{2,4}|[\u4e00-\u9fff]{1,6}(?:[·•][\u4e00-\u9fff]{1,6})+")


def is_organisation(name: str) -> bool:
    """Whether an applicant name is an organisation's (not personal data)."""
    if any(word in name for word in ORGANISATION_WORDS):
        return True
    min_len = ORGANISATION_ENDINGS.get(name[-1:])
    return min_len is not None and len(name) >= min_len


def mask_name(name: str | None) -> str | None:
    """张三 → 张*; organisations unchanged."""
    if not name:
        return name
    name = name.strip()
    if is_organisation(name) or len(name) < 2:
        return name
    return name[0] + "*" * (len(name) - 1)


def mask_id(value: str | None) -> str | None:
    """Keep the first 3 and last 4 characters: 610102199001011234 → 610***********1234."""
    if not value:
        return value
    value = value.strip()
    if len(value) <= 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str | None) -> str | None:
    """Keep the first 3 and last 4 digits, hide the digits between: 13812345678 → 138****5678."""
    if not value:
        return value
    value = value.strip()
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) <= 7:
        return "".join("*" if ch.isdigit() else ch for ch in value)
    hidden = set(digits[3:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


def scrub(text: str | None) -> str | None:
    """Mask 18-digit ID numbers and mobile numbers that appear inside free text."""
    if not text:
        return text
    text = _ID_IN_TEXT.sub(lambda m: m.group(1) + "*" * 11 + m.group(3)[-4:], text)
    return _MOBILE_IN_TEXT.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def mask_unlabelled(value: str | None) -> str | None:
    """A cell of unknown meaning: ID and mobile numbers masked as in `scrub`, and a value shaped
    like a person's name (2–4 Han characters, or Han parts joined by ·; not an organisation's)
    masked as in `mask_name`. Over-masking a step or a city name is harmless; a leak is not."""
    if not value:
        return value
    text = value.strip()
    if _NAME_SHAPED.fullmatch(text):
        return mask_name(text)
    return scrub(value)
