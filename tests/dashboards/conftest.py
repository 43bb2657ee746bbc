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


def write_serving(path: Path, rows: Iterable[Row], *, version: str | None, table: bool = True) -> Path:
    """Build a DuckDB file elsewhere and `os.replace` it onto `path`, as `ichigen.publish` does."""
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
                con.executemany("insert into fct_daily_sales values (?, ?, ?, ?, ?)", rows)
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
