"""`python -m sandbox`: generate a world, write `<data-dir>/erp.sqlite` (and the ERP into PostgreSQL with
--erp-postgres-dsn), serve the shop and the malls until Ctrl-C or SIGTERM (exit 0), optionally placing a few
orders every N seconds.

`--ready-file PATH`: once every channel is served, write `{"shopify": url, "rakuten": url, "yahoo": url,
"amazon": url}` there (temp file + rename, so a reader never sees half of it) — how a program that started the
world on free ports (`--port 0`) learns where each channel is."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

import psycopg

from sandbox.amazon import AmazonFaults, AmazonSettings
from sandbox.files import write_atomic
from sandbox.rakuten import RakutenFaults, RakutenSettings
from sandbox.runner import start_world
from sandbox.webhooks import DEFAULT_SECRET, WebhookSettings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--skus", type=int, default=60)
    ap.add_argument("--customers", type=int, default=200)
    ap.add_argument("--history-days", type=int, default=30)
    ap.add_argument("--orders-per-day", type=int, default=40)
    ap.add_argument("--port", type=int, default=8701, help="Shopify port on 127.0.0.1 (0: a free port)")
    ap.add_argument("--data-dir", type=Path, default=Path("var/sandbox"))
    ap.add_argument("--access-token", default="shpat_sandbox")
    ap.add_argument("--traffic-log", type=Path, default=None, help="append every /admin/api/ exchange (JSONL)")
    ap.add_argument("--restore-rate", type=float, default=100.0, help="cost points per second (bucket = 10×)")
    ap.add_argument("--simulate-every", type=float, default=0.0,
                    help="seconds between simulated order batches (0: no simulator)")
    ap.add_argument("--erp-postgres-dsn", default=None,
                    help="also keep the ERP in this PostgreSQL database (created when missing, its ERP tables "
                         "replaced): mirrored like the SQLite file, and the simulator's ERP staff take what is "
                         "posted to its intake")
    ap.add_argument("--erp-intake-fallback", action="store_true",
                    help="the simulator posts its own orders into the ERP intake (only when ichigen does not)")
    ap.add_argument("--webhook-secret", default=DEFAULT_SECRET,
                    help="the app's client secret: webhooks are signed with it (X-Shopify-Hmac-Sha256)")
    ap.add_argument("--webhook-timeout", type=float, default=5.0, help="seconds a receiver has to answer")
    ap.add_argument("--webhook-retry-backoff", type=float, default=1.0,
                    help="first retry after this many seconds, doubling (capped at 60 s), 8 retries")
    ap.add_argument("--webhook-drop-rate", type=float, default=0.0, help="fraction of deliveries never sent")
    ap.add_argument("--webhook-duplicate-rate", type=float, default=0.0, help="fraction of deliveries sent twice")
    ap.add_argument("--webhook-delay-rate", type=float, default=0.0, help="fraction of deliveries held back")
    ap.add_argument("--rakuten-port", type=int, default=None,
                    help="Rakuten RMS port on 127.0.0.1 (default 8702; a free port when --port is 0)")
    ap.add_argument("--rakuten-service-secret", default="SP_sandbox")
    ap.add_argument("--rakuten-license-key", default="SL_sandbox")
    ap.add_argument("--rakuten-rps", type=float, default=1.0, help="Rakuten requests per second per API")
    ap.add_argument("--rakuten-fault-rate", type=float, default=0.0, help="fraction of Rakuten requests faulted")
    ap.add_argument("--yahoo-port", type=int, default=None,
                    help="Yahoo!ショッピング store API port (0: a free port; default 8704, or free when --port is 0)")
    ap.add_argument("--yahoo-access-token", default="yahoo_sandbox_token")
    ap.add_argument("--yahoo-requests-per-second", type=float, default=1.0,
                    help="the store's request budget (Yahoo: about 1/s, shared by every call)")
    ap.add_argument("--amazon-port", type=int, default=None,
                    help="Amazon SP-API port on 127.0.0.1 (default 8703; a free port when --port is 0)")
    ap.add_argument("--amazon-rate-scale", type=float, default=1.0,
                    help="multiply Amazon's documented per-operation rates (1: as documented)")
    ap.add_argument("--amazon-fault-rate", type=float, default=0.0, help="share of Amazon requests that misbehave")
    ap.add_argument("--amazon-traffic-log", type=Path, default=None, help="append every Amazon exchange (JSONL)")
    ap.add_argument("--amazon-sqs-endpoint", default=None,
                    help="SQS server (e.g. moto) that ORDER_CHANGE notifications are sent to once subscribed")
    ap.add_argument("--amazon-feed-processing-seconds", type=float, default=2.0,
                    help="seconds from createFeed to DONE (Amazon: minutes)")
    ap.add_argument("--no-file-drops", action="store_true",
                    help="no POS / B2B / carrier files in the inbox (a world for API work only)")
    ap.add_argument("--ready-file", type=Path, default=None,
                    help="when every channel is served, write their URLs here as JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("sandbox")

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        running = start_world(
            data_dir=args.data_dir, seed=args.seed, skus=args.skus, customers=args.customers,
            history_days=args.history_days, orders_per_day=args.orders_per_day, port=args.port,
            access_token=args.access_token, traffic_log=args.traffic_log, restore_rate=args.restore_rate,
            simulate_every=args.simulate_every or None, erp_postgres_dsn=args.erp_postgres_dsn,
            erp_intake_fallback=args.erp_intake_fallback,
            webhook_secret=args.webhook_secret,
            webhook_settings=WebhookSettings(
                secret=args.webhook_secret, timeout=args.webhook_timeout, retry_backoff=args.webhook_retry_backoff,
                retry_backoff_max=60.0, drop_rate=args.webhook_drop_rate,
                duplicate_rate=args.webhook_duplicate_rate, delay_rate=args.webhook_delay_rate, seed=args.seed),
            rakuten=RakutenSettings(
                port=args.rakuten_port if args.rakuten_port is not None else (8702 if args.port else 0),
                service_secret=args.rakuten_service_secret,
                license_key=args.rakuten_license_key, requests_per_second=args.rakuten_rps,
                faults=RakutenFaults(rate=args.rakuten_fault_rate, seed=args.seed)),
            yahoo_port=args.yahoo_port if args.yahoo_port is not None else (0 if args.port == 0 else 8704), yahoo_access_token=args.yahoo_access_token,
            yahoo_requests_per_second=args.yahoo_requests_per_second,
            amazon_port=args.amazon_port if args.amazon_port is not None else (0 if args.port == 0 else 8703),
            amazon_settings=AmazonSettings(rate_scale=args.amazon_rate_scale, traffic_log=args.amazon_traffic_log,
                                           sqs_endpoint=args.amazon_sqs_endpoint,
                                           faults=AmazonFaults(rate=args.amazon_fault_rate, seed=args.seed),
                                           feed_processing_seconds=args.amazon_feed_processing_seconds),
            drop_files=not args.no_file_drops,
        )
    except (OSError, ValueError, RuntimeError, psycopg.Error) as exc:
        print(f"sandbox: could not start: {exc}", file=sys.stderr)
        return 2
    with running:
        w = running.world
        log.info("Shopify (Admin GraphQL %s): %s/admin/api/2026-10/graphql.json", "2026-10", running.shopify_url)
        log.info("Rakuten (RMS Web Service): %s/es/2.0/", running.rakuten_url)
        log.info("Amazon SP-API (Orders 2026-01-01, Listings 2021-08-01): %s", running.amazon_url)
        log.info("ERP (SQLite): %s", running.erp_sqlite_path)
        if running.erp_postgres_dsn:
            log.info("ERP (PostgreSQL): %s", running.erp_postgres_dsn)
        log.info("Yahoo!ショッピング (store API): %s/ShoppingWebService/V1/", running.yahoo_url)
        log.info("file drops (POS, B2B, carrier): %s", running.inbox)
        log.info("world: seed %d, %d SKUs, %d variants, %d customers, %d orders", w.seed, len(w.products),
                 len(w.variants), len(w.customers), len(w.orders))
        if args.ready_file is not None:
            urls = {"shopify": running.shopify_url, "rakuten": running.rakuten_url, "yahoo": running.yahoo_url,
                    "amazon": running.amazon_url}
            write_atomic(args.ready_file, json.dumps(urls).encode("utf-8"))
        print(f"sandbox ready at {running.shopify_url}", flush=True)
        while not stop.wait(0.5):
            pass
        log.info("stopping …")
    return 0


if __name__ == "__main__":
    sys.exit(main())
