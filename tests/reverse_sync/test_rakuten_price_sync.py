"""Price sync to the Rakuten sandbox over real HTTP: Items API 2.0 PATCH of variants' standardPrice (D91).

GIVEN the mall's items landed by ingestion (standardPrice per variant) and a published serving copy holding
price targets and the listing match
WHEN reverse sync plans and applies prices
THEN the mall shows the targets (and the next ingest reads them), a second apply pushes nothing, a dry run and
     a refused plan touch nothing, and an item the mall refuses fails alone and is healed by the next cycle.
"""

from __future__ import annotations

import httpx
import pytest
from sync_testkit import MAX_MOVE, publish_price_targets, raised, unlisted

from ichigen.config import Config
from ingestion import ingest
from ingestion.ratelimit import reset_channel_limiters
from ingestion.throttle import reset_shared_throttles
from reverse_sync.prices import rakuten_price_state, sync_prices
from reverse_sync.push_log import read_push_log
from sandbox.rakuten import esa_header
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
    reset_channel_limiters()
    reset_shared_throttles()


@pytest.fixture
def config(tmp_config: Config, mall) -> Config:
    config = tmp_config.with_overrides(**{
        "channels.rakuten.base_url": mall.url,
        "channels.rakuten.service_secret": "SP_r",
        "channels.rakuten.license_key": "SL_r",
        "channels.rakuten.requests_per_second": 50.0,
        "guard_rails.max_price_change_fraction": MAX_MOVE,
    })
    assert ingest(config, "rakuten", "listings").rows_landed > 0
    return config


def prices(mall) -> dict[str, int]:
    """listing_id → the price the mall shows."""
    with mall.world.lock:
        return {s.listing_id: s.price for s in mall.world.mall("rakuten").listings}


def publish(config: Config, mall, targets: dict[str, int]) -> None:
    listings = [(s.listing_id, s.erp_sku) for s in mall.world.mall("rakuten").listings]
    publish_price_targets(config, "rakuten", targets, listings)


def raised_targets(mall) -> dict[str, int]:
    return {s.erp_sku: raised(s.price) for s in mall.world.mall("rakuten").listings if s.erp_sku}


def test_apply_converges_the_next_ingest_sees_it_and_a_second_apply_pushes_nothing(config, mall):
    targets = raised_targets(mall)
    publish(config, mall, targets)

    first = sync_prices(config, "rakuten")

    assert first.verdict.allowed, first.verdict.reasons
    assert first.applied == first.planned > 0 and first.failed == 0
    shown = prices(mall)
    assert all(shown[r.target_ref] == r.new_value == targets[r.sku] for r in first.records)
    assert sync_prices(config, "rakuten").planned == 0
    # The listing read path shows the new price: a fresh ingest lands exactly the targets.
    assert ingest(config, "rakuten", "listings").rows_landed > 0
    landed = dict(rakuten_price_state(config).select("sku", "quantity").iter_rows())
    assert {sku: landed[sku] for sku in targets} == targets
    log = read_push_log(config.push_log_dir, "rakuten")
    assert set(log["field"]) == {"price"} and log.height == first.planned


def test_a_dry_run_changes_nothing(config, mall):
    before = prices(mall)
    publish(config, mall, raised_targets(mall))

    dry = sync_prices(config, "rakuten", dry_run=True)

    assert dry.planned > 0 and {r.status for r in dry.records} == {"dry_run"}
    assert prices(mall) == before
    assert sync_prices(config, "rakuten", dry_run=True).planned == dry.planned


def test_a_move_beyond_the_guard_is_refused_whole(config, mall):
    before = prices(mall)
    targets = raised_targets(mall)
    jumped = sorted(targets)[0]
    targets[jumped] *= 2

    publish(config, mall, targets)
    refused = sync_prices(config, "rakuten")

    assert not refused.verdict.allowed
    assert any("max_price_change_fraction" in r and jumped in r for r in refused.verdict.reasons)
    assert refused.refused == refused.planned > 1 and prices(mall) == before


def test_an_item_the_mall_refuses_fails_alone_and_the_next_cycle_heals_it(config, mall):
    targets = raised_targets(mall)
    publish(config, mall, targets)
    listings = mall.world.mall("rakuten").listings
    gone_item = next(s.parent_code for s in listings if s.erp_sku)
    gone = [s for s in listings if s.parent_code == gone_item]

    with unlisted(mall.world, "rakuten", gone):
        first = sync_prices(config, "rakuten")

    failed = {r.target_ref: r.error for r in first.records if r.status == "failed"}
    assert set(failed) == {s.listing_id for s in gone if s.erp_sku} and first.applied > 0
    assert all("IE0404" in error for error in failed.values())
    log = read_push_log(config.push_log_dir, "rakuten")
    assert log.filter(log["status"] == "failed").height == len(failed)  # one row per refused variant
    healed = sync_prices(config, "rakuten")
    assert healed.planned == healed.applied == len(failed)
    assert all(prices(mall)[ref] == targets[s.erp_sku] for s in gone for ref in [s.listing_id] if s.erp_sku)


def test_a_variant_rms_names_as_wrong_fails_alone_and_the_rest_of_its_item_is_sent_again(config, mall):
    from datetime import UTC, datetime

    from ingestion.rakuten import ITEMS_API, make_client
    from reverse_sync.plan import PlannedChange
    from reverse_sync.rakuten_prices import RakutenPricePusher

    item = next(code for code in {s.parent_code for s in mall.world.mall("rakuten").listings}
                if sum(1 for s in mall.world.mall("rakuten").listings if s.parent_code == code) >= 2)
    variants = [s for s in mall.world.mall("rakuten").listings if s.parent_code == item]
    changes = [PlannedChange("rakuten", "price", s.erp_sku or s.listing_id, s.listing_id, s.price, raised(s.price),
                             "t") for s in variants]
    changes.append(PlannedChange("rakuten", "price", "GHOST", f"{item}:no-such-variant", 1000, 1100, "t"))

    records = RakutenPricePusher(make_client(config, api=ITEMS_API)).push("run-1", changes, datetime.now(UTC))

    status = {r.target_ref: (r.status, r.attempt, r.error) for r in records}
    assert status[f"{item}:no-such-variant"][0] == "failed" and "IE0404" in status[f"{item}:no-such-variant"][2]
    assert all(status[s.listing_id][:2] == ("applied", 2) for s in variants)  # sent again without the ghost
    assert [prices(mall)[c.target_ref] for c in changes[:-1]] == [c.new_value for c in changes[:-1]]


def test_the_sandbox_validates_the_patch_like_rms(mall):
    """Wrong types, unknown variants and unknown items answer RMS's error shape; nothing of them applies."""
    listing = next(s for s in mall.world.mall("rakuten").listings if s.erp_sku)
    before = listing.price
    url = f"{mall.url}/es/2.0/items/manage-numbers/{listing.parent_code}"
    auth = {"Authorization": esa_header("SP_r", "SL_r")}

    as_number = httpx.patch(url, headers=auth, json={"variants": {listing.variant_code: {"standardPrice": 1980}}})
    unknown_variant = httpx.patch(url, headers=auth, json={"variants": {"nope": {"standardPrice": "1980"}}})
    unknown_item = httpx.patch(f"{mall.url}/es/2.0/items/manage-numbers/no-such-item", headers=auth,
                               json={"variants": {"a": {"standardPrice": "1980"}}})
    no_auth = httpx.patch(url, json={"variants": {listing.variant_code: {"standardPrice": "1980"}}})

    assert as_number.status_code == 400
    error = as_number.json()["errors"][0]
    assert error["metadata"]["propertyPath"] == f"variants.{listing.variant_code}.standardPrice"
    assert unknown_variant.status_code == 400 and unknown_item.status_code == 404
    assert unknown_item.json()["errors"][0]["code"] == "IE0404"
    assert no_auth.status_code == 401 and listing.price == before
    ok = httpx.patch(url, headers=auth, json={"variants": {listing.variant_code: {"standardPrice": "1980"}}})
    assert ok.status_code == 204 and listing.price == 1980


def test_the_cli_applies_prices_to_rakuten(config, mall, tmp_path):
    from typer.testing import CliRunner

    from ichigen.cli import app

    targets = raised_targets(mall)
    publish(config, mall, targets)
    toml = tmp_path / "ichigen.toml"
    toml.write_text(
        f'[paths]\nlanding = "{config.landing_dir}"\nserving = "{config.serving_path}"\n'
        f'warehouse = "{config.warehouse_path}"\npush_log = "{config.push_log_dir}"\n'
        f'[channels.rakuten]\nbase_url = "{mall.url}"\nservice_secret = "SP_r"\nlicense_key = "SL_r"\n'
        f'requests_per_second = 50.0\n[guard_rails]\nmax_price_change_fraction = {MAX_MOVE}\n', encoding="utf-8")
    before = prices(mall)

    dry = CliRunner().invoke(app, ["sync", "plan", "--prices", "--channel", "rakuten", "--config", str(toml)])
    assert dry.exit_code == 0, dry.output
    assert prices(mall) == before
    applied = CliRunner().invoke(app, ["sync", "apply", "--prices", "--channel", "rakuten", "--config", str(toml)])

    assert applied.exit_code == 0, applied.output
    assert "rakuten sync summary" in applied.output
    with mall.world.lock:
        assert all(s.price == targets[s.erp_sku] for s in mall.world.mall("rakuten").listings if s.erp_sku)
