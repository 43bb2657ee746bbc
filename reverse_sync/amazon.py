"""Amazon stock push: `patchListingsItem` (fulfillment_availability) per SKU, from a fresh read (D26).

Amazon takes absolute quantities only: no compare-and-swap, no deltas. So for each change, right before
sending it, the pusher reads what Amazon shows now (getListingsItem, includedData=fulfillmentAvailability) and
lowers the target by every unit sold since the quantity the plan started from (`old_value`): a sale between
our read and our push is never put back on sale. The PATCH goes out at once after that read; what remains is
the window between the two calls (one round trip), written down in DECISIONS.md D26.

The PATCH is sent with `idempotent=False`: after an answer that may mean "applied" (a cut connection, a
timeout, a 500) it is not resent — a resend of an absolute quantity after a sale would resurrect that unit.
It is logged `failed`, and the next cycle plans again from a fresh state. 429 QuotaExceeded and 503 (not
processed) are retried by the request loop.

Throughput: patchListingsItem 5/s burst 5 and getListingsItem 5/s burst 10 → about 5 SKUs a second. Larger
sets belong in a JSON_LISTINGS_FEED (not built).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import polars as pl

from ichigen.config import AmazonConfig, Config
from ingestion.amazon import DEFAULT_FULFILLMENT_CHANNEL, LISTINGS_PATH
from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

PRODUCT_TYPE = "PRODUCT"  # patches of offer attributes are accepted under the generic product type


def amazon_listings_state(config: Config) -> pl.DataFrame:
    """What Amazon last showed per seller SKU (landed amazon/listings), keyed by the ERP SKU each listing sells
    — the match dbt made (int_products__channel_listings in the published copy: seller SKU, then JAN)."""
    landed = LandingZone(config.landing_dir).landed("amazon", "listings").select(
        "sku", "quantity", "_fetched_at").collect()
    con = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        matched = con.execute(
            "select listing_id, sku from intermediate.int_products__channel_listings "
            "where channel = 'amazon' and sku is not null").fetchall()
    finally:
        con.close()
    erp_sku = pl.DataFrame(matched, schema={"target_ref": pl.String, "erp_sku": pl.String}, orient="row")
    return (
        landed.rename({"sku": "target_ref"})
        .join(erp_sku, on="target_ref", how="inner")
        .select(pl.col("erp_sku").alias("sku"), "target_ref", pl.col("quantity").cast(pl.Int64),
                pl.col("_fetched_at").alias("seen_at"))
    )


class AmazonStockPusher:
    def __init__(self, client: ChannelClient, amazon: AmazonConfig):
        self.client = client
        self.amazon = amazon

    def _item_path(self, seller_sku: str) -> str:
        return f"{LISTINGS_PATH}/{self.amazon.seller_id}/{seller_sku}"

    def current_quantity(self, seller_sku: str) -> int:
        """The merchant-fulfilled quantity Amazon shows now for this SKU."""
        item = self.client.request("GET", self._item_path(seller_sku), operation="getListingsItem", params={
            "marketplaceIds": self.amazon.marketplace_id, "includedData": "fulfillmentAvailability"}).json()
        for entry in item.get("fulfillmentAvailability") or []:
            if entry.get("fulfillmentChannelCode") == DEFAULT_FULFILLMENT_CHANNEL:
                return int(entry.get("quantity") or 0)
        return 0

    def set_quantity(self, seller_sku: str, quantity: int) -> dict:
        body = {"productType": PRODUCT_TYPE, "patches": [{
            "op": "replace", "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": DEFAULT_FULFILLMENT_CHANNEL, "quantity": quantity}]}]}
        return self.client.request("PATCH", self._item_path(seller_sku), operation="patchListingsItem",
                                   params={"marketplaceIds": self.amazon.marketplace_id}, json=body,
                                   idempotent=False).json()

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        records = []
        for done, change in enumerate(changes, 1):
            records.append(self._push_one(run_id, change, planned_at))
            if on_progress:
                on_progress(done, len(changes))
        return records

    def _push_one(self, run_id: str, change: PlannedChange, planned_at: datetime) -> PushRecord:
        believed, value = change.old_value, change.new_value
        try:
            current = self.current_quantity(change.target_ref)
            # Units sold since the state the plan started from are gone: take them off the target.
            value = max(0, value - max(0, believed - current))
            believed = current
            if value == current:
                return _record(run_id, change, believed, value, "applied", None, planned_at, 0)
            answer = self.set_quantity(change.target_ref, value)
        except ChannelError as exc:
            return _record(run_id, change, believed, value, "failed", f"{type(exc).__name__}: {exc}",
                           planned_at, 1)
        if answer.get("status") != "ACCEPTED":
            issues = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in answer.get("issues") or [])
            return _record(run_id, change, believed, value, "failed", f"{answer.get('status')}: {issues}",
                           planned_at, 1)
        return _record(run_id, change, believed, value, "applied", None, planned_at, 1)


def _record(run_id: str, change: PlannedChange, believed: int, value: int, status: str, error: str | None,
            planned_at: datetime, attempt: int) -> PushRecord:
    return PushRecord(run_id=run_id, channel=change.channel, field=change.field, sku=change.sku,
                      target_ref=change.target_ref, old_value=believed, new_value=value, status=status,
                      error=error, planned_at=planned_at, pushed_at=datetime.now(UTC), attempt=attempt)
