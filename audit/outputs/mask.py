"""Masking of personal data in the report, the quarantine listing and any other output that shows
case attributes (shown in full only with ``--show-personal-data``).

- a person's name keeps its first character: 张三 → 张*, 张建社 → 张**, 欧阳娜娜 → 欧***. A name stays
  whole only when it is clearly an organisation's: it ends with one of `ORGANISATION_SUFFIXES`
  (each at least four characters, so that no two- or three-character personal name can end with
  one; 张建社, 张学会 and 李红社 are masked), optionally followed by a remark in brackets such as
  ``(有限合伙)``, and has something before the suffix. 个体工商户 is not on the list: an individual
  business is usually registered under its owner's name, which is personal data;
- an ID number keeps its first 3 and last 4 characters: 610102199001011234 → 610***********1234;
- a mobile number keeps its first 3 and last 4 digits: 13812345678 → 138****5678, also written
  ``138 1234 5678``, ``138-1234-5678``, with ``+86``, ``0086``, ``86`` or ``(86)`` before it
  (kept: ``+86 138 **** 5678``), or in full-width digits (１３８****５６７８);
- a landline keeps its area code and last 4 digits: 029-88888888 → 029-****8888,
  0911-1234567 → 0911-***4567, (029)88888888 → (029)****8888, +86 29 8888 8888 → +86 29 **** 8888.

Staff (public servants acting in office) are not masked. `scrub` masks ID numbers (18 characters,
the last may be X; the old 15-digit form; full-width digits; 6-8-4 groups split by a space or
hyphen) and phone numbers inside free text (notes, messages, evidence, raw values).
`mask_unlabelled` is for a cell whose column is not known (a cell of a ragged row, a header no
alias names): it may hold anything, so a value shaped like a person's name is masked too.
`NUMBER_HINT` is a regular expression (also valid in DuckDB) that every value `scrub` would change
matches: a query calls the Python masks only for such values.
"""

from __future__ import annotations

import re

# Endings of an organisation's name, each at least four characters (a person's name is at most
# four Han characters, and must be longer than the suffix to count). Listed in the README.
ORGANISATION_SUFFIXES = (
    # companies and other enterprises 公司、企业
    "有限责任公司", "股份有限公司", "有限公司", "集团公司", "个人独资企业", "合伙企业",
    # cooperatives 合作社
    "农民专业合作社", "专业合作社", "股份经济合作社", "经济合作社", "信用合作社", "信用合作联社",
    # committees and government 委员会、政府机关
    "村民委员会", "居民委员会", "管理委员会", "人民政府", "街道办事处", "人民法院", "人民检察院",
    # centres 中心
    "服务中心", "管理中心", "研究中心", "培训中心",
    # professional firms 事务所
    "律师事务所", "会计师事务所", "税务师事务所",
    # hospitals, schools, research 医院、学校、研究院
    "人民医院", "中心医院", "中医医院", "中心卫生院", "中心小学", "职业学院", "职业技术学院", "科学研究院",
    "设计研究院",
    # associations and banks 协会、银行
    "行业协会", "商业银行", "农商银行",
)
_ORGANISATION = re.compile(
    "^.+(?:" + "|".join(map(re.escape, sorted(ORGANISATION_SUFFIXES, key=len, reverse=True))) + ")"
    r"(?:\s*[(（][^()（）]*[)）])?$", re.DOTALL)

# Numbers are matched on a copy of the text with full-width digits, signs, brackets and spaces made
# ASCII (one character for one, so that positions match), and masked in the original.
_ASCII = str.maketrans("０１２３４５６７８９＋－．（）　Ｘｘ", "0123456789+-.() Xx")
_FULL_WIDTH_DIGIT = re.compile("[０-９]")
_SIGNS = (("＋", "+"), ("－", "-"), ("．", "."), ("（", "("), ("）", ")"), ("　", " "))
_SEP = r"[ .\-]?"
_COUNTRY = r"(?:\+ ?86|0086|\(\+?86\)|86)"
_ID_PATTERNS = (
    # 18 characters (6-8-4, optionally split by a space or hyphen); the last may be X.
    re.compile(r"(?<![0-9])(?P<n>[0-9]{6}[ \-]?[0-9]{8}[ \-]?[0-9]{3}[0-9Xx])(?![0-9])", re.ASCII),
    # The old 15-digit form: area, YYMMDD, 3 digits.
    re.compile(r"(?<![0-9])(?P<n>[0-9]{8}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3})(?![0-9])", re.ASCII),
)
_MOBILE = re.compile(rf"(?<![0-9])(?:{_COUNTRY}{_SEP})?(?P<n>1[3-9](?:{_SEP}[0-9]){{9}})(?![0-9])", re.ASCII)
_LANDLINE = re.compile(
    rf"(?<![0-9])(?:{_COUNTRY}{_SEP}\(?[1-9][0-9]{{1,2}}\)?|\(0[0-9]{{2,3}}\)|0[0-9]{{2,3}})"
    rf"{_SEP}(?P<n>[1-9][0-9]{{2,3}}{_SEP}[0-9]{{4}})(?![0-9])", re.ASCII)
_ANY_DIGIT = re.compile("[0-9０-９]")
# Digits left after the patterns (a phone number in a form they do not know): runs of 7 or more.
_DIGIT_RUN = re.compile(rf"(?<![0-9])[0-9](?:{_SEP}[0-9]){{6,}}(?![0-9])", re.ASCII)

_D, _S = "[0-9０-９]", "[-－ 　.．]?"
NUMBER_HINT = "|".join((
    f"[1１][3-9３-９](?:{_S}{_D}){{9}}",               # a mobile number
    f"{_D}{{6}}{_S}{_D}{{8}}",                          # the start of an ID number
    f"{_D}{{2,4}}[)）]?{_S}{_D}{{3,4}}{_S}{_D}{{4}}",   # a landline's area code and number
))

# A person's name: two to four Han characters, or Han parts joined by middle dots (买买提·艾力).
_NAME_SHAPED = re.compile(r"[\u4e00-\u9fff]{2,4}|[\u4e00-\u9fff]{1,6}(?:[·•][\u4e00-\u9fff]{1,6})+")


def is_organisation(name: str) -> bool:
    """Whether an applicant name is clearly an organisation's (not personal data): it ends with one
    of `ORGANISATION_SUFFIXES` (a remark in brackets may follow) and is longer than the suffix."""
    return bool(_ORGANISATION.match(name.strip()))


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
    """A phone column: mobile numbers and landlines as in `scrub` (138****5678, 029-****8888), any
    other run of 7 or more digits with its first 3 and last 4 digits kept; a value with no such
    number has its digits between the first 3 and the last 4 hidden, all of them when 7 or fewer."""
    if not value:
        return value
    value = value.strip()
    masked = _Masked(value)
    masked.phones()
    masked.hide(_DIGIT_RUN, head=3)
    if masked.changed:
        return masked.text
    digits = [i for i, ch in enumerate(masked.plain) if ch.isdigit()]
    if len(digits) <= 7:
        return "".join("*" if i in digits else ch for i, ch in enumerate(value))
    hidden = set(digits[3:-4])
    return "".join("*" if i in hidden else ch for i, ch in enumerate(value))


def scrub(text: str | None) -> str | None:
    """Mask ID numbers and phone numbers that appear inside free text (see the module doc)."""
    if not text or not _ANY_DIGIT.search(text):
        return text
    masked = _Masked(text)
    masked.ids()
    masked.phones()
    return masked.text


def mask_quoted(text: str | None, applicant: str | None = None, id_number: str | None = None,
                phone: str | None = None) -> str | None:
    """`scrub`, and first the case's own applicant, ID number and phone wherever `text` quotes them
    as stored (a rule's message or evidence may): each replaced by its mask (`mask_name`, `mask_id`,
    `mask_phone`). A name in free text is masked only this way: it cannot be told by its shape."""
    if not text:
        return text
    for value, mask in ((id_number, mask_id), (phone, mask_phone), (applicant, mask_name)):
        value = (value or "").strip()
        if len(value) >= 2 and value in text:
            text = text.replace(value, mask(value))
    return scrub(text)


def mask_unlabelled(value: str | None) -> str | None:
    """A cell of unknown meaning: ID and phone numbers masked as in `scrub`, and a value shaped
    like a person's name (2–4 Han characters, or Han parts joined by ·; not an organisation's)
    masked as in `mask_name`. Over-masking a step or a city name is harmless; a leak is not."""
    if not value:
        return value
    text = value.strip()
    if _NAME_SHAPED.fullmatch(text):
        return mask_name(text)
    return scrub(value)


def _ascii(text: str) -> str:
    """`text` with full-width digits, signs, brackets and spaces made ASCII, one for one
    (`str.translate` is slow on non-ASCII text: used only when there are full-width digits)."""
    if _FULL_WIDTH_DIGIT.search(text):
        return text.translate(_ASCII)
    for wide, ascii_ in _SIGNS:
        if wide in text:
            text = text.replace(wide, ascii_)
    return text


class _Masked:
    """A text being masked: the original, and an ASCII copy of it to match on."""

    def __init__(self, text: str):
        self.text = text
        self.plain = _ascii(text)
        self.changed = False

    def ids(self) -> None:
        for pattern in _ID_PATTERNS:
            self.hide(pattern, head=3)

    def phones(self) -> None:
        self.hide(_MOBILE, head=3)
        self.hide(_LANDLINE, head=0)

    def hide(self, pattern: re.Pattern, head: int) -> None:
        """Hide the digits of each match (of its group ``n`` when it has one) but the first
        `head` and the last 4; later patterns then see stars, not digits."""
        matches = list(pattern.finditer(self.plain))
        if not matches:
            return
        chars, plain = list(self.text), list(self.plain)
        for m in matches:
            start, end = m.span("n") if "n" in pattern.groupindex else m.span()
            digits = [i for i in range(start, end) if plain[i] in "0123456789Xx"]
            for i in digits[head:len(digits) - 4]:
                chars[i] = plain[i] = "*"
                self.changed = True
        self.text, self.plain = "".join(chars), "".join(plain)
