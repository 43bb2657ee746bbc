"""Rakuten stock push: Inventory API `bulk-upsert` (≤ 400 a call) in RELATIVE mode (DECISIONS.md D21).

Why RELATIVE: the mall decrements its own stock on every sale. A delta applied by the mall lands on whatever
the stock is at that moment, so a unit sold after our read stays sold (an ABSOLUTE set would put it back).

How each chunk is pushed, so that no delta is applied twice (D100, replacing D21's re-read before every send):
1. Codes the idempotency journal (reverse_sync.journal) holds in doubt — an earlier call whose answer was lost
   and never confirmed, or whose run crashed before its push log was written — are not pushed (`stale`) until
   a stock read landed after that call shows the truth (the next cycle's ingest).
2. delta = target − the quantity the plan read. For every other code that quantity is a landed read newer than
   any send, or our own logged, applied push, so the delta composes with any sale since and repeats nothing.
3. Write the chunk's journal entry (codes, deltas, the plan's quantities), then send it once, never retried by
   the HTTP loop blindly (`idempotent=False`: 429/503 only, which RMS answers before applying).
4. When the answer is lost (timeout, 5xx, dropped connection): re-read with `bulk-get`. A row that now shows
   exactly planned + delta is confirmed applied; a row whose quantity and `updated` are both still those of
   the landed read the plan used was not touched at all and is sent again (next attempt, from step 3);
   anything else cannot be told apart from a sale and is logged `failed` as unconfirmed, never resent, and
   stays in doubt in the journal.
No bulk-get before a send: the mall's ~1 request/s per API goes to bulk-upsert alone (≤ 400 rows a call).
Every row is logged in the push log with its attempt number; `new_value` is the quantity we meant (a sale in
the window leaves the mall that many units lower, which the next stock read shows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ingestion.common import RecordError, parse_utc
from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from ingestion.rakuten import BULK_UPSERT_PATH, bulk_get
from reverse_sync.journal import Journal, JournalEntry
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

MAX_PER_CALL = 400
MAX_ATTEMPTS = 3


def split_ref(target_ref: str) -> tuple[str, str]:
    """`manageNumber:variantId` → (manageNumber, variantId)."""
    manage, _, variant = target_ref.partition(":")
    return manage, variant


def _updated(row: dict) -> datetime | None:
    """The row's `updated` stamp; None when missing or unreadable (the row then cannot be shown untouched)."""
    try:
        return parse_utc(row.get("updated"), field="updated")
    except RecordError:
        return None


@dataclass(frozen=True)
class LandedStock:
    """The landed read a plan's quantity may come from: to tell "untouched" after a lost answer."""

    quantity: int
    updated: datetime
    seen_at: datetime


class RakutenStockPusher:
    def __init__(self, client: ChannelClient, journal: Journal | None = None,
                 landed: dict[str, LandedStock] | None = None):
        self.client = client
        self.journal = journal
        self.landed = landed or {}  # manageNumber:variantId → the newest landed stock read

    def current(self, target_refs: list[str]) -> dict[str, tuple[int, datetime | None]]:
        """What the mall shows now for these `manageNumber:variantId` refs: (quantity, updated)."""
        found = bulk_get(self.client, [split_ref(ref) for ref in target_refs])
        return {f"{row['manageNumber']}:{row['variantId']}": (int(row["quantity"]), _updated(row)) for row in found}

    def logged(self, run_id: str) -> None:
        """Called once the run's push log is written: its answered calls stop holding their codes in doubt."""
        if self.journal is not None:
            self.journal.mark_logged(run_id)

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        records: list[PushRecord] = []
        seen_at = {ref: landed.seen_at for ref, landed in self.landed.items()}
        blocked = self.journal.blocked(seen_at) if self.journal is not None else {}
        ready = []
        for change in changes:
            if change.target_ref in blocked:
                records.append(self._record(run_id, change, "stale",
                                            f"an earlier delta sent at {blocked[change.target_ref]} has an unknown "
                                            "outcome; waiting for a stock read after it", planned_at, 1))
            elif change.new_value == change.old_value:
                records.append(self._record(run_id, change, "applied", None, planned_at, 0))
            else:
                ready.append(change)
        for index in range(0, len(ready), MAX_PER_CALL):
            records += self._push_chunk(run_id, index // MAX_PER_CALL, ready[index:index + MAX_PER_CALL],
                                        planned_at)
            if on_progress:
                on_progress(min(index + MAX_PER_CALL, len(ready)), len(ready))
        return records

    def _push_chunk(self, run_id: str, chunk_no: int, chunk: list[PlannedChange],
                    planned_at: datetime) -> list[PushRecord]:
        records: list[PushRecord] = []
        pending = chunk
        for attempt in range(1, MAX_ATTEMPTS + 1):
            entry = JournalEntry(run_id, chunk_no, datetime.now(UTC).isoformat(),
                                 {c.target_ref: c.new_value - c.old_value for c in pending},
                                 {c.target_ref: c.old_value for c in pending}, [c.target_ref for c in pending],
                                 attempt=attempt)
            self._journal(entry)  # before the call: a crash after sending still leaves the record
            try:
                self.client.request("POST", BULK_UPSERT_PATH, operation="inventories.bulk-upsert",
                                    idempotent=False, json={"inventories": [
                                        {"manageNumber": split_ref(c.target_ref)[0],
                                         "variantId": split_ref(c.target_ref)[1],
                                         "mode": "RELATIVE", "quantity": c.new_value - c.old_value}
                                        for c in pending]})
            except ChannelError as exc:
                if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429):
                    # RMS refused the request as a whole (validation): nothing was applied.
                    entry.unresolved = []
                    self._journal(entry)
                    return records + [self._record(run_id, c, "failed", str(exc), planned_at, attempt)
                                      for c in pending]
                confirmed, unsent, unknown = self._reconcile(pending)
                entry.unresolved = [c.target_ref for c in unknown]
                self._journal(entry)
                records += [self._record(run_id, c, "applied", None, planned_at, attempt) for c in confirmed]
                records += [self._record(run_id, c, "failed",
                                         f"unconfirmed after a lost answer ({exc}); the stock changed since, so "
                                         "the delta is not resent", planned_at, attempt) for c in unknown]
                pending = unsent
                if not pending:
                    return records
                continue
            entry.unresolved = []
            self._journal(entry)  # still in doubt until the run's push log is written (`logged`)
            return records + [self._record(run_id, c, "applied", None, planned_at, attempt) for c in pending]
        return records + [self._record(run_id, c, "failed", f"not applied after {MAX_ATTEMPTS} attempts",
                                       planned_at, MAX_ATTEMPTS) for c in pending]

    def _journal(self, entry: JournalEntry) -> None:
        if self.journal is not None:
            self.journal.write(entry)

    def _reconcile(self, sent: list[PlannedChange]) -> tuple[list[PlannedChange], list[PlannedChange],
                                                             list[PlannedChange]]:
        """After a lost answer: (confirmed applied, certainly not applied, cannot tell)."""
        try:
            now = self.current([c.target_ref for c in sent])
        except ChannelError:
            return [], [], sent
        confirmed, unsent, unknown = [], [], []
        for change in sent:
            quantity, updated = now.get(change.target_ref, (None, None))
            landed = self.landed.get(change.target_ref)
            if quantity == change.new_value:
                confirmed.append(change)
            elif (landed is not None and quantity == change.old_value == landed.quantity
                  and updated is not None and updated == landed.updated):
                unsent.append(change)  # exactly as the plan's read left it: our call never touched it
            else:
                unknown.append(change)
        return confirmed, unsent, unknown

    @staticmethod
    def _record(run_id: str, change: PlannedChange, status: str, error: str | None, planned_at: datetime,
                attempt: int) -> PushRecord:
        return PushRecord(run_id=run_id, channel=change.channel, field=change.field, sku=change.sku,
                          target_ref=change.target_ref, old_value=change.old_value, new_value=change.new_value,
                          status=status, error=error,
                          planned_at=planned_at, pushed_at=datetime.now(UTC), attempt=attempt)
