"""Amazon ORDER_CHANGE notifications over SQS (moto in server mode on 127.0.0.1), with dropped, duplicated and
delayed notifications; the searchOrders poll as the backstop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ichigen.config import Config
from ingestion import amazon
from ingestion.landing import LandingZone
from sandbox.amazon import AmazonSettings, serve_amazon
from sandbox.amazon_notifications import NotificationFaults
from sandbox.world import World

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


@pytest.fixture
def world() -> World:
    return World.generate(seed=7, skus=24, customers=30, history_days=5, orders_per_day=20, now=NOW)


def start(world, sqs_server, tmp_config: Config, url: str, faults: NotificationFaults, traffic_log=None):
    handle = serve_amazon(world, settings=AmazonSettings(rate_scale=1000.0, sqs_endpoint=sqs_server,
                                                         notification_faults=faults, traffic_log=traffic_log))
    config = tmp_config.with_overrides(**{
        "channels.amazon.base_url": handle.url, "channels.amazon.token_url": f"{handle.url}/auth/o2/token",
        "channels.amazon.rate_scale": 1000.0, "channels.amazon.requests_per_second": 500.0,
        "channels.amazon.backfill_start": "2026-10-01T00:00:00Z",
        "channels.amazon.notifications_queue_url": url, "channels.amazon.sqs_endpoint_url": sqs_server,
    })
    return handle, config


def in_queue(sqs, url) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_notifications_land_then_leave_the_queue_and_the_poll_covers_what_was_dropped(
        world, sqs_server, queue, tmp_config, tmp_path, conformance):
    sqs, url, arn = queue
    faults = NotificationFaults(drop_rate=0.2, duplicate_rate=0.2, delay_rate=0.2, delay_seconds=0.3, seed=4)
    traffic = tmp_path / "amazon.jsonl"
    handle, config = start(world, sqs_server, tmp_config, url, faults, traffic_log=traffic)
    landing = LandingZone(config.landing_dir)
    try:
        with amazon.make_client(config, backoff_base=0.01) as client:
            subscribed = amazon.subscribe_order_changes(client, arn)
            assert subscribed["subscription"]["destinationId"] == subscribed["destination"]["destinationId"]
            with world.lock:
                world.place_mall_orders("amazon", 12, at=NOW + timedelta(minutes=1))
                world.advance(NOW + timedelta(hours=4))
            publisher = handle.api.notifications
            assert publisher.wait_idle(10)
            stats = publisher.stats
            assert stats["dropped"] > 0 and stats["duplicated"] > 0 and stats["delayed"] > 0
            assert in_queue(sqs, url) == stats["published"]

            result = amazon.ingest_notifications(config, landing=landing, client=client, sqs=sqs,
                                                 max_messages=500)

            assert result.events.rows_landed == stats["published"]  # duplicates land too: nothing dropped here
            assert in_queue(sqs, url) == 0  # deleted, after landing
            notified = set(landing.landed("amazon", "notifications").collect()["order_id"])
            assert notified <= {o.order_id for o in world.mall("amazon").orders}
            fetched = result.orders.rows_landed + result.deferred
            assert fetched == len(notified)

            amazon.ingest(config, "orders", landing=landing, client=client)  # the backstop
        orders = landing.landed("amazon", "orders").collect().sort("updated_at", "_fetched_at")
        latest = {r["order_id"]: r for r in orders.unique("order_id", keep="last").iter_rows(named=True)}
        truth = {o.order_id: o for o in world.mall("amazon").orders}
        assert set(latest) == set(truth)
        assert all(int(latest[i]["grand_total"]) == o.total and latest[i]["updated_at"] == o.updated_at
                   for i, o in truth.items())
    finally:
        handle.stop()
    # The full cycle's traffic (LWA, subscriptions, notifications, searchOrders, getOrder) conforms.
    assert "/_sqs/" in traffic.read_text()
    assert "createSubscription" not in conformance(traffic)


def test_messages_stay_in_the_queue_when_landing_fails(world, sqs_server, queue, tmp_config, tmp_path):
    sqs, url, arn = queue
    handle, config = start(world, sqs_server, tmp_config, url, NotificationFaults())
    try:
        with amazon.make_client(config, backoff_base=0.01) as client:
            amazon.subscribe_order_changes(client, arn)
            with world.lock:
                world.place_mall_orders("amazon", 3, at=NOW + timedelta(minutes=1))
            assert handle.api.notifications.wait_idle(10)
            waiting = in_queue(sqs, url)
            assert waiting == 3
            blocked = tmp_path / "not-a-directory"
            blocked.write_text("a file where the landing zone should be")
            with pytest.raises(OSError):
                amazon.ingest_notifications(config, landing=LandingZone(blocked), client=client, sqs=sqs)
            assert in_queue(sqs, url) == waiting  # nothing was deleted before it landed
    finally:
        handle.stop()


def test_a_second_subscription_is_a_conflict(world, sqs_server, queue, tmp_config):
    from ingestion.errors import ChannelResponseError

    _sqs, url, arn = queue
    handle, config = start(world, sqs_server, tmp_config, url, NotificationFaults())
    try:
        with amazon.make_client(config, backoff_base=0.01) as client:
            amazon.subscribe_order_changes(client, arn)
            with pytest.raises(ChannelResponseError, match="409"):
                amazon.subscribe_order_changes(client, arn)
    finally:
        handle.stop()
