"""Ad-hoc SQL on the serving copy for the SQL page: read-only, time-limited, size-limited.

Each query gets its own connection (`dashboards.data.open_read_only`: an in-memory database with the serving
copy attached READ_ONLY), locked down before the user's SQL runs:
- `enable_external_access = false` (no reading or writing files, no ATTACH/COPY TO), then
  `lock_configuration = true` (the SQL cannot switch it back);
- only reading statements are accepted (SELECT — which includes DESCRIBE, SHOW, SUMMARIZE, FROM … —,
  EXPLAIN, PRAGMA); anything else is refused before it runs, so not even the in-memory scratch database is
  written. A write to the serving copy would fail anyway: it is attached READ_ONLY.
- a timer thread calls `con.interrupt()` after `timeout_s`; the query stops with `QueryTimeout`;
- at most `max_rows` rows are fetched (`truncated` says when there were more).
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from dashboards.data import open_read_only

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ROWS = 10_000
MEMORY_LIMIT = "2GB"
READING = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN, duckdb.StatementType.PRAGMA})


class QueryError(Exception):
    """The query did not give a result; `str()` is DuckDB's message (or the refused statement type)."""


class QueryTimeout(QueryError):
    pass


class QueryRefused(QueryError):
    """A statement that would write or change something; `kind` is its statement type (INSERT, CREATE, …)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class EmptyQuery(QueryError):
    pass


@dataclass(frozen=True)
class Result:
    frame: pl.DataFrame
    truncated: bool
    seconds: float


def connect(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A locked-down read-only connection to the serving copy at `path`."""
    con = open_read_only(path)
    try:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def check_reading(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise `EmptyQuery`, `QueryRefused` or `QueryError` (syntax) unless every statement only reads."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from exc
    if not statements:
        raise EmptyQuery("")
    for statement in statements:
        if statement.type not in READING:
            raise QueryRefused(statement.type.name)


def run(
    path: Path | str,
    sql: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Result:
    if not sql.strip():
        raise EmptyQuery("")
    started = time.monotonic()
    con = connect(path)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.daemon = True
    try:
        check_reading(con, sql)
        timer.start()
        try:
            con.execute(sql)
            if con.description is None:
                return Result(pl.DataFrame(), False, time.monotonic() - started)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "extra copy": fine for ≤ max_rows rows
                reader = con.to_arrow_reader(min(max_rows + 1, 2048))
            batches, rows = [], 0
            for batch in reader:
                batches.append(batch)
                rows += batch.num_rows
                if rows > max_rows:
                    break
        except duckdb.InterruptException as exc:
            raise QueryTimeout(str(exc)) from exc
        except duckdb.Error as exc:
            if timer.finished.is_set() and "interrupt" in str(exc).lower():
                raise QueryTimeout(str(exc)) from exc
            raise QueryError(str(exc)) from exc
        table = pa.Table.from_batches(batches, schema=reader.schema)
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return Result(frame.head(max_rows), rows > max_rows, time.monotonic() - started)
    finally:
        timer.cancel()
        con.close()
