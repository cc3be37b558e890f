"""The DuckDB database: schema, connection, and the views analysts query.

Tables (all created on first use; see README "数据模型"):

- ``case_rows``   one row per case (city, case_id) with the canonical attributes of contract §1.3
                  and the provenance of the row it came from.
- ``event_rows``  one row per recorded step, with provenance and ``seq`` (the order of its source
                  row, which breaks ties between events with the same timestamp).
- ``ingest_files`` the ingest log: one row per file per ingest, with its SHA-256 and the counts
                  read / loaded / quarantined / duplicate / replaced.
- ``ingests``     one row per `audit ingest` command.
- ``quarantine``  rows that could not be loaded: file, row, column, reason, raw values (JSON).
- ``set_aside``   cells that could not be used (contract §1.5): the row was loaded with that field
                  empty; file, row, column, field, raw value and reason.
- ``waiting_events`` events without a city whose case is not known yet (contract §1.2): counted as
                  loaded, they join ``event_rows`` when a case row naming their case_id arrives.

The runs of `audit check` (see `audit.check.runstore`): ``runs``, ``run_rules``, ``findings``,
``run_cases``, ``run_case_dates``, ``run_kpi_cells``, ``run_files``, ``run_calendar``,
``run_city_calendar`` and ``run_waivers`` (the waivers of the run, `audit.check.waivers`).

The rectification lists (see `audit.rectify`): ``db_meta`` (the database's identity and the secret
of its finding keys, made once by `database_identity`; also, row ``vocabulary``, the step vocabulary
its ingests use, see `audit.ingest.steps`), ``rectify_imports`` (one row per file read
back by `audit rectify import`), ``rectify_answers`` (each finding's current answer from the halls,
with its provenance) and ``rectify_superseded`` (answers a later file replaced).

This module owns the schema (every table, created or migrated when a database is opened) and the
transactions (`transaction`): the ingest and the check each write in exactly one.

Views: ``cases`` and ``events`` expose the canonical field names, so analysts can query them
directly without knowing about provenance columns.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import weakref
from collections.abc import Iterator
from pathlib import Path

import duckdb

from audit.figures.metrics import FLAGS, GROUP_KEYS
from audit.testpause import pause_for_test
from audit.vocabulary import STEPS

DEFAULT_DB = "audit.duckdb"

# Connections opened by `connect`, so that a SIGTERM or Ctrl-C can stop a running statement at
# once (`interrupt_all`) instead of when it ends.
_OPEN: weakref.WeakSet = weakref.WeakSet()

CASE_FIELDS = [
    "case_id", "city", "county", "hall", "service_type", "channel", "object_type", "item",
    "applicant", "id_number", "phone", "staff", "promised_days", "fee", "visits", "rating",
    "rating_score", "rating_time", "materials",
]

# The columns of an event (after its city): event_rows and waiting_events.
EVENT_COLUMNS = """case_id VARCHAR NOT NULL, step VARCHAR NOT NULL, "time" TIMESTAMP NOT NULL, staff VARCHAR,
    note VARCHAR, source_row BIGINT, seq BIGINT, ingest_id BIGINT, file_id INTEGER"""

SCHEMA = f"""
CREATE SEQUENCE IF NOT EXISTS ingest_seq START 1;
CREATE TABLE IF NOT EXISTS ingests (
    ingest_id     BIGINT PRIMARY KEY,
    started_at    TIMESTAMP,
    finished_at   TIMESTAMP,
    command       VARCHAR,
    files         INTEGER,
    rows_read     BIGINT,
    loaded        BIGINT,
    quarantined   BIGINT,
    duplicates    BIGINT,
    replaced_cases BIGINT
);
CREATE TABLE IF NOT EXISTS ingest_files (
    ingest_id     BIGINT,
    file_id       BIGINT,
    path          VARCHAR,
    file_name     VARCHAR,
    sha256        VARCHAR,
    size_bytes    BIGINT,
    format        VARCHAR,
    encoding      VARCHAR,
    sheet         VARCHAR,
    layout        VARCHAR,
    header_row    INTEGER,
    city_option   VARCHAR,
    profile       VARCHAR,
    unmapped_columns VARCHAR[],
    rows_read     BIGINT,
    loaded        BIGINT,
    quarantined   BIGINT,
    duplicates    BIGINT,
    replaced_cases BIGINT,
    new_cases     BIGINT,
    PRIMARY KEY (ingest_id, file_id)
);
CREATE TABLE IF NOT EXISTS quarantine (
    ingest_id   BIGINT,
    file_name   VARCHAR,
    sha256      VARCHAR,
    source_row  BIGINT,
    "column"    VARCHAR,
    reason      VARCHAR,
    raw         JSON
);
CREATE TABLE IF NOT EXISTS set_aside (
    ingest_id   BIGINT,
    file_name   VARCHAR,
    sha256      VARCHAR,
    source_row  BIGINT,
    "column"    VARCHAR,    -- the file's own header
    field       VARCHAR,    -- the canonical field (README "字段")
    raw         VARCHAR,    -- the cell as written
    reason      VARCHAR
);
CREATE TABLE IF NOT EXISTS waiting_events ({EVENT_COLUMNS});   -- event_rows without the city
CREATE TABLE IF NOT EXISTS case_rows (
    city          VARCHAR NOT NULL,
    case_id       VARCHAR NOT NULL,
    county        VARCHAR,
    hall          VARCHAR,
    service_type  VARCHAR,
    channel       VARCHAR,
    object_type   VARCHAR,
    item          VARCHAR,
    applicant     VARCHAR,
    id_number     VARCHAR,
    phone         VARCHAR,
    staff         VARCHAR,
    promised_days INTEGER,
    fee           DECIMAL(12, 2),
    visits        INTEGER,
    rating        VARCHAR,
    rating_score  TINYINT,
    rating_time   TIMESTAMP,
    materials     VARCHAR,
    source_row    BIGINT,
    ingest_id     BIGINT,
    file_id       INTEGER     -- with ingest_id: the ingest_files row of the source file
);
CREATE TABLE IF NOT EXISTS event_rows (city VARCHAR NOT NULL, {EVENT_COLUMNS});
-- Columns added after the first release (older databases get them on open).
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS set_aside BIGINT;
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS city_filled BIGINT;
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS city_resolved BIGINT;
ALTER TABLE ingest_files ADD COLUMN IF NOT EXISTS waiting BIGINT;
ALTER TABLE ingests ADD COLUMN IF NOT EXISTS set_aside BIGINT;
ALTER TABLE ingests ADD COLUMN IF NOT EXISTS waiting_joined BIGINT;
-- The step vocabulary of the ingest (canonical | open); NULL in ingests made before it was recorded.
ALTER TABLE ingests ADD COLUMN IF NOT EXISTS vocabulary VARCHAR;
"""

# The runs of `audit check`: what a run decided and everything later commands read (audit.check.runstore).
RUN_SCHEMA = f"""
CREATE SEQUENCE IF NOT EXISTS run_seq START 1;
CREATE TABLE IF NOT EXISTS runs (
    run_id        BIGINT PRIMARY KEY,
    run_key       VARCHAR,
    pack_name     VARCHAR,
    pack_version  VARCHAR,
    pack_path     VARCHAR,
    standard      VARCHAR,
    settings      JSON,
    as_of         DATE,
    as_of_source  VARCHAR,
    city_filter   VARCHAR,
    calendar      VARCHAR,
    calendar_fallback_years INTEGER[],
    calendar_spec JSON,
    input_files   JSON,
    tool_version  VARCHAR,
    cases         BIGINT,
    findings      BIGINT
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS data_quality JSON;
CREATE TABLE IF NOT EXISTS findings (
    run_id    BIGINT,
    rule_id   VARCHAR,
    severity  VARCHAR,
    clause    VARCHAR,
    city      VARCHAR,
    case_id   VARCHAR,
    message   VARCHAR,
    evidence  JSON
);
CREATE TABLE IF NOT EXISTS run_rules (
    run_id    BIGINT,
    rule_id   VARCHAR,
    severity  VARCHAR,
    clause    VARCHAR,
    title     VARCHAR,
    findings  BIGINT
);
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pack JSON;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pack_sha256 VARCHAR;
CREATE TABLE IF NOT EXISTS run_files (
    run_id   BIGINT,
    kind     VARCHAR,      -- pack | calendar | waivers
    name     VARCHAR,      -- the file's path as the run used it
    sha256   VARCHAR,
    content  VARCHAR
);
CREATE TABLE IF NOT EXISTS run_calendar (run_id BIGINT, cal_key INTEGER, d DATE, is_workday BOOLEAN);
CREATE TABLE IF NOT EXISTS run_city_calendar (run_id BIGINT, city VARCHAR, cal_key INTEGER);
CREATE TABLE IF NOT EXISTS run_cases (
    run_id        BIGINT,
    city          VARCHAR,
    county        VARCHAR,
    hall          VARCHAR,
    month         VARCHAR,
    service_type  VARCHAR,
    channel       VARCHAR,
    object_type   VARCHAR,
    staff         VARCHAR,
    case_id       VARCHAR,
    item          VARCHAR,
    applicant     VARCHAR,
    id_number     VARCHAR,
    phone         VARCHAR,
    one           INTEGER,
    resp_ok       INTEGER,
    resp_due      INTEGER,
    resolved      INTEGER,
    resol_due     INTEGER,
    on_time       INTEGER,
    ot_due        INTEGER,
    satisfied     INTEGER,
    rated         INTEGER,
    rating_score  TINYINT,
    score_sum     INTEGER,
    score_n       INTEGER,
    fu_ok         INTEGER,
    fu_due        INTEGER,
    compliant     INTEGER
);
CREATE TABLE IF NOT EXISTS run_kpi_cells (run_id BIGINT, {', '.join(f'{k} VARCHAR' for k in GROUP_KEYS)}, {', '.join(f'{f} BIGINT' for f in FLAGS)});
-- The case's start date (受理 / 委托), for the rectification lists; NULL in runs stored before it.
ALTER TABLE run_cases ADD COLUMN IF NOT EXISTS start_date DATE;
-- The dates a run computed for each case (from case_facts; `audit case` shows them).
CREATE TABLE IF NOT EXISTS run_case_dates (
    run_id         BIGINT,
    city           VARCHAR,
    case_id        VARCHAR,
    request_time   TIMESTAMP,   -- the first event
    start_time     TIMESTAMP,   -- 受理 (帮办) / 委托 (代办)
    response_step  VARCHAR,     -- 受理 (帮办) / 需求分析 (代办)
    response_time  TIMESTAMP,
    response_limit DATE,        -- add_workdays(request date, response_days)
    complete_time  TIMESTAMP,   -- the first 办结
    close_time     TIMESTAMP,   -- the earlier of the first 办结 and 终止
    promised_days  INTEGER,
    suspended_wd   INTEGER,     -- working days in closed suspensions
    suspensions    STRUCT("from" VARCHAR, "to" VARCHAR)[],
    suspended      BOOLEAN,     -- open and suspended: the time limit is not judged
    deadline       DATE,        -- add_workdays(start date, promised_days + suspended_wd)
    archive_time   TIMESTAMP,   -- the first 资料归档
    archive_limit  DATE,        -- add_workdays(close date, archive_days)
    rating_date    DATE,
    followup_limit DATE         -- add_workdays(rating date, followup_days)
);
-- Waivers (accepted deviations) a run was given: one row per waiver of the file, in its order.
-- findings.waiver_id names the waiver (in force on the run's audit date) that covers the finding.
CREATE TABLE IF NOT EXISTS run_waivers (
    run_id      BIGINT,
    waiver_id   INTEGER,       -- 1, 2, … in file order
    line        INTEGER,       -- where it starts in the waiver file (CSV record or YAML item)
    rule        VARCHAR,       -- as written: a rule id or a glob such as REQ-*
    rules       VARCHAR[],     -- the rules of the run's pack it names
    case_id     VARCHAR,
    city        VARCHAR,
    hall        VARCHAR,
    reason      VARCHAR,
    approved_by VARCHAR,
    expires     DATE,          -- NULL: no end date
    status      VARCHAR,       -- in_force | expired (expires before the audit date)
    matched     BIGINT         -- findings of the run it covers (0: matched nothing)
);
ALTER TABLE findings ADD COLUMN IF NOT EXISTS waiver_id INTEGER;
ALTER TABLE run_rules ADD COLUMN IF NOT EXISTS waived BIGINT;
ALTER TABLE run_rules ADD COLUMN IF NOT EXISTS seconds DOUBLE;   -- the rule's query (benchmarks; slow rules)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS prepare_seconds JSON;  -- seconds spent on facts and traces (case_facts, the template traces)
"""

# The rectification lists (audit.rectify): the database's identity, and what the halls answered.
ANSWER_COLUMNS = """
    run_id        BIGINT NOT NULL,   -- the finding: findings (run_id, city, case_id, rule_id)
    city          VARCHAR NOT NULL,
    case_id       VARCHAR NOT NULL,
    rule_id       VARCHAR NOT NULL,
    owner         VARCHAR,           -- 责任人
    status        VARCHAR NOT NULL,  -- 整改状态: 已整改 / 整改中 / 申请豁免 / 有异议
    action        VARCHAR,           -- 整改情况
    done_on       DATE,              -- 整改完成日期
    import_id     BIGINT NOT NULL,   -- provenance: with file_id, the rectify_imports row
    file_id       INTEGER NOT NULL,
    file_name     VARCHAR,
    sha256        VARCHAR,
    sheet         VARCHAR,
    -- the sheet row (1 = the sheet's first row)
    source_row    BIGINT
"""
RECTIFY_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS db_meta (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE SEQUENCE IF NOT EXISTS rectify_import_seq START 1;
CREATE TABLE IF NOT EXISTS rectify_imports (
    import_id     BIGINT,
    file_id       INTEGER,     -- the file's place in the command (0, 1, …)
    path          VARCHAR,
    file_name     VARCHAR,
    sha256        VARCHAR,
    size_bytes    BIGINT,
    imported_at   TIMESTAMP,
    rows_read     BIGINT,      -- = recorded + rejected + unchanged
    recorded      BIGINT,
    rejected      BIGINT,
    unchanged     BIGINT,
    superseded    BIGINT,      -- recorded rows that replaced an earlier answer
    PRIMARY KEY (import_id, file_id)
);
CREATE TABLE IF NOT EXISTS rectify_answers ({ANSWER_COLUMNS}, PRIMARY KEY (run_id, city, case_id, rule_id));
-- superseded_by: the import whose answer replaced this one
CREATE TABLE IF NOT EXISTS rectify_superseded ({ANSWER_COLUMNS}, superseded_by BIGINT);
"""

# Every table holding a part of a run (the same run again replaces all of them).
RUN_TABLES = ("findings", "run_rules", "run_kpi_cells", "run_cases", "run_case_dates", "run_files", "run_calendar",
              "run_city_calendar", "run_waivers", "runs")


# Every row keeps the file it came from as (ingest_id, file_id), the key of ingest_files; the
# views spell out the file name (with #sheet for a workbook sheet) and its SHA-256.
def views_sql() -> str:
    """The views over the tables (their step codes from the step vocabulary)."""
    return f"""
CREATE OR REPLACE VIEW cases AS
    SELECT c.case_id, c.city, c.county, c.hall, c.service_type, c.channel, c.object_type, c.item,
           c.applicant, c.id_number, c.phone, c.staff, c.promised_days, c.fee, c.visits, c.rating,
           c.rating_score, c.rating_time, c.materials,
           f.file_name || coalesce('#' || f.sheet, '') AS source_file, f.sha256 AS source_sha256,
           c.source_row
    FROM case_rows c LEFT JOIN ingest_files f USING (ingest_id, file_id)
    UNION ALL BY NAME
    -- a case known only from its events (its case table not loaded yet): attributes are NULL
    SELECT city, case_id FROM (SELECT DISTINCT city, case_id FROM event_rows) e
    ANTI JOIN case_rows c USING (city, case_id);
CREATE OR REPLACE VIEW events AS
    SELECT e.case_id, e.step, e."time", e.staff, e.note, e.city,
           CASE e.step {' '.join(f"WHEN '{k}' THEN '{v}'" for k, v in STEPS.items())} END AS step_code,
           e.seq, f.file_name || coalesce('#' || f.sheet, '') AS source_file, f.sha256 AS source_sha256,
           e.source_row
    FROM event_rows e LEFT JOIN ingest_files f USING (ingest_id, file_id);
"""

# Databases written before provenance moved to (ingest_id, file_id): the old columns are folded
# into file_id (matched on the ingest and file name) and dropped.
MIGRATIONS = """
ALTER TABLE {table} ADD COLUMN file_id INTEGER;
UPDATE {table} t SET file_id = f.file_id FROM ingest_files f
 WHERE f.ingest_id = t.ingest_id AND f.file_name || coalesce('#' || f.sheet, '') = t.source_file;
ALTER TABLE {table} DROP COLUMN source_file;
ALTER TABLE {table} DROP COLUMN source_sha256;
"""


def connect(path: str | Path = DEFAULT_DB, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the audit database and make sure the schema exists."""
    path = Path(path)
    if read_only and not path.exists():
        from audit.errors import UsageError

        raise UsageError(f"数据库 {path} 不存在：请先运行 audit ingest (database {path} does not exist)")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise _open_error(path, exc) from None
    _OPEN.add(con)
    # DuckDB draws a progress bar on the terminal for statements over 2 s; the commands print
    # their own summaries, and scripts parsing their output must not get bar fragments.
    con.execute("SET enable_progress_bar = false")
    limit_memory(con)
    if not read_only:
        con.execute(SCHEMA)
        _migrate(con)
        con.execute(views_sql())
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables of the runs and of the rectification lists if needed (`connect` does it;
    for connections made otherwise)."""
    con.execute(RUN_SCHEMA)
    con.execute(RECTIFY_SCHEMA)


def database_identity(con, create: bool = True) -> tuple[str, bytes] | None:
    """This database's identity: (its id, the secret of its finding keys), both random, made once
    (when `create`, on first use) and kept in ``db_meta``; None when not made yet and not `create`.
    A copy of the database file is the same database: it has the same id and secret."""
    if create:
        # One statement: both or neither, also when two exports race.
        con.execute("""INSERT INTO db_meta SELECT * FROM (VALUES ('database_id', $id), ('rectify_secret', $secret))
                       WHERE NOT EXISTS (SELECT 1 FROM db_meta WHERE name = 'database_id')""",
                    {"id": secrets.token_hex(8), "secret": secrets.token_hex(32)})
    rows = dict(con.execute("SELECT name, value FROM db_meta WHERE name IN ('database_id', 'rectify_secret')").fetchall())
    if len(rows) < 2:
        return None
    return rows["database_id"], bytes.fromhex(rows["rectify_secret"])


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, pause_point: str | None = None) -> Iterator[None]:
    """One DuckDB transaction: committed when the block ends, rolled back on any exception,
    Ctrl-C or SIGTERM (and by DuckDB itself if the process dies), so the database is either as
    before or wholly changed. `pause_point` names the test-only pause just before COMMIT
    (`audit.testpause`; a no-op unless a test asks for it)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        if pause_point:
            pause_for_test(con, pause_point)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def insert_rows(con, table: str, rows: list[tuple], columns: str = "", batch: int = 1000) -> None:
    """Insert `rows` (tuples of one shape) with one statement per `batch` rows: DuckDB's executemany
    runs one statement per row (100 rows took a third of a second)."""
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        one = "(" + ", ".join("?" for _ in part[0]) + ")"
        con.execute(f"INSERT INTO {table} {columns} VALUES {', '.join(one for _ in part)}",
                    [v for row in part for v in row])


def interrupt_all() -> None:
    """Interrupt the statement running on every open connection (it raises in its thread). Safe
    to call from any thread."""
    for con in list(_OPEN):
        try:
            con.interrupt()
        except duckdb.Error:     # closed meanwhile
            pass


def _open_error(path: Path, exc: duckdb.IOException) -> Exception:
    """The error for a database DuckDB could not open: in use by another process (DuckDB names
    the program and PID holding its lock), or not a database it can read."""
    from audit.errors import DatabaseBusy, UsageError

    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    if "lock" not in first.lower():
        return UsageError(f"无法打开数据库 {path}: {first}")
    holder = re.search(r"held in (.+?) \(PID (\d+)\)", first)
    who = ""
    if holder is not None:
        program, pid = holder.group(1), int(holder.group(2))
        who = f": PID {pid}, {_command_line(pid) or program}"
    return DatabaseBusy(f"数据库 {path} 正被另一个进程使用 (database is in use by another process{who})；"
                        "请等它结束后再运行，或用 --db 指定另一个数据库")


def _command_line(pid: int) -> str:
    """The command line of a running process, where the system shows it (Linux), shortened."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
    except OSError:
        return ""
    text = " ".join(a.decode("utf-8", "replace") for a in args if a)
    return text if len(text) <= 120 else text[:117] + "..."


# DuckDB's own default is 80 % of the machine's RAM; with this limit a large ingest or check
# spills to DuckDB's temp directory instead (by default `<database>.tmp` next to the database,
# made only when needed and removed when the connection closes). The rest of the process
# (Python, numpy, pyarrow, DuckDB's untracked allocations) added at most ~0.55 GB at 3 M cases:
# peak RSS 1.2-1.5 GB for every input measured (benchmarks/README.md). Environment variables:
#   AUDIT_MEMORY_LIMIT   a DuckDB size ("1.2GB", "800MB"), or "default" for DuckDB's own
#   AUDIT_TEMP_DIRECTORY where DuckDB spills (default: `<database>.tmp`)
MEMORY_LIMIT = "1GB"


def limit_memory(con: duckdb.DuckDBPyConnection) -> None:
    """Set DuckDB's memory_limit (and temp_directory) from the environment; see above."""
    from audit.errors import UsageError

    settings = {"memory_limit": os.environ.get("AUDIT_MEMORY_LIMIT", "").strip() or MEMORY_LIMIT,
                "temp_directory": os.environ.get("AUDIT_TEMP_DIRECTORY", "").strip()}
    for name, value in settings.items():
        if value and value.lower() != "default":
            try:
                con.execute(f"SET {name} = '{value.replace(chr(39), chr(39) * 2)}'")
            except duckdb.Error as e:
                con.close()
                env = "AUDIT_" + name.upper()
                raise UsageError(f"环境变量 {env}={value!r} 无效 (invalid {env}): {e}") from None


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    old = con.execute("""SELECT DISTINCT table_name FROM duckdb_columns()
                         WHERE table_name IN ('case_rows', 'event_rows') AND column_name = 'source_sha256'
                           AND NOT internal AND database_name = current_database()""").fetchall()
    if not old:
        return
    con.execute("DROP VIEW IF EXISTS cases; DROP VIEW IF EXISTS events")
    for (table,) in old:
        con.execute(MIGRATIONS.format(table=table))
    cols = {r[0] for r in con.execute("""SELECT column_name FROM duckdb_columns()
        WHERE table_name = 'event_rows' AND database_name = current_database()""").fetchall()}
    if "step_code" in cols:
        con.execute("ALTER TABLE event_rows DROP COLUMN step_code")
