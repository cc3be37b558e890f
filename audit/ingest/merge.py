"""Merge the staged rows into the database: events, events waiting for their case, case rows.

Runs inside the ingest's transaction. Every counted row of a file ends as loaded, duplicate or
quarantined, and "loaded" is what the tables gain from that file (checked by `audit.ingest.load`).

Events: an event found more than once in this ingest is loaded once (its first row). The events
of a case replace the events the database holds for that case (a corrected export), unless the
database holds every one of them already (the same set, or a part of it: an earlier or partial
file sent again) -- then they are duplicates and nothing changes; with `append`, only events not
held yet are added. Events
waiting for their case row (no city, case not known) are kept the same way, per case_id, in
`waiting_events`, and join `event_rows` when their case becomes known.

Case rows: per case, this ingest's rows are folded field by field (a later row wins for the
fields it gives). A counted row that gives a field a value the fold does not keep is
quarantined (a later row of the same case says otherwise); a row all of whose values are in
the stored case is a duplicate; the last of the others is the row loaded (the attributes folded
from a combined export's events are no row of their own: they never displace it). The case then
replaces the database's field by field, or is a duplicate when nothing changes.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from audit.ingest.normalize import has_rows
from audit.ingest.stage import ATTRS, ROW_BITS
from audit.vocabulary import HEADER_ALIASES, RATINGS

# The identity of an event, for comparing this ingest's events with each other and the database's.
EVENT_KEY = 'city, case_id, step, "time", staff, note'
# What the stage's hash `h` covers (not the city: it may be found only at the merge).
EVENT_HASH = 'case_id, step, "time", staff, note'


@dataclass
class Target:
    """A table events are merged into, and the key that identifies a case in it."""

    table: str
    keys: list[str]
    columns: str           # the insert's column list
    values: str            # … and the values, from a source row `e`
    cases_count: bool      # its cases are cases of the database (new / replaced are counted)


EVENTS = Target("event_rows", ["city", "case_id"],
                'city, case_id, step, "time", staff, note, source_row, seq, ingest_id, file_id',
                'e.city, e.case_id, e.step, e."time", e.staff, e.note', True)
WAITING = Target("waiting_events", ["case_id"],
                 'case_id, step, "time", staff, note, source_row, seq, ingest_id, file_id',
                 'e.case_id, e.step, e."time", e.staff, e.note', False)


@dataclass
class MergeCounts:
    """Per file: rows loaded / duplicate (counted rows only); and what the ingest did to cases."""

    loaded: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    waiting: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    first_load_cases: int | None = None   # the first events of the database from one file: all new
    joined: int = 0                       # waiting events that joined their case
    joined_duplicates: int = 0            # … of which the database already had an identical event


def _one(con, sql: str, params=None):
    return con.execute(sql, params or []).fetchall()[0][0]


def seq_base(con) -> int:
    """The next free `seq` (events are ordered by it within a timestamp)."""
    return _one(con, "SELECT greatest((SELECT coalesce(max(seq), 0) FROM event_rows), "
                     "(SELECT coalesce(max(seq), 0) FROM waiting_events))")


def merge_events(con, source: str, target: Target, tag: str, append: bool, ingest_id: int,
                 counts: MergeCounts, one_source: bool = False, one_file: int | None = None) -> None:
    """Merge the events of `source` into `target` (see module doc); count per file. `one_file`:
    every row of `source` is a counted row of that file (its loaded rows are the rows inserted)."""
    keys = ", ".join(target.keys)
    on = " AND ".join(f"o.{k} = c.{k}" for k in target.keys)
    dup, uniq = f"_dupskip{tag}", f"_evu{tag}"
    # Hashes seen more than once: sorting 6 M hashes in numpy takes a tenth of a second, several
    # times less than any grouping in SQL. Only rows with such a hash are compared exactly.
    hashes = con.execute(f"SELECT h FROM {source}").fetchnumpy()["h"]
    sorting = threading.Thread(target=hashes.sort)     # numpy sorts without holding the GIL
    sorting.start()
    try:
        existing = has_rows(con, target.table)
        cases = None
        if one_source and not existing and target.cases_count:
            # The first events of the database, from one file: all its cases are new. Counted while
            # the hashes sort (a repeated event is of the same case: the repeats do not matter).
            cases = _one(con, f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM {source})")
    finally:
        sorting.join()
    repeated = hashes[1:][hashes[1:] == hashes[:-1]]
    del hashes
    con.execute(f"CREATE OR REPLACE TEMP TABLE _duph{tag} (h UBIGINT)")
    if len(repeated):
        import numpy as np
        import pyarrow as pa

        con.register("_duph_np", pa.table({"h": pa.array(np.unique(repeated), pa.uint64())}))
        try:
            con.execute(f"INSERT INTO _duph{tag} SELECT h FROM _duph_np")
        finally:
            con.unregister("_duph_np")
    con.execute(f"""
        -- An event found more than once in this ingest is loaded once (its first row, by pos).
        CREATE OR REPLACE TEMP TABLE {dup} AS
        SELECT pos, counted FROM (
            SELECT pos, counted, row_number() OVER (PARTITION BY {EVENT_KEY} ORDER BY pos) AS rn
            FROM {source} WHERE h IN (SELECT h FROM _duph{tag}))
        WHERE rn > 1""")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {uniq} AS SELECT e.* FROM {source} e"
                + (f" ANTI JOIN {dup} d ON e.pos = d.pos" if has_rows(con, dup) else ""))
    if cases is not None:
        counts.first_load_cases = cases
        _insert(con, uniq, target, ingest_id, counts, one_file)
        return
    compare = "count(*) AS n, sum(h) AS s, " if existing else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _evc{tag} AS
                    SELECT {keys}, {compare}min(pos >> 40) AS f0, max(pos >> 40) AS f1
                    FROM {uniq} GROUP BY ALL""")
    if existing:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _evcase{tag} AS
            WITH o AS (SELECT {keys}, count(*) AS n, sum(hash({EVENT_HASH})) AS s
                       FROM {target.table} SEMI JOIN _evc{tag} USING ({keys}) GROUP BY ALL)
            SELECT {', '.join(f'c.{k}' for k in target.keys)},
                   CASE WHEN o.n IS NULL THEN 'new' WHEN o.n = c.n AND o.s = c.s THEN 'same' ELSE 'changed' END AS verdict
            FROM _evc{tag} c LEFT JOIN o ON {on}""")
    else:   # a case the database does not have yet is new: nothing to compare
        con.execute(f"CREATE OR REPLACE TEMP TABLE _evcase{tag} AS SELECT {keys}, 'new' AS verdict FROM _evc{tag}")
    if existing and has_rows(con, f"_evcase{tag} WHERE verdict = 'changed'"):
        # A case whose events here are all in the database already (a part of its events: an earlier
        # or partial file sent again) is not replaced: nothing would be added, something lost.
        same = " AND ".join(f"o.{c} IS NOT DISTINCT FROM e.{c}" for c in ("case_id", "step", '"time"', "staff", "note"))
        same += "".join(f" AND o.{k} = e.{k}" for k in target.keys if k != "case_id")
        con.execute(f"""
            UPDATE _evcase{tag} v SET verdict = 'same' FROM (
                SELECT {keys}, count(*) AS held FROM (
                    SELECT e.* FROM {uniq} e SEMI JOIN (SELECT {keys} FROM _evcase{tag} WHERE verdict = 'changed') c
                    USING ({keys})) e
                WHERE EXISTS (SELECT 1 FROM {target.table} o WHERE {same})
                GROUP BY ALL) m, _evc{tag} c
            WHERE {' AND '.join(f'v.{k} = m.{k} AND c.{k} = m.{k}' for k in target.keys)}
              AND v.verdict = 'changed' AND m.held = c.n""")
    if append and existing:
        # Append mode: keep earlier events; add only the ones not loaded before.
        same = " AND ".join(f"o.{c} IS NOT DISTINCT FROM e.{c}" for c in ("city", "case_id", "step", '"time"', "staff", "note")
                            if c != "city" or "city" in target.keys)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _evload{tag} AS
            SELECT e.* FROM {uniq} e ANTI JOIN (SELECT o.* FROM {target.table} o SEMI JOIN
                (SELECT {keys} FROM _evcase{tag} WHERE verdict <> 'new') c USING ({keys})) o ON {same}""")
        if target.cases_count:
            con.execute(f"""
                INSERT INTO _touched
                SELECT DISTINCT l.pos >> 40, l.city, l.case_id, CASE WHEN c.verdict = 'new' THEN 'new' ELSE 'appended' END
                FROM _evload{tag} l JOIN _evcase{tag} c USING (city, case_id)""")
        source_rows = f"_evload{tag}"
    else:
        if target.cases_count:
            # The files each case's (loaded) events come from, and what happened to the case.
            con.execute(f"""
                INSERT INTO _touched
                SELECT f.file_id, f.city, f.case_id, CASE WHEN v.verdict = 'changed' THEN 'replaced' ELSE 'new' END
                FROM (SELECT f0 AS file_id, city, case_id FROM _evc{tag} WHERE f0 = f1
                      UNION ALL
                      SELECT DISTINCT e.pos >> 40, e.city, e.case_id FROM {uniq} e
                      SEMI JOIN (SELECT city, case_id FROM _evc{tag} WHERE f0 <> f1) m USING (city, case_id)) f
                JOIN _evcase{tag} v USING (city, case_id) WHERE v.verdict <> 'same'""")
        if existing:
            con.execute(f"""DELETE FROM {target.table} WHERE ({keys}) IN
                            (SELECT ({keys}) FROM _evcase{tag} WHERE verdict = 'changed')""")
        source_rows = uniq
        if existing and has_rows(con, f"_evcase{tag} WHERE verdict = 'same'"):
            source_rows = (f"(SELECT e.* FROM {uniq} e ANTI JOIN (SELECT {keys} FROM _evcase{tag} WHERE verdict = 'same') s "
                           f"USING ({keys}))")
    _insert(con, source_rows, target, ingest_id, counts, one_file)


def _insert(con, source: str, target: Target, ingest_id: int, counts: MergeCounts, one_file: int | None) -> None:
    base = seq_base(con)
    inserted = con.execute(f"""
        INSERT INTO {target.table} ({target.columns})
        SELECT {target.values}, (e.pos >> 6) & {ROW_BITS}, {base} + e.pos, {ingest_id}, e.pos >> 40
        FROM {source} e""").fetchall()[0][0]
    into = counts.waiting if target is WAITING else counts.loaded
    if one_file is not None:
        into[one_file] += inserted
        return
    for file_id, n in con.execute(f"SELECT pos >> 40, count(*) FROM {source} WHERE counted GROUP BY 1").fetchall():
        into[file_id] += n


def count_counted(con, source: str) -> dict[int, int]:
    """Counted rows of `source` per file."""
    return dict(con.execute(f"SELECT pos >> 40, count(*) FROM {source} WHERE counted GROUP BY 1").fetchall())


def release_waiting(con, counts: MergeCounts) -> None:
    """Waiting events whose case_id is now known in exactly one city join that case: moved to
    `event_rows` with their provenance and order, unless the case already has the same event."""
    if not has_rows(con, "waiting_events"):
        return
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _wplace AS
        SELECT case_id, min(city) AS city FROM (
            SELECT DISTINCT city, case_id FROM (
                SELECT city, case_id FROM case_rows SEMI JOIN waiting_events USING (case_id)
                UNION ALL SELECT city, case_id FROM event_rows SEMI JOIN waiting_events USING (case_id)))
        GROUP BY case_id HAVING count(*) = 1""")
    if not has_rows(con, "_wplace"):
        return
    same = " AND ".join(f"o.{c} IS NOT DISTINCT FROM w.{c}" for c in ("case_id", "step", '"time"', "staff", "note"))
    counts.joined = _one(con, "SELECT count(*) FROM waiting_events SEMI JOIN _wplace USING (case_id)")
    before = _one(con, "SELECT count(*) FROM event_rows")
    con.execute(f"""
        INSERT INTO event_rows (city, case_id, step, "time", staff, note, source_row, seq, ingest_id, file_id)
        SELECT p.city, w.case_id, w.step, w."time", w.staff, w.note, w.source_row, w.seq, w.ingest_id, w.file_id
        FROM waiting_events w JOIN _wplace p USING (case_id)
        WHERE NOT EXISTS (SELECT 1 FROM event_rows o WHERE o.city = p.city AND {same});
        DELETE FROM waiting_events WHERE case_id IN (SELECT case_id FROM _wplace);""")
    counts.joined_duplicates = counts.joined - (_one(con, "SELECT count(*) FROM event_rows") - before)


# ---------------------------------------------------------------------------------------------
def merge_cases(con, source: str, ingest_id: int, counts: MergeCounts) -> bool:
    """Fold this ingest's case rows (`source`, see `stage.case_rows_sql`), classify each counted
    row, and merge the cases with the database (see module doc). True when a row conflicted
    (quarantined; its positions in `_csconf`)."""
    fold = ", ".join(f"arg_max_null({a}, pos) FILTER (WHERE p_{a}) AS {a}, bool_or(p_{a}) AS p_{a}" for a in ATTRS)
    merged = ", ".join(f"CASE WHEN n.p_{a} THEN n.{a} ELSE o.{a} END AS {a}" for a in ATTRS)
    # The merged case equals the database's: every field this ingest gives is the same.
    same_cond = " AND ".join(f"(NOT n.p_{a} OR n.{a} IS NOT DISTINCT FROM o.{a})" for a in ATTRS)
    # The usual case table has one row per case: nothing to fold, no repeats or conflicts to find.
    one_row_each = not has_rows(con, f"(SELECT 1 FROM {source} GROUP BY city, case_id HAVING count(*) > 1)")
    fresh = not has_rows(con, "case_rows")
    if one_row_each:    # the cases are the source as it is: a view, not a copy
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW _csn AS
            SELECT city, case_id, pos AS last_pos, {', '.join(f'{a}, p_{a}' for a in ATTRS)} FROM {source};
            CREATE OR REPLACE TEMP TABLE _csr AS
            SELECT pos, city, case_id, file_id, "row", 'final' AS status FROM {source} WHERE counted""")
    else:
        # A counted row conflicts when it gives a field a value the fold (over all rows) does not
        # keep: a later row of the case says otherwise. The stored case is the fold over the rest;
        # of those, the last row is the one loaded, the others hold nothing it lacks (duplicates).
        differs = " OR ".join(f"(r.p_{a} AND r.{a} IS DISTINCT FROM f.{a})" for a in ATTRS)
        first_diff = "CASE " + " ".join(f"WHEN r.p_{a} AND r.{a} IS DISTINCT FROM f.{a} THEN '{a}'" for a in ATTRS) + " END"
        label = "CASE field " + " ".join(f"WHEN '{a}' THEN '{HEADER_ALIASES[a][0]}'" for a in ATTRS) + " END"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _csall AS
            SELECT city, case_id, {fold} FROM {source} GROUP BY city, case_id HAVING count(*) > 1;
            CREATE OR REPLACE TEMP TABLE _csconf AS
            SELECT r.pos, r.file_id, r."row", r.case_id, {first_diff} AS field
            FROM {source} r JOIN _csall f USING (city, case_id) WHERE r.counted AND ({differs});
            CREATE OR REPLACE TEMP TABLE _csn AS
            -- The stored case comes from its last counted row (a row of a case table), else from the
            -- case attributes folded from a combined export's events.
            SELECT city, case_id, coalesce(max(pos) FILTER (WHERE counted), max(pos)) AS last_pos, {fold}
            FROM (SELECT * FROM {source} ANTI JOIN _csconf USING (pos)) GROUP BY city, case_id;
            CREATE OR REPLACE TEMP TABLE _csr AS
            SELECT r.pos, r.city, r.case_id, r.file_id, r."row",
                   CASE WHEN x.pos IS NOT NULL THEN 'conflict' WHEN r.pos = n.last_pos THEN 'final' ELSE 'dup' END AS status
            FROM {source} r LEFT JOIN _csconf x ON x.pos = r.pos
            LEFT JOIN _csn n ON n.city = r.city AND n.case_id = r.case_id
            WHERE r.counted;
            INSERT INTO _mquar SELECT file_id, "row", field,
                '办件 ' || case_id || ' 在本次导入中后面再次出现且 ' || {label} || ' 不同，以后出现的一行为准'
            FROM _csconf;""")
    if fresh:
        con.execute(f"""
            CREATE OR REPLACE TEMP VIEW _csv AS
            SELECT n.city, n.case_id, n.last_pos, {', '.join(f'CASE WHEN n.p_{a} THEN n.{a} END AS {a}' for a in ATTRS)},
                   'new' AS verdict
            FROM _csn n""")
    else:
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _csv AS
            SELECT n.city, n.case_id, n.last_pos, {merged},
                   CASE WHEN o.case_id IS NULL THEN 'new' WHEN {same_cond} THEN 'same' ELSE 'changed' END AS verdict
            FROM _csn n LEFT JOIN case_rows o USING (city, case_id);
            DELETE FROM case_rows WHERE (city, case_id) IN
                (SELECT (city, case_id) FROM _csv WHERE verdict = 'changed');""")
    verdict = "'new'" if fresh else "v.verdict"
    join = "" if fresh else "JOIN _csv v USING (city, case_id)"
    for file_id, status, n in con.execute(f"""
            SELECT r.file_id, CASE WHEN r.status = 'final' AND {verdict} <> 'same' THEN 'loaded'
                                   WHEN r.status = 'conflict' THEN 'conflict' ELSE 'duplicate' END, count(*)
            FROM _csr r {join} GROUP BY ALL""").fetchall():
        if status == "loaded":
            counts.loaded[file_id] += n
        elif status == "duplicate":
            counts.duplicates[file_id] += n
    con.execute(f"""
        INSERT INTO case_rows
        SELECT v.city, v.case_id, {', '.join(f'v.{a}' for a in ATTRS if a not in ('rating_time', 'materials'))},
               CASE v.rating {' '.join(f"WHEN '{k}' THEN {s}" for k, s in RATINGS.items())} END,
               v.rating_time, v.materials, (v.last_pos >> 6) & {ROW_BITS}, {ingest_id}, v.last_pos >> 40
        FROM _csv v WHERE v.verdict <> 'same';
        INSERT INTO _touched SELECT last_pos >> 40, city, case_id,
               CASE WHEN verdict = 'new' THEN 'new' ELSE 'replaced' END
        FROM _csv WHERE verdict <> 'same';
    """)
    return not one_row_each and has_rows(con, "_csconf")


WORK_VIEWS = ("_ev", "_evwait", "_placed", "_cs", "_ev0", "_cs0", "_csn", "_csv", "_evu_e", "_evu_w")
WORK_TABLES = ("_quar", "_aside", "_mquar", "_touched", "_tc", "_files", "_heads", "_cityless", "_cmap", "_camb", "_csall", "_csconf", "_csn", "_csr", "_csv", "_wplace",
               *(f"{t}{tag}" for t in ("_duph", "_dupskip", "_evc", "_evcase", "_evload") for tag in ("_e", "_w")))
