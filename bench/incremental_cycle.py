"""incremental_cycle_s (target < 15 s): 5 minutes of new orders → published copy, as issue #6 defines the cycle —
the time from the start of the Dagster `full_cycle` job (ingest → dbt build → publish → reverse sync) to the end
of its publish step; incremental_cycle_with_pushes_s (no target) the same run to its end, pushes and ERP intake
included; full_cycle_first_s (no target) the first cycle. Against a sandbox world over real HTTP, as
`ichigen once` runs it.

A modest world (300 SKUs, one day at 1,440 shop orders/day, ≈ 5k orders with the malls) is served at Shopify
Plus's restore rate (`restore_rate=1000`). The day is sized so the first backfill's Amazon searchOrders pages
fit the operation's burst (20 calls; the sandbox keeps Amazon's real 1 call per 180 s restore, so a larger
first backfill waits minutes for tokens). The first cycle backfills everything; then 10 new orders (~5
minutes at a busy 2,880 orders/day) are placed and due status changes applied, and the second cycle is timed.
The configuration is the project's own (`ichigen.toml`, incl. the Shopify client's request rate) with every path
in tmp, as tests/e2e/test_full_cycle.py does.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench import Result, Scale

NAME = "incremental_cycle_s"
WITH_PUSHES = "incremental_cycle_with_pushes_s"
FIRST = "full_cycle_first_s"
SIZES = {
    "full": {"world": {"skus": 300, "customers": 2000, "history_days": 1, "orders_per_day": 1440},
             "new_orders": 10},
    "quick": {"world": {"skus": 30, "customers": 60, "history_days": 2, "orders_per_day": 25}, "new_orders": 2},
}
TOKEN = "shpat_sandbox"


def _config(base: Path, world):
    from ichigen.config import load_config

    return load_config().with_overrides(**{
        "base_dir": str(base),
        "paths.landing": "landing",
        "paths.warehouse": "warehouse/warehouse.duckdb",
        "paths.serving": "serving/ichigen.duckdb",
        "paths.push_log": "push_log",
        "paths.dagster_home": "dagster",
        "paths.sandbox": "sandbox",
        "channels.shopify.base_url": world.shopify_url,
        "channels.shopify.access_token": TOKEN,
        "channels.rakuten.base_url": world.rakuten_url,
        "channels.amazon.base_url": world.amazon_url,
        "channels.amazon.token_url": f"{world.amazon_url}/auth/o2/token",
        "channels.amazon.backfill_start": "2020-01-01T00:00:00Z",
        "erp.kind": "sqlite",
        "erp.sqlite_path": str(world.erp_sqlite_path),
        "channels.shopify.backfill_start": "2020-01-01T00:00:00Z",
        "guard_rails.max_zeroed_fraction": 1.0,
    })


def _timed_cycle(config) -> tuple[float, object, dict[str, float]]:
    """One `run_full_cycle`: (wall seconds, summary, seconds per Dagster step, slowest first)."""
    import dagster as dg

    from ichigen.cycle import run_full_cycle

    instance = dg.DagsterInstance.ephemeral()
    started_at = time.time()
    start = time.perf_counter()
    summary = run_full_cycle(config, instance=instance)
    seconds = time.perf_counter() - start
    steps: dict[str, float] = {}
    dbt: dict[str, object] = {}
    published_s = None
    for run_record in instance.get_runs(limit=1):
        for stat in instance.get_run_step_stats(run_record.run_id):
            if stat.start_time and stat.end_time:
                steps[stat.step_key] = round(stat.end_time - stat.start_time, 2)
                if stat.step_key == "serving_copy":
                    published_s = round(stat.end_time - started_at, 2)
        dbt = _dbt_timings(run_record.run_id)
    return seconds, summary, {"steps": dict(sorted(steps.items(), key=lambda kv: -kv[1])), "dbt": dbt,
                              "published_s": published_s}


def _dbt_timings(run_id: str) -> dict[str, object]:
    """dbt's own run_results.json of the cycle's build (dagster-dbt's per-invocation target folder): dbt's
    elapsed time and, per resource type, how many nodes and their summed execution seconds (threads overlap)."""
    import json
    from collections import defaultdict

    from ichigen.warehouse import DBT_PROJECT_DIR

    found = sorted((DBT_PROJECT_DIR / "target").glob(f"*-{run_id[:7]}-*/run_results.json"))
    if not found:
        return {}
    results = json.loads(found[-1].read_text(encoding="utf-8"))
    by_type: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for node in results.get("results", []):
        entry = by_type[node["unique_id"].split(".")[0]]
        entry[0] += 1
        entry[1] = round(entry[1] + node.get("execution_time", 0.0), 2)
    return {"elapsed_s": round(results.get("elapsed_time", 0.0), 2), "by_type": dict(by_type)}


def _top(timings: dict, n: int = 4) -> str:
    text = ", ".join(f"{k} {v:.1f} s" for k, v in list(timings["steps"].items())[:n])
    dbt = timings.get("dbt") or {}
    if dbt:
        parts = ", ".join(f"{count} {kind}s {secs:.1f} s" for kind, (count, secs) in dbt["by_type"].items())
        text += f" (dbt's own elapsed {dbt['elapsed_s']:.1f} s; node time: {parts})"
    return text


def run(scale: Scale) -> list[Result]:
    from sandbox import start_world

    size = SIZES[scale]
    base = Path(tempfile.mkdtemp(prefix="ichigen-bench-cycle-"))
    try:
        with start_world(data_dir=base / "sandbox", seed=11, port=0, access_token=TOKEN, restore_rate=1000.0,
                         **size["world"]) as world:
            config = _config(base, world)
            orders_before = len(world.world.orders)

            first_s, first, first_steps = _timed_cycle(config)
            if not first.success:
                raise RuntimeError(f"first cycle failed: {first.failure}")

            placed = world.world.place_orders(size["new_orders"])
            moved = world.world.advance()

            second_s, second, second_steps = _timed_cycle(config)
            if not second.success:
                raise RuntimeError(f"incremental cycle failed: {second.failure}")
            landed_orders = second.landed.get("shopify/orders", (0, 0))[0]
            if landed_orders < len(placed):
                raise RuntimeError(f"the incremental cycle landed {landed_orders} orders; {len(placed)} were placed")
    finally:
        shutil.rmtree(base, ignore_errors=True)

    slowest_assets = sorted(second.seconds.items(), key=lambda kv: -kv[1])
    first_landed = {k: v[0] for k, v in first.landed.items()}
    second_landed = {k: v[0] for k, v in second.landed.items()}
    details = {"world": size["world"], "orders_in_world": orders_before, "first_landed": first_landed,
               "second_landed": second_landed, "new_orders": len(placed), "orders_moved_on": len(moved),
               "models_built": second.models_built, "tests_passed": second.tests_passed,
               "second_pushes": second.pushes,
               "first_timings": first_steps, "second_timings": second_steps,
               "second_seconds_per_asset": dict(slowest_assets)}
    published_s = second_steps["published_s"]
    if published_s is None:
        raise RuntimeError("the incremental cycle did not publish a serving copy")
    return [
        Result(NAME, published_s, "s", ("<", 15.0),
               notes=f"from the cycle's start to the published serving copy; {len(placed)} new orders (+{len(moved)} status changes); landed "
                     + ", ".join(f"{k} {v:,}" for k, v in second_landed.items())
                     + f"; {second.models_built} models, {second.tests_passed} tests; slowest steps: {_top(second_steps)}"
                     + "; slowest assets in them: " + ", ".join(
                         f"{k} {v:.1f} s" for k, v in slowest_assets[:6]),
               details=details),
        Result(WITH_PUSHES, second_s, "s", None,
               notes="the same cycle to its end: stock and price pushes to every channel and the ERP order intake "
                     "after the publish", details=details),
        Result(FIRST, first_s, "s", None,
               notes=f"backfill of {orders_before:,} orders, {size['world']['skus']} SKUs; "
            f"slowest steps: {_top(first_steps)}", details=details),
    ]
