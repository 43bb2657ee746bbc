"""The dashboards' only way to the data: the published, read-only serving copy (DECISIONS.md D6).

- Where: `ichigen.config.load_config().serving_path`, or `$ICHIGEN_SERVING_PATH` (tests, ad-hoc runs).
- Which version: `published.json` beside the serving file (`{"version": ..., "published_at": ...}`); if it is
  missing or unreadable, the file's mtime stands in. Together with the file's inode, size and mtime this makes
  the *generation* that keys both caches, so after a publish the next rerun reconnects and re-queries.
- How: one read-only connection per generation (`st.cache_resource`), a fresh `cursor()` per query, results
  fetched whole into a Polars frame, query results cached per (generation, sql, params) (`st.cache_data`).
  Never the module-level default connection (DuckDB 2.x shares its unfinished-result state process-wide).

Why `ATTACH … (READ_ONLY)` into an in-memory database instead of `duckdb.connect(path, read_only=True)`:
DuckDB caches database instances per path inside a process. While any connection to the old serving file is
alive (another session's cached connection, a cursor mid-query), `duckdb.connect(path, read_only=True)` hands
back that cached instance — the *old* file, even after the publisher has `os.replace`d a new one onto the
path. An in-memory database is never shared, so attaching the path opens the file that is there now. The
attached catalog is read-only, just as `read_only=True` would be (tests/dashboards/test_dashboard_serving_swap.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import streamlit as st

from dashboards.i18n import t
from ichigen.config import ConfigError, load_config

ENV_SERVING_PATH = "ICHIGEN_SERVING_PATH"
MANIFEST_NAME = "published.json"
CATALOG = "serving"


class ServingError(RuntimeError):
    """The serving copy could not be opened or queried; the message is ready to show (current language)."""


@dataclass(frozen=True)
class Published:
    """The serving copy now in place."""

    path: Path
    version: str
    published_at: datetime | None  # aware; from published.json, else the file's mtime
    from_manifest: bool  # False: no (readable) published.json, version and time come from the file's mtime
    generation: tuple[str, str, int, int, int]  # cache key: path, version, inode, mtime_ns, size

    def query(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        """Run one read-only query against this version; the whole result, as a Polars frame (cached)."""
        try:
            return _cached_query(self.generation, sql, params or {})
        except duckdb.Error as exc:
            raise ServingError(t("data.query_error", error=exc)) from exc


def serving_path() -> Path:
    """`$ICHIGEN_SERVING_PATH` if set, else the configured `paths.serving` (may raise `ConfigError`)."""
    override = os.environ.get(ENV_SERVING_PATH)
    if override:
        return Path(override).expanduser().resolve()
    return load_config().serving_path


def manifest_path(path: Path) -> Path:
    return path.parent / MANIFEST_NAME


def published(path: Path | None = None) -> Published | None:
    """What is published at `path` (default: `serving_path()`), or None before the first publish."""
    path = path or serving_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    version: str | None = None
    published_at: datetime | None = None
    try:
        manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
        if manifest.get("version") not in (None, ""):
            version = str(manifest["version"])
            published_at = _parse_timestamp(manifest.get("published_at"))
    except (OSError, ValueError, AttributeError):
        pass  # no manifest, or not one we can read: fall back to the file's own mtime
    from_manifest = version is not None
    if version is None:
        version = f"mtime-{stat.st_mtime_ns}"
    if published_at is None:
        published_at = datetime.fromtimestamp(stat.st_mtime, UTC)
    generation = (str(path), version, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return Published(path, version, published_at, from_manifest, generation)


def require_published() -> Published | None:
    """The published copy, or None after showing the user why there is none (never raises)."""
    try:
        path = serving_path()
    except ConfigError as exc:
        st.error(t("data.config_error", error=exc), icon=":material/error:")
        return None
    current = published(path)
    if current is None:
        st.info(
            f"**{t('data.not_published.title')}**\n\n{t('data.not_published.body', path=path)}",
            icon=":material/hourglass_empty:",
        )
    return current


def open_read_only(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A new read-only connection to the serving file now at `path` (see the module docstring)."""
    con = duckdb.connect(":memory:")
    try:
        literal = str(path).replace("'", "''")
        con.execute(f"ATTACH '{literal}' AS {CATALOG} (READ_ONLY)")
        con.execute(f"USE {CATALOG}")
    except BaseException:
        con.close()
        raise
    return con


def read(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
    """One query on its own cursor, fetched to the end (DuckDB 2.x: no half-read result left behind)."""
    cur = con.cursor()
    try:
        cur.execute(f"USE {CATALOG}")  # a cursor is a new connection: it does not inherit USE
        return cur.sql(sql, params=params or None).pl()
    finally:
        cur.close()


@st.cache_resource(max_entries=2, show_spinner=False)
def _connection(generation: tuple[str, str, int, int, int]) -> duckdb.DuckDBPyConnection:
    # Keyed by generation: a new publish gets a new connection; the previous one is evicted and closed by
    # the garbage collector once no query holds it any more (closing it here could cut a running query).
    return open_read_only(generation[0])


@st.cache_data(max_entries=512, ttl=timedelta(hours=12), show_spinner=False)
def _cached_query(
    generation: tuple[str, str, int, int, int], sql: str, params: dict[str, Any]
) -> pl.DataFrame:
    return read(_connection(generation), sql, params)


def _parse_timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
