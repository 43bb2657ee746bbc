"""Ingestion: channels and the ERP → immutable Parquet batches in the landing zone (DECISIONS.md D4).

A plain library (no Dagster): orchestration wraps `ingest` in assets, reverse sync reuses `ingestion.http`.

    ingestion.ENTITIES                    {"shopify": (...), "erp": (...)}
    ingestion.ingest(config, source, entity, **kw) -> IngestResult
"""

from ingestion.common import IngestResult
from ingestion.errors import (
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelResponseError,
    ChannelServerError,
    ChannelUnreachable,
    IngestionError,
    PageLimitReached,
    SourceUnreachable,
)
from ingestion.registry import ENTITIES, budget, ingest

__all__ = [
    "ENTITIES",
    "ChannelAuthError",
    "ChannelError",
    "ChannelRateLimited",
    "ChannelResponseError",
    "ChannelServerError",
    "ChannelUnreachable",
    "IngestResult",
    "IngestionError",
    "PageLimitReached",
    "SourceUnreachable",
    "budget",
    "ingest",
]
