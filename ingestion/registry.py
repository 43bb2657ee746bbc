"""Which source/entities ingestion can land, and one entry point that dispatches to the connector."""

from __future__ import annotations

from typing import Any

from ichigen.config import Config
from ingestion import amazon, erp, files, rakuten, shopify, yahoo
from ingestion.common import IngestResult

# Every API/database connector module declares ENTITIES and `ingest(config, entity, **kw)`; the file sources
# (POS, B2B, carrier) share ingestion.files. Adding a source is one entry here.
_MODULES = {"shopify": shopify, "rakuten": rakuten, "amazon": amazon, "yahoo": yahoo, "erp": erp}

ENTITIES: dict[str, tuple[str, ...]] = {slug: module.ENTITIES for slug, module in _MODULES.items()} | dict(files.ENTITIES)

_CONNECTORS = {slug: module.ingest for slug, module in _MODULES.items()} | {s: files.connector(s) for s in files.ENTITIES}


def budget(source: str, entity: str) -> str:
    """The request budget `source/entity` draws on: the source's, or for Rakuten the RMS API's (`rakuten/<api>`,
    ~1 request/s each). Work on different budgets can run side by side without exceeding any of them."""
    if source == "rakuten":
        return rakuten.budget_key(rakuten.ENTITY_API[entity])
    return source


def ingest(config: Config, source: str, entity: str, **kw: Any) -> IngestResult:
    """Land what changed for source/entity. Keyword arguments go to the connector (`landing`, `now`, and for
    shopify `client`, `max_pages`; for erp `lookback`; the file sources take `landing` and `now` only)."""
    if source not in ENTITIES:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(ENTITIES)}")
    if entity not in ENTITIES[source]:
        raise ValueError(f"unknown {source} entity {entity!r}; known: {', '.join(ENTITIES[source])}")
    channel = getattr(config.channels, source, None)
    if channel is not None and not channel.enabled:
        # A channel switched off lands nothing and fails nothing: its assets stay in the graph, empty.
        return IngestResult(source, entity, 0, 0, None, None, None)
    return _CONNECTORS[source](config, entity, **kw)
