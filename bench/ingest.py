"""ingest_rows_per_s and ingest_ratio_vs_dlt: Shopify orders pages → landed Parquet, ichigen vs dlt.

Input: real Admin GraphQL answers to ingestion's own orders query (`ingestion.shopify.ORDERS_QUERY`, the page
size ingestion computes), answered by the sandbox's `ShopifyAPI.handle` over a generated world and serialised
as the sandbox server sends them (compact UTF-8 JSON), kept as bytes — what `Fetch.texts()` hands the mapper
(the response body as received). The recorded pages are repeated with order, line-item ids and order names
shifted per copy (ids stay unique) until there are ≥ 100k orders.

A row is one order: one landed row of `shopify/orders`, which carries its line items as a nested list (≈ 1.7
lines per order in this world; the count is in the notes). rows/s = orders / seconds on both sides; dlt's child-table rows (line items, gateway
names) are reported in the notes, not counted.

(a) ichigen: `ichigen_land` — exactly what `ingestion.shopify.ingest(config, "orders")` does with the pages
    once they are fetched: `map_page_texts` (`ingestion.columnar`: the native scanner of `ingestion.pagescan`
    types every node in one pass when all pages are within its fast path, as the sandbox's are; else DuckDB
    parses, validates and types them, bad nodes → quarantine) and `land_and_report` (quarantine file, then the
    batch: zstd Parquet, fsync, atomic rename), one batch per ingest run's page bound (`max_pages`).
(b) dlt: a pipeline fed the same parsed pages (a resource yielding each page's order nodes), destination
    `filesystem` with a local bucket_url in tmp, `loader_file_format="parquet"`; timed over `pipeline.run`
    (extract → normalize → load). dlt gets its pages already parsed (json.loads outside its clock);
    ichigen's clock includes parsing the text.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import Result, Scale

NAME = "ingest_rows_per_s"
RATIO = "ingest_ratio_vs_dlt"
ROWS_TARGET = 200_000.0
RATIO_TARGET = 10.0
SIZES = {
    "full": {"world": {"skus": 500, "customers": 3000, "history_days": 10, "orders_per_day": 300},
             "record_pages": 200, "orders": 100_000, "repeats": 3, "time_budget_s": 90.0},
    "quick": {"world": {"skus": 50, "customers": 100, "history_days": 3, "orders_per_day": 40},
              "record_pages": 5, "orders": 600, "repeats": 1, "time_budget_s": 20.0},
}
ID_PATTERN = re.compile(r'(gid://shopify/(?:Order|LineItem)/)(\d+)|("name":"#)(\d+)')
TOKEN = "shpat_bench"


def record_pages(scale: Scale) -> list[str]:
    """Raw page texts of ingestion's orders query over a sandbox world (no HTTP: ShopifyAPI.handle)."""
    from ichigen.config import load_config
    from ingestion.shopify import ENTITY_SPECS, ORDERS_QUERY, page_size
    from sandbox.shopify import ShopifyAPI
    from sandbox.world import World

    size = SIZES[scale]
    world = World.generate(7, now=datetime(2026, 11, 23, tzinfo=UTC), **size["world"])
    api = ShopifyAPI(world, access_token=TOKEN, restore_rate=1e9)
    variables = {"first": page_size("orders", load_config()), "after": None, "query": None,
                 **dict(ENTITY_SPECS["orders"].fixed_variables)}
    pages: list[str] = []
    for _ in range(size["record_pages"]):
        status, body = api.handle(TOKEN, {"query": ORDERS_QUERY, "variables": variables})
        if status != 200 or body.get("errors"):
            raise RuntimeError(f"sandbox refused the orders query: {status} {str(body)[:500]}")
        # as Starlette's JSONResponse renders it (what the client receives)
        pages.append(json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")))
        info = body["data"]["orders"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        variables = {**variables, "after": info["endCursor"]}
    return pages


def widen(pages: list[str], orders_wanted: int) -> tuple[list[str], int]:
    """Repeat the recorded pages with ids (and order names) shifted per copy until ≥ orders_wanted orders."""
    per_copy = sum(len(json.loads(p)["data"]["orders"]["nodes"]) for p in pages)
    copies = max(1, -(-orders_wanted // per_copy))
    out: list[str] = []
    for k in range(copies):
        if k == 0:
            out.extend(pages)
            continue

        def shift(m: re.Match[str], k: int = k) -> str:
            if m.group(1):
                return f"{m.group(1)}{int(m.group(2)) + k * 10**12}"
            return f"{m.group(3)}{int(m.group(4)) + k * per_copy}"

        out.extend(ID_PATTERN.sub(shift, page) for page in pages)
    return out, per_copy * copies


def ichigen_land(pages: list[bytes], root: Path) -> tuple[int, int, list[Path]]:
    """What `ingestion.shopify.ingest(config, "orders")` does with the pages once they are fetched: the page
    texts mapped columnar (`map_page_texts`), then quarantine + one batch per ingest run's page bound."""
    from ingestion.landing import LandingZone, land_and_report
    from ingestion.shopify import ENTITY_SPECS, map_page_texts

    spec = ENTITY_SPECS["orders"]
    landing = LandingZone(root)
    landed = quarantined = 0
    files: list[Path] = []
    for start in range(0, len(pages), spec.max_pages):  # one batch per ingest run (its page bound)
        rows, bad = map_page_texts(spec, pages[start:start + spec.max_pages])
        result = land_and_report(landing, spec.schema, rows, bad, fetched_at=datetime.now(UTC), since=None)
        landed += result.rows_landed
        quarantined += result.rows_quarantined
        if result.path:
            files.append(result.path)
    return landed, quarantined, files


def dlt_land(bodies: list[dict[str, Any]], root: Path) -> tuple[float, float, dict[str, int]]:
    """dlt pipeline over the same parsed pages → Parquet on the local filesystem. Returns (seconds, CPU seconds
    of this process, rows per table as dlt reports them)."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DLT_TELEMETRY", "false")
    import dlt

    @dlt.resource(name="orders", write_disposition="append")
    def orders():
        for body in bodies:
            yield body["data"]["orders"]["nodes"]

    bucket = root / "bucket"
    bucket.mkdir(parents=True, exist_ok=True)
    pipeline = dlt.pipeline(pipeline_name="bench_orders", pipelines_dir=str(root / "pipelines"),
                            destination=dlt.destinations.filesystem(bucket_url=bucket.as_uri()),
                            dataset_name="shopify")
    start, start_cpu = time.perf_counter(), time.process_time()
    info = pipeline.run(orders(), loader_file_format="parquet")
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    info.raise_on_failed_jobs()
    counts = dict(pipeline.last_trace.last_normalize_info.row_counts)
    return seconds, cpu, {k: int(v) for k, v in counts.items() if not k.startswith("_dlt")}


def run(scale: Scale) -> list[Result]:
    size = SIZES[scale]
    recorded = record_pages(scale)
    texts, orders = widen(recorded, size["orders"])
    pages = [text.encode() for text in texts]  # the response bodies as the client receives them
    del texts
    work = Path(tempfile.mkdtemp(prefix="ichigen-bench-ingest-"))
    try:
        # (a) ichigen, repeated (bounded in count and time), fresh landing root each time
        runs: list[float] = []
        cpu: list[float] = []  # this process's CPU seconds (every thread): a reading less bent by other jobs
        budget_end = time.perf_counter() + size["time_budget_s"]
        landed = quarantined = 0
        for i in range(size["repeats"]):
            root = work / f"ichigen-{i}"
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            landed, quarantined, files = ichigen_land(pages, root)
            runs.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            if landed != orders:
                raise RuntimeError(f"ichigen landed {landed} of {orders} orders ({quarantined} quarantined)")
            shutil.rmtree(root)
            if time.perf_counter() > budget_end:
                break
        ichigen_s = statistics.median(runs)
        ichigen_rps = orders / ichigen_s

        # (b) dlt over the same pages, parsed before its clock starts
        bodies = [json.loads(p) for p in pages]
        lines = sum(len(node["lineItems"]["nodes"]) for body in bodies for node in body["data"]["orders"]["nodes"])
        gc.collect()
        dlt_s, dlt_cpu, dlt_rows = dlt_land(bodies, work / "dlt")
        if dlt_rows.get("orders") != orders:
            raise RuntimeError(f"dlt loaded {dlt_rows.get('orders')} orders, expected {orders}")
        dlt_rps = orders / dlt_s
        del bodies
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from importlib.metadata import version
    peer = f"dlt {version('dlt')} (filesystem, parquet)"
    details = {"orders": orders, "line_items": lines, "pages": len(pages), "recorded_pages": len(recorded),
               "ichigen_runs_s": runs, "ichigen_cpu_s": cpu, "dlt_s": dlt_s, "dlt_cpu_s": dlt_cpu,
               "dlt_row_counts": dlt_rows}
    return [
        Result(NAME, ichigen_rps, "rows/s", (">=", ROWS_TARGET), peer, dlt_rps,
               notes=f"{orders:,} orders ({lines:,} line items, nested) in {len(pages):,} pages; a row is an "
                     f"order; median of {len(runs)} run(s), {ichigen_s:.2f} s incl. parsing the JSON text",
               details=details),
        Result(RATIO, ichigen_rps / dlt_rps, "×", (">=", RATIO_TARGET), peer, dlt_rps,
               notes=f"dlt took {dlt_s:.2f} s for the same orders "
                     f"(+{sum(v for k, v in dlt_rows.items() if k != 'orders'):,} child-table rows)",
               details=details),
    ]
