"""Shopify customers entity (identity input for dbt's unified customers): the document is valid against Shopify's
published schema, and a run against the sandbox shop over real HTTP lands every customer once with the fields the
world holds; the next run starts at the landed cursor."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from ingestion_fakes import check_document

import ingestion
from ichigen.config import Config
from ingestion import shopify
from ingestion.common import RecordError
from ingestion.landing import LandingZone
from sandbox import start_world


def test_customers_document_is_valid_against_shopifys_published_schema():
    assert check_document(shopify.CUSTOMERS_QUERY, {"first": 50, "after": None, "query": None}) == []


def test_customer_row_refuses_a_node_without_id():
    node = {"firstName": "太郎", "updatedAt": "2026-11-20T00:00:00Z"}
    result = None
    try:
        shopify.customer_row(node)
    except RecordError as exc:
        result = str(exc)
    assert result is not None and "id" in result


def test_customers_land_from_the_sandbox_and_the_next_run_starts_at_the_cursor(tmp_config: Config, tmp_path):
    with start_world(data_dir=tmp_path / "sandbox", seed=5, skus=10, customers=30, history_days=1,
                     orders_per_day=3, restore_rate=1000.0) as running:
        config = tmp_config.with_overrides(**{
            "channels.shopify.base_url": running.shopify_url,
            "channels.shopify.access_token": "shpat_sandbox",
            "channels.shopify.requests_per_second": 200.0,
            "channels.shopify.page_size": 7,  # several pages
            "channels.shopify.backfill_start": "2000-01-01T00:00:00Z",
        })
        landing = LandingZone(config.landing_dir)
        first = ingestion.ingest(config, "shopify", "customers", landing=landing)
        second = ingestion.ingest(config, "shopify", "customers", landing=landing)
        truth = {c.gid: c for c in running.world.customers}

    assert first.pages >= 5
    landed = landing.landed("shopify", "customers").collect()
    batches = landed.partition_by("_batch_id", maintain_order=True)
    assert [len(b) for b in batches][0] == len(truth) == 30
    rows = {r["customer_id"]: r for r in batches[0].to_dicts()}
    assert set(rows) == set(truth)
    for gid, c in truth.items():
        row = rows[gid]
        assert (row["last_name"], row["first_name"]) == (c.last_name, c.first_name)
        assert row["email"] == c.email and row["phone"] == c.phone
        assert (row["zip"], row["province"], row["address1"]) == (
            c.address["zip"], c.address["province"], c.address["address1"])
    # the second run asks only for what changed since the landed cursor minus the look-back
    cursor = landed.get_column("updated_at").max()
    lookback = timedelta(minutes=config.channels.shopify.lookback_minutes)
    assert second.cursor_from == cursor - lookback
    expected_again = sum(1 for c in truth.values() if c.updated_at >= (cursor - lookback).replace(microsecond=0))
    if len(batches) > 1:
        assert len(batches[1]) == second.rows_landed == expected_again
    else:
        assert expected_again == 0
    assert landed.schema["updated_at"] == pl.Datetime("us", "UTC")
