"""A small serving copy for the dashboard tests, and helpers that compute the expected figures in SQL.

GIVEN a published serving DuckDB with `fct_daily_sales` for two channels over a few JST days (plus rows in
the previous periods and one far outside every window) and its `published.json`, WHEN the app runs under
Streamlit's AppTest with `ICHIGEN_SERVING_PATH` pointing at it, THEN what it shows equals what SQL says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboards" / "app.py"
SALES_VIEW = ROOT / "dashboards" / "views" / "sales.py"
JST = timezone(timedelta(hours=9))
CHANNELS = ("shopify", "rakuten")

Row = tuple[date, str, int, int, int]  # order_date_jst, channel, orders, units, gross_sales_jpy


def today_jst() -> date:
    return datetime.now(JST).date()


def sample_rows(today: date) -> list[Row]:
    """Ten recent days for both channels, a day in the previous 30-day window, one row far outside."""
    rows: list[Row] = []
    for back in range(10):
        for i, channel in enumerate(CHANNELS):
            orders = (back * 7 + i * 3) % 11 + 1
            units = orders * 2 + back % 3
            rows.append((today - timedelta(days=back), channel, orders, units, units * 1_980 + back * 17))
    rows.append((today - timedelta(days=45), "rakuten", 40, 90, 1_234_567))
    rows.append((today - timedelta(days=400), "shopify", 99, 99, 9_999_999))
    return rows


def write_serving(
    path: Path, rows: Iterable[Row], *, version: str | None, table: bool = True, marts: bool = True
) -> Path:
    """Build a DuckDB file elsewhere and `os.replace` it onto `path`, as `ichigen.publish` does.

    With `marts` (and `table`), the other marts and staging models the pages read are written too
    (`write_marts`), with the column names and types the dbt project builds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{datetime.now().timestamp()}.tmp"
    con = duckdb.connect(str(tmp))
    try:
        if table:
            con.execute(
                "create table fct_daily_sales (order_date_jst DATE, channel VARCHAR, orders BIGINT, "
                "units BIGINT, gross_sales_jpy BIGINT)"
            )
            rows = list(rows)
            if rows:
                insert(con, "fct_daily_sales", rows)
            if marts:
                write_marts(con, now_utc())
        else:
            con.execute("create table something_else (x INTEGER)")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    manifest = path.parent / "published.json"
    if version is not None:
        manifest.write_text(
            json.dumps({"version": version, "published_at": datetime.now(UTC).isoformat()}), encoding="utf-8"
        )
    elif manifest.exists():
        manifest.unlink()
    return path


# --- the other marts (stock, orders, push log, staging fetch times) -----------------------------------------
# Column names and types as the dbt project builds them (dbt_project/models/marts, staging/push_log).


def now_utc() -> datetime:
    return datetime.now(UTC)


DDL = """
create table fct_orders (order_key VARCHAR, channel VARCHAR, order_id VARCHAR, order_name VARCHAR,
    ordered_at_utc TIMESTAMP WITH TIME ZONE, order_date_jst DATE, updated_at_utc TIMESTAMP WITH TIME ZONE,
    status VARCHAR, channel_financial_status VARCHAR, channel_fulfillment_status VARCHAR, is_open BOOLEAN,
    total_jpy BIGINT, customer_id VARCHAR, units BIGINT);
create table fct_order_lines (order_line_key VARCHAR, order_key VARCHAR, channel VARCHAR, sku VARCHAR,
    quantity BIGINT, unit_price_jpy BIGINT, line_total_jpy BIGINT, order_date_jst DATE, order_status VARCHAR);
create table fct_stock_position (sku VARCHAR, warehouse_code VARCHAR, is_sellable BOOLEAN, on_hand BIGINT,
    updated_at_utc TIMESTAMP WITH TIME ZONE);
create table mart_stock_sync_lag (sale_date_jst DATE, channel VARCHAR, sales BIGINT, reflected BIGINT,
    not_yet_pushed BIGINT, lag_p50_s DOUBLE, lag_p95_s DOUBLE, lag_max_s DOUBLE);
create table mart_bundle_stock (bundle_sku VARCHAR, component_sku VARCHAR, component_quantity BIGINT,
    component_sellable_on_hand BIGINT, sets_from_component BIGINT, buildable_sets BIGINT, is_limiting BOOLEAN);
create table mart_channel_stock_targets (channel VARCHAR, sku VARCHAR, sellable_on_hand BIGINT,
    open_order_units BIGINT, safety_stock BIGINT, available_to_sell BIGINT, channel_buffer BIGINT,
    target_quantity BIGINT, explain VARCHAR);
create table mart_ingest_quarantine (source VARCHAR, entity VARCHAR, reason_kind VARCHAR, records BIGINT,
    occurrences BIGINT, first_quarantined_at TIMESTAMP WITH TIME ZONE, last_quarantined_at TIMESTAMP WITH TIME ZONE,
    example_reason VARCHAR, example_record_key VARCHAR);
create table mart_sync_drift (channel VARCHAR, sku VARCHAR, is_listed BOOLEAN, target_quantity BIGINT,
    channel_quantity BIGINT, drift_quantity BIGINT, status VARCHAR);
create table dim_customer (unified_customer_id VARCHAR, full_name VARCHAR, name_kana VARCHAR, sources VARCHAR[],
    member_count BIGINT, lifetime_orders BIGINT, is_b2b BOOLEAN, erp_rank VARCHAR);
create table mart_customer_rank (unified_customer_id VARCHAR, as_of_utc TIMESTAMP WITH TIME ZONE, window_days INTEGER,
    last_order_at_utc TIMESTAMP WITH TIME ZONE, recency_days INTEGER, frequency BIGINT, monetary_jpy BIGINT,
    r_score INTEGER, f_score INTEGER, m_score INTEGER, rfm_score INTEGER, rank_tier VARCHAR, tier_position INTEGER,
    previous_rank_tier VARCHAR, previous_tier_position INTEGER, is_b2b BOOLEAN, erp_rank VARCHAR);
create schema staging;
create table staging.stg_push_log__attempts (run_id VARCHAR, channel VARCHAR, field VARCHAR, sku VARCHAR,
    target_ref VARCHAR, old_value BIGINT, new_value BIGINT, status VARCHAR, error VARCHAR,
    planned_at TIMESTAMP WITH TIME ZONE, pushed_at TIMESTAMP WITH TIME ZONE, attempt INTEGER);
create table staging.stg_shopify__orders (order_id VARCHAR, order_name VARCHAR,
    created_at TIMESTAMP WITH TIME ZONE, total_jpy BIGINT, _batch_id VARCHAR,
    _fetched_at TIMESTAMP WITH TIME ZONE);
create table staging.stg_shopify__order_lines (line_item_id VARCHAR, order_id VARCHAR, sku VARCHAR,
    quantity BIGINT);
create table staging.stg_shopify__inventory_levels (inventory_level_key VARCHAR, sku VARCHAR,
    available BIGINT, _batch_id VARCHAR, _fetched_at TIMESTAMP WITH TIME ZONE);
create table staging.stg_erp__stock (sku VARCHAR, warehouse_code VARCHAR, on_hand BIGINT,
    updated_at TIMESTAMP WITH TIME ZONE, _batch_id VARCHAR, _fetched_at TIMESTAMP WITH TIME ZONE);
"""

# sku -> {warehouse: on_hand}; TKY and OSK are sellable, RET (returns) is not.
STOCK = {
    "TS-A": {"WH-TKY": 10, "WH-OSK": 5, "WH-RET": 3},
    "TS-B": {"WH-TKY": 0, "WH-OSK": 0},  # stock-out that sold recently
    "TS-C": {"WH-TKY": 4},  # sells fast: low cover
    "TS-D": {"WH-RET": 6},  # only in a non-sellable warehouse: stock-out
    "TS-E": {"WH-TKY": 50},  # never sold: cover ∞
}
SELLABLE = {"WH-TKY": True, "WH-OSK": True, "WH-RET": False}
SAFETY = {"TS-A": 1, "TS-B": 0, "TS-C": 2, "TS-E": 0}
BUFFERS = {"shopify": 1, "rakuten": 0}
BUNDLES = {"SET-AC": {"TS-A": 2, "TS-C": 1}, "SET-BE": {"TS-B": 1, "TS-E": 3}}  # SET-BE: TS-B is out
STATUSES = (
    "shipped",
    "awaiting_shipment",
    "pending_payment",
    "delivered",
    "cancelled",
    "shipped",
    "returned",
)
# Open orders at ages (hours) well away from the bucket edges (24/72/168 h) and the late edge (48 h).
OPEN_AGES_H = {"pending_payment": (3, 30, 100, 200), "awaiting_shipment": (5, 20, 40, 60, 90, 300)}


# unified customers: id, name, kana, sources, members, lifetime orders, b2b, erp rank | recency days, frequency,
# monetary, rfm score, tier now, tier 30 days ago
TIERS = ("ダイヤモンド", "ゴールド", "シルバー", "ブロンズ", "一般")  # best first
CUSTOMERS = [
    ("cu_a", "山田 花子", "ヤマダ ハナコ", ["shopify", "rakuten", "pos"], 4, 9, False, None, 3, 8, 96_000, 14,
     "ダイヤモンド", "ゴールド"),
    ("cu_b", "佐藤 健", "サトウ ケン", ["amazon"], 1, 1, False, None, 200, 1, 2_980, 4, "一般", "一般"),
    ("cu_c", "株式会社髙木商店", "タカギショウテン", ["erp", "b2b"], 2, 30, True, "A", 10, 12, 480_000, 15,
     "ダイヤモンド", "ダイヤモンド"),
    ("cu_d", "鈴木 一郎", "スズキ イチロウ", ["shopify", "yahoo"], 2, 3, False, None, 40, 3, 15_000, 9, "シルバー",
     "ゴールド"),
    ("cu_e", "田中 美咲", "タナカ ミサキ", ["rakuten"], 1, 2, False, None, 15, 2, 8_000, 8, "シルバー", None),
]


def sample_orders(now: datetime) -> tuple[list[tuple], list[tuple]]:
    """(fct_orders rows, fct_order_lines rows): 45 days of closed orders plus the open backlog."""
    orders: list[tuple] = []
    lines: list[tuple] = []
    skus = ("TS-A", "TS-B", "TS-C", "TS-C", "TS-A")

    def add(n: int, channel: str, ordered: datetime, status: str) -> None:
        key = f"{channel}:{n}"
        qty1, qty2 = n % 3 + 1, n % 2 + 1
        sku1, sku2 = skus[n % len(skus)], skus[(n + 2) % len(skus)]
        day = ordered.astimezone(JST).date()
        lines.append((f"{key}:1", key, channel, sku1, qty1, 1_980, qty1 * 1_980, day, status))
        lines.append((f"{key}:2", key, channel, sku2, qty2, 3_300, qty2 * 3_300, day, status))
        total = qty1 * 1_980 + qty2 * 3_300 + 500
        orders.append(
            (
                key,
                channel,
                str(n),
                f"#{1000 + n}",
                ordered,
                ordered.astimezone(JST).date(),
                ordered,
                status,
                "PAID",
                "UNFULFILLED",
                status in ("pending_payment", "awaiting_shipment"),
                total,
                f"cust-{n % 7}",
                qty1 + qty2,
            )
        )

    n = 0
    for i in range(60):  # one closed order every 18 h, alternating channels, over 45 days
        status = STATUSES[i % len(STATUSES)]
        if status in ("pending_payment", "awaiting_shipment"):
            status = "shipped"
        add(n, ("shopify", "rakuten")[i % 2], now - timedelta(hours=18 * i + 2), status)
        n += 1
    for status, ages in OPEN_AGES_H.items():
        for j, hours in enumerate(ages):
            add(n, ("shopify", "rakuten")[j % 2], now - timedelta(hours=hours), status)
            n += 1
    return orders, lines


def sample_targets() -> list[tuple]:
    rows = []
    for channel, buffer in BUFFERS.items():
        for sku, safety in SAFETY.items():
            sellable = sum(q for wh, q in STOCK[sku].items() if SELLABLE[wh])
            open_units = {"TS-A": 2, "TS-C": 1}.get(sku, 0)
            ats = max(sellable - open_units - safety, 0)
            raw = sellable - open_units - safety - buffer
            explain = (
                f"on_hand {sellable} − open {open_units} − safety {safety} − buffer {buffer} = {raw}"
                + (" → 0" if raw < 0 else "")
            )
            rows.append(
                (channel, sku, sellable, open_units, safety, ats, buffer, max(ats - buffer, 0), explain)
            )
    return rows


def sample_bundles() -> list[tuple]:
    """mart_bundle_stock rows for BUNDLES, computed as the model does from STOCK's sellable warehouses."""
    rows = []
    for bundle, components in BUNDLES.items():
        sets = {c: sum(q for wh, q in STOCK[c].items() if SELLABLE[wh]) // per for c, per in components.items()}
        for component, per in components.items():
            on_hand = sum(q for wh, q in STOCK[component].items() if SELLABLE[wh])
            rows.append((bundle, component, per, on_hand, sets[component], min(sets.values()),
                         sets[component] == min(sets.values())))
    return rows


def sample_intake(now: datetime) -> list[tuple]:
    """ERP intake rows of the push log (field erp_intake, DECISIONS.md D40): two orders posted, one held and
    then posted once its SKU mapped, one still held (logged again by the latest run)."""
    spec = [  # run, channel, order ref, status, error, hours ago
        ("i1", "shopify", "gid://shopify/Order/1", "applied", None, 5),
        ("i1", "rakuten", "386371-20261123-0000000001", "applied", None, 5),
        ("i1", "amazon", "503-0000001-0000001", "held", "line 1: listing AMZ-OLD-1 maps to no ERP SKU", 5),
        ("i1", "yahoo", "ichigen-select-10000001", "held", "line 2: listing old9000:old9000 maps to no ERP SKU", 5),
        ("i2", "amazon", "503-0000001-0000001", "applied", None, 1),
        ("i2", "yahoo", "ichigen-select-10000001", "held", "line 2: listing old9000:old9000 maps to no ERP SKU", 1),
    ]
    return [
        (run, channel, "erp_intake", None, ref, None, 1000, status, error, now - timedelta(hours=hours, seconds=30),
         now - timedelta(hours=hours) if status == "applied" else None, 1)
        for run, channel, ref, status, error, hours in spec
    ]


def sample_pushes(now: datetime) -> list[tuple]:
    """(status, channel, hours ago, error) for each push attempt."""
    spec = [
        ("applied", "shopify", 1, None),
        ("applied", "shopify", 2, None),
        ("applied", "shopify", 30, None),
        ("failed", "shopify", 3, "HTTP 503 after 5 retries"),
        ("stale", "shopify", 3, "CHANGE_FROM_QUANTITY_STALE"),
        ("refused", "shopify", 4, "mass zeroing: 60% of SKUs would go to 0 (cap 20%)"),
        ("refused", "shopify", 24 * 40, "absurd value: 99999 > cap 10000"),  # outside the default 30 days
        ("dry_run", "shopify", 5, None),
        ("applied", "rakuten", 2, None),
        ("refused", "rakuten", 6, "negative target -2"),
    ]
    rows = []
    for i, (status, channel, hours, error) in enumerate(spec):
        at = now - timedelta(hours=hours)
        rows.append(
            (
                f"run-{i // 3}",
                channel,
                "stock",
                f"TS-{'ABCDE'[i % 5]}",
                f"item{i}@loc1",
                5,
                i,
                status,
                error,
                at - timedelta(seconds=30),
                at,
                1,
            )
        )
    return rows


def insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """Rows into a typed table in one statement (DuckDB's executemany is slow: one statement a row)."""
    columns = [r[0] for r in con.execute(f"describe {table}").fetchall()]
    frame = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
    con.register("_rows", frame.to_arrow())
    try:
        con.execute(f"insert into {table} select * from _rows")
    finally:
        con.unregister("_rows")


def write_marts(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    con.execute(DDL)
    orders, lines = sample_orders(now)
    insert(con, "fct_orders", orders)
    insert(con, "fct_order_lines", lines)
    insert(
        con,
        "fct_stock_position",
        [
            (sku, wh, SELLABLE[wh], q, now - timedelta(hours=3))
            for sku, whs in STOCK.items()
            for wh, q in whs.items()
        ],
    )
    insert(con, "mart_channel_stock_targets", sample_targets())
    insert(con, "mart_bundle_stock", sample_bundles())
    today = now.astimezone(JST).date()
    insert(con, "mart_stock_sync_lag", [  # day of sale, channel, sales, pushed, not yet, p50, p95, max
        (today - timedelta(days=2), "rakuten", 12, 12, 0, 2.1, 4.8, 6.0),
        (today - timedelta(days=2), "shopify", 9, 9, 0, 1.2, 3.5, 3.9),
        (today - timedelta(days=1), "rakuten", 15, 14, 1, 2.4, 61.0, 75.2),
        (today, "shopify", 4, 3, 1, 1.0, 2.2, 2.3),
    ])
    insert(con, "staging.stg_push_log__attempts", sample_pushes(now) + sample_intake(now))
    insert(con, "dim_customer", [row[:8] for row in CUSTOMERS])
    insert(con, "mart_customer_rank", [
        (cid, now, 365, now - timedelta(days=rec), rec, freq, money, 0, 0, 0, score, tier, TIERS.index(tier) + 1,
         prev, TIERS.index(prev) + 1 if prev else None, b2b, erp)
        for cid, _n, _k, _s, _m, _l, b2b, erp, rec, freq, money, score, tier, prev in CUSTOMERS
    ])
    insert(con, "mart_ingest_quarantine", [
        ("shopify", "orders", "created_at … has no UTC offset", 3, 5, now - timedelta(days=2),
         now - timedelta(hours=1), "created_at '2026-11-01 10:00' has no UTC offset", "gid://shopify/Order/9"),
        ("pos", "sales", "JAN # has a wrong check digit", 1, 1, now - timedelta(hours=5),
         now - timedelta(hours=5), "JAN 4901234567891 has a wrong check digit", None),
    ])
    insert(con, "mart_sync_drift", [
        ("shopify", "TS-A", True, 8, 8, 0, "in_sync"),
        ("shopify", "TS-B", True, 0, 2, 2, "drift"),
        ("shopify", "TS-C", True, 1, None, None, "not_seen"),
        ("rakuten", "TS-A", True, 9, 6, -3, "drift"),
        ("rakuten", "TS-E", False, None, None, None, "not_listed"),
    ])
    con.execute(
        "insert into staging.stg_shopify__orders values ('1', '#1', ?, 1000, 'b1', ?), "
        "('2', '#2', ?, 2000, 'b2', ?)",
        [now, now - timedelta(minutes=50), now, now - timedelta(minutes=7)],
    )
    con.execute("insert into staging.stg_shopify__order_lines values ('l1', '1', 'TS-A', 1)")
    con.execute(
        "insert into staging.stg_shopify__inventory_levels values ('k', 'TS-A', 3, 'b3', ?)",
        [now - timedelta(minutes=12)],
    )
    con.execute(
        "insert into staging.stg_erp__stock values ('TS-A', 'WH-TKY', 10, ?, 'b4', ?)",
        [now, now - timedelta(hours=26)],
    )


def sql_one(path: Path, sql: str, params: list | dict | None = None) -> tuple:
    """One row of an independent SQL query over the serving file (attached read-only)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        con.execute("USE s")
        return con.execute(sql, params or []).fetchone()
    finally:
        con.close()


def sql_all(path: Path, sql: str, params: list | dict | None = None) -> list[tuple]:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        con.execute("USE s")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@dataclass(frozen=True)
class Figures:
    gross: int
    orders: int
    units: int


def sql_figures(path: Path, start: date, end: date, channels: Iterable[str]) -> Figures:
    """The headline figures, computed straight from the file with SQL (independent of the app)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        gross, orders, units = con.execute(
            "select coalesce(sum(gross_sales_jpy), 0), coalesce(sum(orders), 0), coalesce(sum(units), 0) "
            "from s.fct_daily_sales where order_date_jst between ? and ? and list_contains(?, channel)",
            [start, end, list(channels)],
        ).fetchone()
    finally:
        con.close()
    return Figures(int(gross), int(orders), int(units))


def sql_daily_rows(path: Path, start: date, end: date, channels: Iterable[str]) -> int:
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{path}' AS s (READ_ONLY)")
        (n,) = con.execute(
            "select count(*) from (select distinct order_date_jst, channel from s.fct_daily_sales "
            "where order_date_jst between ? and ? and list_contains(?, channel))",
            [start, end, list(channels)],
        ).fetchone()
    finally:
        con.close()
    return int(n)


def yen(value: int) -> str:
    return f"-¥{-value:,}" if value < 0 else f"¥{value:,}"


class Kit:
    """The helpers above, handed to tests as the `kit` fixture (no test imports conftest as a module)."""

    app = APP
    sales_view = SALES_VIEW
    channels = CHANNELS
    today = staticmethod(today_jst)
    sample_rows = staticmethod(sample_rows)
    write_serving = staticmethod(write_serving)
    figures = staticmethod(sql_figures)
    daily_rows = staticmethod(sql_daily_rows)
    yen = staticmethod(yen)
    one = staticmethod(sql_one)
    all = staticmethod(sql_all)
    now = staticmethod(now_utc)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit


@pytest.fixture
def serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A published serving copy with the sample rows; `ICHIGEN_SERVING_PATH` points at it."""
    path = write_serving(
        tmp_path / "serving" / "ichigen.duckdb", sample_rows(today_jst()), version="v-test-1"
    )
    monkeypatch.setenv("ICHIGEN_SERVING_PATH", str(path))
    return path


@pytest.fixture
def run_app() -> Callable[..., AppTest]:
    """Run the router (`dashboards/app.py`) once and return the AppTest for further interaction."""

    def run(script: Path = APP, **query_params: str) -> AppTest:
        at = AppTest.from_file(str(script), default_timeout=30)
        for key, value in query_params.items():
            at.query_params[key] = value
        return at.run()

    return run
