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

Views: ``cases`` and ``events`` expose the canonical field names, so analysts can query them
directly without knowing about provenance columns.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

DEFAULT_DB = "audit.duckdb"

CASE_FIELDS = [
    "case_id", "city", "county", "hall", "service_type", "channel", "object_type", "item",
    "applicant", "id_number", "phone", "staff", "promised_days", "fee", "visits", "rating",
    "rating_score", "rating_time", "materials",
]

SCHEMA = """
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
    source_file   VARCHAR,
    source_sha256 VARCHAR,
    source_row    BIGINT,
    ingest_id     BIGINT
);
CREATE TABLE IF NOT EXISTS event_rows (
    city          VARCHAR NOT NULL,
    case_id       VARCHAR NOT NULL,
    step          VARCHAR NOT NULL,
    step_code     VARCHAR NOT NULL,
    "time"        TIMESTAMP NOT NULL,
    staff         VARCHAR,
    note          VARCHAR,
    source_file   VARCHAR,
    source_sha256 VARCHAR,
    source_row    BIGINT,
    seq           BIGINT,
    ingest_id     BIGINT
);
CREATE OR REPLACE VIEW cases AS
    SELECT case_id, city, county, hall, service_type, channel, object_type, item, applicant,
           id_number, phone, staff, promised_days, fee, visits, rating, rating_score, rating_time,
           materials, source_file, source_sha256, source_row
    FROM case_rows
    UNION ALL BY NAME
    -- a case known only from its events (its case table not loaded yet): attributes are NULL
    SELECT city, case_id FROM (SELECT DISTINCT city, case_id FROM event_rows) e
    ANTI JOIN case_rows c USING (city, case_id);
CREATE OR REPLACE VIEW events AS
    SELECT case_id, step, "time", staff, note, city, step_code, seq, source_file, source_sha256,
           source_row
    FROM event_rows;
"""


def connect(path: str | Path = DEFAULT_DB, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the audit database and make sure the schema exists."""
    path = Path(path)
    if read_only and not path.exists():
        from audit.errors import UsageError

        raise UsageError(f"数据库 {path} 不存在：请先运行 audit ingest (database {path} does not exist)")
    con = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        con.execute(SCHEMA)
    return con
