"""Ingestion: read hall exports of every supported format and layout into DuckDB (contract §1)."""

from audit.ingest.load import FileReport, IngestReport, ingest

__all__ = ["ingest", "IngestReport", "FileReport"]
