"""The bench's order copies (bench.big_landing): new keys, everything else the base order's, the landed shape.

GIVEN a landed Shopify orders batch of two orders, WHEN copies 1..3 are written, THEN the copy batch holds 6
orders whose order ids, names and line ids end in -c1..-c3 and are unique, whose other columns equal their
base order's, and the batch has the landed schema (the product's writer cast it)."""

from datetime import UTC, datetime

import duckdb
import polars as pl

from bench.big_landing import ORDER_ENTITIES, label, write_copy_batch
from ingestion.landing import LandingZone
from ingestion.schemas import SHOPIFY_ORDERS

AT = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)


def order(n: int, lines: int) -> dict:
    return {
        "order_id": f"gid://shopify/Order/{n}", "order_name": f"#{n}", "created_at": AT, "updated_at": AT,
        "display_financial_status": "PAID", "total_price": "1980.0", "customer_id": "gid://shopify/Customer/7",
        "line_items": [{"line_item_id": f"gid://shopify/LineItem/{n}{i}", "sku": f"SKU-{i}", "quantity": i + 1,
                        "current_quantity": i + 1, "unit_price": "990.0"} for i in range(lines)],
        "_raw": f'{{"id": "gid://shopify/Order/{n}"}}',
    }


def test_copies_get_new_keys_and_keep_everything_else(tmp_path):
    landing = LandingZone(tmp_path)
    base = landing.write_batch("shopify", "orders", [order(1, 2), order(2, 1)], schema=SHOPIFY_ORDERS.columns,
                               cursor_field="updated_at", fetched_at=AT)
    spec = next(s for s in ORDER_ENTITIES if s.source == "shopify")

    copy = write_copy_batch(landing, duckdb.connect(), spec, [str(base.path)], 1, 3, AT.replace(hour=2))

    frame = pl.read_parquet(copy.path)
    assert frame.schema == pl.read_parquet(base.path).schema
    assert frame.height == 6 and frame["order_id"].n_unique() == 6
    assert sorted(frame["order_id"])[:3] == ["gid://shopify/Order/1-c1", "gid://shopify/Order/1-c2",
                                             "gid://shopify/Order/1-c3"]
    lines = frame.explode("line_items").unnest("line_items")
    assert lines.height == 9 and lines["line_item_id"].n_unique() == 9
    assert all(line_id.rsplit("-c", 1)[1] == oid.rsplit("-c", 1)[1]
               for line_id, oid in zip(lines["line_item_id"], lines["order_id"], strict=True))
    first = frame.filter(pl.col("order_id") == "gid://shopify/Order/1-c2").row(0, named=True)
    assert first["order_name"] == "#1-c2" and first["total_price"] == "1980.0"
    assert first["customer_id"] == "gid://shopify/Customer/7" and first["updated_at"] == AT
    assert [li["quantity"] for li in first["line_items"]] == [1, 2]
    assert landing.batch_metadata(copy.path)["mode"] == "bench-copy"


def test_scale_labels():
    assert (label(10_000_000), label(250_000), label(1_234)) == ("10m", "250k", "1234")
