"""Columnar page mapping (ingestion.columnar) against the row mapper it replaces for orders (`order_row`).

GIVEN Admin GraphQL orders pages as the sandbox shop serialises them (and hand-made pages with bad nodes)
WHEN they are landed through the columnar path and through the row path with the same batch id and time
THEN the two Parquet files hold the same table (every column, `_raw` included, same row order), and every bad
node is quarantined with its key, its raw JSON and the reason the row mapper gives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pyarrow.parquet as pq
import pytest
from ingestion_fakes import make_order

from ingestion.common import RecordError, raw_json
from ingestion.landing import LandingZone, QuarantineRecord, land_and_report
from ingestion.shopify import ENTITY_SPECS, ORDERS_QUERY, map_page_texts, order_row
from sandbox.shopify import ShopifyAPI
from sandbox.world import World

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
TOKEN = "shpat_columnar"
SPEC = ENTITY_SPECS["orders"]


def sandbox_pages(max_pages: int = 6) -> list[str]:
    """Orders pages of the connector's own query over a small generated world, as the server sends them."""
    world = World.generate(3, now=NOW, skus=30, customers=40, history_days=3, orders_per_day=30)
    api = ShopifyAPI(world, access_token=TOKEN, restore_rate=1e9)
    variables = {"first": 15, "after": None, "query": None, **dict(SPEC.fixed_variables)}
    pages = []
    for _ in range(max_pages):
        status, body = api.handle(TOKEN, {"query": ORDERS_QUERY, "variables": variables})
        assert status == 200 and not body.get("errors"), body
        pages.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")))
        info = body["data"]["orders"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        variables = {**variables, "after": info["endCursor"]}
    return pages


def page_of(nodes: list) -> str:
    return raw_json({"data": {"orders": {"pageInfo": {"hasNextPage": False, "endCursor": None}, "nodes": nodes}}})


def land_by_rows(zone: LandingZone, pages: list[str]):
    """The row path as it was: each node through order_row, RecordError → quarantine."""
    rows, bad = [], []
    for page in pages:
        for node in json.loads(page)["data"]["orders"]["nodes"]:
            key = node.get("id") if isinstance(node, dict) else None
            try:
                if not isinstance(node, dict):
                    raise RecordError(f"node is {type(node).__name__}, not an object")
                rows.append(order_row(node))
            except RecordError as exc:
                bad.append(QuarantineRecord(key, f"shopify/orders {key or '(no id)'}: {exc}", node))
    return land_and_report(zone, SPEC.schema, rows, bad, fetched_at=NOW, since=None)


def land_columnar(zone: LandingZone, pages: list[str]):
    rows, bad = map_page_texts(SPEC, pages)
    return land_and_report(zone, SPEC.schema, rows, bad, fetched_at=NOW, since=None)


def test_sandbox_pages_land_the_same_table_by_both_paths(tmp_path, monkeypatch):
    pages = sandbox_pages()
    # one order with more lines than fit inline, completed and re-serialised as ingest does
    long_order = make_order(77, NOW, lines=12)
    pages.append(page_of([long_order]))
    monkeypatch.setattr("ingestion.landing.new_batch_id", lambda fetched_at: "20261123T030000000000Z-00000000")

    old = land_by_rows(LandingZone(tmp_path / "rows"), pages)
    new = land_columnar(LandingZone(tmp_path / "columnar"), pages)

    orders = sum(len(json.loads(p)["data"]["orders"]["nodes"]) for p in pages)
    assert orders > 60 and old.rows_landed == new.rows_landed == orders
    assert old.rows_quarantined == new.rows_quarantined == 0
    assert old.cursor_to == new.cursor_to
    old_table, new_table = pq.read_table(old.path), pq.read_table(new.path)
    assert new_table.schema.equals(old_table.schema)
    assert new_table.equals(old_table)  # every column and row, `_raw` text included
    assert old_table.schema.metadata == new_table.schema.metadata
    lines = pl.from_arrow(new_table).filter(pl.col("order_id") == long_order["id"])["line_items"][0]
    assert len(lines) == 12 and lines[11]["line_item_id"] == "gid://shopify/LineItem/7711"


def _bad(node: dict, **change) -> dict:
    return {**node, **change}


BAD_NODES = {
    "id missing": lambda n: _bad(n, id=None),
    "createdAt missing": lambda n: _bad(n, createdAt=None),
    "updatedAt not a timestamp": lambda n: _bad(n, updatedAt="yesterday"),
    "updatedAt without offset": lambda n: _bad(n, updatedAt="2026-11-20T10:00:00"),
    "money with a comma": lambda n: _bad(n, totalTaxSet={"shopMoney": {"amount": "4,378", "currencyCode": "JPY"}}),
    "money text": lambda n: _bad(n, totalPriceSet={"shopMoney": {"amount": "¥4378", "currencyCode": "JPY"}}),
    "line without id": lambda n: {**n, "lineItems": {"nodes": [n["lineItems"]["nodes"][0],
                                                               {**n["lineItems"]["nodes"][1], "id": None}]}},
    "line quantity text": lambda n: {**n, "lineItems": {"nodes": [{**n["lineItems"]["nodes"][0],
                                                                  "quantity": "two"}]}},
    "line quantity a fraction": lambda n: {**n, "lineItems": {"nodes": [{**n["lineItems"]["nodes"][0],
                                                                        "quantity": "2.5"}]}},
    "createdAt bad after a null cancelledAt": lambda n: _bad(n, cancelledAt=None, createdAt="2026-13-40T00:00:00Z"),
    "money bad after a null cancelledAt": lambda n: _bad(n, cancelledAt=None,
                                                         totalTaxSet={"shopMoney": {"amount": "1,0"}}),
}


@pytest.mark.parametrize("case", sorted(BAD_NODES))
def test_a_bad_node_is_quarantined_with_the_row_mappers_reason_and_the_rest_lands(tmp_path, case):
    good = [make_order(n, NOW) for n in range(3)]
    bad = BAD_NODES[case](make_order(9, NOW))
    with pytest.raises(RecordError) as expected:
        order_row(bad)

    rows, quarantined = map_page_texts(SPEC, [page_of([good[0], bad]), page_of(good[1:])])

    assert rows.column("order_id").to_pylist() == [g["id"] for g in good]
    assert len(quarantined) == 1
    record = quarantined[0]
    assert record.record_key == bad["id"]
    assert record.reason == f"shopify/orders {bad['id'] or '(no id)'}: {expected.value}"
    assert json.loads(record.raw) == bad


def test_a_quantity_beyond_64_bits_is_quarantined_not_landed_as_null():
    """The row path would fail the whole batch on it (Int64); the columnar path sets the one order aside."""
    good = make_order(1, NOW)
    huge = make_order(2, NOW)
    huge["lineItems"]["nodes"][0]["quantity"] = "9223372036854775808"

    rows, bad = map_page_texts(SPEC, [page_of([good, huge])])

    assert rows.column("order_id").to_pylist() == [good["id"]]
    assert [record.reason for record in bad] == [
        f"shopify/orders {huge['id']}: lineItems[0].quantity '9223372036854775808' is not an integer"]


def test_the_first_problem_in_field_order_is_the_reason():
    node = _bad(make_order(3, NOW), updatedAt="soon", totalTaxSet={"shopMoney": {"amount": "x"}})
    with pytest.raises(RecordError) as expected:
        order_row(node)
    _, bad = map_page_texts(SPEC, [page_of([node])])
    assert [record.reason for record in bad] == [f"shopify/orders {node['id']}: {expected.value}"]
    assert "updatedAt" in str(expected.value)


def test_nodes_that_are_not_objects_are_quarantined_not_dropped(tmp_path):
    good = make_order(1, NOW)
    zone = LandingZone(tmp_path)
    result = land_columnar(zone, [page_of([None, good, "junk", 7])])

    assert result.rows_landed == 1 and result.rows_quarantined == 3
    quarantined = zone.quarantined("shopify", "orders").collect()
    assert sorted(quarantined.get_column("raw").to_list()) == sorted(["null", '"junk"', "7"])
    assert sorted(quarantined.get_column("reason").to_list()) == [
        "shopify/orders (no id): node is a number, not an object",
        "shopify/orders (no id): node is a string, not an object",
        "shopify/orders (no id): node is null, not an object",
    ]
    assert quarantined.get_column("batch_id").to_list() == [result.batch_id] * 3


def test_an_empty_page_lands_nothing(tmp_path):
    rows, bad = map_page_texts(SPEC, [page_of([])])
    assert rows.num_rows == 0 and bad == []
    result = land_and_report(LandingZone(tmp_path), SPEC.schema, rows, bad, fetched_at=NOW, since=None)
    assert result.rows_landed == 0 and result.path is None


def test_offsets_and_fractions_become_the_same_utc_instant_as_the_row_mapper(tmp_path):
    node = make_order(1, NOW, createdAt="2026-11-23T09:00:00.123456+09:00", processedAt="2026-11-23T00:00:00.5Z")
    rows, bad = map_page_texts(SPEC, [page_of([node])])
    expected = order_row(node)
    assert bad == []
    row = pl.from_arrow(rows).row(0, named=True)
    assert row["created_at"] == expected["created_at"] == datetime(2026, 11, 23, 0, 0, 0, 123456, tzinfo=UTC)
    assert row["processed_at"] == expected["processed_at"]


def test_the_mapping_is_pure():
    pages = [page_of([make_order(n, NOW) for n in range(4)])]
    first, _ = map_page_texts(SPEC, pages)
    second, _ = map_page_texts(SPEC, pages)
    assert first.num_rows == 4 and first.equals(second)
