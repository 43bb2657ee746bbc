"""A landing zone of N order lines for the warehouse and dashboard benchmarks (bench only, DECISIONS.md D70).

Going through HTTP ingestion at 10M order lines would take hours (the sandbox generates ~1M orders in ~90 s,
and the malls' APIs pace ingestion), so the landing is built in two steps:

1. **Base**: a sandbox world (`start_world`, a year of history on the shop and the three malls, the ERP, the
   inbox file drops) landed by the product's own connectors over real HTTP (`ingestion.ingest` for every
   source/entity; the sandbox's rate limits raised). Every shape is therefore exactly what lands today.
2. **Copies**: each channel's landed orders are copied k−1 times with new keys (`<id>-c<n>` on the order id
   and on nested line ids that are unique per channel; everything else — customers, SKUs, prices, statuses,
   timestamps, `_raw` — is the base order's), and written through `LandingZone.write_batch` with the product's
   landed schema (`ingestion.schemas` / `ingestion.yahoo`), which casts strictly: a copy that did not fit the
   landed schema would fail here, not in dbt. Copies keep their base order's timestamps, so the daily
   figures scale by k; the ERP, listings, stock, customers and file sources stay the base world's.

The result is cached under `var/bench/landing-<lines>-s<seed>/` (a `complete.json` marks a finished build), so
repeated `make bench` runs reuse it. `python -m bench.big_landing --order-lines 100000` builds one by hand.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from ichigen.config import PROJECT_ROOT

BENCH_VAR = PROJECT_ROOT / "var" / "bench"
DEFAULT_SEED = 20
# Base world: a year of history. Per base order day the shop takes `orders_per_day` orders and the malls
# ~2.9× that together (sandbox volumes), ~1.9 lines an order.
BASE_WORLD = {"skus": 2000, "customers": 20000, "history_days": 365, "orders_per_day": 12}
COPY_MODE = "bench-copy"  # `mode` in the metadata of a copy batch (a rerun removes unfinished copies)
BATCH_LINES = 600_000  # order lines per written copy batch (memory of one polars frame with its `_raw`)


@dataclass(frozen=True)
class OrderEntity:
    """Where a channel keeps its order key and its nested lines, for making copies with new keys."""

    source: str
    key: str
    lines: str  # the list<struct> column
    line_ids: tuple[str, ...]  # string ids inside a line that must be unique across the channel
    also_suffix: tuple[str, ...] = ()  # other order-level string columns to keep unique per copy


ORDER_ENTITIES = (
    OrderEntity("shopify", "order_id", "line_items", ("line_item_id",), ("order_name",)),
    OrderEntity("rakuten", "order_number", "items", ()),
    OrderEntity("amazon", "order_id", "order_items", ("order_item_id",)),
    OrderEntity("yahoo", "order_id", "items", ()),
)


def landed_schema(source: str, entity: str):
    from ingestion import yahoo
    from ingestion.schemas import SCHEMAS

    return yahoo.SCHEMAS[entity] if source == "yahoo" else SCHEMAS[(source, entity)]


def cache_dir(order_lines: int, seed: int = DEFAULT_SEED) -> Path:
    return BENCH_VAR / f"landing-{order_lines}-s{seed}"


def label(order_lines: int) -> str:
    """10000000 → "10m", 250000 → "250k" (benchmark names carry the scale they were measured at)."""
    for unit, size in (("m", 1_000_000), ("k", 1_000)):
        if order_lines >= size and order_lines % size == 0:
            return f"{order_lines // size}{unit}"
    return str(order_lines)


def is_cached(order_lines: int, seed: int = DEFAULT_SEED) -> bool:
    """Whether the landing for `order_lines` lines is complete in the cache."""
    return (cache_dir(order_lines, seed) / "complete.json").exists()


def ensure_landing(order_lines: int, seed: int = DEFAULT_SEED, log=print) -> tuple[Path, dict]:
    """The landing root for `order_lines` lines (built unless cached) and its manifest."""
    root = cache_dir(order_lines, seed)
    done = root / "complete.json"
    if is_cached(order_lines, seed):
        return root / "landing", json.loads(done.read_text(encoding="utf-8"))
    started = time.perf_counter()
    base_done = root / "base.json"
    if base_done.exists():  # the base world landed; only the copies were unfinished
        base = json.loads(base_done.read_text(encoding="utf-8"))
        _remove_copies(root / "landing")
    else:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        base = land_base(root, seed, log)
        base_done.write_text(json.dumps(base, indent=2), encoding="utf-8")
    copies = write_copies(root / "landing", order_lines, base, log)
    manifest = {"order_lines_target": order_lines, "seed": seed, "base_world": BASE_WORLD, **base, **copies,
                "built_s": round(time.perf_counter() - started, 1), "built_at": datetime.now(UTC).isoformat()}
    done.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return root / "landing", manifest


def land_base(root: Path, seed: int, log) -> dict:
    """The base world landed by every connector over real HTTP, as `ichigen once` lands it."""
    import ingestion
    from ichigen.config import load_config
    from ingestion.landing import LandingZone
    from ingestion.ratelimit import reset_channel_limiters
    from sandbox import start_world
    from sandbox.amazon import AmazonSettings
    from sandbox.rakuten import RakutenSettings

    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    with start_world(data_dir=root / "sandbox", seed=seed, port=0, restore_rate=100_000.0, now=now,
                     yahoo_requests_per_second=2000.0, rakuten=RakutenSettings(requests_per_second=2000.0),
                     amazon_settings=AmazonSettings(rate_scale=2000.0), inbox_history_days=2,
                     **BASE_WORLD) as world:
        generated_s = time.perf_counter() - started
        config = load_config().with_overrides(**{
            "base_dir": str(root),
            "paths.landing": "landing",
            "paths.inbox": str(world.inbox),
            "channels.shopify.base_url": world.shopify_url,
            "channels.shopify.requests_per_second": 1000.0,
            "channels.shopify.backfill_start": "2020-01-01T00:00:00Z",
            "channels.rakuten.base_url": world.rakuten_url,
            "channels.rakuten.requests_per_second": 1000.0,
            "channels.rakuten.backfill_start": "2020-01-01T00:00:00Z",
            "channels.amazon.base_url": world.amazon_url,
            "channels.amazon.token_url": f"{world.amazon_url}/auth/o2/token",
            "channels.amazon.rate_scale": 2000.0,
            "channels.amazon.requests_per_second": 1000.0,
            "channels.amazon.backfill_start": "2020-01-01T00:00:00Z",
            "channels.yahoo.enabled": True,
            "channels.yahoo.base_url": world.yahoo_url,
            "channels.yahoo.requests_per_second": 1000.0,
            "channels.yahoo.backfill_start": "2020-01-01T00:00:00Z",
            "erp.kind": "sqlite",
            "erp.sqlite_path": str(world.erp_sqlite_path),
            "files.settle_seconds": 0.0,
            "files.max_files_per_run": 10_000,
        })
        landing = LandingZone(config.landing_dir)
        landed: dict[str, int] = {}
        reset_channel_limiters()
        try:
            for source, entities in ingestion.ENTITIES.items():
                for entity in entities:
                    t0 = time.perf_counter()
                    result = ingestion.ingest(config, source, entity, landing=landing)
                    landed[f"{source}/{entity}"] = result.rows_landed
                    log(f"  base {source}/{entity}: {result.rows_landed:,} rows in {time.perf_counter() - t0:.1f} s")
        finally:
            reset_channel_limiters()
    return {"base_landed": landed, "base_generate_s": round(generated_s, 1),
            "base_total_s": round(time.perf_counter() - started, 1)}


def _remove_copies(landing_root: Path) -> None:
    from ingestion.landing import LandingZone

    landing = LandingZone(landing_root)
    for spec in ORDER_ENTITIES:
        for path in landing.batch_files(spec.source, "orders"):
            if landing.batch_metadata(path).get("mode") == COPY_MODE:
                path.unlink()


def _copy_sql(spec: OrderEntity, columns: dict, files: list[str], first: int, last: int) -> str:
    """Copies `first`..`last` of every landed order of `spec` with `-c<n>` keys (a copy's order key can never
    equal a base key or another copy's: base keys have no `-c<n>` ending). Built from the landed schema, so a
    new landed column is carried over without touching this."""
    fields = []
    for name in (f.name for f in columns[spec.lines].inner.fields):
        value = f"x.{name} || '-c' || c.n" if name in spec.line_ids else f"x.{name}"
        fields.append(f"{name} := {value}")
    select = []
    for name in columns:
        if name == spec.key or name in spec.also_suffix:
            select.append(f"o.{name} || '-c' || c.n as {name}")
        elif name == spec.lines:
            select.append(f"list_transform(o.{name}, lambda x: struct_pack({', '.join(fields)})) as {name}")
        else:
            select.append(f"o.{name}")
    file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return (f"select {', '.join(select)}, o._raw from read_parquet([{file_list}], union_by_name=true) o "
            f"cross join (select range::varchar as n from range({first}, {last + 1})) c")


def write_copy_batch(landing, con, spec: OrderEntity, files: list[str], first: int, last: int,
                     fetched_at: datetime):
    """Copies `first`..`last` of the orders in `files`, landed as one batch through the product's writer."""
    schema = landed_schema(spec.source, "orders")
    frame = con.sql(_copy_sql(spec, schema.columns, files, first, last)).pl()
    return landing.write_batch(spec.source, "orders", frame, schema=schema.columns, cursor_field=schema.cursor_field,
                               fetched_at=fetched_at, mode=COPY_MODE)


def write_copies(landing_root: Path, order_lines: int, base: dict, log) -> dict:
    """Write copies of every channel's base orders until the four channels hold `order_lines` lines."""
    import duckdb

    from ingestion.landing import LandingZone

    landing = LandingZone(landing_root)
    con = duckdb.connect()
    base_lines: dict[str, int] = {}
    base_orders: dict[str, int] = {}
    files: dict[str, list[str]] = {}
    for spec in ORDER_ENTITIES:
        files[spec.source] = [str(p) for p in landing.batch_files(spec.source, "orders")]
        if not files[spec.source]:
            raise RuntimeError(f"the base world landed no {spec.source} orders")
        got = con.execute(f"select count(*), sum(len({spec.lines})) from read_parquet(?, union_by_name=true)",
                          [files[spec.source]]).fetchall()[0]
        base_orders[spec.source], base_lines[spec.source] = int(got[0]), int(got[1] or 0)
    per_copy = sum(base_lines.values())
    copies = max(1, math.ceil(order_lines / per_copy))  # copy 0 is the base itself
    log(f"  base: {per_copy:,} order lines in {sum(base_orders.values()):,} landed orders; {copies} copies")
    started = time.perf_counter()
    fetched = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    batches = 0
    for spec in ORDER_ENTITIES:
        per_batch = max(1, BATCH_LINES // max(1, base_lines[spec.source]))
        for first in range(1, copies, per_batch):
            last = min(copies - 1, first + per_batch - 1)
            write_copy_batch(landing, con, spec, files[spec.source], first, last,
                             fetched + timedelta(seconds=batches))
            batches += 1
        log(f"  copies of {spec.source}/orders written ({time.perf_counter() - started:.0f} s so far)")
    total_lines = per_copy * copies
    return {"copies": copies, "base_order_lines": base_lines, "base_orders": base_orders,
            "order_lines": total_lines, "orders": sum(base_orders.values()) * copies, "copy_batches": batches,
            "copies_s": round(time.perf_counter() - started, 1)}


def _main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.big_landing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--order-lines", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    root, manifest = ensure_landing(args.order_lines, args.seed)
    print(json.dumps({"landing": str(root), **manifest}, indent=2))


if __name__ == "__main__":
    pl.Config.set_tbl_rows(5)
    _main()
