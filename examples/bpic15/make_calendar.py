"""Write the Dutch working-day calendar of the BPIC15 example (pack/calendar_nl.csv).

The BPIC15 logs (five Dutch municipalities) run from 2009 to 2015; decisions fall due up to 2016.
This script lists every day of 2009–2016 as a calendar override file (``date,is_workday,note``,
the format `audit check --calendar` and a pack's ``settings.calendar`` read): Saturdays and
Sundays are rest days, and so are the generally recognised public holidays of the Netherlands:

- Nieuwjaarsdag (1 January), Tweede Paasdag (Easter Monday), Hemelvaartsdag (Easter + 39),
  Tweede Pinksterdag (Easter + 50), Eerste en Tweede Kerstdag (25 and 26 December);
- Koninginnedag (30 April, 29 April when the 30th is a Sunday) up to 2013, Koningsdag
  (27 April, 26 April when the 27th is a Sunday) from 2014;
- Bevrijdingsdag (5 May).

This is the list of the Algemene termijnenwet (art. 3) as this tool reads it; Good Friday
(Goede Vrijdag) is not on it, and municipal offices usually open then, so it is a working day here.
Easter Sunday is computed with the Gregorian computus (Anonymous/Meeus–Jones–Butcher algorithm).

Run from the repository root: ``python3 examples/bpic15/make_calendar.py``. The output is
deterministic (the same bytes every run) and committed beside the pack.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

YEARS = range(2009, 2017)
OUT = Path(__file__).resolve().parent / "pack" / "calendar_nl.csv"


def easter(year: int) -> dt.date:
    """Easter Sunday of a Gregorian year (Meeus–Jones–Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def holidays(year: int) -> dict[dt.date, str]:
    """The Dutch public holidays of a year: date → name."""
    e = easter(year)
    if year <= 2013:
        royal = dt.date(year, 4, 30)
        royal_name = "Koninginnedag"
    else:
        royal = dt.date(year, 4, 27)
        royal_name = "Koningsdag"
    if royal.weekday() == 6:          # on a Sunday it is kept the day before
        royal -= dt.timedelta(days=1)
    return {
        dt.date(year, 1, 1): "Nieuwjaarsdag",
        e + dt.timedelta(days=1): "Tweede Paasdag",
        royal: royal_name,
        dt.date(year, 5, 5): "Bevrijdingsdag",
        e + dt.timedelta(days=39): "Hemelvaartsdag",
        e + dt.timedelta(days=50): "Tweede Pinksterdag",
        dt.date(year, 12, 25): "Eerste Kerstdag",
        dt.date(year, 12, 26): "Tweede Kerstdag",
    }


def rows() -> list[str]:
    """Every day of `YEARS` as a CSV line ``date,is_workday,note``."""
    out = []
    for year in YEARS:
        named = holidays(year)
        day = dt.date(year, 1, 1)
        while day.year == year:
            if day in named:
                out.append(f"{day.isoformat()},0,{named[day]}")
            elif day.weekday() >= 5:
                out.append(f"{day.isoformat()},0,weekend")
            else:
                out.append(f"{day.isoformat()},1,")
            day += dt.timedelta(days=1)
    return out


def main() -> None:
    """Write `OUT`."""
    header = ["# Nederlandse feestdagen 2009-2016 (Algemene termijnenwet art. 3); zaterdag en zondag rustdag",
              "# written by examples/bpic15/make_calendar.py", "date,is_workday,note"]
    OUT.write_text("\n".join(header + rows()) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
