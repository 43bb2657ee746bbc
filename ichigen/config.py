"""The one configuration file (`ichigen.toml`), validated with pydantic.

Every part of the product reads its settings from here: channel base URLs and credentials, paths, schedules,
allocation and guard rails. String values may name environment variables as `${VAR}` or `${VAR:-default}`,
so credentials never live in the file. Errors name the bad key (e.g. `channels.shopify.base_url`).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "ichigen.toml"
SLUGS = ("shopify", "rakuten", "amazon", "yahoo", "erp", "pos", "b2b", "carrier")

_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration file is missing, unreadable, or a key holds a bad value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsConfig(_Strict):
    """Where data lives. Relative paths are resolved against the config file's folder."""

    landing: Path = Path("var/landing")
    warehouse: Path = Path("var/warehouse/warehouse.duckdb")
    serving: Path = Path("var/serving/ichigen.duckdb")
    push_log: Path = Path("var/push_log")
    dagster_home: Path = Path("var/dagster")
    sandbox: Path = Path("var/sandbox")
    # File sources drop here: <inbox>/<slug>/<entity>/ (ingestion.files). The default is the sandbox's inbox,
    # as erp.sqlite_path defaults to the sandbox's ERP; point it at the real drop folder in production.
    inbox: Path = Path("var/sandbox/inbox")

    @property
    def quarantine(self) -> Path:
        return self.landing / "_quarantine"


class ShopifyConfig(_Strict):
    enabled: bool = True
    base_url: str = "http://127.0.0.1:8701"
    api_version: str = "2026-10"
    access_token: str = Field(default="shpat_sandbox", repr=False)
    location_id: str | None = None  # None: the first active location the shop reports
    page_size: int = Field(default=100, ge=1, le=250)
    lookback_minutes: int = Field(default=10, ge=0)
    backfill_start: str = "2025-01-01T00:00:00Z"
    requests_per_second: float = Field(default=4.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    # The webhook receiver (`ichigen webhooks serve`, ingestion/webhooks.py): the app's client secret that signs
    # deliveries, where the receiver listens, and the address the shop posts to (empty: http://host:port/…;
    # behind a proxy or tunnel, its public https address).
    webhook_secret: str = Field(default="shpss_sandbox_webhook_secret", repr=False)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8705, ge=0, le=65535)
    webhook_url: str = ""
    shop_domain: str | None = None  # accept deliveries for this shop only (None: any shop signed with the secret)
    # Backfills: orders / product variants whose window (now − since) exceeds this many days are fetched with a
    # bulk operation (bulkOperationRunQuery → poll → JSONL) instead of pages; 0 = always page (D110).
    bulk_threshold_days: float = Field(default=30.0, ge=0)
    bulk_poll_max_seconds: float = Field(default=10.0, gt=0)  # polls back off from 0.25 s up to this
    bulk_timeout_seconds: float = Field(default=3600.0, gt=0)
    # Stock push: GraphQL inventorySetQuantities (compare-and-swap) or, for old custom apps without it, REST
    # inventory_levels/set.json (absolute, no compare-and-swap: a race window, D115).
    push_via: Literal["graphql", "rest"] = "graphql"
    # A GraphQL stock push of more rows than this goes through one bulk mutation of inventorySetQuantities
    # (staged JSONL → bulkOperationRunMutation → result JSONL) instead of direct calls; 0 = never (D143).
    push_bulk_threshold: int = Field(default=10_000, ge=0)
    # Orders poll: GraphQL (default) or the legacy REST orders.json with Link paging (D116).
    orders_api: Literal["graphql", "rest"] = "graphql"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8701")
        return value.rstrip("/")


class RakutenConfig(_Strict):
    """Rakuten Ichiba RMS Web Service (ESA auth: serviceSecret + licenseKey)."""

    enabled: bool = True
    base_url: str = "http://127.0.0.1:8702"
    service_secret: str = Field(default="SP_sandbox", repr=False)
    license_key: str = Field(default="SL_sandbox", repr=False)
    page_size: int = Field(default=1000, ge=1, le=1000)  # searchOrder requestRecordsAmount
    lookback_minutes: int = Field(default=60, ge=0)
    backfill_start: str = "2025-01-01T00:00:00Z"  # RMS reaches back at most 730 days; older is clamped
    requests_per_second: float = Field(default=1.0, gt=0)
    timeout_seconds: float = Field(default=20.0, gt=0)
    max_retries: int = Field(default=5, ge=0)

    _url = field_validator("base_url")(ShopifyConfig._url.__func__)


class YahooConfig(_Strict):
    """Yahoo!ショッピング store API (ShoppingWebService V1): Bearer token, store account, ~1 request/s per store."""

    enabled: bool = True
    base_url: str = "http://127.0.0.1:8704"
    access_token: str = Field(default="yahoo_sandbox_token", repr=False)
    seller_id: str = "ichigen-select"
    page_size: int = Field(default=100, ge=1, le=1000)  # orderList Result; myItemList takes at most 100
    lookback_minutes: int = Field(default=10, ge=0)
    backfill_start: str = "2025-01-01T00:00:00Z"
    requests_per_second: float = Field(default=1.0, gt=0)  # Yahoo's ~1/s; + 1/rate after each answer (D102)
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=5, ge=0)

    _url = field_validator("base_url")(ShopifyConfig._url.__func__)


class AmazonConfig(_Strict):
    """Selling Partner API (Japan): LWA refresh-token credentials, Orders 2026-01-01, Listings Items 2021-08-01."""

    enabled: bool = True
    base_url: str = "http://127.0.0.1:8703"  # real: https://sellingpartnerapi-fe.amazon.com
    token_url: str = "http://127.0.0.1:8703/auth/o2/token"  # real: https://api.amazon.com/auth/o2/token
    client_id: str = "amzn1.application-oa2-client.sandbox"
    client_secret: str = Field(default="sandbox-client-secret", repr=False)
    refresh_token: str = Field(default="Atzr|sandbox-refresh-token", repr=False)
    seller_id: str = "A3SANDBOXSELLER"
    marketplace_id: str = "A1VC38T7YXB528"
    page_size: int = Field(default=100, ge=1, le=100)  # searchOrders maxResultsPerPage
    listings_page_size: int = Field(default=20, ge=1, le=20)  # searchListingsItems pageSize
    lookback_minutes: int = Field(default=10, ge=0)
    backfill_start: str = "2025-01-01T00:00:00Z"
    requests_per_second: float = Field(default=10.0, gt=0)  # channel-wide ceiling; the per-operation plans bind first
    rate_scale: float = Field(default=1.0, gt=0)  # multiplies the documented per-operation rates (sandbox tests)
    # ORDER_CHANGE notifications: the SQS queue they arrive on (None: notifications off, polling only).
    notifications_queue_url: str | None = None
    sqs_endpoint_url: str | None = None  # None: real AWS; the sandbox's moto server otherwise
    sqs_region: str = "us-west-2"
    notification_fetch_budget: int = Field(default=30, ge=0)  # getOrder calls per run (the burst)

    @field_validator("notifications_queue_url", "sqs_endpoint_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """`${VAR:-}` in ichigen.toml gives "" when the variable is unset: that means not configured."""
        return None if isinstance(value, str) and not value.strip() else value
    # Stock pushes of more than feed_threshold SKUs go through JSON_LISTINGS_FEEDs (D65).
    feed_threshold: int = Field(default=50, ge=0)
    feed_max_messages: int = Field(default=25_000, ge=1, le=25_000)
    feed_poll_seconds: float = Field(default=15.0, gt=0)  # getFeed every … while a feed is processed
    feed_wait_seconds: float = Field(default=1800.0, gt=0)  # then its outcome counts as unknown
    # A feed push of at most this many SKUs reads every SKU fresh first (D65: ~100 SKUs/s, 12,000 in the two
    # minutes searchOrders lags); a larger one reads only the SKUs that sold since the plan's read (D200).
    feed_fresh_read_max: int = Field(default=12_000, ge=0)
    # Orders created this long before the plan's read count too: Amazon's clock and its whole-second stamps are
    # not ours, and our own push's read time is its report's, minutes after Amazon applied it (D200).
    feed_sales_lookback_minutes: float = Field(default=30.0, ge=1)
    feed_sales_max_pages: int = Field(default=10, ge=1)  # searchOrders pages (burst 20); beyond: read every SKU
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=5, ge=0)

    @field_validator("base_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:8703")
        return value.rstrip("/")


class ChannelsConfig(_Strict):
    shopify: ShopifyConfig = ShopifyConfig()
    rakuten: RakutenConfig = RakutenConfig()
    amazon: AmazonConfig = AmazonConfig()
    yahoo: YahooConfig = YahooConfig()


class ErpConfig(_Strict):
    kind: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: Path = Path("var/sandbox/erp.sqlite")
    postgres_dsn: str = Field(default="postgresql://postgres@127.0.0.1:5432/ichigen_erp", repr=False)


class FilesConfig(_Strict):
    """File sources (ファイル連携: POS, B2B, carrier) picked up from `paths.inbox`. The encoding is not a
    setting: Japanese CSVs are read as CP932, never shift_jis (DECISIONS.md D45)."""

    settle_seconds: float = Field(default=5.0, ge=0)  # a file modified more recently may still be copied in
    max_files_per_run: int = Field(default=200, ge=1)  # the rest waits for the next run
    sensor_interval_seconds: int = Field(default=30, ge=1)  # how often Dagster looks into the inbox


class SchedulesConfig(_Strict):
    """Cron strings (UTC) per data type."""

    orders: str = "*/5 * * * *"
    stock: str = "*/5 * * * *"
    customers: str = "0 * * * *"
    products: str = "0 3 * * *"
    full_cycle: str = "*/15 * * * *"
    compaction: str = "7 * * * *"  # hourly, between the full cycles at :00 and :15 (a build holds the landing lock)


class CompactionConfig(_Strict):
    """Merging small landed batches (DECISIONS.md D82, D161): `ichigen compact` and the Dagster
    `compact_landing` job (schedule: `schedules.compaction`)."""

    older_than_minutes: float = Field(default=60.0, ge=0)  # newer batches are left alone
    max_rows: int = Field(default=100_000, ge=1)  # a batch above this is big enough already
    # How long the removal of merged originals looks for a moment no reader holds the landing lock; past it the
    # removal waits for the next run (a dbt build holds the lock for its whole run).
    lock_wait_seconds: float = Field(default=300.0, ge=0)


class StockConfig(_Strict):
    default_safety_stock: int = Field(default=0, ge=0)
    channel_buffer: dict[str, int] = Field(default_factory=lambda: {"shopify": 0})

    @field_validator("channel_buffer")
    @classmethod
    def _known_channels(cls, value: dict[str, int]) -> dict[str, int]:
        for slug, buffer in value.items():
            if slug not in SLUGS:
                raise ValueError(f"unknown channel {slug!r}; known: {', '.join(SLUGS)}")
            if buffer < 0:
                raise ValueError(f"buffer for {slug} must be >= 0")
        return value


class GuardRailsConfig(_Strict):
    max_zeroed_fraction: float = Field(default=0.5, ge=0, le=1)
    max_price_change_fraction: float = Field(default=0.3, ge=0)
    max_quantity: int = Field(default=100_000, gt=0)
    max_price_jpy: int = Field(default=10_000_000, gt=0)  # a price above this is a typo, not a price
    max_target_age_minutes: int = Field(default=120, gt=0)


class SandboxConfig(_Strict):
    seed: int = 42
    skus: int = Field(default=60, ge=1)
    customers: int = Field(default=200, ge=1)
    history_days: int = Field(default=30, ge=1)
    orders_per_day: int = Field(default=40, ge=0)
    shopify_port: int = Field(default=8701, ge=0, le=65535)
    # GraphQL cost points restored per second: 100 Standard, 200 Advanced, 1000 Plus (a backfill's pace).
    shopify_restore_rate: float = Field(default=1000.0, gt=0)
    sqs_port: int = Field(default=8706, ge=1, le=65535)  # the demo's SQS server (moto) for Amazon's ORDER_CHANGE
    # The embedded Yahoo store's request limit. A real store allows ~1/s and reads every order by one orderInfo
    # call, so the world's 30-day history would take minutes to backfill; the demo's store is a faster one, as
    # its Shopify is Plus (shopify_restore_rate). `ichigen once` and `ichigen demo` pace the client to match.
    yahoo_requests_per_second: float = Field(default=20.0, gt=0)


class Config(_Strict):
    paths: PathsConfig = PathsConfig()
    channels: ChannelsConfig = ChannelsConfig()
    erp: ErpConfig = ErpConfig()
    files: FilesConfig = FilesConfig()
    schedules: SchedulesConfig = SchedulesConfig()
    compaction: CompactionConfig = CompactionConfig()
    stock: StockConfig = StockConfig()
    guard_rails: GuardRailsConfig = GuardRailsConfig()
    sandbox: SandboxConfig = SandboxConfig()
    base_dir: Path = PROJECT_ROOT

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path)

    @property
    def landing_dir(self) -> Path:
        return self.resolve(self.paths.landing)

    @property
    def quarantine_dir(self) -> Path:
        return self.resolve(self.paths.quarantine)

    @property
    def warehouse_path(self) -> Path:
        return self.resolve(self.paths.warehouse)

    @property
    def serving_path(self) -> Path:
        return self.resolve(self.paths.serving)

    @property
    def push_log_dir(self) -> Path:
        return self.resolve(self.paths.push_log)

    @property
    def dagster_home(self) -> Path:
        return self.resolve(self.paths.dagster_home)

    @property
    def sandbox_dir(self) -> Path:
        return self.resolve(self.paths.sandbox)

    @property
    def inbox_dir(self) -> Path:
        return self.resolve(self.paths.inbox)

    @property
    def erp_sqlite_path(self) -> Path:
        return self.resolve(self.erp.sqlite_path)

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with dotted-key overrides, e.g. `{"channels.shopify.base_url": url}` (tests, CLI)."""
        data = self.model_dump()
        for dotted, value in changes.items():
            node = data
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        return _validate(data, source="overrides")


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is None:
                raise ConfigError(f"environment variable {name} is not set (referenced as ${{{name}}})")
            return default

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _validate(data: dict[str, Any], source: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"  {key}: {err['msg']}")
        raise ConfigError(f"invalid configuration in {source}:\n" + "\n".join(problems)) from None


def load_config(path: Path | str | None = None) -> Config:
    """Load and validate the config file (default: $ICHIGEN_CONFIG or ./ichigen.toml at the project root)."""
    path = Path(path or os.environ.get("ICHIGEN_CONFIG") or DEFAULT_CONFIG_PATH)
    if not path.exists():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    data = _expand_env(raw)
    data.setdefault("base_dir", str(path.resolve().parent))
    return _validate(data, source=str(path))
