"""Yahoo!ショッピング stock push: `setStock` with `+n`/`-n` deltas (≤ 1,000 codes a call), an idempotency
journal, and a re-read instead of a blind retry (DECISIONS.md D32).

- A delta (target − the quantity the plan read) applies on top of whatever the store shows when it arrives,
  so a unit sold between our read and the push stays sold: no push resurrects a sold unit.
- A delta must never apply twice. Before each call the journal records what is sent (codes, deltas, the
  quantities read just before); the call goes out with `idempotent=False`, so the HTTP loop never resends it
  after a failure that may have been applied (timeouts, 5xx, a cut-off answer). Instead we re-read getStock:
  a change of exactly the delta confirms it; anything else leaves the outcome unknown, and the journal keeps
  those codes blocked until a stock read landed after the send shows the truth (the next cycle).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ichigen.config import Config
from ingestion import yahoo as api
from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

MAX_PER_CALL = api.MAX_STOCK_CODES
JOURNAL_DIR = "_journal"


def yahoo_listings_state(config: Config) -> pl.DataFrame:
    """What the store last showed per listing code (landed getStock snapshots), with the ERP SKU each listing
    sells (int_products__channel_listings in the published copy: seller SKU, then JAN)."""
    landed = LandingZone(config.landing_dir).landed("yahoo", "stock", api.YAHOO_STOCK.landed_columns)
    stock = landed.select("listing_code", "quantity", "_fetched_at").collect()
    if not config.serving_path.exists() or stock.is_empty():
        return pl.DataFrame(schema={"sku": pl.String, "target_ref": pl.String, "quantity": pl.Int64,
                                    "seen_at": pl.Datetime("us", "UTC")})
    con = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        rows = con.execute("select listing_id, sku from intermediate.int_products__channel_listings "
                           "where channel = 'yahoo' and sku is not null").fetchall()
    finally:
        con.close()
    mapping = pl.DataFrame(rows, schema={"listing_id": pl.String, "sku": pl.String}, orient="row")
    return stock.join(mapping, left_on="listing_code", right_on="listing_id").select(
        pl.col("sku").cast(pl.String), pl.col("listing_code").alias("target_ref"),
        pl.col("quantity").cast(pl.Int64), pl.col("_fetched_at").alias("seen_at"))


# -- the journal -------------------------------------------------------------------------------------------
@dataclass
class JournalEntry:
    """One setStock call: what was sent and, per code, whether its outcome is known."""

    run_id: str
    chunk: int
    sent_at: str  # ISO UTC
    deltas: dict[str, int]
    before: dict[str, int]  # getStock right before the call
    unresolved: list[str]  # codes whose outcome is not known yet


class Journal:
    """`<push_log>/_journal/yahoo/<run_id>-<chunk>.json`, each rewritten atomically (temp + rename)."""

    def __init__(self, push_log_dir: Path):
        self.folder = Path(push_log_dir) / JOURNAL_DIR / "yahoo"

    def write(self, entry: JournalEntry) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{entry.run_id}-{entry.chunk}.json"
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(asdict(entry), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def open_entries(self) -> list[JournalEntry]:
        if not self.folder.is_dir():
            return []
        entries = [JournalEntry(**json.loads(p.read_text(encoding="utf-8")))
                   for p in sorted(self.folder.glob("*.json"))]
        return [e for e in entries if e.unresolved]

    def blocked(self, seen_at: dict[str, datetime]) -> dict[str, str]:
        """Codes with an unknown outcome and no stock read since (code → when it was sent). Entries whose codes
        have all been read since are closed."""
        blocked: dict[str, str] = {}
        for entry in self.open_entries():
            sent = datetime.fromisoformat(entry.sent_at)
            still = [c for c in entry.unresolved if c not in seen_at or seen_at[c] <= sent]
            if still != entry.unresolved:
                entry.unresolved = still
                self.write(entry)
            blocked.update({c: entry.sent_at for c in still})
        return blocked


# -- the pusher --------------------------------------------------------------------------------------------
class YahooStockPusher:
    def __init__(self, client: ChannelClient, config: Config, seen_at: dict[str, datetime]):
        self.client = client
        self.seller_id = config.channels.yahoo.seller_id
        self.journal = Journal(config.push_log_dir)
        self.seen_at = seen_at  # listing code → when the landed stock read was fetched

    def read_stock(self, codes: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for result in api.get_stock(self.client, self.seller_id, codes):
            row = api.stock_row(result)
            found[row["listing_code"]] = row["quantity"]
        return found

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        records: list[PushRecord] = []
        blocked = self.journal.blocked(self.seen_at)
        ready = []
        for change in changes:
            if change.target_ref in blocked:
                records.append(_record(run_id, change, "stale", planned_at, None, 1,
                                       f"an earlier delta sent at {blocked[change.target_ref]} has an unknown "
                                       "outcome; waiting for a stock read after it"))
            else:
                ready.append(change)
        done = len(records)
        for index in range(0, len(ready), MAX_PER_CALL):
            chunk = ready[index:index + MAX_PER_CALL]
            records += self._push_chunk(run_id, index // MAX_PER_CALL, chunk, planned_at)
            done += len(chunk)
            if on_progress:
                on_progress(done, len(changes))
        return records

    def _push_chunk(self, run_id: str, chunk_no: int, chunk: list[PlannedChange],
                    planned_at: datetime) -> list[PushRecord]:
        codes = [c.target_ref for c in chunk]
        deltas = {c.target_ref: c.new_value - c.old_value for c in chunk}
        try:
            before = self.read_stock(codes)
        except ChannelError as exc:
            return [_record(run_id, c, "failed", planned_at, None, 1, f"pre-read failed: {exc}") for c in chunk]
        entry = JournalEntry(run_id, chunk_no, datetime.now(UTC).isoformat(), deltas, before, list(codes))
        self.journal.write(entry)  # before the call: a crash after sending still leaves the record
        form = {"seller_id": self.seller_id, "item_code": ",".join(codes),
                "quantity": ",".join(f"{deltas[c]:+d}" for c in codes)}
        try:
            response = self.client.request("POST", f"{api.API}/setStock", operation="setStock", data=form,
                                           idempotent=False)
            answered = {api.stock_row(r)["listing_code"] for r in
                        api.parse_xml(response, "yahoo: setStock").findall("Result")}
        except ChannelError as exc:
            return self._resolve_unknown(run_id, entry, chunk, planned_at, exc)
        pushed_at = datetime.now(UTC)
        entry.unresolved = []
        self.journal.write(entry)
        return [_record(run_id, c, "applied" if c.target_ref in answered else "failed", planned_at, pushed_at, 1,
                        None if c.target_ref in answered else "the store does not know this item code")
                for c in chunk]

    def _resolve_unknown(self, run_id: str, entry: JournalEntry, chunk: list[PlannedChange], planned_at: datetime,
                         exc: Exception) -> list[PushRecord]:
        """The call may or may not have been applied: re-read, never resend (module docstring)."""
        try:
            after = self.read_stock([c.target_ref for c in chunk])
        except ChannelError as reread:
            return [_record(run_id, c, "failed", planned_at, None, 1,
                            f"outcome unknown ({exc}); re-read failed too ({reread})") for c in chunk]
        now = datetime.now(UTC)
        records = []
        for c in chunk:
            code = c.target_ref
            moved = after.get(code, 0) - entry.before.get(code, 0)
            if moved == entry.deltas[code] and moved != 0:
                entry.unresolved.remove(code)
                records.append(_record(run_id, c, "applied", planned_at, now, 1, None))
            else:
                records.append(_record(run_id, c, "failed", planned_at, now, 1,
                                       f"outcome unknown ({exc}); store moved {moved:+d} for a {entry.deltas[code]:+d}"
                                       " delta; not resent, the next stock read settles it"))
        self.journal.write(entry)
        return records


def _record(run_id: str, change: PlannedChange, status: str, planned_at: datetime, pushed_at: datetime | None,
            attempt: int, error: str | None) -> PushRecord:
    return PushRecord(run_id=run_id, channel=change.channel, field=change.field, sku=change.sku,
                      target_ref=change.target_ref, old_value=change.old_value, new_value=change.new_value,
                      status=status, error=error, planned_at=planned_at, pushed_at=pushed_at, attempt=attempt)


def make_pusher(config: Config, client: ChannelClient | None, landed: pl.DataFrame) -> YahooStockPusher:
    seen_at = {row["target_ref"]: row["seen_at"] for row in landed.iter_rows(named=True)}
    return YahooStockPusher(client or api.make_client(config), config, seen_at)
