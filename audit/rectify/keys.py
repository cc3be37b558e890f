"""The finding key: which finding a row of a returned rectification list answers, and proof that
the key is the one this database wrote.

Every row of a list written by `audit rectify export` ends with its key (column ``审计键 (请勿修改)``)::

    BB1/<database id>/<run id>.<run key>/<city>/<case id>/<rule id>/<mac>
    BB1/5427e2c32018a8c1/3.9f1c0a7be2d4/延安/YA20250930000003/FLOW-BB-ORDER/Xq0v…(22)

- ``BB1``: the format (a later format gets another prefix).
- database id: 16 hex digits, random, made once per database and kept in ``db_meta``
  (`audit.db.database_identity`). A key from another database is refused as such.
- run id and run key: the run's number as the commands show it, and the first 12 hex digits of its
  ``runs.run_key`` (the hash of everything the run was judged on). `audit check` made again on the
  same data replaces a run under a new number; its run key finds it (the answers move with it,
  `audit.check.runstore.keep_answers`).
- city, case id, rule id: the finding. In these three a ``%``, a ``/`` and a control character are
  written ``%XX`` (the character's hex code), so ``/`` only ever separates the fields.
- mac: HMAC-SHA256 over the fields above (the JSON list ``["BB1", database id, run id, run key,
  city, case id, rule id]`` in UTF-8) with a 256-bit random secret made with the database id and
  kept beside it; the first 22 characters (132 bits) of its URL-safe base64. Changing any character
  of the key makes it fail (or, in the database id, makes it another database's).

What this protects: a key changed by mistake or on purpose — an answer can only land on the
finding the list was written for — and lists of different databases kept apart. Not against whoever
holds the database file (the secret is in it; a copy of the file is the same database). The other
cells of a row (问题, 证据 …) are there to read and are not covered; import ignores them, but checks
地市, 办件编号 and 规则编号 against the key so that rows sorted apart from their keys are caught.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

PREFIX = "BB1"
MAC_CHARS = 22
_ESCAPE = re.compile(r"[%/\x00-\x1f\x7f]")
_UNESCAPE = re.compile(r"%([0-9A-F]{2})")
_KEY = re.compile(rf"^{PREFIX}/(?P<db>[0-9a-f]{{16}})/(?P<run>[1-9][0-9]{{0,17}})\.(?P<rk>[0-9a-f]{{12}})/"
                  r"(?P<city>[^/]+)/(?P<case>[^/]+)/(?P<rule>[^/]+)/(?P<mac>[A-Za-z0-9_-]{22})$")
RUN_KEY_CHARS = 12


@dataclass(frozen=True)
class FindingKey:
    """The fields of a finding key."""

    database_id: str
    run_id: int
    run_key: str          # the first RUN_KEY_CHARS hex digits of runs.run_key
    city: str
    case_id: str
    rule_id: str


class KeyProblem(ValueError):
    """A key that cannot be read: the reason, in Chinese."""


def make_key(secret: bytes, key: FindingKey) -> str:
    """The key's text (see the module doc)."""
    fields = [_escape(key.city), _escape(key.case_id), _escape(key.rule_id)]
    return (f"{PREFIX}/{key.database_id}/{key.run_id}.{key.run_key[:RUN_KEY_CHARS]}/" + "/".join(fields)
            + "/" + _mac(secret, key))


def read_key(text: str) -> tuple[FindingKey, str]:
    """The fields and the mac of a key's text; KeyProblem when it is not one."""
    m = _KEY.match(text.strip())
    if m is None:
        raise KeyProblem("审计键的格式不对 (被改动或不完整)")
    try:
        city, case_id, rule_id = (_unescape(m.group(g)) for g in ("city", "case", "rule"))
    except ValueError:
        raise KeyProblem("审计键的格式不对 (被改动或不完整)") from None
    return FindingKey(m.group("db"), int(m.group("run")), m.group("rk"), city, case_id, rule_id), m.group("mac")


def authentic(secret: bytes, key: FindingKey, mac: str) -> bool:
    """Whether `mac` is the one this database's secret gives `key` (compared in constant time)."""
    return hmac.compare_digest(_mac(secret, key), mac)


def _mac(secret: bytes, key: FindingKey) -> str:
    message = json.dumps([PREFIX, key.database_id, key.run_id, key.run_key[:RUN_KEY_CHARS], key.city, key.case_id,
                          key.rule_id], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:MAC_CHARS]


def _escape(text: str) -> str:
    return _ESCAPE.sub(lambda m: f"%{ord(m.group()):02X}", text)


def _unescape(text: str) -> str:
    """The field `_escape` wrote as `text`; ValueError for any other spelling (one text per field)."""
    plain = _UNESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    if _escape(plain) != text:
        raise ValueError(text)
    return plain
