"""Amazon price push: Listings Items 2021-08-01 `patchListingsItem` of `purchasable_offer` for small sets,
`JSON_LISTINGS_FEED` PATCH messages on `/attributes/purchasable_offer` for large ones (DECISIONS.md D93).

The value is the JP offer's price schedule, tax inclusive (総額表示):
`[{"marketplace_id": "A1VC38T7YXB528", "currency": "JPY", "our_price": [{"schedule": [{"value_with_tax": 1980}]}]}]`.
Unlike a quantity, a price has no race with sales: no fresh read before sending, and a PATCH may be resent
by the request loop after a lost answer (it sets the same value again). Above `channels.amazon.feed_threshold`
changes the stock pusher's feed path is reused (createFeedDocument → upload → createFeed, one feed per
`feed_max_messages`, then getFeed → processing report for each); only the messages differ, and nothing is read
or checked first. A message with an ERROR issue
is logged `failed` with the issue, the rest `applied`; a feed that ends FATAL or outlives the wait is logged
`failed` for all its SKUs (createFeed is never resent; the next cycle plans again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ingestion.errors import ChannelError
from reverse_sync.amazon import PRODUCT_TYPE, AmazonStockPusher
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

PRICE_PATH = "/attributes/purchasable_offer"
CURRENCY = "JPY"


@dataclass(frozen=True)
class _PriceSend:
    """One feed message: the change and the price it sets (the shape the feed submission reads)."""

    change: PlannedChange
    value: int


class AmazonPricePusher(AmazonStockPusher):
    """The stock pusher's client, rate plans and feed machinery, with price patches instead of quantities."""

    def price_patch(self, price: int) -> dict:
        return {"op": "replace", "path": PRICE_PATH, "value": [{
            "marketplace_id": self.amazon.marketplace_id, "currency": CURRENCY,
            "our_price": [{"schedule": [{"value_with_tax": price}]}]}]}

    def set_price(self, seller_sku: str, price: int) -> dict:
        body = {"productType": PRODUCT_TYPE, "patches": [self.price_patch(price)]}
        return self.client.request("PATCH", self._item_path(seller_sku), operation="patchListingsItem",
                                   params={"marketplaceIds": self.amazon.marketplace_id}, json=body).json()

    # The stock pusher's `push` picks the path (per SKU up to feed_threshold, else feeds) and calls these two.
    def _push_one(self, run_id: str, change: PlannedChange, planned_at: datetime) -> PushRecord:
        try:
            answer = self.set_price(change.target_ref, change.new_value)
        except ChannelError as exc:
            return PushRecord.of_change(run_id, change, "failed", f"{type(exc).__name__}: {exc}", planned_at)
        if answer.get("status") != "ACCEPTED":
            issues = "; ".join(f"{i.get('code')}: {i.get('message')}" for i in answer.get("issues") or [])
            return PushRecord.of_change(run_id, change, "failed", f"{answer.get('status')}: {issues}", planned_at)
        return PushRecord.of_change(run_id, change, "applied", None, planned_at)

    # push_by_feeds splits by feed_max_messages: a price needs nothing learnt first and every change is sent.
    def _feed_knowledge(self, changes: list[PlannedChange]) -> None:
        return None

    def _feed_sends(self, run_id: str, part: list[PlannedChange], planned_at: datetime,
                    knowledge: object, ahead: object) -> tuple[list[PushRecord], list[_PriceSend]]:
        return [], [_PriceSend(c, c.new_value) for c in part]

    def _sent_record(self, run_id: str, send: _PriceSend, status: str, error: str | None,  # type: ignore[override]
                     planned_at: datetime) -> PushRecord:
        return PushRecord.of_change(run_id, send.change, status, error, planned_at)

    def feed_document(self, sends: list) -> dict:  # type: ignore[override]
        """listings-feed-schema-v2: one PATCH of purchasable_offer per SKU, messageId = position in the feed."""
        return {"header": {"sellerId": self.amazon.seller_id, "version": "2.0", "issueLocale": "ja_JP"},
                "messages": [{"messageId": n, "sku": s.change.target_ref, "operationType": "PATCH",
                              "productType": PRODUCT_TYPE, "patches": [self.price_patch(s.value)]}
                             for n, s in enumerate(sends, 1)]}
