"""Yahoo!ショッピング stock push: `setStock` with `+n`/`-n` deltas (≤ 1,000 codes a call), an idempotency
journal, and a re-read instead of a blind retry (DECISIONS.md D32).

- A delta (target − the quantity the plan read) applies on top of whatever the store shows when it arrives,
  so a unit sold between our read and the push stays sold: no push resurrects a sold unit.
- A delta must never apply twice. Before each call the journal (reverse_sync.journal) records what is sent
  (codes, deltas, the quantities the plan read); the call goes out with `idempotent=False`, so the HTTP loop
  never resends it after a failure that may have been applied (timeouts, 5xx, a cut-off answer). Instead we
  re-read getStock: a change of exactly the delta from the plan's quantity confirms it; anything else leaves
  the outcome unknown, and the journal keeps those codes blocked until a stock read landed after the send
  shows the truth (the next cycle). A call's codes also stay blocked until the run's push log is written, so
  a crash between an answer and the log never leads to the delta being sent again.
- No getStock before each call (D100): the delta does not depend on it and the store's ~1 request/s goes to
  setStock alone; the journal, not a pre-read, is the idempotency record.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import polars as pl

from ichigen.config import Config
from ingestion import yahoo as api
from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from reverse_sync.journal import Journal, JournalEntry
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

MAX_PER_CALL = api.MAX_STOCK_CODES


def yahoo_listings_state(config: Config) -> pl.DataFrame:
    """What the store last showed per listing code (landed getStock snapshots), with the ERP SKU each listing
    sells (int_products__channel_listings in the published copy: seller SKU, then JAN)."""
    stock = LandingZone(config.landing_dir).select("yahoo", "stock", "listing_code", "quantity", "_fetched_at",
                                                   schema=api.YAHOO_STOCK.landed_columns)
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


# -- the pusher --------------------------------------------------------------------------------------------
class YahooStockPusher:
    def __init__(self, client: ChannelClient, config: Config, seen_at: dict[str, datetime]):
        self.client = client
        self.seller_id = config.channels.yahoo.seller_id
        self.journal = Journal(config.push_log_dir, "yahoo")
        self.seen_at = seen_at  # listing code → when the landed stock read was fetched

    def logged(self, run_id: str) -> None:
        """Called once the run's push log is written: its answered calls stop blocking their codes."""
        self.journal.mark_logged(run_id)

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
        before = {c.target_ref: c.old_value for c in chunk}
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
        self.journal.write(entry)  # still in doubt until the run's push log is written (`logged`)
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
