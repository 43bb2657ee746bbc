"""Rakuten stock push: Inventory API `bulk-upsert` (≤ 400 a call) in RELATIVE mode (DECISIONS.md D21).

Why RELATIVE: the mall decrements its own stock on every sale. A delta applied by the mall lands on whatever
the stock is at that moment, so a unit sold after our read stays sold (an ABSOLUTE set would put it back).

How each chunk is pushed, so that no delta is applied twice:
1. Re-read the chunk's current stock with `bulk-get` (quantity and `updated`) just before sending: the
   idempotency record of what the mall held when we sent.
2. delta = target − max(planned old quantity, current quantity). Sales since the plan's read (current below
   the planned value) stay subtracted; a rise since then (typically our own earlier push that was applied
   but never logged, e.g. a crash after sending) is not added a second time.
3. Send the deltas once, never retried by the HTTP loop blindly (`idempotent=False`: 429/503 only, which RMS
   answers before applying).
4. When the answer is lost (timeout, 5xx, dropped connection): re-read. A row whose quantity and `updated`
   are both unchanged was not applied and is sent again (next attempt, from step 1); a row that now shows
   exactly current + delta is confirmed applied; anything else cannot be told apart from a sale and is
   logged `failed` as unconfirmed, never resent: the next cycle plans from freshly landed stock.
Every row is logged in the push log with its attempt number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from ingestion.rakuten import BULK_UPSERT_PATH, bulk_get
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

MAX_PER_CALL = 400
MAX_ATTEMPTS = 3


def split_ref(target_ref: str) -> tuple[str, str]:
    """`manageNumber:variantId` → (manageNumber, variantId)."""
    manage, _, variant = target_ref.partition(":")
    return manage, variant


@dataclass
class _Row:
    change: PlannedChange
    current: int  # what the mall showed just before the send
    updated: str | None  # its `updated` stamp then
    delta: int

    @property
    def expected(self) -> int:
        return max(0, self.current + self.delta)


class RakutenStockPusher:
    def __init__(self, client: ChannelClient):
        self.client = client

    def current(self, target_refs: list[str]) -> dict[str, tuple[int, str | None]]:
        """What the mall shows now for these `manageNumber:variantId` refs: (quantity, updated)."""
        found = bulk_get(self.client, [split_ref(ref) for ref in target_refs])
        return {f"{row['manageNumber']}:{row['variantId']}": (int(row["quantity"]), row.get("updated"))
                for row in found}

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        records: list[PushRecord] = []
        for index in range(0, len(changes), MAX_PER_CALL):
            records += self._push_chunk(run_id, changes[index:index + MAX_PER_CALL], planned_at)
            if on_progress:
                on_progress(min(index + MAX_PER_CALL, len(changes)), len(changes))
        return records

    def _push_chunk(self, run_id: str, chunk: list[PlannedChange], planned_at: datetime) -> list[PushRecord]:
        records: list[PushRecord] = []
        pending = chunk
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                shown = self.current([c.target_ref for c in pending])
            except ChannelError as exc:
                return records + [self._record(run_id, c, c.old_value, c.new_value, "failed",
                                               f"could not read current stock: {exc}", planned_at, attempt)
                                  for c in pending]
            rows: list[_Row] = []
            for change in pending:
                if change.target_ref not in shown:
                    records.append(self._record(run_id, change, change.old_value, change.new_value, "failed",
                                                "the mall does not know this manageNumber:variantId",
                                                planned_at, attempt))
                    continue
                quantity, updated = shown[change.target_ref]
                rows.append(_Row(change, quantity, updated, change.new_value - max(change.old_value, quantity)))
            to_send = [r for r in rows if r.delta != 0]
            records += [self._applied(run_id, r, planned_at, attempt) for r in rows if r.delta == 0]
            if not to_send:
                return records
            try:
                self.client.request("POST", BULK_UPSERT_PATH, operation="inventories.bulk-upsert",
                                    idempotent=False, json={"inventories": [
                                        {"manageNumber": split_ref(r.change.target_ref)[0],
                                         "variantId": split_ref(r.change.target_ref)[1],
                                         "mode": "RELATIVE", "quantity": r.delta} for r in to_send]})
            except ChannelError as exc:
                if exc.status is not None and 400 <= exc.status < 500 and exc.status not in (408, 429):
                    # RMS refused the request as a whole (validation): nothing was applied.
                    return records + [self._record(run_id, r.change, r.current, r.expected, "failed", str(exc),
                                                   planned_at, attempt) for r in to_send]
                confirmed, unsent, unknown = self._reconcile(to_send)
                records += [self._applied(run_id, r, planned_at, attempt) for r in confirmed]
                records += [self._record(run_id, r.change, r.current, r.expected, "failed",
                                         f"unconfirmed after a lost answer ({exc}); the stock changed since, so "
                                         "the delta is not resent", planned_at, attempt) for r in unknown]
                pending = [r.change for r in unsent]
                if not pending:
                    return records
                continue
            return records + [self._applied(run_id, r, planned_at, attempt) for r in to_send]
        return records + [self._record(run_id, c, c.old_value, c.new_value, "failed",
                                       f"not applied after {MAX_ATTEMPTS} attempts", planned_at, MAX_ATTEMPTS)
                          for c in pending]

    def _reconcile(self, sent: list[_Row]) -> tuple[list[_Row], list[_Row], list[_Row]]:
        """After a lost answer: (confirmed applied, certainly not applied, cannot tell)."""
        try:
            now = self.current([r.change.target_ref for r in sent])
        except ChannelError:
            return [], [], sent
        confirmed, unsent, unknown = [], [], []
        for row in sent:
            quantity, updated = now.get(row.change.target_ref, (None, None))
            if quantity == row.current and updated == row.updated:
                unsent.append(row)
            elif quantity == row.expected:
                confirmed.append(row)
            else:
                unknown.append(row)
        return confirmed, unsent, unknown

    def _applied(self, run_id: str, row: _Row, planned_at: datetime, attempt: int) -> PushRecord:
        # Logged as the quantity the mall holds after our delta (target − units sold since the plan's read).
        return self._record(run_id, row.change, row.current, row.expected, "applied", None, planned_at, attempt)

    @staticmethod
    def _record(run_id: str, change: PlannedChange, old: int, new: int, status: str, error: str | None,
                planned_at: datetime, attempt: int) -> PushRecord:
        return PushRecord(run_id=run_id, channel=change.channel, field=change.field, sku=change.sku,
                          target_ref=change.target_ref, old_value=old, new_value=new, status=status, error=error,
                          planned_at=planned_at, pushed_at=datetime.now(UTC), attempt=attempt)
