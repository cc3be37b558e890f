"""Rectification lists (整改清单): a workbook per hall of one run's findings, and the halls' answers
read back.

- `audit.rectify.keys`: the finding key on every row (which finding, and proof it is unchanged);
- `audit.rectify.lists`: `audit rectify export` — the workbooks;
- `audit.rectify.answers`: `audit rectify import` — the returned workbooks into ``rectify_answers``,
  every row accounted for (read = recorded + rejected + unchanged).

The tables (``db_meta``, ``rectify_imports``, ``rectify_answers``, ``rectify_superseded``) are
declared in `audit.db`.
"""

STATUSES = ("已整改", "整改中", "申请豁免", "有异议")
