"""Which source/entities ingestion can land, and one entry point that dispatches to the connector."""

from __future__ import annotations

from typing import Any

from ichigen.config import Config
from ingestion import amazon, erp, shopify
from ingestion.common import IngestResult

ENTITIES: dict[str, tuple[str, ...]] = {
    "shopify": ("orders", "product_variants", "inventory_levels"),
    "erp": ("products", "warehouses", "stock"),
    "amazon": amazon.ENTITIES,  # ("orders", "listings")
}

_CONNECTORS = {"shopify": shopify.ingest, "erp": erp.ingest, "amazon": amazon.ingest}

if ENTITIES["shopify"] != shopify.ENTITIES or ENTITIES["erp"] != erp.ENTITIES:  # pragma: no cover
    raise RuntimeError("ingestion.ENTITIES is out of step with the connectors' entity lists")


def ingest(config: Config, source: str, entity: str, **kw: Any) -> IngestResult:
    """Land what changed for source/entity. Keyword arguments go to the connector (`landing`, `now`, and for
    shopify `client`, `max_pages`; for erp `lookback`)."""
    if source not in ENTITIES:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(ENTITIES)}")
    if entity not in ENTITIES[source]:
        raise ValueError(f"unknown {source} entity {entity!r}; known: {', '.join(ENTITIES[source])}")
    return _CONNECTORS[source](config, entity, **kw)
