"""The landing zone (DECISIONS.md D4): immutable Parquet batches per source/entity/date, written atomically.

    <root>/<slug>/<entity>/date=YYYY-MM-DD/<batch_id>.parquet
    <root>/_quarantine/<slug>/<entity>/date=YYYY-MM-DD/<batch_id>.parquet

A batch is written to `.<batch_id>.parquet.tmp` in the same folder, fsynced, then `os.replace`d (and the
folder fsynced), so a reader sees a whole batch or none; a leftover temp file from a crash is ignored by every
reader here and by dbt's `**/*.parquet` glob. Files are never modified after the rename.

The incremental cursor is max(cursor_field) over what has landed — read from each file's Parquet column
statistics (footer only; cached per immutable file) — never a separate state file, so a crash before the
rename cannot make the cursor run ahead of the data.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from ingestion.common import IngestResult, RecordError, parse_utc, raw_json, utcnow
from ingestion.errors import IngestionError
from ingestion.landing_lock import (
    READ_WAIT_SECONDS,
    LandingLockTimeout,
    LockHold,
    compaction_lock,
    read_lock,
    removal_lock,
)
from ingestion.schemas import META_COLUMNS, QUARANTINE_COLUMNS, SCHEMAS, EntitySchema

BATCH_METADATA_KEY = "ichigen.batch"
QUARANTINE_DIR = "_quarantine"
log = logging.getLogger(__name__)

TARGETED = "targeted"  # batch metadata `mode` of a fetch of named records (webhook follow-up): not a cursor


@dataclass(frozen=True)
class BatchResult:
    """One write. `path` is None and `row_count` 0 when there was nothing to land (no file is written)."""

    batch_id: str
    path: Path | None
    row_count: int
    cursor_from: datetime | None
    cursor_to: datetime | None


@dataclass(frozen=True)
class QuarantineRecord:
    record_key: str | None
    reason: str
    raw: Any  # the record as the source sent it (JSON text, or anything JSON-serialisable)


def new_batch_id(fetched_at: datetime) -> str:
    """`YYYYMMDDTHHMMSSffffffZ-<8 hex>`: sorts by fetch time, unique without coordination."""
    return f"{fetched_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"


def _batch_date(batch_id: str, fallback: datetime) -> str:
    try:
        return datetime.strptime(batch_id[:8], "%Y%m%d").strftime("%Y-%m-%d")
    except ValueError:
        return fallback.astimezone(UTC).strftime("%Y-%m-%d")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _plain_type(dtype: pa.DataType) -> pa.DataType:
    """Polars exports large_string / large_list; land the plain Arrow types every reader maps the same way."""
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_large_list(dtype) or pa.types.is_list(dtype):
        return pa.list_(pa.field("element", _plain_type(dtype.value_type)))
    if pa.types.is_struct(dtype):
        return pa.struct([pa.field(f.name, _plain_type(f.type), f.nullable) for f in dtype])
    return dtype


def _landed_schema(columns: Mapping[str, pl.DataType]) -> pa.Schema:
    """The Arrow schema a batch of these polars column types lands with (plain string / list types)."""
    return _landed_schema_of(tuple(columns.items()))


@cache
def _landed_schema_of(columns: tuple[tuple[str, pl.DataType], ...]) -> pa.Schema:
    return _plain_table(pl.DataFrame(schema=dict(columns)).to_arrow()).schema


def _plain_table(table: pa.Table) -> pa.Table:
    schema = pa.schema([pa.field(f.name, _plain_type(f.type), f.nullable) for f in table.schema],
                       metadata=table.schema.metadata)
    return table if schema.equals(table.schema, check_metadata=True) else table.cast(schema)


# The source's record as JSON text (`_raw` of a batch, `raw` of the quarantine): unique per row and never filtered
# on, so no dictionary (always abandoned after the first page) and no min/max statistics (whole records copied
# into the footer). Measured: ~4% less write time and ~5% smaller files on Shopify orders (DECISIONS.md D121).
RAW_TEXT_COLUMNS = ("_raw", "raw")
ZSTD_LEVEL = 1  # pyarrow's default, stated: level 3 wrote ~20% slower for ~3% smaller files (D121)


def write_parquet_atomic(frame: pl.DataFrame | pa.Table, path: Path, *,
                         metadata: Mapping[str, str] | None = None) -> Path:
    """Write `frame` to `path` as a new immutable file: `.<name>.tmp` beside it, fsync, `os.replace`, fsync
    the folder. Refuses to overwrite an existing file. `metadata` goes into the Parquet key-value metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"{path} exists; landed files are immutable")
    tmp = path.with_name(f".{path.name}.tmp")
    table = _plain_table(frame if isinstance(frame, pa.Table) else frame.to_arrow())
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged.update({k.encode(): v.encode() for k, v in metadata.items()})
        table = table.replace_schema_metadata(merged)
    indexed = [name for name in table.column_names if name not in RAW_TEXT_COLUMNS]
    try:
        with open(tmp, "wb") as handle:
            pq.write_table(table, handle, compression="zstd", compression_level=ZSTD_LEVEL,
                           use_dictionary=indexed, write_statistics=indexed)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise TypeError(f"cursor value {value!r} is not a timestamp")


class LandingZone:
    """The landing zone under `root` (normally `Config.landing_dir`)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._max_cache: dict[tuple[Path, str], datetime | None] = {}
        self._mode_cache: dict[Path, str | None] = {}
        self._cache_lock = threading.Lock()

    # -- layout -------------------------------------------------------------------------------------
    def entity_dir(self, source: str, entity: str) -> Path:
        return self.root / source / entity

    def quarantine_dir(self, source: str, entity: str) -> Path:
        return self.root / QUARANTINE_DIR / source / entity

    @staticmethod
    def _files(folder: Path) -> list[Path]:
        """Whole batches only: `date=*/<id>.parquet`, never the `.…parquet.tmp` of an unfinished write."""
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.glob("date=*/*.parquet") if not p.name.startswith("."))

    def batch_files(self, source: str, entity: str) -> list[Path]:
        return self._files(self.entity_dir(source, entity))

    def quarantine_files(self, source: str, entity: str) -> list[Path]:
        return self._files(self.quarantine_dir(source, entity))

    new_batch_id = staticmethod(new_batch_id)

    def reading(self, what: str, *, wait_seconds: float = READ_WAIT_SECONDS) -> AbstractContextManager[LockHold]:
        """Hold the zone's read lock while listing and reading batches (`ingestion.landing_lock`, D160): a
        compaction cannot remove a listed batch before the block ends. `what` names the reader in errors."""
        return read_lock(self.root, what, wait_seconds=wait_seconds)

    # -- writing ------------------------------------------------------------------------------------
    def write_batch(
        self,
        source: str,
        entity: str,
        rows: Sequence[Mapping[str, Any]] | pl.DataFrame | pa.Table,
        *,
        schema: Mapping[str, pl.DataType],
        cursor_field: str,
        fetched_at: datetime,
        batch_id: str | None = None,
        cursor_from: datetime | None = None,
        mode: str | None = None,
    ) -> BatchResult:
        """Land one batch. `rows` carry the typed columns of `schema` plus `_raw` (the source's record as JSON
        text) — as dicts, a polars frame or an Arrow table (the columnar mappers' output, written as it is when
        its types are the landed ones); `_batch_id` and `_fetched_at` are added here. Zero rows write nothing.

        `cursor_from` is the lower bound the fetch used (recorded in the metadata); `cursor_to` is computed as
        max(cursor_field) over the rows. `mode="targeted"` marks a fetch of named records (a webhook's
        follow-up): it lands like any batch but never moves the incremental cursor (`cursor`), because records
        updated before it may still be missing (DECISIONS.md D13).
        """
        fetched_at = _as_utc(fetched_at) or utcnow()
        batch_id = batch_id or new_batch_id(fetched_at)
        if cursor_field not in schema:
            raise ValueError(f"{source}/{entity}: cursor field {cursor_field!r} is not in the schema")
        typed = {name: dtype for name, dtype in schema.items() if name not in META_COLUMNS}
        table = self._table(source, entity, rows, typed)
        if table.num_rows == 0:
            return BatchResult(batch_id, None, 0, cursor_from, None)
        n = table.num_rows
        meta_columns = {  # via polars: a pyarrow scalar from a Python value imports pandas (seconds, cold)
            "_batch_id": pl.repeat(batch_id, n, dtype=pl.String, eager=True),
            "_fetched_at": pl.repeat(fetched_at, n, dtype=META_COLUMNS["_fetched_at"], eager=True),
        }
        landed = _landed_schema({**typed, **META_COLUMNS})
        table = pa.Table.from_arrays(
            [table.column(name) if name in table.column_names else meta_columns[name].to_arrow()
             for name in landed.names], names=landed.names).cast(landed)
        cursor_to = _as_utc(pl.Series(table.column(cursor_field)).max())
        path = self.entity_dir(source, entity) / f"date={fetched_at:%Y-%m-%d}" / f"{batch_id}.parquet"
        meta = {
            "batch_id": batch_id,
            "source": source,
            "entity": entity,
            "fetched_at": fetched_at.isoformat(),
            "cursor_field": cursor_field,
            "cursor_from": cursor_from.astimezone(UTC).isoformat() if cursor_from else None,
            "cursor_to": cursor_to.isoformat() if cursor_to else None,
            "row_count": n,
        }
        if mode is not None:
            meta["mode"] = mode
        write_parquet_atomic(table, path, metadata={BATCH_METADATA_KEY: json.dumps(meta)})
        with self._cache_lock:
            self._max_cache[(path, cursor_field)] = cursor_to
            self._mode_cache[path] = mode
        return BatchResult(batch_id, path, n, cursor_from, cursor_to)

    @staticmethod
    def _table(source: str, entity: str, rows: Sequence[Mapping[str, Any]] | pl.DataFrame | pa.Table,
               typed: Mapping[str, pl.DataType]) -> pa.Table:
        """`rows` as an Arrow table of the typed columns then `_raw`, in the landed Arrow types."""
        wanted = {**typed, "_raw": pl.String()}
        if not isinstance(rows, pa.Table):
            return _plain_table(LandingZone._frame(source, entity, rows, wanted).to_arrow())
        extra = set(rows.column_names) - set(wanted) - set(META_COLUMNS)
        if extra or "_raw" not in rows.column_names:
            raise ValueError(f"{source}/{entity}: table columns do not match the schema "
                             f"(unexpected {sorted(extra)}; `_raw` required)")
        schema = _landed_schema(wanted)
        columns = [rows.column(name) if name in rows.column_names else pa.nulls(rows.num_rows, schema.field(name).type)
                   for name in schema.names]
        try:  # a no-op when the types already are the landed ones
            return pa.Table.from_arrays(columns, names=schema.names).cast(schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ValueError(f"{source}/{entity}: table does not fit the schema: {exc}") from exc

    @staticmethod
    def _frame(source: str, entity: str, rows: Sequence[Mapping[str, Any]] | pl.DataFrame,
               wanted: Mapping[str, pl.DataType]) -> pl.DataFrame:
        if isinstance(rows, pl.DataFrame):
            extra = set(rows.columns) - set(wanted) - set(META_COLUMNS)
            if extra or "_raw" not in rows.columns:
                raise ValueError(f"{source}/{entity}: frame columns do not match the schema "
                                 f"(unexpected {sorted(extra)}; `_raw` required)")
            missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in wanted.items()
                       if name not in rows.columns]
            try:
                return rows.with_columns(missing).select(
                    [pl.col(name).cast(dtype, strict=True) for name, dtype in wanted.items()]
                )
            except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as exc:
                raise ValueError(f"{source}/{entity}: frame does not fit the schema: {exc}") from exc
        if not rows:
            return pl.DataFrame(schema=wanted)
        for row in rows:
            extra = set(row) - set(wanted)
            if extra:
                raise ValueError(f"{source}/{entity}: row has columns outside the schema: {sorted(extra)}")
            if not isinstance(row.get("_raw"), str):
                raise ValueError(f"{source}/{entity}: every row needs `_raw` (the source record as JSON text)")
        try:
            return pl.DataFrame(list(rows), schema=wanted, strict=True)
        except (pl.exceptions.ComputeError, pl.exceptions.SchemaError, TypeError) as exc:
            raise ValueError(f"{source}/{entity}: rows do not fit the schema: {exc}") from exc

    def quarantine(
        self,
        source: str,
        entity: str,
        batch_id: str,
        records: Iterable[QuarantineRecord | tuple[str | None, str, Any]],
        *,
        quarantined_at: datetime | None = None,
    ) -> Path | None:
        """Write records that could not be landed, with the reason, to `_quarantine/…/<batch_id>.parquet`.
        Returns the file, or None when there were no records."""
        when = _as_utc(quarantined_at) or utcnow()
        rows = []
        for record in records:
            key, reason, raw = (record.record_key, record.reason, record.raw) if isinstance(
                record, QuarantineRecord) else record
            rows.append({
                "source": source,
                "entity": entity,
                "batch_id": batch_id,
                "record_key": None if key is None else str(key),
                "reason": reason,
                "raw": raw if isinstance(raw, str) else raw_json(raw),
                "quarantined_at": when,
            })
        if not rows:
            return None
        frame = pl.DataFrame(rows, schema=QUARANTINE_COLUMNS, strict=True)
        path = self.quarantine_dir(source, entity) / f"date={_batch_date(batch_id, when)}" / f"{batch_id}.parquet"
        return write_parquet_atomic(frame, path)

    # -- reading ------------------------------------------------------------------------------------
    def _file_max(self, path: Path, field: str) -> datetime | None:
        key = (path, field)
        with self._cache_lock:
            if key in self._max_cache:
                return self._max_cache[key]
        found: datetime | None = None
        exact = True
        metadata = pq.ParquetFile(path).metadata
        for g in range(metadata.num_row_groups):
            group = metadata.row_group(g)
            for c in range(group.num_columns):
                column = group.column(c)
                if column.path_in_schema != field:
                    continue
                stats = column.statistics
                if stats is None:
                    exact = False
                elif stats.has_min_max:
                    value = _as_utc(stats.max)
                    found = value if found is None or (value and value > found) else found
                elif stats.null_count != column.num_values:
                    exact = False
        if not exact:  # no statistics: read the one column
            found = _as_utc(pl.read_parquet(path, columns=[field]).get_column(field).max())
        with self._cache_lock:
            self._max_cache[key] = found
        return found

    def _mode(self, path: Path) -> str | None:
        with self._cache_lock:
            if path in self._mode_cache:
                return self._mode_cache[path]
        mode = self.batch_metadata(path).get("mode")
        with self._cache_lock:
            self._mode_cache[path] = mode
        return mode

    def cursor(self, source: str, entity: str, field: str) -> datetime | None:
        """max(field) over every landed batch of source/entity, or None when nothing has landed. Targeted
        batches (`mode="targeted"`) do not count."""
        best: datetime | None = None
        with self.reading(f"cursor {source}/{entity}"):
            for path in self.batch_files(source, entity):
                if self._mode(path) == TARGETED:
                    continue
                value = self._file_max(path, field)
                if value is not None and (best is None or value > best):
                    best = value
        return best

    def batch_metadata(self, path: Path) -> dict[str, Any]:
        raw = (pq.read_schema(path).metadata or {}).get(BATCH_METADATA_KEY.encode())
        return json.loads(raw) if raw else {}

    def landed(self, source: str, entity: str, schema: Mapping[str, pl.DataType] | None = None) -> pl.LazyFrame:
        """Every landed batch of source/entity as one LazyFrame (duplicates across batches included: staging
        keeps the latest version per key). Empty, but typed, when nothing has landed yet. Collect it inside
        `reading()` (or use `select`): the files are listed now and opened at collect."""
        if schema is None and (source, entity) in SCHEMAS:
            schema = SCHEMAS[(source, entity)].landed_columns
        files = self.batch_files(source, entity)
        if not files:
            return pl.LazyFrame(schema=dict(schema or META_COLUMNS))
        if schema is None:
            schema = pl.read_parquet_schema(files[-1])
        return pl.scan_parquet(files, schema=dict(schema), hive_partitioning=False, missing_columns="insert",
                               extra_columns="ignore")

    def select(self, source: str, entity: str, *columns: str | pl.Expr,
               schema: Mapping[str, pl.DataType] | None = None) -> pl.DataFrame:
        """`columns` of every landed batch of source/entity, read under the read lock (D160). Use it, or
        `reading()` around `landed(...)…collect()`: a LazyFrame opens its files only when collected."""
        with self.reading(f"landed {source}/{entity}"):
            return self.landed(source, entity, schema).select(*columns).collect()

    def quarantined(self, source: str, entity: str) -> pl.LazyFrame:
        files = self.quarantine_files(source, entity)
        if not files:
            return pl.LazyFrame(schema=QUARANTINE_COLUMNS)
        return pl.scan_parquet(files, schema=QUARANTINE_COLUMNS, hive_partitioning=False)


@dataclass(frozen=True)
class Compaction:
    """One compacted group: the batch files it replaced and the one batch that holds their rows now."""

    source: str
    entity: str
    path: Path
    replaced: tuple[str, ...]  # batch ids
    row_count: int


@dataclass
class CompactionRun:
    """What one compaction did (DECISIONS.md D82, D161). `pending` > 0 means the removal was skipped (the lock
    was not free in time, `skipped` says why): the rows are landed twice until the next run removes them."""

    merged: list[Compaction] = field(default_factory=list)
    removed: int = 0  # batch files unlinked: originals of this run's merges and leftovers of earlier runs
    leftovers_removed: int = 0  # of them, originals an earlier run merged but could not remove
    pending: int = 0  # originals still there after this run (removal skipped); their merged batch names them
    skipped: str | None = None
    lock_waits: list[float] = field(default_factory=list)  # per exclusive hold: seconds spent waiting for it
    lock_holds: list[float] = field(default_factory=list)  # per exclusive hold: seconds held (what readers wait)

    @property
    def batches_merged(self) -> int:
        return sum(len(c.replaced) for c in self.merged)


REMOVAL_WAIT_SECONDS = 300.0  # how long compaction looks for a gap between readers (a dbt build holds them)
REMOVALS_PER_HOLD = 1_000  # files unlinked per exclusive hold, so a big removal never blocks readers for long


def _fetched_of(path: Path) -> datetime | None:
    try:
        return datetime.strptime(path.stem[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _footer(path: Path) -> tuple[int, dict[str, Any], tuple[str, ...]]:
    """A batch's row count, its `ichigen.batch` metadata and its column names, from one footer read."""
    metadata = pq.ParquetFile(path).metadata
    raw = (metadata.metadata or {}).get(BATCH_METADATA_KEY.encode())
    return metadata.num_rows, json.loads(raw) if raw else {}, tuple(metadata.schema.names)


def compact_batches(landing: LandingZone, source: str, entity: str, **options: Any) -> CompactionRun:
    """`compact_landing` for one source/entity."""
    return compact_landing(landing, [(source, entity)], **options)


def compact_landing(landing: LandingZone, entities: Iterable[tuple[str, str]] | None = None, *,
                    older_than: timedelta = timedelta(hours=1), now: datetime | None = None, max_rows: int = 100_000,
                    lock_wait_seconds: float = REMOVAL_WAIT_SECONDS) -> CompactionRun:
    """Merge the small batches of each source/entity (every known one by default; pushes land one event a file)
    into one batch per date folder and mode, without changing what a reader sees (DECISIONS.md D82, D161):
    - only batches fetched more than `older_than` ago and of ≤ `max_rows` rows; targeted and incremental batches
      are never mixed, so the cursor (which ignores targeted batches) stays where it was;
    - every row keeps its own `_batch_id` and `_fetched_at`, so "newest version per key" reads the same;
    - every merged batch is written first (temp + rename, `compacted_from` in its metadata) with no lock held;
      then the originals are renamed out of sight under the landing zone's exclusive lock
      (`landing_lock.removal_lock`), ≤ `REMOVALS_PER_HOLD` files a hold, and unlinked after it, so a reader that
      listed them keeps them until it is done. When readers
      leave no gap for `lock_wait_seconds`, the removal is skipped; a crash does the same. Either way the
      originals are named by a merged batch, and the next call removes them (and never merges them again).
    Only one compaction runs per zone at a time; a second returns at once with `skipped` set."""
    now = _as_utc(now) or utcnow()
    with compaction_lock(landing.root) as ours:
        if not ours:
            return CompactionRun(skipped=f"landing zone {landing.root}: another compaction is running; "
                                         "nothing was done")
        run = CompactionRun()
        doomed: list[Path] = []
        leftovers: set[Path] = set()
        for source, entity in (sorted(SCHEMAS) if entities is None else entities):
            _sweep_hidden(landing, source, entity)
            merged, originals, stale = _merge_entity(landing, source, entity, older_than=older_than, now=now,
                                                     max_rows=max_rows)
            run.merged += merged
            doomed += originals
            leftovers |= stale
        _remove_batches(landing, [*sorted(leftovers), *doomed], leftovers, run, wait_seconds=lock_wait_seconds)
        return run


def _merge_entity(landing: LandingZone, source: str, entity: str, *, older_than: timedelta, now: datetime,
                  max_rows: int) -> tuple[list[Compaction], list[Path], set[Path]]:
    """Write the merged batches of one source/entity. Returns them, the originals they replace, and the
    leftovers of earlier merges (originals a merged batch names that are still there). Reads without the read
    lock: only a compaction removes batches, and this one holds the zone's compaction lock."""
    files = landing.batch_files(source, entity)
    footers = {path: _footer(path) for path in files}
    present = set(files)
    leftovers = {path.parent / f"{batch_id}.parquet" for path in files
                 for batch_id in footers[path][1].get("compacted_from") or ()} & present
    # Batches merge only with batches of the same columns: a column added to the landed contract later must stay
    # absent from a whole file or present in all of its rows, never NULL for the older rows of a merged file —
    # staging tells "landed before the column existed" by the file's schema (D154).
    groups: dict[tuple[Path, str | None, tuple[str, ...]], list[Path]] = {}
    for path in files:
        fetched = _fetched_of(path)
        rows, meta, columns = footers[path]
        if path in leftovers or fetched is None or fetched > now - older_than or rows > max_rows:
            continue
        groups.setdefault((path.parent, meta.get("mode"), tuple(sorted(columns))), []).append(path)
    merged: list[Compaction] = []
    originals: list[Path] = []
    for (folder, mode, _columns), paths in sorted(groups.items(),
                                                   key=lambda item: (str(item[0][0]), str(item[0][1]), item[0][2])):
        if len(paths) < 2:
            continue
        metas = [footers[p][1] for p in paths]
        frame = pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")
        newest = max(_fetched_of(p) for p in paths)
        batch_id = new_batch_id(newest)
        cursors_from = [m["cursor_from"] for m in metas if m.get("cursor_from")]
        cursors_to = [m["cursor_to"] for m in metas if m.get("cursor_to")]
        # Leftovers a merged original still names are carried over: if this run's removal is skipped as well,
        # the new batch is the one that names them once the original is gone.
        carried = [name for m in metas for name in m.get("compacted_from") or ()
                   if folder / f"{name}.parquet" in leftovers]
        meta = {
            "batch_id": batch_id, "source": source, "entity": entity, "fetched_at": newest.isoformat(),
            "cursor_field": metas[-1].get("cursor_field"), "cursor_from": min(cursors_from, default=None),
            "cursor_to": max(cursors_to, default=None), "row_count": frame.height,
            "compacted_from": [p.stem for p in paths] + carried,
        }
        if mode is not None:
            meta["mode"] = mode
        target = folder / f"{batch_id}.parquet"
        write_parquet_atomic(frame, target, metadata={BATCH_METADATA_KEY: json.dumps(meta)})
        merged.append(Compaction(source, entity, target, tuple(p.stem for p in paths), frame.height))
        originals += paths
    return merged, originals, leftovers


REMOVED_SUFFIX = ".removed"  # `.<batch>.parquet.removed`: out of every listing and glob, unlinked right after


def _hidden(path: Path) -> Path:
    return path.with_name(f".{path.name}{REMOVED_SUFFIX}")


def _sweep_hidden(landing: LandingZone, source: str, entity: str) -> None:
    """Unlink hidden originals a compaction renamed but did not get to unlink (it crashed in between)."""
    for path in landing.entity_dir(source, entity).glob(f"date=*/.*.parquet{REMOVED_SUFFIX}"):
        path.unlink(missing_ok=True)


def _remove_batches(landing: LandingZone, paths: list[Path], leftovers: set[Path], run: CompactionRun, *,
                    wait_seconds: float) -> None:
    """Take merged originals out of every reader's sight under the exclusive lock — a rename to a hidden name,
    ~25 µs a file where an unlink of a freshly written file measured 0.1–4 ms — a chunk per hold, within one
    overall deadline; unlink the hidden files after the lock is released (no reader lists them)."""
    deadline = time.monotonic() + wait_seconds
    removed: list[Path] = []
    hidden: list[Path] = []
    for start in range(0, len(paths), REMOVALS_PER_HOLD):
        chunk = paths[start:start + REMOVALS_PER_HOLD]
        try:
            with removal_lock(landing.root, f"compaction removing {len(chunk)} merged batches",
                              wait_seconds=max(deadline - time.monotonic(), 0.0)) as hold:
                for path in chunk:
                    target = _hidden(path)
                    try:
                        os.rename(path, target)
                    except FileNotFoundError:
                        continue
                    hidden.append(target)
        except LandingLockTimeout as exc:
            run.pending = len(paths) - start
            run.skipped = str(exc)
            log.warning("%s", exc)
            break
        removed += chunk
        run.lock_waits.append(hold.waited_seconds)
        run.lock_holds.append(hold.held_seconds)
    for path in hidden:
        path.unlink(missing_ok=True)
    for folder in {path.parent for path in removed}:  # durability of the unlinks; readers need no wait for it
        _fsync_dir(folder)
    run.removed = len(removed)
    run.leftovers_removed = sum(1 for path in removed if path in leftovers)
    gone = set(removed)
    with landing._cache_lock:
        for path in gone:
            landing._mode_cache.pop(path, None)
        for key in [k for k in landing._max_cache if k[0] in gone]:
            del landing._max_cache[key]


def land_and_report(
    landing: LandingZone,
    schema: EntitySchema,
    rows: list[dict[str, Any]] | pl.DataFrame | pa.Table,
    bad: list[QuarantineRecord],
    *,
    fetched_at: datetime,
    since: datetime | None,
    mode: str | None = None,
    **extra: Any,
) -> IngestResult:
    """The end of every ingest: quarantine what could not land, land the rest as one batch, say what happened.
    `mode="targeted"` for a fetch of named records (see `LandingZone.write_batch`)."""
    source, entity = schema.source, schema.entity
    batch_id = new_batch_id(fetched_at)
    quarantine_path = landing.quarantine(source, entity, batch_id, bad, quarantined_at=fetched_at)
    batch = landing.write_batch(source, entity, rows, schema=schema.columns, cursor_field=schema.cursor_field,
                                fetched_at=fetched_at, batch_id=batch_id, cursor_from=since, mode=mode)
    return IngestResult(
        source=source,
        entity=entity,
        rows_landed=batch.row_count,
        rows_quarantined=len(bad),
        batch_id=batch.batch_id if batch.row_count or bad else None,
        cursor_from=since,
        cursor_to=batch.cursor_to,
        path=batch.path,
        quarantine_path=quarantine_path,
        **extra,
    )


def incremental_since(landing: LandingZone, schema: EntitySchema, *, lookback_minutes: int,
                      backfill_start: str) -> datetime:
    """Where an incremental fetch starts: the landed cursor minus the look-back, or the configured backfill
    start on the first run (a bad start names its key, `channels.<source>.backfill_start`)."""
    cursor = landing.cursor(schema.source, schema.entity, schema.cursor_field)
    if cursor is not None:
        return cursor - timedelta(minutes=lookback_minutes)
    key = f"channels.{schema.source}.backfill_start"
    try:
        start = parse_utc(backfill_start, field=key)
    except RecordError as exc:
        raise IngestionError(f"{schema.source}: bad configuration: {exc}") from None
    if start is None:
        raise IngestionError(f"{schema.source}: bad configuration: {key} is empty")
    return start
