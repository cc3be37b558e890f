"""Stage one file (or sheet) into a temporary table, outside the ingest's transaction.

The stage holds the file's rows as canonical values (`audit.ingest.normalize.stage_sql`), each
with its physical row number. Rows with a key problem go to the temp table `_quar` (quarantine),
cells that could not be used to `_aside` (set aside: the row still loads). What the merge needs
is queued on the returned `Staged`: SELECTs giving the file's event rows and case rows, with
`pos` = file_id << 40 | row << 6 | wide column, one ordered key per staged value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import duckdb

from audit.ingest.normalize import plan_columns, present_attributes, stage_sql
from audit.vocabulary import CASE_ATTRIBUTES

ATTRS = CASE_ATTRIBUTES
ROW_BITS = 17179869183          # (pos >> 6) & ROW_BITS is the row number


def attr_type(a: str) -> str:
    """The stored type of a case attribute."""
    return {"promised_days": "INTEGER", "fee": "DECIMAL(12,2)", "visits": "INTEGER",
            "rating_time": "TIMESTAMP"}.get(a, "VARCHAR")


def case_rows_sql(pos: str, file_id: int | str, row: str, counted: str, attrs: dict[str, str],
                  source: str) -> str:
    """A SELECT giving case rows in the shape the merge reads: pos; file_id; the row; counted (a
    row of its own in the file, not folded from event rows); city, case_id; each attribute and
    p_<attribute>, whether the file gives it (`attrs`: attribute -> its expression)."""
    cols = ", ".join(f"CAST({attrs[a]} AS {attr_type(a)}) AS {a}, TRUE AS p_{a}" if attrs.get(a)
                     else f"NULL::{attr_type(a)} AS {a}, FALSE AS p_{a}" for a in ATTRS)
    return (f'SELECT {pos} AS pos, {file_id}::INTEGER AS file_id, {row} AS "row", {counted} AS counted, '
            f"city, case_id, {cols} FROM {source}")


EMPTY_CASE_ROWS = case_rows_sql("0::BIGINT", 0, "0::BIGINT", "TRUE", {},
                                "(SELECT NULL::VARCHAR AS city, NULL::VARCHAR AS case_id) WHERE false")
EVENT_COLUMNS = 'pos, counted, city, case_id, step, "time", staff, note, h'
EMPTY_EVENTS = ("SELECT 0::BIGINT AS pos, TRUE AS counted, NULL::VARCHAR AS city, NULL::VARCHAR AS case_id, "
                'NULL::VARCHAR AS step, NULL::TIMESTAMP AS "time", NULL::VARCHAR AS staff, NULL::VARCHAR AS note, '
                "0::UBIGINT AS h WHERE false")


@dataclass
class Staged:
    """One staged file (or sheet): its temp tables and what the merge needs to know about it."""

    file_id: int
    name: str
    layout: str
    case_id_header: str
    tables: list[str] = field(default_factory=list)     # temp tables to drop at the end
    events_sql: list[str] = field(default_factory=list)  # SELECTs giving its event rows
    cases_sql: list[str] = field(default_factory=list)   # SELECTs giving its case rows (`case_rows_sql`)
    events_ok: int = 0                                   # counted event rows without a key problem
    headers: dict[str, str] = field(default_factory=dict)  # attribute -> the file's own header

    @property
    def counts_events(self) -> bool:
        """Rows of it are events (event logs, combined exports, XES logs)."""
        return self.layout in ("events", "combined", "xes")

    @property
    def counts_cases(self) -> bool:
        """Rows of it are case rows (case tables, wide ledgers, the traces of an XES log)."""
        return self.layout in ("cases", "wide", "xes")

    @property
    def case_table(self) -> str | None:
        """The stage table of its case rows (cities are placed in it in place), if it has one."""
        if not self.counts_cases:
            return None
        return self.tables[1] if self.layout == "xes" else self.tables[0]


def setup(con: duckdb.DuckDBPyConnection) -> None:
    """The temp tables the stages write to."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _quar (file_id INTEGER, "row" BIGINT, "column" VARCHAR, reason VARCHAR, raw JSON);
        CREATE OR REPLACE TEMP TABLE _aside (file_id INTEGER, "row" BIGINT, field VARCHAR, "column" VARCHAR,
                                             raw VARCHAR, reason VARCHAR);
    """)


def stage_file(con, file_id: int, raw, scan, builtin, prof, city, steps):
    """Normalise one file into a temp table; record its quarantined rows and set-aside cells.
    Returns (Staged, facts) where facts has what the file report needs: the raw table actually
    read, its plan, the rows staged, the reader used, and the rows --city filled."""
    st = f"_st{file_id}"
    rowx, rows = "_row", 0
    try:
        plan = _plan(raw, builtin, prof)
    except BaseException:
        if raw.duck is not None:
            raw.duck.cleanup()      # a transcoded copy is not kept for a file that cannot be read
        raise
    if raw.duck is not None:
        fast = False
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS "
                        f"{stage_sql(plan, prof, city, raw.duck.sql(), steps, has_row=False, fields=len(raw.duck.names))}")
            rows = con.execute(f"SELECT count(*) FROM {st}").fetchall()[0][0]
            scan.result()
            fast = raw.duck.reads_exactly(rows, scan)
        except duckdb.Error:
            pass   # ragged rows, bad UTF-8, mixed line ends...: the exact reader says what is wrong
        finally:
            raw.duck.cleanup()
        if fast:
            # DuckDB keeps a file's order through projections: record k of the file is rowid k.
            rowx = f"(rowid + {raw.duck.first_row})"
        else:
            con.execute(f"DROP TABLE IF EXISTS {st}")
            raw = raw.fallback()
            plan = _plan(raw, builtin, prof)
    if raw.table is None and rowx == "_row":     # a CSV file DuckDB should not read itself
        raw = raw.fallback()
        plan = _plan(raw, builtin, prof)
    if raw.table is not None:
        con.register("_raw", raw.table)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {st} AS {stage_sql(plan, prof, city, '_raw', steps, has_row=True)}")
        finally:
            con.unregister("_raw")
        rows = raw.table.num_rows
        raw.table = None
    name = raw.path.name + (f"#{raw.sheet}" if raw.sheet else "")
    staged = Staged(file_id, name, plan.layout, plan.header("case_id"), [st])
    staged.headers = {a: plan.header(a) for a in ["case_id", *ATTRS]}

    con.execute(f"""INSERT INTO _quar SELECT {file_id}, {rowx}, problem->>'column', problem->>'reason', problem->'raw'
                    FROM {st} WHERE problem IS NOT NULL""")
    problems = con.execute(f"SELECT count(*) FROM _quar WHERE file_id = {file_id}").fetchall()[0][0]
    if raw.bad_rows:
        con.executemany("INSERT INTO _quar VALUES (?, ?, NULL, ?, ?)",
                        [[file_id, row, reason, _cells_json(raw.headers, cells)] for row, reason, cells in raw.bad_rows])
    con.execute(f"""INSERT INTO _aside SELECT {file_id}, r, a.field, a."column", a.raw, a.reason
                    FROM (SELECT {rowx} AS r, unnest(aside) AS a FROM {st} WHERE aside IS NOT NULL)""")
    filled = con.execute(f"SELECT count(*) FROM {st} WHERE filled AND problem IS NULL").fetchall()[0][0] if city else 0

    base = f"(({file_id}::BIGINT << 40) | ({rowx} << 6))"
    ok = "problem IS NULL"
    if plan.layout in ("events", "combined"):
        staged.events_sql.append(f"""SELECT {base} AS pos, TRUE AS counted, city, case_id, step,
                                     "time", event_staff AS staff, note, h FROM {st} WHERE {ok}""")
        staged.events_ok = rows - problems
    if plan.wide:
        wide = f"_evw{file_id}"
        staged.tables.append(wide)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {wide} (pos BIGINT, counted BOOLEAN, city VARCHAR,
                        case_id VARCHAR, step VARCHAR, "time" TIMESTAMP, staff VARCHAR,
                        note VARCHAR, h UBIGINT)""")
        for n, (i, step) in enumerate(plan.wide.items()):
            con.execute(f"""INSERT INTO {wide} SELECT {base} | {n + 1}, FALSE, city, case_id, $1, w{i},
                            NULL, NULL, hash(case_id, $1, w{i}, NULL::VARCHAR, NULL::VARCHAR)
                            FROM {st} WHERE {ok} AND w{i} IS NOT NULL""", [step])
        staged.events_sql.append(f"SELECT * FROM {wide}")
    present = set(present_attributes(plan, prof))
    if plan.layout in ("cases", "wide"):
        staged.cases_sql.append(case_rows_sql(base, file_id, rowx, "TRUE", {a: a for a in present},
                                              f"{st} WHERE {ok}"))
    elif plan.layout == "combined":
        # Case attributes repeated on event rows: per case, the last non-empty value of each.
        folded = f"_csf{file_id}"
        staged.tables.append(folded)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {folded} AS {case_rows_sql(
                            f'max({base})', file_id, f'min({rowx})', 'FALSE',
                            {a: f'arg_max({a}, {rowx}) FILTER (WHERE {a} IS NOT NULL)' for a in present},
                            f'{st} WHERE {ok} GROUP BY city, case_id')}""")
        staged.cases_sql.append(f"SELECT * FROM {folded}")
    return staged, {"raw": raw, "plan": plan, "rows": rows, "problems": problems + len(raw.bad_rows),
                    "reader": "duckdb" if rowx != "_row" else "exact", "filled": filled}


def stage_xes(con, file_id: int, log, prof, city, steps):
    """Stage an XES log read by `audit.ingest.xes.read_xes`: its events (`_st<id>`) and its traces
    (`_stc<id>`, counted case rows), both rows of the one file; the rows quarantined while
    reading go straight to `_quar`. Returns (Staged, facts) as `stage_file` does."""
    ev, cs = f"_st{file_id}", f"_stc{file_id}"
    staged = Staged(file_id, log.path.name, "xes", log.traces.plan.header("case_id"), [ev, cs])
    staged.headers = {a: log.traces.plan.header(a) for a in ["case_id", *ATTRS]}
    rowx = "(_row >> 6)"          # `_row` is line << 6 | k (see audit.ingest.xes)
    base = f"(({file_id}::BIGINT << 40) | _row)"
    for table, part in ((ev, log.events), (cs, log.traces)):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS "
                    f"{stage_sql(part.plan, prof, city, part.sql(), steps, has_row=True, tabular=False)}")
        con.execute(f"""INSERT INTO _quar SELECT {file_id}, {rowx}, problem->>'column', problem->>'reason', problem->'raw'
                        FROM {table} WHERE problem IS NOT NULL""")
        con.execute(f"""INSERT INTO _aside SELECT {file_id}, r, a.field, a."column", a.raw, a.reason
                        FROM (SELECT {rowx} AS r, unnest(aside) AS a FROM {table} WHERE aside IS NOT NULL)""")
    bad = str(log.bad).replace("'", "''")
    con.execute(f"""INSERT INTO _quar SELECT {file_id}, "row", "column", reason, CAST(raw AS JSON)
                    FROM read_parquet('{bad}')""")
    problems = con.execute(f"SELECT count(*) FROM _quar WHERE file_id = {file_id}").fetchall()[0][0]
    ev_problems = con.execute(f"SELECT count(*) FROM {ev} WHERE problem IS NOT NULL").fetchall()[0][0]
    filled = 0
    if city:
        filled = con.execute(f"""SELECT (SELECT count(*) FROM {ev} WHERE filled AND problem IS NULL)
                                        + (SELECT count(*) FROM {cs} WHERE filled AND problem IS NULL)""").fetchall()[0][0]
    staged.events_sql.append(f"""SELECT {base} AS pos, TRUE AS counted, city, case_id, step,
                                 "time", event_staff AS staff, note, h FROM {ev} WHERE problem IS NULL""")
    staged.events_ok = log.events.rows - ev_problems
    attrs = {a: a for a in present_attributes(log.traces.plan, prof)}
    staged.cases_sql.append(case_rows_sql(base, file_id, rowx, "TRUE", attrs, f"{cs} WHERE problem IS NULL"))
    return staged, {"problems": problems, "filled": filled}


def _cells_json(headers: list[str], cells: list[str]) -> str:
    """A row's raw cells as the stage keeps them: {header: cell}, `列<n>` past the headers."""
    names = [(headers[i] if i < len(headers) else "") or f"列{i + 1}" for i in range(len(cells))]
    return json.dumps(dict(zip(names, cells)), ensure_ascii=False)


def _plan(raw, builtin, prof):
    where = f"{raw.path}" + (f" 工作表 {raw.sheet!r}" if raw.sheet else "")
    return plan_columns(raw.headers, builtin, prof, where)
