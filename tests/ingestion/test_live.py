"""Live landing (ingestion/live.py, D80): a sale's webhook is followed up by reading only the event batches that
are new since the last step; a step with nothing new costs no request; a switched-off poll never runs."""

from __future__ import annotations

import time

from ichigen.config import Config
from ingestion import webhooks
from ingestion.live import LiveLanding
from ingestion.ratelimit import reset_channel_limiters
from sandbox import start_world
from sandbox.webhooks import DEFAULT_SECRET


def test_a_webhook_is_followed_up_from_the_new_event_batches_and_an_idle_step_makes_no_request(tmp_config: Config):
    reset_channel_limiters()
    with start_world(data_dir=tmp_config.sandbox_dir, seed=4, skus=8, customers=8, history_days=1,
                     orders_per_day=2, port=0, access_token="shpat_sandbox", restore_rate=1000.0, yahoo_port=None,
                     drop_files=False) as running:
        config = tmp_config.with_overrides(**{"channels.shopify.base_url": running.shopify_url,
                                              "channels.shopify.access_token": "shpat_sandbox"})
        live = LiveLanding(config, ["shopify"], poll_every={"shopify": None}, shopify_webhooks=True,
                           pending_check_every=3600.0)
        try:
            with webhooks.serve_receiver(config.landing_dir, DEFAULT_SECRET, running.world.shop_domain) as receiver:
                webhooks.subscribe(config, receiver.webhook_url, ["ORDERS_CREATE"])
                assert live.land("shopify") == {"shopify/webhook-followups": 0}  # the first, full check
                (order,) = running.world.place_orders(1)
                deadline = time.monotonic() + 20
                while not live.landing.batch_files("shopify", "webhook_events"):
                    assert time.monotonic() < deadline, "the webhook never landed"
                    time.sleep(0.05)
                got = live.land("shopify")
                client = live._own_client("shopify")
                requests = client.stats.requests
                idle = live.land("shopify")
        finally:
            live.close()
    assert got["shopify/webhook-followups"] >= 1 and "shopify/orders" not in got  # no poll: the follow-up landed it
    orders = live.landing.landed("shopify", "orders").collect()
    assert order.gid in orders.get_column("order_id").to_list()
    assert idle == {"shopify/webhook-followups": 0} and client.stats.requests == requests, "nothing new, no call"
