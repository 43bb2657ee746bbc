"""Shopify backfill through a bulk operation (D110–D113), against the sandbox shop over real HTTP.

GIVEN one sandbox world WHEN orders and product variants are landed once through pages and once through a bulk
operation THEN both landings hold exactly the same rows (line items reassembled under their orders by
`__parentId`); the traffic passes the shared conformance tool; a failed operation lands nothing; a JSONL line
whose parent is missing is quarantined. With the webhook receiver running and subscribed to
BULK_OPERATIONS_FINISH, the signed finish delivery (sent twice, landed once) ends the wait before the next poll;
a delivery the receiver cannot verify lands nothing and the polls still finish the backfill (D142).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from ingestion_fakes import check_document

import ingestion
from ichigen.config import Config
from ingestion import shopify_bulk
from ingestion.errors import IngestionError
from ingestion.landing import LandingZone
from ingestion.webhooks import serve_receiver, subscribe
from sandbox.server import serve_shopify
from sandbox.webhooks import WebhookSettings
from sandbox.world import World

META = ("_batch_id", "_fetched_at", "_source")


@pytest.fixture
def world() -> World:
    return World.generate(seed=21, skus=25, customers=40, history_days=12, orders_per_day=30)


@pytest.fixture
def traffic(tmp_path) -> Path:
    return tmp_path / "shopify-traffic.jsonl"


@pytest.fixture
def shop(world, traffic):
    with serve_shopify(world, port=0, restore_rate=1000.0, traffic_log=traffic, bulk_processing_seconds=0.2) as s:
        yield s


def configured(tmp_config: Config, shop, landing: str, threshold: float) -> Config:
    return tmp_config.with_overrides(**{
        "channels.shopify.base_url": shop.url,
        "channels.shopify.access_token": "shpat_sandbox",
        "channels.shopify.requests_per_second": 500.0,
        "channels.shopify.page_size": 20,  # several pages
        "channels.shopify.backfill_start": "2020-01-01T00:00:00Z",
        "channels.shopify.bulk_threshold_days": threshold,
        "channels.shopify.bulk_poll_max_seconds": 0.5,
        "channels.shopify.timeout_seconds": 120.0,  # a loaded machine must not turn a slow answer into a retry
        "paths.landing": landing,
    })


def _comparable(frame: pl.DataFrame, key: str) -> list[dict]:
    rows = []
    for row in frame.drop([c for c in frame.columns if c in META]).sort(key).to_dicts():
        raw = json.loads(row.pop("_raw"))
        if isinstance(raw.get("lineItems"), dict):
            raw["lineItems"].pop("pageInfo", None)  # a page cursor (paged) vs none (bulk): transport, not data
        rows.append({**row, "_raw": raw})
    return rows


@pytest.mark.parametrize("name", sorted(shopify_bulk.DOCUMENTS))
def test_bulk_documents_are_valid_against_shopifys_published_schema(name):
    variables = {"bulk_run": {"query": "{ orders { edges { node { id } } } }"},
                 "bulk_poll": {"id": "gid://shopify/BulkOperation/1"},
                 "bulk_cancel": {"id": "gid://shopify/BulkOperation/1"},
                 "bulk_run_mutation": {"mutation": "mutation { x }", "stagedUploadPath": "tmp/1/bulk/a/vars",
                                       "clientIdentifier": None},
                 "staged_uploads_create": {"input": [{"resource": "BULK_MUTATION_VARIABLES", "filename": "v.jsonl",
                                                      "mimeType": "text/jsonl", "httpMethod": "POST"}]}}[name]
    assert check_document(shopify_bulk.DOCUMENTS[name], variables) == []


@pytest.mark.parametrize("entity", sorted(shopify_bulk.BULK_ENTITIES))
def test_the_bulk_queries_select_valid_fields(entity):
    assert check_document(shopify_bulk.BULK_ENTITIES[entity].document(None), {}) == []


def test_bulk_backfill_lands_exactly_the_rows_of_the_paged_backfill(tmp_config, shop, world, traffic, conformance):
    paged_config = configured(tmp_config, shop, "landing-paged", threshold=0)
    bulk_config = configured(tmp_config, shop, "landing-bulk", threshold=1)
    for entity, key in (("orders", "order_id"), ("product_variants", "variant_id")):
        requests_before = shop.api.requests
        paged = ingestion.ingest(paged_config, "shopify", entity)
        paged_requests = shop.api.requests - requests_before
        bulk = ingestion.ingest(bulk_config, "shopify", entity)
        assert paged.rows_landed == bulk.rows_landed > 0 and bulk.rows_quarantined == 0
        a = LandingZone(paged_config.landing_dir).landed("shopify", entity).collect()
        b = LandingZone(bulk_config.landing_dir).landed("shopify", entity).collect()
        assert _comparable(a, key) == _comparable(b, key), entity
        assert paged_requests > 1  # the paged path really paged

    orders = LandingZone(bulk_config.landing_dir).landed("shopify", "orders").collect()
    assert orders.height == len(world.orders)
    truth = {o.gid: sorted(li.gid for li in o.lines) for o in world.orders}
    landed = {r["order_id"]: sorted(li["line_item_id"] for li in r["line_items"]) for r in orders.to_dicts()}
    assert landed == truth  # every line item under its own order
    assert any(len(v) > 1 for v in truth.values())

    # the bulk path's traffic: run + polls as GraphQL; the download is not an Admin API exchange
    exchanges = [json.loads(line) for line in traffic.read_text().splitlines()]
    assert any("bulkOperationRunQuery" in (e["request_body"] or {}).get("query", "") for e in exchanges)
    assert all(e["path"].endswith("graphql.json") for e in exchanges)
    conformance(traffic)


def test_a_failed_bulk_operation_lands_nothing_and_says_why(tmp_config, shop):
    config = configured(tmp_config, shop, "landing", threshold=1)
    shop.api.bulk.fail_next("TIMEOUT")
    with pytest.raises(IngestionError, match=r"ended FAILED \(errorCode TIMEOUT"):
        ingestion.ingest(config, "shopify", "orders")
    assert LandingZone(config.landing_dir).batch_files("shopify", "orders") == []


def test_an_incremental_window_below_the_threshold_pages(tmp_config, shop):
    config = configured(tmp_config, shop, "landing", threshold=30)
    first = ingestion.ingest(config, "shopify", "orders")  # since 2020: bulk
    started = shop.api.bulk.started
    second = ingestion.ingest(config, "shopify", "orders")  # since the landed cursor: pages
    assert first.rows_landed > 0 and started >= 1
    assert second.pages >= 1 and shop.api.bulk.started == started


def test_reassembly_quarantines_an_orphan_and_a_broken_line():
    lines = [
        '{"id":"gid://shopify/Order/1","name":"#1"}',
        '{"id":"gid://shopify/LineItem/9","__parentId":"gid://shopify/Order/2"}',  # parent comes later
        '{"id":"gid://shopify/Order/2","name":"#2"}',
        '{"id":"gid://shopify/LineItem/10","__parentId":"gid://shopify/Order/1"}',
        '{"id":"gid://shopify/LineItem/11","__parentId":"gid://shopify/Order/404"}',
        '{"id": broken',
    ]
    nodes, bad = shopify_bulk.reassemble(iter(lines), "orders", "lineItems")
    assert [n["id"] for n in nodes] == ["gid://shopify/Order/1", "gid://shopify/Order/2"]
    assert [li["id"] for li in nodes[0]["lineItems"]["nodes"]] == ["gid://shopify/LineItem/10"]
    assert [li["id"] for li in nodes[1]["lineItems"]["nodes"]] == ["gid://shopify/LineItem/9"]
    reasons = [q.reason for q in bad]
    assert len(bad) == 2 and "not JSON" in reasons[0] and "Order/404 is not in the file" in reasons[1]


WEBHOOK_SECRET = "shpss_bulk_test_secret"


@pytest.mark.parametrize(("receiver_secret", "ended_by"), [(WEBHOOK_SECRET, "webhook"), ("shpss_another_app", "poll")])
def test_the_finish_webhook_ends_the_wait_and_the_polls_stay_the_backstop(tmp_config, world, monkeypatch,
                                                                           receiver_secret, ended_by):
    # the first poll only after 3 s: an operation of 0.3 s that ends the wait sooner was announced by the webhook
    monkeypatch.setattr(shopify_bulk, "FIRST_POLL_SECONDS", 3.0)
    # every delivery arrives twice; a refused one is retried once, quickly
    settings = WebhookSettings(secret=WEBHOOK_SECRET, duplicate_rate=1.0, max_attempts=2, retry_backoff=0.05)
    with serve_shopify(world, port=0, restore_rate=1000.0, bulk_processing_seconds=0.3, webhooks=settings) as s:
        config = configured(tmp_config, s, "landing", threshold=1)
        landing = LandingZone(config.landing_dir)
        with serve_receiver(config.landing_dir, receiver_secret) as receiver:
            subscribe(config, receiver.webhook_url, topics=("BULK_OPERATIONS_FINISH",))
            client = shopify_bulk.ChannelClient.for_shopify(config.channels.shopify)
            try:
                fetch = shopify_bulk.bulk_fetch(client, config, "product_variants", None, landing)
            finally:
                client.close()
            assert s.webhooks.wait_idle(10)
        stats = receiver.app.state.stats

    assert fetch.ended_by == ended_by and len(fetch.nodes) == len(world.variants)
    events = landing.landed("shopify", "webhook_events").collect()
    if ended_by == "webhook":
        assert stats["landed"] == 1 and stats["duplicate"] == 1  # the second copy is recognised and dropped
        [event] = events.to_dicts()
        assert event["topic"] == "bulk_operations/finish"
        assert event["resource_gid"].startswith("gid://shopify/BulkOperation/")
        assert json.loads(event["_raw"])["status"] == "completed"
    else:
        assert stats["unauthorized"] >= 2 and stats["landed"] == 0 and events.height == 0  # polls decide
