"""Publishing never waits for readers: a reader of the serving copy does not block replacing it.

GIVEN a reader holding the serving file open, WHEN the publisher writes a new DuckDB under a temp name and
`os.replace`s it onto the serving path, THEN the old reader keeps reading the old data and a new connection
(as `dashboards.data` opens them) reads the new data.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from dashboards import data


def build(path: Path, marker: int) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "create table fct_daily_sales as select current_date as order_date_jst, 'shopify' as channel, "
            "1::BIGINT as orders, 1::BIGINT as units, ?::BIGINT as gross_sales_jpy",
            [marker],
        )
        con.execute("CHECKPOINT")
    finally:
        con.close()


def marker(con: duckdb.DuckDBPyConnection) -> int:
    return int(data.read(con, "select gross_sales_jpy from fct_daily_sales")["gross_sales_jpy"][0])


@pytest.mark.parametrize(
    "open_old_reader",
    [data.open_read_only, lambda p: duckdb.connect(str(p), read_only=True)],
    ids=["dashboards-reader", "plain-read-only-reader"],
)
def test_a_reader_does_not_block_replacing_the_serving_copy(
    tmp_path: Path, open_old_reader: Callable[[Path], duckdb.DuckDBPyConnection]
) -> None:
    serving = tmp_path / "ichigen.duckdb"
    build(serving, 100)
    old = open_old_reader(serving)
    try:
        assert old.execute("select gross_sales_jpy from fct_daily_sales").fetchone() == (100,)

        tmp = tmp_path / ".ichigen.duckdb.new.tmp"
        build(tmp, 200)
        os.replace(tmp, serving)  # does not wait for, or fail because of, the open reader

        assert old.execute("select gross_sales_jpy from fct_daily_sales").fetchone() == (100,)
        new = data.open_read_only(serving)
        try:
            assert marker(new) == 200
            assert old.execute("select gross_sales_jpy from fct_daily_sales").fetchone() == (100,)
        finally:
            new.close()
    finally:
        old.close()


def test_the_dashboards_connection_is_read_only(tmp_path: Path) -> None:
    serving = tmp_path / "ichigen.duckdb"
    build(serving, 1)
    con = data.open_read_only(serving)
    try:
        with pytest.raises(duckdb.Error, match="read-only|read only"):
            con.execute("insert into fct_daily_sales select * from fct_daily_sales")
        cur = con.cursor()
        try:
            with pytest.raises(duckdb.Error):
                cur.execute("create table serving.main.x (a INTEGER)")
        finally:
            cur.close()
    finally:
        con.close()


def test_why_not_plain_connect_in_a_long_running_process(tmp_path: Path) -> None:
    """Measured fact behind `data.open_read_only` (duckdb 2.0): DuckDB caches database instances per path
    inside a process, so while any connection to the old file is open, `duckdb.connect(path, read_only=True)`
    returns the *old* file even after a new one was renamed onto the path. If this starts failing, DuckDB has
    changed and the workaround could go."""
    serving = tmp_path / "ichigen.duckdb"
    build(serving, 100)
    old = duckdb.connect(str(serving), read_only=True)
    try:
        tmp = tmp_path / ".new.tmp"
        build(tmp, 200)
        os.replace(tmp, serving)
        again = duckdb.connect(str(serving), read_only=True)
        try:
            assert again.execute("select gross_sales_jpy from fct_daily_sales").fetchone() == (100,)
        finally:
            again.close()
    finally:
        old.close()
    fresh = duckdb.connect(str(serving), read_only=True)  # once every old connection is closed: the new file
    try:
        assert fresh.execute("select gross_sales_jpy from fct_daily_sales").fetchone() == (200,)
    finally:
        fresh.close()


def test_each_query_is_fetched_to_the_end_on_its_own_cursor(tmp_path: Path) -> None:
    serving = tmp_path / "ichigen.duckdb"
    build(serving, 7)
    con = data.open_read_only(serving)
    try:
        for _ in range(3):  # DuckDB 2.x refuses new work on a connection with a half-read result
            assert marker(con) == 7
        assert con.execute("select 1").fetchone() == (1,)
    finally:
        con.close()
