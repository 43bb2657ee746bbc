"""The `ichigen` command: what people run by hand. The Makefile targets call it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ichigen.config import PROJECT_ROOT, Config, ConfigError, load_config

app = typer.Typer(add_completion=False, no_args_is_help=True, help="ichigen: one view of every channel and the ERP.")
sync_app = typer.Typer(no_args_is_help=True, help="Reverse sync: push reconciled stock to the channels.")
app.add_typer(sync_app, name="sync")
webhooks_app = typer.Typer(no_args_is_help=True, help="Shopify webhooks: the receiver that lands every delivery.")
app.add_typer(webhooks_app, name="webhooks")
console = Console()

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="config file (default: ichigen.toml)")]


def _config(path: Path | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _start_sandbox(config: Config, port: int):
    """Start the embedded world in this process (threads), with its ERP SQLite under paths.sandbox."""
    from sandbox import start_world
    from sandbox.rakuten import RakutenSettings

    s = config.sandbox
    return start_world(
        data_dir=config.sandbox_dir, seed=s.seed, skus=s.skus, customers=s.customers,
        history_days=s.history_days, orders_per_day=s.orders_per_day, port=port,
        access_token=config.channels.shopify.access_token, restore_rate=s.shopify_restore_rate,
        rakuten=RakutenSettings(service_secret=config.channels.rakuten.service_secret,
                                license_key=config.channels.rakuten.license_key),
        yahoo_access_token=config.channels.yahoo.access_token, yahoo_seller_id=config.channels.yahoo.seller_id,
        yahoo_requests_per_second=s.yahoo_requests_per_second,
        erp_postgres_dsn=_sandbox_erp_dsn(config),
    )


def _sandbox_erp_dsn(config: Config) -> str | None:
    """With `erp.kind = "postgres"` the sandbox keeps its ERP in `erp.postgres_dsn` too (beside the SQLite file),
    so the product reads the ERP and posts its intake where the sandbox's ERP staff take orders."""
    return config.erp.postgres_dsn if config.erp.kind == "postgres" else None


def sandbox_command(config: Config, python: str | Path, port: int, simulate_every: float) -> list[str]:
    """The `python -m sandbox` command line of the configured world (`ichigen sandbox`, `ichigen demo`)."""
    s = config.sandbox
    dsn = _sandbox_erp_dsn(config)
    return [
        str(python), "-m", "sandbox", "--seed", str(s.seed), "--skus", str(s.skus),
        "--customers", str(s.customers), "--history-days", str(s.history_days),
        "--orders-per-day", str(s.orders_per_day), "--port", str(port),
        "--data-dir", str(config.sandbox_dir), "--simulate-every", str(simulate_every),
        "--restore-rate", str(s.shopify_restore_rate), "--access-token", config.channels.shopify.access_token,
        "--yahoo-access-token", config.channels.yahoo.access_token,
        "--yahoo-requests-per-second", str(s.yahoo_requests_per_second),
        *(["--erp-postgres-dsn", dsn] if dsn else []),
    ]


def _connect_sandbox_yahoo(config: Config) -> dict[str, str]:
    """The environment that connects the product to the sandbox's Yahoo store: ingestion and pushes on, paced
    at the embedded store's limit. A value the user set in the environment wins."""
    return {"ICHIGEN_YAHOO_ENABLED": os.environ.get("ICHIGEN_YAHOO_ENABLED", "true"),
            "ICHIGEN_YAHOO_REQUESTS_PER_SECOND": os.environ.get(
                "ICHIGEN_YAHOO_REQUESTS_PER_SECOND", str(config.sandbox.yahoo_requests_per_second))}


def _point_at_world(config: Config, world) -> Config:
    """The configuration of a product connected to every channel of the embedded `world` (on its ports)."""
    yahoo = _connect_sandbox_yahoo(config)
    return config.with_overrides(**{
        "channels.shopify.base_url": world.shopify_url,
        "channels.rakuten.base_url": world.rakuten_url,
        "channels.amazon.base_url": world.amazon_url,
        "channels.amazon.token_url": f"{world.amazon_url}/auth/o2/token",
        "channels.yahoo.base_url": world.yahoo_url,
        "channels.yahoo.enabled": yahoo["ICHIGEN_YAHOO_ENABLED"],
        "channels.yahoo.requests_per_second": yahoo["ICHIGEN_YAHOO_REQUESTS_PER_SECOND"],
        "erp.sqlite_path": str(world.erp_sqlite_path),  # erp.kind stays: the world keeps a PostgreSQL ERP too
        "paths.inbox": str(world.inbox),
        "files.settle_seconds": 0,  # the sandbox renames whole files into the inbox
    })


def print_summary(summary) -> None:
    table = Table(title="ichigen — one full cycle", show_lines=False)
    table.add_column("step")
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, (rows, quarantined) in sorted(summary.landed.items()):
        table.add_row("ingest", f"{key} rows landed", str(rows))
        if quarantined:
            table.add_row("ingest", f"{key} rows quarantined", str(quarantined))
    table.add_row("dbt", "models built", str(summary.models_built))
    table.add_row("dbt", "tests passed", str(summary.tests_passed))
    table.add_row("dbt", "tests failed", str(summary.tests_failed))
    table.add_row("publish", "serving copy version", summary.published_version or "— (not published)")
    for channel, counts in sorted(summary.pushes.items()):
        for what in ("planned", "applied", "failed", "refused"):
            table.add_row("reverse sync", f"{channel} pushes {what}", str(counts[what]))
    console.print(table)
    for reason in summary.guard_rail_refusals:
        console.print(f"[yellow]guard rail:[/yellow] {reason}")


@app.command()
def once(config_path: ConfigOption = None) -> None:
    """Headless: start the sandbox, run one full cycle, print a summary, stop. Exit 0 on success."""
    from ichigen.cycle import prepare_dagster_home, reset_world_data

    config = _config(config_path)
    prepare_dagster_home(config)
    reset_world_data(config)
    console.print("starting the sandbox world …")
    with _start_sandbox(config, port=0) as world:
        also = " and in PostgreSQL (erp.postgres_dsn)" if world.erp_postgres_dsn else ""
        console.print(f"sandbox Shopify at {world.shopify_url}, ERP at {world.erp_sqlite_path}{also}")
        import dagster as dg

        config = _point_at_world(config, world)
        summary = _run_cycle(config, dg.DagsterInstance.get())
    print_summary(summary)
    if not summary.success:
        console.print(f"[red]the cycle failed:[/red] {summary.failure}")
        raise typer.Exit(1)
    # A channel switched off lands nothing by design, and a fresh ERP's intake has nothing posted yet.
    switched_off = {slug for slug in ("shopify", "rakuten", "amazon", "yahoo")
                    if not getattr(config.channels, slug).enabled}
    may_be_empty = {"erp/order_intake"}
    empty = [key for key, (rows, _) in summary.landed.items()
             if rows == 0 and key.split("/")[0] not in switched_off and key not in may_be_empty]
    if empty:
        console.print(f"[red]nothing landed for:[/red] {', '.join(empty)}")
        raise typer.Exit(1)
    console.print("[green]one full cycle: OK[/green]")


def _run_cycle(config: Config, instance):
    from ichigen.cycle import run_full_cycle

    with console.status("running ingest → dbt build → publish → reverse sync …"):
        return run_full_cycle(config, instance)


@app.command()
def sandbox(
    config_path: ConfigOption = None,
    port: Annotated[int | None, typer.Option(help="Shopify port (default: sandbox.shopify_port)")] = None,
    simulate_every: Annotated[float, typer.Option(help="seconds between simulated orders (0: none)")] = 10.0,
) -> None:
    """Run the sandbox world in the foreground until Ctrl-C."""
    config = _config(config_path)
    cmd = sandbox_command(config, sys.executable, port or config.sandbox.shopify_port, simulate_every)
    raise typer.Exit(subprocess.call(cmd))


DEMO_URLS = {"dashboards": "http://127.0.0.1:8501", "dagster": "http://127.0.0.1:3000"}


def demo_processes(config: Config, bin_dir: Path, config_path: Path | None = None) -> list[tuple[str, list[str]]]:
    """The long-running processes `ichigen demo` starts once the sandbox is up and the first cycle published,
    as they would run in a shop: the Shopify webhook receiver (subscribed to the shop with its own address), the
    fast-path sync worker following those webhooks and polling the other channels, Dagster and the dashboards."""
    ichigen = [str(bin_dir / "ichigen")]
    with_config = ["--config", str(config_path)] if config_path else []
    return [
        ("webhooks", [*ichigen, "webhooks", "serve", *with_config]),
        ("worker", [*ichigen, "sync", "worker", "--shopify-webhooks", *with_config]),
        ("dagster", [str(bin_dir / "dagster"), "dev", "-m", "orchestration.definitions",
                     "-h", "127.0.0.1", "-p", "3000"]),
        ("dashboards", [str(bin_dir / "streamlit"), "run", "dashboards/app.py", "--server.port", "8501",
                        "--server.address", "127.0.0.1", "--server.headless", "true",
                        "--browser.gatherUsageStats", "false"]),
    ]


def _demo_order_queue(config: Config, endpoint: str) -> str:
    """Create the demo's ORDER_CHANGE queue on the SQS server at `endpoint` and subscribe the sandbox seller to it,
    as a shop does once with real SQS (D81). Returns the queue URL."""
    import boto3

    from ingestion import amazon

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=config.channels.amazon.sqs_region)
    for _ in range(60):  # the server process may still be starting
        try:
            url = sqs.create_queue(QueueName="ichigen-amazon-orders")["QueueUrl"]
            break
        except Exception:  # noqa: BLE001 — connection refused until moto listens
            time.sleep(0.5)
    else:
        raise RuntimeError(f"the demo's SQS server did not come up at {endpoint} (see var/sqs.log)")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    with amazon.make_client(config) as client:
        amazon.subscribe_order_changes(client, arn)
    return url


def _webhook_url(config: Config) -> str:
    from ingestion.webhooks import WEBHOOK_PATH

    s = config.channels.shopify
    return s.webhook_url or f"http://{s.webhook_host}:{s.webhook_port}{WEBHOOK_PATH}"


@app.command()
def demo(config_path: ConfigOption = None) -> None:
    """Start the sandbox, Dagster (UI :3000, schedules live), the dashboards (:8501), the Shopify webhook receiver
    and the fast-path sync worker. Ctrl-C stops all."""
    import httpx

    from ichigen.cycle import prepare_dagster_home, reset_world_data

    # The sandbox's Yahoo store is connected for every process the demo starts (they read the environment).
    os.environ.update(_connect_sandbox_yahoo(_config(config_path)))
    config = _config(config_path)
    home = prepare_dagster_home(config)
    reset_world_data(config)
    env = {**os.environ, "DAGSTER_HOME": str(home), "ICHIGEN_CONFIG": str(config_path or "")}
    if not config_path:
        env.pop("ICHIGEN_CONFIG")
    bin_dir = Path(sys.executable).parent
    s = config.sandbox
    sqs_endpoint = f"http://127.0.0.1:{s.sqs_port}"
    # moto accepts any credentials; the product's SQS client takes them from boto3's usual chain.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "sandbox")
        env.setdefault(name, "sandbox")
    procs: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, cmd: list[str]) -> None:
        log = open(config.sandbox_dir.parent / f"{name}.log", "w")  # noqa: SIM115 — closed with the process
        procs.append((name, subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)))

    def stop_all(*_: object) -> None:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    config.sandbox_dir.mkdir(parents=True, exist_ok=True)
    try:
        start("sqs", [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(s.sqs_port)])
        start("sandbox", [*sandbox_command(config, bin_dir / "python", s.shopify_port, 10),
                          "--webhook-secret", config.channels.shopify.webhook_secret,
                          "--amazon-sqs-endpoint", sqs_endpoint])
        url = config.channels.shopify.base_url
        for _ in range(120):
            try:
                if httpx.get(f"{url}/_sandbox/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"the sandbox did not come up at {url} (see var/sandbox.log)")
        queue_url = _demo_order_queue(config, sqs_endpoint)
        env.update(ICHIGEN_AMAZON_QUEUE_URL=queue_url, ICHIGEN_AMAZON_SQS_ENDPOINT=sqs_endpoint)  # for the worker
        console.print("sandbox up; running the first full cycle so the dashboards have data …")
        import dagster as dg

        summary = _run_cycle(config, dg.DagsterInstance.get())
        print_summary(summary)
        for name, cmd in demo_processes(config, bin_dir, config_path):
            start(name, cmd)
        hook = _webhook_url(config)
        console.print(
            "\n[bold]ichigen is running[/bold]\n"
            f"  Dashboards (ja/en):  {DEMO_URLS['dashboards']}\n"
            f"  Dagster UI:          {DEMO_URLS['dagster']}\n"
            f"  Shopify webhooks:    {hook} (receiver; subscribed to the sandbox shop, see var/webhooks.log)\n"
            "  Fast-path worker:    lands webhook follow-ups, Amazon ORDER_CHANGE and polls, pushes stock in "
            "seconds (var/worker.log; runless <channel>/stock_push events in Dagster)\n"
            f"  Amazon ORDER_CHANGE: {queue_url} (SQS, moto)\n"
            f"  Sandbox Shopify:     {url}/admin/api/2026-10/graphql.json\n"
            f"  Sandbox Rakuten:     {config.channels.rakuten.base_url}/es/2.0/\n"
            f"  Sandbox Amazon:      {config.channels.amazon.base_url}/orders/2026-01-01/orders\n"
            f"  Sandbox Yahoo:       {config.channels.yahoo.base_url}/ShoppingWebService/V1/ "
            f"({'on' if config.channels.yahoo.enabled else 'served; ingestion off (ICHIGEN_YAHOO_ENABLED=false)'})\n"
            f"  File inbox:          {config.resolve(config.paths.inbox)}\n"
            f"  Logs:                {config.sandbox_dir.parent}/*.log\n"
            "Ctrl-C stops everything."
        )
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(proc.poll() is None for _, proc in procs):
            time.sleep(1)
        dead = [name for name, proc in procs if proc.poll() is not None]
        console.print(f"[red]{', '.join(dead)} stopped unexpectedly; see the logs[/red]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("\nstopping …")
    finally:
        stop_all()
    console.print("stopped.")


@webhooks_app.command("serve")
def webhooks_serve(
    config_path: ConfigOption = None,
    port: Annotated[int | None, typer.Option(help="listen port (default: channels.shopify.webhook_port)")] = None,
    subscribe: Annotated[bool, typer.Option(help="register the subscriptions with the shop first")] = True,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="stop after this long")] = 7 * 24 * 3600.0,
) -> None:
    """Serve the Shopify webhook receiver (HMAC check, de-dup, durable landing before the 200) until Ctrl-C or
    SIGTERM; first make sure the shop delivers orders and inventory changes to its address."""
    import threading

    from ingestion.errors import IngestionError
    from ingestion.webhooks import DEFAULT_TOPICS, serve_receiver
    from ingestion.webhooks import subscribe as subscribe_webhooks

    config = _config(config_path)
    s = config.channels.shopify
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with serve_receiver(config.landing_dir, s.webhook_secret, s.shop_domain, host=s.webhook_host,
                        port=s.webhook_port if port is None else port) as receiver:
        address = s.webhook_url or receiver.webhook_url
        console.print(f"webhook receiver listening at {receiver.webhook_url}", highlight=False)
        if subscribe:
            try:
                subs = subscribe_webhooks(config, address)
            except IngestionError as exc:
                console.print(f"[red]could not subscribe {address} with {s.base_url}:[/red] {exc}")
                raise typer.Exit(1) from None
            topics = sorted(x["topic"] for x in subs if x["topic"] in DEFAULT_TOPICS)
            console.print(f"subscribed {address}: {', '.join(topics)}", highlight=False)
        stop.wait(max_seconds)
        stats = receiver.app.state.stats
        console.print(f"stopping; deliveries {', '.join(f'{k} {v}' for k, v in stats.items())}", highlight=False)


ChannelOption = Annotated[str, typer.Option("--channel", help="channel slug")]
PricesOption = Annotated[bool, typer.Option("--prices", help="prices only")]
StockOption = Annotated[bool, typer.Option("--stock", help="stock only")]
FullOption = Annotated[bool, typer.Option("--full", help="re-send every listed SKU, not only the changed ones")]


@sync_app.command("plan")
def sync_plan(config_path: ConfigOption = None, channel: ChannelOption = "shopify", prices: PricesOption = False,
              stock: StockOption = False, full: FullOption = False) -> None:
    """Show what a sync would change (a dry run: nothing is pushed, no state advances)."""
    _sync(config_path, channel, dry_run=True, fields=_fields(prices, stock), full=full)


@sync_app.command("apply")
def sync_apply(
    config_path: ConfigOption = None,
    channel: ChannelOption = "shopify",
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    prices: PricesOption = False,
    stock: StockOption = False,
    full: FullOption = False,
) -> None:
    """Plan, check the guard rails, push, and log — stock and prices unless one is chosen."""
    _sync(config_path, channel, dry_run=dry_run, fields=_fields(prices, stock), full=full)


def _fields(prices: bool, stock: bool) -> tuple[str, ...]:
    if prices and stock:
        raise typer.BadParameter("choose --prices or --stock (or neither for both)")
    return ("price",) if prices else ("stock",) if stock else ("stock", "price")


def _sync(config_path: Path | None, channel: str, dry_run: bool, fields: tuple[str, ...], full: bool) -> None:
    from rich.progress import Progress

    from reverse_sync.prices import PRICE_CHANNELS, sync_prices
    from reverse_sync.stock import sync_stock

    config = _config(config_path)
    runners = {"stock": sync_stock, "price": sync_prices}
    if "price" in fields and channel not in PRICE_CHANNELS:
        if fields == ("price",):
            console.print(f"[red]price sync for {channel} is not built yet (supported: {', '.join(PRICE_CHANNELS)})")
            raise typer.Exit(2)
        fields = tuple(f for f in fields if f != "price")
    summary = Table(title=f"{channel} sync {'(dry run) ' if dry_run else ''}summary")
    for col in ("field", "run", "planned", "unchanged", "applied", "failed", "refused"):
        summary.add_column(col)
    failed = False
    for field in fields:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"{channel} {field}", total=None)
            result = runners[field](config, channel, dry_run=dry_run, full=full,
                                    on_progress=lambda done, total, t=task: progress.update(t, completed=done,
                                                                                            total=total))
        table = Table(title=f"{channel} {field} — run {result.run_id}")
        for col in ("sku", "old", "new", "status", "error"):
            table.add_column(col)
        for r in result.records[:50]:
            table.add_row(r.sku, str(r.old_value), str(r.new_value), r.status, (r.error or "")[:80])
        if result.records:
            console.print(table)
        if len(result.records) > 50:
            console.print(f"… and {len(result.records) - 50} more rows (all of them are in the push log)")
        summary.add_row(field, result.run_id, str(result.planned), str(result.unchanged), str(result.applied),
                        str(result.failed), str(result.refused))
        for reason in result.verdict.reasons:
            console.print(f"[yellow]guard rail:[/yellow] {reason}")
        failed = failed or not result.verdict.allowed or result.failed > 0
    console.print(summary)
    if failed:
        raise typer.Exit(1)


@sync_app.command("worker")
def sync_worker(
    config_path: ConfigOption = None,
    tick: Annotated[float, typer.Option("--tick", help="seconds between ticks")] = 1.0,
    max_seconds: Annotated[float, typer.Option("--max-seconds", help="stop after this long")] = 24 * 3600.0,
    poll_every: Annotated[float, typer.Option("--poll-every", help="seconds between Rakuten/Yahoo order polls")] = 5.0,
    webhooks: Annotated[bool, typer.Option("--shopify-webhooks", help="follow landed Shopify webhook events")] = False,
) -> None:
    """The stock fast path (D60): land new orders, push published target − unpublished sales, every tick; each
    push is recorded in Dagster as a runless `<channel>/stock_push` materialisation. Ctrl-C stops it."""
    import dagster as dg

    from ichigen.cycle import prepare_dagster_home
    from ingestion.live import BUDGET_POLL_EVERY
    from orchestration.fast_path_events import report_tick
    from reverse_sync.fast_path import FastPathWorker

    config = _config(config_path)
    os.environ.setdefault("DAGSTER_HOME", str(prepare_dagster_home(config)))
    instance = dg.DagsterInstance.get()

    def on_tick(result) -> None:
        report_tick(instance, result)
        if result.pushes or result.errors:
            pushed = ", ".join(f"{c} {p.applied}/{p.planned}" for c, p in sorted(result.pushes.items()))
            console.print(f"{result.started_at:%H:%M:%S} {result.unpublished_orders} unpublished orders; "
                          f"pushed {pushed or 'nothing'} in {result.seconds:.2f} s"
                          + "".join(f"\n  [yellow]{e}[/yellow]" for e in result.errors))

    # Amazon's searchOrders is budgeted at one call per ~3 minutes (its orders come by ORDER_CHANGE when a queue
    # is configured); with webhooks followed, Shopify's poll is the backstop only (D81).
    polls = {"rakuten": poll_every, "yahoo": poll_every, "amazon": BUDGET_POLL_EVERY["amazon"],
             "shopify": BUDGET_POLL_EVERY["shopify"] if webhooks else 0.0}
    worker = FastPathWorker(config, tick_seconds=tick, max_seconds=max_seconds, on_tick=on_tick,
                            poll_every=polls, shopify_webhooks=webhooks)
    # `ichigen demo` stops its processes with SIGTERM: finish like Ctrl-C (clients closed, "stopped" logged).
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    console.print(f"fast path: ticking every {tick:g} s; polls every "
                  f"{', '.join(f'{c} {p:g} s' for c, p in sorted(polls.items()))} (Ctrl-C to stop)", highlight=False)
    try:
        worker.run()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        worker.close()


@sync_app.command("intake")
def sync_intake_command(
    config_path: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
) -> None:
    """Post new channel orders and customers into the ERP's intake (受注連携), exactly once per version."""
    from reverse_sync.erp_intake import sync_intake

    result = sync_intake(_config(config_path), dry_run=dry_run)
    plan = result.plan
    for held in plan.held[:20]:
        console.print(f"[yellow]held[/yellow] {held.channel} {held.channel_order_id}: {held.reason}")
    console.print(f"erp intake {'(dry run) ' if dry_run else ''}run {result.run_id}: planned {len(plan.orders)}, "
                  f"posted {len(result.posted)}, already in the ERP {plan.already_posted + result.already_present}, "
                  f"held {len(plan.held)}, failed {len(result.failed)}, customers posted {result.customers_posted}")
    for problem in [*result.verdict.reasons, *result.customer_errors]:
        console.print(f"[yellow]not posted:[/yellow] {problem}")
    if not result.verdict.allowed or result.failed or result.customer_errors:
        raise typer.Exit(1)


@app.command()
def compact(
    config_path: ConfigOption = None,
    older_than_minutes: Annotated[float | None, typer.Option(
        "--older-than-minutes", help="leave newer batches alone (default: compaction.older_than_minutes)")] = None,
) -> None:
    """Merge the landing zone's small batches (one per webhook event, notification receive or poll) into one
    batch per entity, date and mode; readers see the same rows (D82). Safe to rerun, and to run while others
    read: the originals are removed under the landing lock, or left for the next run (D161)."""
    from datetime import timedelta

    from ingestion.landing import LandingZone, compact_landing

    config = _config(config_path)
    settings = config.compaction
    minutes = settings.older_than_minutes if older_than_minutes is None else older_than_minutes
    run = compact_landing(LandingZone(config.landing_dir), older_than=timedelta(minutes=minutes),
                          max_rows=settings.max_rows, lock_wait_seconds=settings.lock_wait_seconds)
    for done in run.merged:
        console.print(f"{done.source}/{done.entity}: {len(done.replaced)} batches → {done.path.name} "
                      f"({done.row_count} rows)", highlight=False)
    if run.leftovers_removed:
        console.print(f"removed {run.leftovers_removed} batches an earlier compaction had merged")
    if run.skipped:
        console.print(f"[yellow]not removed:[/yellow] {run.skipped}", highlight=False)
    console.print(f"compacted {run.batches_merged} batches" if run.merged else "nothing to compact")


@app.command("check-config")
def check_config(config_path: ConfigOption = None) -> None:
    """Validate the configuration file and print where things live."""
    config = _config(config_path)
    console.print(f"OK: shopify at {config.channels.shopify.base_url}; ERP {config.erp.kind}; "
                  f"landing {config.landing_dir}; serving copy {config.serving_path}")


if __name__ == "__main__":
    app()
