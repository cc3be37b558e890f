"""Ingestion: read hall exports of every supported format and layout, and XES event logs, into
DuckDB (contract §1)."""

from audit.ingest.load import FileReport, IngestReport, ingest
from audit.ingest.steps import vocabulary_of

__all__ = ["ingest", "IngestReport", "FileReport", "vocabulary_of"]
