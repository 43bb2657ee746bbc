"""`ichigen compact`: the landing zone's small push batches become one batch per entity/date/mode (D82)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from ichigen.cli import app
from ingestion.landing import LandingZone
from ingestion.webhooks import WebhookEventLog, event_row


def test_compact_merges_old_webhook_event_batches_and_a_rerun_changes_nothing(tmp_path: Path):
    config = tmp_path / "ichigen.toml"
    config.write_text('[paths]\nlanding = "landing"\n', encoding="utf-8")
    zone = LandingZone(tmp_path / "landing")
    events = WebhookEventLog(zone)
    old = datetime.now(UTC) - timedelta(hours=2)
    for n in range(4):
        events.land(event_row({"X-Shopify-Webhook-Id": f"w{n}", "X-Shopify-Topic": "orders/create"},
                              b'{"id": %d}' % n, old + timedelta(seconds=n)))

    first = CliRunner().invoke(app, ["compact", "--config", str(config)])
    again = CliRunner().invoke(app, ["compact", "--config", str(config)])

    assert first.exit_code == 0 and "shopify/webhook_events: 4 batches" in first.output, first.output
    assert len(zone.batch_files("shopify", "webhook_events")) == 1
    assert sorted(zone.landed("shopify", "webhook_events").collect().get_column("webhook_id")) == ["w0", "w1", "w2",
                                                                                                   "w3"]
    assert again.exit_code == 0 and "nothing to compact" in again.output
