"""Large Amazon stock pushes learn what sold since the plan's read instead of reading every SKU (D200), against
the sandbox over real HTTP.

GIVEN Amazon's listings landed by ingestion, a published serving copy with targets for more SKUs than
channels.amazon.feed_fresh_read_max, and a sale after the listings were read
WHEN reverse sync applies
THEN searchOrders (for a sale older than its two minutes) or the landed ORDER_CHANGE notification (for a newer
one) names the sold SKU, only the SKUs sold since are read fresh, the sale stays sold, every other SKU reaches
its target through the feeds — which go out one after another before any processing report is read (D201) — and
the traffic passes the shared conformance tool. Too many orders for the page budget → every SKU is read fresh.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sync_testkit import targets_from
from test_amazon_stock_sync import publish_targets, shown

from ichigen.config import Config
from ingestion import amazon as amazon_ingestion
from ingestion.ratelimit import reset_channel_limiters
from reverse_sync.amazon import AmazonStockPusher
from reverse_sync.stock import sync_stock
from sandbox import start_world
from sandbox.amazon import AmazonSettings

FRESH_READ_MAX = 10  # pushes of more SKUs take the sales check
READ_TEN_MINUTES_AGO = timedelta(minutes=10)
LOOKBACK = timedelta(minutes=1)  # the smallest allowed: orders from a minute before the plan's read count


@pytest.fixture
def traffic(tmp_path: Path) -> Path:
    return tmp_path / "amazon-traffic.jsonl"


@pytest.fixture
def mall(tmp_config: Config, traffic: Path, sqs_server):
    reset_channel_limiters()
    settings = AmazonSettings(rate_scale=1000.0, feed_processing_seconds=0.3, traffic_log=traffic,
                              sqs_endpoint=sqs_server)
    with start_world(data_dir=tmp_config.sandbox_dir, seed=5, skus=80, customers=10, history_days=2,
                     orders_per_day=5, port=0, amazon_settings=settings) as running:
        yield running
    reset_channel_limiters()


@pytest.fixture
def config(tmp_config: Config, mall, queue, sqs_server) -> Config:
    _sqs, url, _arn = queue
    return tmp_config.with_overrides(**{
        "channels.amazon.base_url": mall.amazon_url,
        "channels.amazon.token_url": f"{mall.amazon_url}/auth/o2/token",
        "channels.amazon.rate_scale": 1000.0,
        "channels.amazon.requests_per_second": 500.0,
        "channels.amazon.notifications_queue_url": url,
        "channels.amazon.sqs_endpoint_url": sqs_server,
        "channels.amazon.feed_threshold": 5,
        "channels.amazon.feed_max_messages": 20,  # several feeds for one push
        "channels.amazon.feed_fresh_read_max": FRESH_READ_MAX,
        "channels.amazon.feed_sales_lookback_minutes": LOOKBACK.total_seconds() / 60,
        "channels.amazon.feed_poll_seconds": 0.05,
        "channels.amazon.feed_wait_seconds": 20.0,
        "guard_rails.max_zeroed_fraction": 0.5,
    })


@dataclass(frozen=True)
class Sold:
    """A staged push: what Amazon showed at the plan's read, the published targets, and the SKU sold since."""

    before: dict[str, int]
    targets: dict[str, int]
    sku: str
    listing_id: str


def sold_after_the_read(config: Config, mall, read_at: datetime, sold_at: datetime | None) -> Sold:
    """Ingestion reads Amazon's listings (stamped as fetched at `read_at`: the plan's read), targets are
    published for every listed SKU, then one unit of a SKU sells, its order stamped `sold_at` (None: now)."""
    assert amazon_ingestion.ingest(config, "listings", now=read_at).rows_landed > 0
    before = shown(mall)
    targets = targets_from(before)
    publish_targets(config, mall, targets)
    sku = next(s for s, q in sorted(before.items()) if q >= 2 and targets[s] >= 2)
    listing = mall.world.mall_listing_for_sku("amazon", sku)
    assert mall.world.place_mall_order("amazon", [(listing.listing_id, 1)], at=sold_at)
    return Sold(before, targets, sku, listing.listing_id)


def sold_since(mall, since: datetime, until: datetime) -> set[str]:
    """Seller SKUs of the mall's orders created in [since, until) — what searchOrders can name."""
    amazon = mall.world.mall("amazon")
    with mall.world.lock:
        return {line.listing_id for o in amazon.orders if since <= o.created_at < until for line in o.lines}


def requests(mall, operation: str) -> int:
    return mall.amazon.api.stats[f"requests:{operation}"]


def push(config: Config, mall):
    """sync_stock, and how many searchOrders and searchListingsItems calls the push made (ingestion's excluded)."""
    before = {op: requests(mall, op) for op in ("searchOrders", "searchListingsItems")}
    result = sync_stock(config, "amazon")
    return result, {op: requests(mall, op) - n for op, n in before.items()}


def test_a_sale_that_searchorders_sees_stays_sold_and_only_sold_skus_are_read(config, mall, traffic, conformance):
    now = datetime.now(UTC)
    read_at = now - READ_TEN_MINUTES_AGO
    # Sold after the read and more than two minutes ago: within what searchOrders answers for.
    staged = sold_after_the_read(config, mall, read_at, now - timedelta(minutes=5))
    before, targets, sku = staged.before, staged.targets, staged.sku
    # A second sale far from the first in SKU order, so the sold SKUs sit in different feed parts: they are
    # read together before the first feed (D223), one call for up to 20.
    other = next(s for s, q in sorted(before.items(), reverse=True) if q >= 2 and targets[s] >= 2 and s != sku)
    other_listing = mall.world.mall_listing_for_sku("amazon", other)
    assert mall.world.place_mall_order("amazon", [(other_listing.listing_id, 1)], at=now - timedelta(minutes=5))
    expected_reads = sold_since(mall, read_at - LOOKBACK, now - timedelta(minutes=2))
    assert {staged.listing_id, other_listing.listing_id} <= expected_reads

    result, calls = push(config, mall)

    assert result.planned > FRESH_READ_MAX and result.failed == 0
    assert shown(mall)[sku] == targets[sku] - 1, "the unit sold after the plan's read must stay sold"
    assert shown(mall)[other] == targets[other] - 1
    sold = {sku, other}
    assert {s: q for s, q in shown(mall).items() if s not in sold} == {
        s: q for s, q in targets.items() if s not in sold}
    pushed = next(r for r in result.records if r.sku == sku)
    assert (pushed.old_value, pushed.new_value) == (before[sku] - 1, targets[sku] - 1)
    assert calls["searchOrders"] == 1
    planned_refs = {r.target_ref for r in result.records}
    assert len(expected_reads & planned_refs) <= 20  # the setup's premise: one call can hold every sold SKU
    assert calls["searchListingsItems"] == 1  # the sold SKUs of every part in one call, not every SKU
    # The feeds went out one after another; their reports were read afterwards (D201).
    exchanges = [json.loads(line) for line in traffic.read_text().splitlines()]
    steps = [("create" if e["method"] == "POST" and e["path"].endswith("/feeds") else "poll")
             for e in exchanges if "/feeds/2021-06-30/feeds" in e["path"]]
    assert steps.count("create") == math.ceil(result.planned / 20) >= 2
    assert steps.index("poll") > max(i for i, step in enumerate(steps) if step == "create")
    conformance(traffic)


def test_a_sale_searchorders_cannot_see_yet_stays_sold_through_its_landed_notification(config, mall, queue,
                                                                                      monkeypatch):
    sqs, _url, arn = queue
    looks: list[datetime] = []  # each time the pusher looks at the landed notifications (the real method runs)
    notified_skus = AmazonStockPusher.notified_skus
    monkeypatch.setattr(AmazonStockPusher, "notified_skus",
                        lambda self, since: looks.append(since) or notified_skus(self, since))
    with amazon_ingestion.make_client(config) as client:
        amazon_ingestion.subscribe_order_changes(client, arn)
    staged = sold_after_the_read(config, mall, datetime.now(UTC), None)  # sold now: too new for searchOrders
    targets, sku = staged.targets, staged.sku
    assert mall.amazon.api.notifications.wait_idle(10)
    assert amazon_ingestion.ingest_notifications(config, sqs=sqs).events.rows_landed == 1  # the live worker's job

    result, calls = push(config, mall)

    assert result.planned > FRESH_READ_MAX and result.failed == 0
    assert shown(mall)[sku] == targets[sku] - 1, "the unit sold after the plan's read must stay sold"
    assert calls == {"searchOrders": 0,  # every read is younger than searchOrders' two minutes
                     "searchListingsItems": 1}  # the notified SKU alone
    # Once for the read ahead, then again before each later part; the first part follows the read at once (D223).
    assert len(looks) == math.ceil(result.planned / 20) >= 2


def test_more_orders_than_the_page_budget_means_every_sku_is_read_fresh(config, mall):
    now = datetime.now(UTC)
    staged = sold_after_the_read(config, mall, now - READ_TEN_MINUTES_AGO, now - timedelta(minutes=5))
    targets, sku = staged.targets, staged.sku
    assert mall.world.place_mall_orders("amazon", 2, at=now - timedelta(minutes=4))
    tight = config.with_overrides(**{"channels.amazon.page_size": 1, "channels.amazon.feed_sales_max_pages": 2})

    result, calls = push(tight, mall)

    assert result.planned > FRESH_READ_MAX and result.failed == 0
    assert shown(mall)[sku] == targets[sku] - 1
    assert calls == {"searchOrders": 2,  # the page budget, then the fallback
                     "searchListingsItems": math.ceil(result.planned / 20)}  # every SKU, 20 a call
