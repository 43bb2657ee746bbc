"""Run sandbox apps with uvicorn in a background thread, on 127.0.0.1 and a given or free port.

    with serve_shopify(world, port=0) as shop:
        httpx.post(f"{shop.url}/admin/api/2026-10/graphql.json", ...)

Several servers may run in one process; each owns its socket and thread. The Shopify schema is loaded once per
process, so after the first server a start takes a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from typing import Any

import uvicorn

from sandbox import rakuten
from sandbox.shopify import SINGLE_QUERY_MAX_COST, create_app
from sandbox.shopify_bulk import DEFAULT_CONCURRENCY
from sandbox.shopify_rest import RestSettings
from sandbox.webhooks import WebhookHub, WebhookSettings
from sandbox.world import World

HOST = "127.0.0.1"


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handlers (they belong to the main thread and to the host process)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn versions
        return None


class ServerHandle:
    """A running server: `.url`, `.port`, `.app`, `.stop()`; a context manager that stops on exit."""

    def __init__(self, app: Any, port: int = 0, host: str = HOST, start_timeout: float = 10.0):
        self.app = app
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            hub = getattr(getattr(app, "state", None), "webhooks", None)
            if hub is not None:
                hub.close()
            raise
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2)
        self._server = _ThreadServer(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"sandbox-http-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + start_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._sock.close()
                raise RuntimeError(f"the sandbox server on {host}:{self.port} failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox server on {host}:{self.port} did not start in {start_timeout} s")
            time.sleep(0.005)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api(self):
        return self.app.state.api

    @property
    def webhooks(self) -> WebhookHub | None:
        return getattr(self.app.state, "webhooks", None)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop webhook deliveries, ask uvicorn to exit, wait at most `timeout` seconds, then force it."""
        api = getattr(getattr(self.app, "state", None), "api", None)
        if api is not None and hasattr(api, "bulk"):
            api.bulk.close()
        if self.webhooks is not None:
            self.webhooks.close(timeout)
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_shopify(world: World, port: int = 0, access_token: str = "shpat_sandbox",
                  traffic_log: str | os.PathLike[str] | None = None, restore_rate: float = 100.0,
                  schema_path: str | os.PathLike[str] | None = None,
                  max_query_cost: int = SINGLE_QUERY_MAX_COST,
                  webhooks: WebhookSettings | None = None, bulk_concurrency: int = DEFAULT_CONCURRENCY,
                  bulk_processing_seconds: float = 0.3, rest: RestSettings | None = None) -> ServerHandle:
    """Serve the world's Shopify shop (Admin GraphQL 2026-10, the REST subset, bulk outputs + /_sandbox/) in a
    background thread. `webhooks`: the delivery settings (secret, retry schedule, faults); see sandbox.webhooks.
    `bulk_*`: see sandbox.shopify_bulk; `rest`: the REST call limit (sandbox.shopify_rest.RestSettings)."""
    app = create_app(world, access_token=access_token, traffic_log=traffic_log, restore_rate=restore_rate,
                     schema_path=schema_path, max_query_cost=max_query_cost, webhooks=webhooks,
                     bulk_concurrency=bulk_concurrency, bulk_processing_seconds=bulk_processing_seconds, rest=rest)
    return ServerHandle(app, port=port)


def serve_yahoo(world: World, port: int = 0, access_token: str = "yahoo_sandbox_token",
                seller_id: str = "ichigen-select", requests_per_second: float = 1.0, burst: int = 1,
                faults: Any = None, traffic_log: str | os.PathLike[str] | None = None) -> ServerHandle:
    """Serve the world's Yahoo!ショッピング store API (sandbox.yahoo) in a background thread."""
    from sandbox.yahoo import create_app as create_yahoo_app

    app = create_yahoo_app(world, access_token=access_token, seller_id=seller_id,
                           requests_per_second=requests_per_second, burst=burst, faults=faults,
                           traffic_log=traffic_log)
    return ServerHandle(app, port=port)


def serve_rakuten(world: World, port: int = 0, service_secret: str = "SP_sandbox", license_key: str = "SL_sandbox",
                  requests_per_second: float = 1.0, faults: rakuten.RakutenFaults | None = None,
                  traffic_log: str | os.PathLike[str] | None = None) -> ServerHandle:
    """Serve the world's Rakuten mall (RMS Web Service + /_sandbox/rakuten/) in a background thread."""
    app = rakuten.create_app(world, service_secret=service_secret, license_key=license_key,
                             requests_per_second=requests_per_second, faults=faults, traffic_log=traffic_log)
    return ServerHandle(app, port=port)
