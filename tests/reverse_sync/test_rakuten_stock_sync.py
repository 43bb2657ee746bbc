"""Stock sync to the Rakuten sandbox (Inventory API bulk-upsert, RELATIVE) over real HTTP, with targets and the
listing match published by hand (no dbt here).

GIVEN the mall's stock landed by ingestion and a published serving copy holding targets and the listing match
WHEN reverse sync plans and applies
THEN the mall converges, a second apply pushes nothing, a dry run touches nothing, a sale between our read and
     our push is not undone, and a delta whose answer was lost is never applied twice.
"""

from __future__ import annotations

import httpx
import pytest
from sync_testkit import publish_stock_targets, targets_from

from ichigen.config import Config
from ingestion import ingest, rakuten
from ingestion.ratelimit import reset_channel_limiters
from ingestion.throttle import reset_shared_throttles
from reverse_sync.push_log import read_push_log
from reverse_sync.rakuten import MAX_PER_CALL
from reverse_sync.stock import PUSHERS, plan_channel_stock, sync_stock
from sandbox.server import serve_rakuten
from sandbox.world import World


@pytest.fixture
def mall():
    reset_channel_limiters()
    reset_shared_throttles()
    world = World.generate(seed=6, skus=24, customers=10, history_days=2, orders_per_day=5)
    with serve_rakuten(world, port=0, service_secret="SP_r", license_key="SL_r", requests_per_second=100) as handle:
        handle.world = world
        yield handle


@pytest.fixture
def config(tmp_config: Config, mall) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.rakuten.base_url": mall.url,
        "channels.rakuten.service_secret": "SP_r",
        "channels.rakuten.license_key": "SL_r",
        "channels.rakuten.requests_per_second": 50.0,
        "guard_rails.max_zeroed_fraction": 0.5,
    })
    assert ingest(config, "rakuten", "stock").rows_landed > 0
    return config


def shown(mall) -> dict[str, int]:
    """ERP SKU → quantity the mall shows (matched listings only)."""
    rows = httpx.get(f"{mall.url}/_sandbox/rakuten/stock", timeout=10).json()
    return {row["sku"]: row["quantity"] for row in rows if row["sku"]}


def publish_targets(config: Config, mall, targets: dict[str, int]) -> None:
    """A serving copy with what reverse sync reads (targets + the listing match), through the real publish."""
    publish_stock_targets(config, "rakuten", targets,
                          [(s.listing_id, s.erp_sku) for s in mall.world.mall("rakuten").listings])


def test_apply_converges_and_a_second_apply_pushes_nothing(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)

    first = sync_stock(config, "rakuten")

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned > 0 and first.failed == 0
    assert shown(mall) == targets
    second = sync_stock(config, "rakuten")
    assert second.planned == 0 and second.records == []
    log = read_push_log(config.push_log_dir, "rakuten")
    assert log.filter(log["status"] == "applied").height == first.applied


def test_a_dry_run_touches_nothing(config, mall):
    before = shown(mall)
    publish_targets(config, mall, targets_from(before))

    dry = sync_stock(config, "rakuten", dry_run=True)

    assert dry.planned > 0 and {r.status for r in dry.records} == {"dry_run"}
    assert shown(mall) == before
    assert sync_stock(config, "rakuten", dry_run=True).planned == dry.planned


def sellable_listing(mall, before: dict[str, int], targets: dict[str, int]):
    listing = next(s for s in mall.world.mall("rakuten").listings
                   if s.erp_sku and before[s.erp_sku] >= 2 and targets[s.erp_sku] >= 2)
    return listing


def test_a_sale_between_our_read_and_our_push_is_not_undone(config, mall):
    before = shown(mall)
    targets = targets_from(before)
    listing = sellable_listing(mall, before, targets)
    publish_targets(config, mall, targets)
    # The mall sells one unit after ingestion read it: the plan still believes `before`.
    assert mall.world.place_mall_order("rakuten", [(listing.listing_id, 1)]) is not None

    result = sync_stock(config, "rakuten")

    assert result.failed == 0
    after = shown(mall)
    assert after[listing.erp_sku] == targets[listing.erp_sku] - 1, "the unit sold after our read must stay sold"
    assert {s: q for s, q in after.items() if s != listing.erp_sku} == \
        {s: q for s, q in targets.items() if s != listing.erp_sku}
    # No read before the send (D100): the row logs the plan's read and the target meant; the delta did the rest.
    pushed = next(r for r in result.records if r.sku == listing.erp_sku)
    assert (pushed.old_value, pushed.new_value) == (before[listing.erp_sku], targets[listing.erp_sku])


class LoseUpsertAnswer(httpx.HTTPTransport):
    """The first bulk-upsert's answer is lost: after the mall applied it (`applied=True`) or before it reached
    the mall. `sell` places a sale on the mall between the lost answer and our re-read."""

    def __init__(self, *, applied: bool, sell=None):
        super().__init__()
        self.applied, self.sell = applied, sell
        self.upserts_sent = 0
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != rakuten.BULK_UPSERT_PATH:
            return super().handle_request(request)
        if self.lost:
            self.upserts_sent += 1
            return super().handle_request(request)
        self.lost += 1
        if self.applied:
            self.upserts_sent += 1
            super().handle_request(request).read()
            if self.sell:
                self.sell()
        raise httpx.ReadTimeout("answer lost", request=request)


def client_with(config: Config, transport: httpx.BaseTransport):
    return rakuten.make_client(config, api=rakuten.INVENTORY_API, transport=transport, backoff_base=0.01)


def test_a_delta_whose_answer_was_lost_after_applying_is_not_sent_again(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)
    transport = LoseUpsertAnswer(applied=True)

    result = sync_stock(config, "rakuten", client=client_with(config, transport))

    assert transport.lost == 1 and transport.upserts_sent == 1  # re-read confirmed it: no second send
    assert result.applied == result.planned and shown(mall) == targets
    assert {r.attempt for r in result.records} == {1}


def test_a_delta_lost_before_reaching_the_mall_is_sent_again_once(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)
    transport = LoseUpsertAnswer(applied=False)

    result = sync_stock(config, "rakuten", client=client_with(config, transport))

    assert transport.upserts_sent == 1 and result.applied == result.planned
    assert shown(mall) == targets and {r.attempt for r in result.records} == {2}


def test_an_unconfirmable_delta_is_never_resent_and_the_sale_stays(config, mall):
    before = shown(mall)
    targets = targets_from(before)
    listing = sellable_listing(mall, before, targets)
    publish_targets(config, mall, targets)
    transport = LoseUpsertAnswer(
        applied=True, sell=lambda: mall.world.place_mall_order("rakuten", [(listing.listing_id, 1)]))

    result = sync_stock(config, "rakuten", client=client_with(config, transport))

    assert transport.upserts_sent == 1
    failed = [r for r in result.records if r.status == "failed"]
    assert [r.sku for r in failed] == [listing.erp_sku] and "unconfirmed" in failed[0].error
    after = shown(mall)
    assert after[listing.erp_sku] == targets[listing.erp_sku] - 1  # applied once, the sale kept
    assert {s: q for s, q in after.items() if s != listing.erp_sku} == \
        {s: q for s, q in targets.items() if s != listing.erp_sku}


class CountPaths(httpx.HTTPTransport):
    def __init__(self):
        super().__init__()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_a_push_spends_the_budget_on_bulk_upserts_alone(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)
    transport = CountPaths()

    result = sync_stock(config, "rakuten", client=client_with(config, transport))

    assert result.applied == result.planned > 0 and shown(mall) == targets
    assert transport.paths == [rakuten.BULK_UPSERT_PATH] * -(-result.planned // MAX_PER_CALL)


def test_a_crash_between_the_send_and_the_push_log_never_sends_the_delta_again(config, mall):
    targets = targets_from(shown(mall))
    publish_targets(config, mall, targets)
    plan = plan_channel_stock(config, "rakuten")
    pusher = PUSHERS["rakuten"](config, None)
    pusher.push(plan.run_id, plan.changes, plan.planned_at)  # applied on the mall; the process dies before logging
    pusher.client.close()
    assert shown(mall) == targets

    rerun = sync_stock(config, "rakuten")  # plans from the landed read again: the same deltas

    assert rerun.planned == len(plan.changes) and {r.status for r in rerun.records} == {"stale"}
    assert shown(mall) == targets, "a delta sent before a crash must not be applied a second time"
    assert ingest(config, "rakuten", "stock").rows_landed > 0  # the next cycle's read shows the truth
    assert sync_stock(config, "rakuten").planned == 0
    assert shown(mall) == targets
