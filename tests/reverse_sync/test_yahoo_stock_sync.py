"""Stock sync to the sandbox Yahoo!ショッピング store over real HTTP, with targets published by hand (no dbt).

GIVEN the store's stock landed by ingestion and a published serving copy holding targets and the listing map
WHEN reverse sync plans and applies (setStock deltas)
THEN the store converges, a second apply pushes nothing, a dry run touches nothing, a sale between our read and
     our push stays sold, an applied call whose answer is lost is not applied twice, and a call whose outcome is
     unknown blocks its codes until a fresh stock read.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sync_testkit import publish_stock_targets, targets_from

from ichigen.config import Config
from ingestion import yahoo
from ingestion.ratelimit import reset_channel_limiters
from ingestion.throttle import reset_shared_throttles
from reverse_sync.push_log import read_push_log
from reverse_sync.stock import PUSHERS, plan_channel_stock, sync_stock
from sandbox.server import serve_yahoo
from sandbox.world import World
from sandbox.yahoo import item_code

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
def store():
    reset_channel_limiters()
    reset_shared_throttles()
    world = World.generate(seed=5, skus=40, customers=10, history_days=2, orders_per_day=5, now=NOW)
    with serve_yahoo(world, port=0, requests_per_second=300.0, burst=30) as handle:
        yield handle, world
    reset_channel_limiters()
    reset_shared_throttles()


@pytest.fixture
def config(tmp_config: Config, store) -> Config:
    handle, _ = store
    config = tmp_config.with_overrides(**{
        "channels.yahoo.enabled": True, "channels.yahoo.base_url": handle.url,
        "channels.yahoo.requests_per_second": 200.0, "guard_rails.max_zeroed_fraction": 0.5})
    assert yahoo.ingest(config, "stock").rows_landed > 0
    return config


def shown(handle) -> dict[str, int]:
    rows = httpx.get(f"{handle.url}/_sandbox/yahoo/stock", timeout=10).json()
    return {row["sku"]: row["quantity"] for row in rows if row["sku"]}


def publish_targets(config: Config, world: World, targets: dict[str, int]) -> None:
    """A serving copy with what reverse sync reads: the targets and the listing → ERP SKU map."""
    publish_stock_targets(config, "yahoo", targets,
                          [(item_code(s), s.erp_sku) for s in world.mall("yahoo").listings])


def test_apply_converges_and_a_second_apply_pushes_nothing(config, store):
    handle, world = store
    targets = targets_from(shown(handle))
    publish_targets(config, world, targets)

    first = sync_stock(config, "yahoo")

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned > 0 and first.failed == 0
    assert shown(handle) == targets
    second = sync_stock(config, "yahoo")
    assert second.planned == 0 and second.records == []
    log = read_push_log(config.push_log_dir, "yahoo")
    assert log.filter(log["status"] == "applied").height == first.applied


def test_a_dry_run_changes_nothing(config, store):
    handle, world = store
    before = shown(handle)
    publish_targets(config, world, targets_from(before))

    dry = sync_stock(config, "yahoo", dry_run=True)

    assert dry.planned > 0 and {r.status for r in dry.records} == {"dry_run"}
    assert shown(handle) == before
    assert sync_stock(config, "yahoo", dry_run=True).planned == dry.planned


def test_a_sale_between_our_read_and_our_push_is_not_undone(config, store):
    handle, world = store
    before = shown(handle)
    targets = targets_from(before)
    sku = next(s for s, q in sorted(before.items()) if q >= 2 and targets[s] >= 2)
    publish_targets(config, world, targets)
    listing = world.mall_listing_for_sku("yahoo", sku)
    assert world.place_mall_order("yahoo", [(listing.listing_id, 1)]) is not None  # after the landed read

    result = sync_stock(config, "yahoo")

    assert result.failed == 0
    after = shown(handle)
    assert after[sku] == targets[sku] - 1, "the unit sold after our read must stay sold"
    assert all(after[s] == q for s, q in targets.items() if s != sku)


def test_an_applied_call_whose_answer_is_lost_is_not_applied_twice(config, store):
    handle, world = store
    targets = targets_from(shown(handle))
    publish_targets(config, world, targets)
    api = handle.app.state.api
    original, calls = api.set_stock, []

    def applied_then_lost(form):
        calls.append(form)
        original(form)
        raise RuntimeError("connection lost after the store applied the call")  # → HTTP 500

    api.set_stock = applied_then_lost
    result = sync_stock(config, "yahoo")

    assert len(calls) == 1, "an unconfirmed delta is never resent"
    assert result.applied == result.planned > 0  # confirmed by the re-read
    assert shown(handle) == targets


def test_an_unknown_outcome_blocks_its_codes_until_a_fresh_stock_read(config, store):
    handle, world = store
    before = shown(handle)
    targets = targets_from(before)
    publish_targets(config, world, targets)
    api = handle.app.state.api
    original = api.set_stock

    def refused(form):
        raise RuntimeError("the store failed before applying")  # → HTTP 500, nothing applied

    api.set_stock = refused
    first = sync_stock(config, "yahoo")
    assert first.applied == 0 and first.failed == first.planned > 0
    assert shown(handle) == before

    api.set_stock = original
    blocked = sync_stock(config, "yahoo")  # no stock read since the send: nothing may go out
    assert blocked.applied == 0 and {r.status for r in blocked.records} == {"stale"}
    assert shown(handle) == before

    assert yahoo.ingest(config, "stock").rows_landed > 0  # the next cycle's read shows the truth
    settled = sync_stock(config, "yahoo")
    assert settled.applied == settled.planned > 0
    assert shown(handle) == targets


def test_cut_off_answers_are_settled_by_re_reading_never_by_resending(config, store):
    handle, world = store
    targets = targets_from(shown(handle))
    publish_targets(config, world, targets)
    faults = handle.app.state.faults
    # Answers cut after processing, on any call; seed 4 cuts the setStock answer and lets the re-read through.
    faults.configure(rate=0.5, kinds=("truncated",), seed=4)

    result = sync_stock(config, "yahoo")

    assert faults.counts.get("truncated", 0) > 0
    assert result.applied == result.planned > 0, [r.error for r in result.records if r.status != "applied"]
    assert shown(handle) == targets, "a delta applied twice would overshoot"


def test_a_crash_between_the_answer_and_the_push_log_never_sends_the_delta_again(config, store):
    handle, world = store
    targets = targets_from(shown(handle))
    publish_targets(config, world, targets)
    api = handle.app.state.api
    original, calls = api.set_stock, []
    api.set_stock = lambda form: (calls.append(form), original(form))[1]
    plan = plan_channel_stock(config, "yahoo")
    pusher = PUSHERS["yahoo"](config, None)
    pusher.push(plan.run_id, plan.changes, plan.planned_at)  # answered; the process dies before logging
    pusher.client.close()
    assert shown(handle) == targets and len(calls) == 1  # one setStock: no getStock before it either

    rerun = sync_stock(config, "yahoo")  # plans from the landed read again: the same deltas

    assert rerun.planned == len(plan.changes) and {r.status for r in rerun.records} == {"stale"}
    assert len(calls) == 1 and shown(handle) == targets, "a delta must not be applied a second time"
    assert yahoo.ingest(config, "stock").rows_landed > 0  # the next cycle's read shows the truth
    assert sync_stock(config, "yahoo").planned == 0
    assert shown(handle) == targets
