"""The `compact_landing` job and its schedule (DECISIONS.md D161): in the definitions, on the configured cron, and
run in-process against a landing zone in tmp, with what it merged as metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from ingestion.landing import LandingZone
from ingestion.landing_lock import read_lock
from ingestion.schemas import ERP_STOCK
from ingestion.webhooks import WebhookEventLog, event_row
from orchestration.compaction import COMPACTION_JOB
from orchestration.definitions import build_definitions


def land_events(zone: LandingZone, count: int, received: datetime) -> None:
    events = WebhookEventLog(zone)
    for n in range(count):
        events.land(event_row({"X-Shopify-Webhook-Id": f"w{n}", "X-Shopify-Topic": "orders/create"},
                              b'{"id": %d}' % n, received + timedelta(seconds=n)))


def land_stock(zone: LandingZone, count: int, fetched: datetime) -> None:
    for n in range(count):
        row = {"sku": f"SKU-{n}", "warehouse_code": "TKY", "on_hand": n, "updated_at": fetched, "_raw": "{}"}
        zone.write_batch("erp", "stock", [row], schema=ERP_STOCK.columns, cursor_field="updated_at",
                         fetched_at=fetched + timedelta(seconds=n))


def run_job(config) -> dg.ExecuteInProcessResult:
    defs = build_definitions(config)
    return defs.resolve_job_def(COMPACTION_JOB).execute_in_process(instance=dg.DagsterInstance.ephemeral())


def op_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in event.event_specific_data.metadata.items()}


def test_the_job_is_scheduled_on_the_configured_cron(tmp_config):
    config = tmp_config.with_overrides(**{"schedules.compaction": "41 */2 * * *"})
    defs = build_definitions(config)
    (schedule,) = [s for s in defs.schedules if s.job_name == COMPACTION_JOB]
    assert schedule.cron_schedule == "41 */2 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    full_cycle = defs.resolve_job_def("full_cycle")
    assert "merge_small_batches" not in {node.name for node in full_cycle.nodes}, "the full cycle does not compact"
    assert [node.name for node in defs.resolve_job_def(COMPACTION_JOB).nodes] == ["merge_small_batches"]


def test_the_job_merges_old_batches_and_records_what_it_merged(tmp_config):
    zone = LandingZone(tmp_config.landing_dir)
    land_events(zone, 6, datetime.now(UTC) - timedelta(hours=2))
    WebhookEventLog(zone).land(event_row({"X-Shopify-Webhook-Id": "new", "X-Shopify-Topic": "orders/create"},
                                         b'{"id": 99}', datetime.now(UTC)))
    land_stock(zone, 3, datetime.now(UTC) - timedelta(hours=3))
    before = sorted(zone.select("shopify", "webhook_events", "webhook_id")["webhook_id"])

    result = run_job(tmp_config)

    assert result.success
    meta = op_metadata(result)
    assert meta["batches_merged"] == 6 + 3 and meta["batches_written"] == 2 and meta["files_removed"] == 6 + 3
    assert meta["removal"] == "done" and meta["originals_pending"] == 0
    assert meta["per_entity"] == {"shopify/webhook_events": {"batches_merged": 6, "batches_written": 1, "rows": 6},
                                  "erp/stock": {"batches_merged": 3, "batches_written": 1, "rows": 3}}
    # the landed entity's asset shows the compaction; webhook events have no asset of their own
    (observation,) = [e.event_specific_data.asset_observation for e in result.all_events
                      if e.event_type_value == "ASSET_OBSERVATION"]
    assert observation.asset_key == dg.AssetKey(["erp", "stock"])
    assert observation.metadata["compacted"].value == {"batches_merged": 3, "batches_written": 1, "rows": 3}
    assert len(zone.batch_files("shopify", "webhook_events")) == 2, "the merged batch and the recent one"
    assert sorted(zone.select("shopify", "webhook_events", "webhook_id")["webhook_id"]) == before

    again = op_metadata(run_job(tmp_config))
    assert again["batches_merged"] == 0 and again["files_removed"] == 0


def test_a_reader_holding_the_lock_makes_the_job_leave_the_removal_for_the_next_run(tmp_config):
    config = tmp_config.with_overrides(**{"compaction.lock_wait_seconds": 0.3})
    zone = LandingZone(config.landing_dir)
    land_events(zone, 4, datetime.now(UTC) - timedelta(hours=2))
    with read_lock(config.landing_dir, "a dbt build"):
        held = run_job(config)
    assert held.success, "a skipped removal is not a failure"
    meta = op_metadata(held)
    assert meta["batches_merged"] == 4 and meta["originals_pending"] == 4 and meta["removal"].startswith("skipped")

    healed = op_metadata(run_job(config))
    assert healed["leftovers_removed"] == 4 and healed["batches_merged"] == 0
    assert len(zone.batch_files("shopify", "webhook_events")) == 1
