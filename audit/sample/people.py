"""Vectorised makers of realistic personal data for the sample generator: names, company names,
ID numbers (with a valid check digit), 统一社会信用代码 (valid check character), mobile numbers.

All functions take a `numpy.random.Generator` and return numpy arrays; none prints.
"""

from __future__ import annotations

import numpy as np

from audit.sample import vocab as V

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.array(list("10X98765432"))
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28],
                         dtype=np.int64)


def _join_chars(chars: np.ndarray) -> np.ndarray:
    """(n, k) array of one-character strings ('' allowed at the end) -> (n,) strings."""
    chars = np.ascontiguousarray(chars.astype("<U1"))
    return chars.view(f"<U{chars.shape[1]}").ravel()


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """(n,) non-negative ints -> (n, width) decimal digits, most significant first."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values.astype(np.int64)[:, None] // powers) % 10


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` Chinese personal names: a common surname and one or two given characters."""
    sw = np.array(V.SURNAME_WEIGHTS, dtype=float)
    sur = np.array(V.SURNAMES)[rng.choice(len(V.SURNAMES), n, p=sw / sw.sum())]
    given = np.array(V.GIVEN)
    g1 = given[rng.integers(0, len(given), n)]
    g2 = np.where(rng.random(n) < 0.7, given[rng.integers(0, len(given), n)], "")
    return _join_chars(np.stack([sur, g1, g2], axis=1))


def company_names(rng: np.random.Generator, n: int, places: np.ndarray) -> np.ndarray:
    """`n` company names such as 延安市恒盛商贸有限公司; `places` gives each one's place prefix."""
    words = np.array(V.COMPANY_WORDS)
    brand = _join_chars(np.stack([words[rng.integers(0, len(words), n)],
                                  words[rng.integers(0, len(words), n)]], axis=1))
    industry = np.array(V.INDUSTRIES)[rng.integers(0, len(V.INDUSTRIES), n)]
    suffix = np.array(V.COMPANY_SUFFIX)[rng.integers(0, len(V.COMPANY_SUFFIX), n)]
    out = np.char.add(np.char.add(places.astype(str), brand), industry)
    return np.char.add(out, suffix)


def id_numbers(rng: np.random.Generator, region: np.ndarray, elderly: np.ndarray) -> np.ndarray:
    """18-digit resident ID numbers: division code, birth date, sequence, valid check digit.

    `region` holds 6-digit division codes; `elderly` marks people born 1936-1960 (others
    1958-2004).
    """
    n = len(region)
    lo = np.where(elderly, np.datetime64("1936-01-01"), np.datetime64("1958-01-01"))
    hi = np.where(elderly, np.datetime64("1960-12-31"), np.datetime64("2004-12-31"))
    span = (hi - lo).astype(np.int64)
    birth = lo + (rng.random(n) * span).astype(np.int64).astype("timedelta64[D]")
    year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    seq = rng.integers(1, 1000, n)
    body = region.astype(np.int64) * 10**11 + (year * 10000 + month * 100 + day) * 1000 + seq
    digits = _digits(body, 17)
    check = _ID_CHECK[(digits * _ID_WEIGHTS).sum(axis=1) % 11]
    chars = np.concatenate([digits.astype("<U1"), check[:, None]], axis=1)
    return _join_chars(chars)


def credit_codes(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """18-character 统一社会信用代码 (9 = 工商, 1 = 企业) with a valid GB 32100 check character."""
    n = len(region)
    codes = np.empty((n, 18), dtype=np.int64)
    codes[:, 0], codes[:, 1] = 9, 1
    codes[:, 2:8] = _digits(region, 6)
    codes[:, 8:17] = rng.integers(0, 10, (n, 9))
    letters = rng.random((n, 9)) < 0.15              # some letters in the organisation code
    codes[:, 8:17] = np.where(letters, rng.integers(10, 31, (n, 9)), codes[:, 8:17])
    codes[:, 17] = (31 - (codes[:, :17] * _USCC_WEIGHTS).sum(axis=1) % 31) % 31
    return _join_chars(np.array(list(_USCC_CHARS))[codes])


def mobile_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` 11-digit mainland mobile numbers."""
    prefix = np.array(V.MOBILE_PREFIXES, dtype=np.int64)[rng.integers(0, len(V.MOBILE_PREFIXES), n)]
    return (prefix * 10**8 + rng.integers(0, 10**8, n)).astype("<U11")


def unique_person_names(rng: np.random.Generator, n: int) -> list[str]:
    """`n` distinct personal names (for staff rosters)."""
    seen: dict[str, None] = {}
    while len(seen) < n:
        for name in person_names(rng, 2 * n + 8):
            seen.setdefault(str(name), None)
    return list(seen)[:n]
