"""The landing zone contract (DECISIONS.md D4) on real files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from ingestion import landing as landing_module
from ingestion.landing import LandingZone, QuarantineRecord, write_parquet_atomic
from ingestion.schemas import ERP_STOCK, SHOPIFY_ORDERS

T0 = datetime(2026, 11, 23, 1, 2, 3, 456789, tzinfo=UTC)


def stock_rows(n: int, updated: datetime) -> list[dict]:
    return [{"sku": f"SKU-{i}", "warehouse_code": "TKY", "on_hand": i, "updated_at": updated + timedelta(seconds=i),
             "_raw": json.dumps({"sku": f"SKU-{i}"})} for i in range(n)]


def write_stock(zone: LandingZone, rows, fetched_at=T0, **kw):
    return zone.write_batch("erp", "stock", rows, schema=ERP_STOCK.columns, cursor_field="updated_at",
                            fetched_at=fetched_at, **kw)


def test_batch_layout_columns_and_metadata(tmp_path: Path):
    zone = LandingZone(tmp_path)
    result = write_stock(zone, stock_rows(3, T0), cursor_from=T0 - timedelta(minutes=10))

    assert result.row_count == 3 and result.cursor_to == T0 + timedelta(seconds=2)
    assert result.path == tmp_path / "erp" / "stock" / "date=2026-11-23" / f"{result.batch_id}.parquet"
    assert result.batch_id.startswith("20261123T010203456789Z-") and len(result.batch_id.split("-")[1]) == 8

    schema = pq.read_schema(result.path)
    assert schema.names == ["sku", "warehouse_code", "on_hand", "updated_at", "_batch_id", "_fetched_at", "_raw"]
    assert str(schema.field("_fetched_at").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("_batch_id").type) == "string"
    meta = json.loads(schema.metadata[b"ichigen.batch"])
    assert meta == {
        "batch_id": result.batch_id, "source": "erp", "entity": "stock", "fetched_at": T0.isoformat(),
        "cursor_field": "updated_at", "cursor_from": (T0 - timedelta(minutes=10)).isoformat(),
        "cursor_to": (T0 + timedelta(seconds=2)).isoformat(), "row_count": 3,
    }
    frame = zone.landed("erp", "stock").collect()
    assert frame.get_column("_batch_id").unique().to_list() == [result.batch_id]
    assert frame.get_column("_fetched_at").unique().to_list() == [T0]
    # dbt reads the same files through DuckDB.
    count = duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/erp/stock/**/*.parquet', "
                       "union_by_name=true)").fetchall()[0][0]
    assert count == 3


def test_zero_rows_write_no_batch(tmp_path: Path):
    zone = LandingZone(tmp_path)
    result = write_stock(zone, [])
    assert result.row_count == 0 and result.path is None and result.cursor_to is None
    assert zone.batch_files("erp", "stock") == []
    assert zone.cursor("erp", "stock", "updated_at") is None
    empty = zone.landed("erp", "stock").collect()
    assert empty.height == 0 and empty.schema["updated_at"] == pl.Datetime("us", "UTC")


def test_cursor_is_the_max_over_landed_batches(tmp_path: Path):
    zone = LandingZone(tmp_path)
    write_stock(zone, stock_rows(2, T0 + timedelta(hours=5)), fetched_at=T0)
    write_stock(zone, stock_rows(2, T0), fetched_at=T0 + timedelta(days=1))  # a later fetch of older data
    assert zone.cursor("erp", "stock", "updated_at") == T0 + timedelta(hours=5, seconds=1)
    # A fresh zone object (new process) derives the same cursor from the files alone.
    assert LandingZone(tmp_path).cursor("erp", "stock", "updated_at") == T0 + timedelta(hours=5, seconds=1)
    assert len(zone.batch_files("erp", "stock")) == 2
    assert zone.landed("erp", "stock").collect().height == 4


def test_leftover_temp_file_is_ignored_by_readers_and_cursor(tmp_path: Path):
    zone = LandingZone(tmp_path)
    write_stock(zone, stock_rows(2, T0))
    # A crash after writing the temp file but before the rename: a complete Parquet file, under the temp name,
    # whose data is newer than anything landed.
    folder = tmp_path / "erp" / "stock" / "date=2026-11-23"
    crashed = pl.DataFrame(stock_rows(5, T0 + timedelta(days=30)), schema={**ERP_STOCK.columns, "_raw": pl.String})
    crashed.write_parquet(folder / ".20261123T999999000000Z-deadbeef.parquet.tmp")
    (folder / ".20261124T000000000000Z-cafef00d.parquet.tmp").write_bytes(b"PAR1 half a file")

    assert zone.cursor("erp", "stock", "updated_at") == T0 + timedelta(seconds=1)
    assert LandingZone(tmp_path).landed("erp", "stock").collect().height == 2
    assert duckdb.sql(f"select count(*) from read_parquet('{tmp_path}/erp/stock/**/*.parquet')").fetchall()[0][0] == 2


def test_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    zone = LandingZone(tmp_path)

    def broken(table, where, **kw):
        where.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(landing_module.pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        write_stock(zone, stock_rows(2, T0))
    assert list(tmp_path.rglob("*parquet*")) == []
    assert zone.cursor("erp", "stock", "updated_at") is None


def test_landed_files_are_never_overwritten(tmp_path: Path):
    frame = pl.DataFrame({"a": [1]})
    path = write_parquet_atomic(frame, tmp_path / "x" / "run-1.parquet")
    with pytest.raises(FileExistsError):
        write_parquet_atomic(frame, path)
    assert not any(p.name.endswith(".tmp") for p in path.parent.iterdir())


def test_types_are_stable_across_batches(tmp_path: Path):
    """A batch whose nullable columns are all null still lands the entity's types (not `null`)."""
    zone = LandingZone(tmp_path)
    base = {"order_id": "gid://shopify/Order/1", "created_at": T0, "updated_at": T0, "_raw": "{}"}
    full = {**base, "cancelled_at": T0, "payment_gateway_names": ["shopify_payments"],
            "line_items": [{"line_item_id": "gid://shopify/LineItem/1", "sku": "A", "quantity": 2,
                            "current_quantity": 2, "unit_price": "1980.0", "variant_id": None,
                            "inventory_item_id": None, "title": "Tシャツ"}]}
    sparse = {**base, "order_id": "gid://shopify/Order/2", "payment_gateway_names": [], "line_items": []}
    first = zone.write_batch("shopify", "orders", [full], schema=SHOPIFY_ORDERS.columns, cursor_field="updated_at",
                             fetched_at=T0)
    second = zone.write_batch("shopify", "orders", [sparse], schema=SHOPIFY_ORDERS.columns,
                              cursor_field="updated_at", fetched_at=T0 + timedelta(minutes=5))
    assert pq.read_schema(first.path).remove_metadata() == pq.read_schema(second.path).remove_metadata()
    frame = zone.landed("shopify", "orders").collect()
    assert frame.height == 2
    assert frame.schema["line_items"] == SHOPIFY_ORDERS.columns["line_items"]


def test_rows_outside_the_schema_are_refused(tmp_path: Path):
    zone = LandingZone(tmp_path)
    with pytest.raises(ValueError, match="outside the schema"):
        write_stock(zone, [{**stock_rows(1, T0)[0], "surprise": 1}])
    with pytest.raises(ValueError, match="`_raw`"):
        write_stock(zone, [{k: v for k, v in stock_rows(1, T0)[0].items() if k != "_raw"}])
    with pytest.raises(ValueError, match="erp/stock: rows do not fit the schema"):
        write_stock(zone, [{**stock_rows(1, T0)[0], "on_hand": "many"}])


def test_dataframe_rows_are_accepted(tmp_path: Path):
    zone = LandingZone(tmp_path)
    frame = pl.DataFrame(stock_rows(3, T0)).drop("warehouse_code")  # a missing nullable column is added
    result = write_stock(zone, frame)
    landed = zone.landed("erp", "stock").collect()
    assert result.row_count == 3 and landed.get_column("warehouse_code").null_count() == 3


def test_quarantine(tmp_path: Path):
    zone = LandingZone(tmp_path)
    batch_id = zone.new_batch_id(T0)
    path = zone.quarantine("shopify", "orders", batch_id, [
        QuarantineRecord("gid://shopify/Order/9", "shopify/orders gid://shopify/Order/9: updatedAt 'x' is not an "
                         "ISO-8601 timestamp", {"id": "gid://shopify/Order/9", "updatedAt": "x"}),
        (None, "shopify/orders (no id): id is missing", '{"name":"#1"}'),
    ], quarantined_at=T0)
    assert path == tmp_path / "_quarantine" / "shopify" / "orders" / "date=2026-11-23" / f"{batch_id}.parquet"
    frame = zone.quarantined("shopify", "orders").collect()
    assert frame.columns == ["source", "entity", "batch_id", "record_key", "reason", "raw", "quarantined_at"]
    assert frame.get_column("record_key").to_list() == ["gid://shopify/Order/9", None]
    assert json.loads(frame.get_column("raw")[0]) == {"id": "gid://shopify/Order/9", "updatedAt": "x"}
    assert zone.quarantine("shopify", "orders", batch_id, []) is None
    # Quarantine files are not batches of the entity.
    assert zone.batch_files("shopify", "orders") == []


def test_cursor_falls_back_to_reading_the_column_without_statistics(tmp_path: Path):
    folder = tmp_path / "erp" / "stock" / "date=2026-11-23"
    folder.mkdir(parents=True)
    frame = pl.DataFrame(stock_rows(3, T0), schema={**ERP_STOCK.columns, "_raw": pl.String})
    pq.write_table(frame.to_arrow(), folder / "20261123T000000000000Z-00000000.parquet", write_statistics=False)
    assert LandingZone(tmp_path).cursor("erp", "stock", "updated_at") == T0 + timedelta(seconds=2)
    assert os.path.exists(folder)


def test_compaction_merges_small_old_batches_per_mode_without_changing_what_readers_see(tmp_path: Path):
    from ingestion.landing import TARGETED, compact_batches

    zone = LandingZone(tmp_path)
    old = [write_stock(zone, stock_rows(2, T0 + timedelta(minutes=i)), fetched_at=T0 + timedelta(seconds=i))
           for i in range(3)]
    targeted = [write_stock(zone, stock_rows(1, T0 + timedelta(hours=5)), fetched_at=T0 + timedelta(seconds=10 + i),
                            mode=TARGETED) for i in range(2)]
    recent = write_stock(zone, stock_rows(1, T0), fetched_at=T0 + timedelta(hours=3))
    key = ["_batch_id", "sku", "_fetched_at"]
    before = zone.landed("erp", "stock").collect().sort(key)
    cursor = zone.cursor("erp", "stock", "updated_at")

    done = compact_batches(zone, "erp", "stock", now=T0 + timedelta(hours=3, minutes=30)).merged

    assert sorted(len(c.replaced) for c in done) == [2, 3], "one batch per mode; the recent one is left alone"
    assert {c.replaced for c in done} == {tuple(b.batch_id for b in old), tuple(b.batch_id for b in targeted)}
    files = zone.batch_files("erp", "stock")
    assert len(files) == 3 and recent.path in files and not any(b.path.exists() for b in old + targeted)
    assert zone.landed("erp", "stock").collect().sort(key).equals(before), "every row, batch id and fetch time kept"
    fresh = LandingZone(tmp_path)
    assert fresh.cursor("erp", "stock", "updated_at") == cursor, "targeted rows still do not move the cursor"
    merged = next(c for c in done if len(c.replaced) == 3)
    assert fresh.batch_metadata(merged.path)["compacted_from"] == [b.batch_id for b in old]
    assert compact_batches(zone, "erp", "stock", now=T0 + timedelta(hours=3, minutes=30)).merged == [], "nothing left"

    # A crash after the merged batch's rename but before the originals went: the next call removes them.
    leftover = merged.path.parent / f"{old[0].batch_id}.parquet"
    write_parquet_atomic(pl.read_parquet(merged.path).head(2), leftover)
    compact_batches(zone, "erp", "stock", now=T0 + timedelta(hours=3, minutes=30))
    assert not leftover.exists() and zone.landed("erp", "stock").collect().sort(key).equals(before)


def test_compaction_never_merges_batches_of_different_columns(tmp_path: Path):
    """Batches landed before a column was added to the contract keep lacking it as a whole file: staging tells
    them apart by their schema (D154), so a merge must not give their rows the column as NULL."""
    from ingestion.landing import compact_batches

    zone = LandingZone(tmp_path)
    batches = [write_stock(zone, stock_rows(2, T0 + timedelta(minutes=i)), fetched_at=T0 + timedelta(seconds=i))
               for i in range(4)]
    for older in batches[:2]:  # as landed before `warehouse_code` existed
        table = pq.read_table(older.path)
        pq.write_table(table.drop_columns(["warehouse_code"]), older.path)
    key = ["_batch_id", "sku"]
    before = zone.landed("erp", "stock").collect().sort(key)

    done = compact_batches(zone, "erp", "stock", now=T0 + timedelta(hours=3)).merged

    assert sorted(c.replaced for c in done) == sorted([tuple(b.batch_id for b in batches[:2]),
                                                       tuple(b.batch_id for b in batches[2:])])
    by_columns = {("warehouse_code" in pq.read_schema(c.path).names): c for c in done}
    assert set(by_columns) == {True, False}
    assert pl.read_parquet(by_columns[True].path).get_column("warehouse_code").null_count() == 0
    assert zone.landed("erp", "stock").collect().sort(key).equals(before)
