"""Shopify stock push for very large sets: a bulk mutation of `inventorySetQuantities` (DECISIONS.md D143–D145).

A push of more than `channels.shopify.push_bulk_threshold` rows (default 10,000; 0 = never) is written as a
JSONL of variables — one quantity a line, each with the plan's `changeFromQuantity` (the same compare-and-swap
as the direct path) and its own `@idempotent` key — staged, run with `bulkOperationRunMutation`, waited for
(polls, cut short by the landed `bulk_operations/finish` webhook) and read back from the result JSONL, one line
per input line by `__lineNumber`. Smaller pushes take the direct calls of `ShopifyStockPusher`, unchanged.

Each row is logged in the push log exactly as the direct path logs it:
- a line without userErrors → `applied` (old = the compare value, new = the target);
- CHANGE_FROM_QUANTITY_STALE (the shop sold since the plan's read) → not applied by the bulk line; the row is
  re-read, its target lowered by the units sold since, and pushed by direct calls as the direct path's next
  round (attempt 2, ≤ 3 rounds, then `stale` for the next cycle) — one quantity a line, so one stale row
  refuses only itself, not 249 neighbours;
- any other userError, or errors for the line → `failed` with the message; the next cycle plans it again;
- no result line (the operation failed or was canceled before the line ran, or could not start, or ran past
  `bulk_timeout_seconds`) → `failed`; a line that ran anyway meets the compare-and-swap next cycle.
A file holds at most `max_file_bytes` (Shopify takes ≤ 100 MB); a larger push runs file after file.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ichigen.config import Config
from ingestion.http import ChannelClient
from ingestion.landing import LandingZone
from ingestion.shopify_bulk import BulkRun, FinishWatch, download, run_bulk_mutation
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord
from reverse_sync.shopify import MAX_PER_CALL, STALE, ShopifyStockPusher, _Pending, lower_by_sales, split_ref

MAX_FILE_BYTES = 90 * 1024 * 1024  # below Shopify's 100 MB per staged bulk mutation file

BULK_SET_QUANTITIES = """
mutation IchigenBulkSetAvailable($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { createdAt }
    userErrors { code field message }
  }
}
"""


class ShopifyBulkStockPusher(ShopifyStockPusher):
    """`ShopifyStockPusher` that sends a push above the threshold as one bulk mutation (or several files)."""

    def __init__(self, client: ChannelClient, config: Config, *, threshold: int | None = None,
                 max_file_bytes: int = MAX_FILE_BYTES, landing: LandingZone | None = None):
        shop = config.channels.shopify
        super().__init__(client, shop.api_version)
        self.config = config
        self.threshold = shop.push_bulk_threshold if threshold is None else threshold
        self.max_file_bytes = max_file_bytes
        self.landing = landing or LandingZone(config.landing_dir)
        self.bulk_runs: list[BulkRun] = []  # the operations of the last push (logs, tests)

    def uses_bulk(self, rows: int) -> bool:
        return bool(self.threshold) and rows > self.threshold

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        if not self.uses_bulk(len(changes)):
            return super().push(run_id, changes, planned_at, on_progress)
        self.bulk_runs = []
        records: list[PushRecord] = []
        again: list[_Pending] = []  # stale compares: re-read, then direct calls
        done = 0
        for part, (body, rows) in enumerate(self._files(run_id, changes)):
            part_records, part_again = self._push_file(run_id, part, body, rows, planned_at)
            records += part_records
            again += part_again
            done += len(rows)
            if on_progress:
                on_progress(done - len(again), len(changes))
        if again:
            records += self._continue_stale(run_id, again, planned_at)
            if on_progress:
                on_progress(len(changes), len(changes))
        order = {c.target_ref: i for i, c in enumerate(changes)}
        return sorted(records, key=lambda r: order.get(r.target_ref, len(order)))

    # ------------------------------------------------------------------------------------------ the file
    def _files(self, run_id: str, changes: list[PlannedChange]) -> Iterator[tuple[bytes, list[_Pending]]]:
        """The push as JSONL files of ≤ max_file_bytes: one quantity a line, each with its own idempotency key
        (an operation started twice for one file replays instead of applying twice)."""
        def encode(change: PlannedChange, part: int, index: int) -> bytes:
            item, location = split_ref(change.target_ref)
            variables = {
                "input": {"name": "available", "reason": "correction",
                          "referenceDocumentUri": f"ichigen://sync/{run_id}",
                          "quantities": [{"inventoryItemId": item, "locationId": location,
                                          "quantity": change.new_value, "changeFromQuantity": change.old_value}]},
                "idempotencyKey": f"{run_id}-bulk{part}-{index}",
            }
            return (json.dumps(variables, separators=(",", ":"), ensure_ascii=False) + "\n").encode()

        lines: list[bytes] = []
        rows: list[_Pending] = []
        size = part = 0
        for change in changes:
            line = encode(change, part, len(rows))
            if rows and size + len(line) > self.max_file_bytes:
                yield b"".join(lines), rows
                lines, rows, size, part = [], [], 0, part + 1
                line = encode(change, part, 0)
            lines.append(line)
            rows.append(_Pending(change, change.old_value, change.new_value))
            size += len(line)
        if rows:
            yield b"".join(lines), rows

    def _push_file(self, run_id: str, part: int, body: bytes, rows: list[_Pending],
                   planned_at: datetime) -> tuple[list[PushRecord], list[_Pending]]:
        """One bulk operation over one file → (records of settled rows, rows refused as stale)."""
        try:
            run = run_bulk_mutation(self.client, self.config, BULK_SET_QUANTITIES, body,
                                    label=f"ichigen-stock-{run_id}-{part}",
                                    client_identifier=f"ichigen-stock-{run_id}-{part}",
                                    watch=FinishWatch(self.landing))
        except Exception as exc:  # noqa: BLE001 — logged per row; the next cycle plans them again
            now = datetime.now(UTC)
            return [self._record(run_id, p, "failed", f"bulk mutation: {type(exc).__name__}: {exc}", planned_at,
                                 now, 1) for p in rows], []
        self.bulk_runs.append(run)
        operation = run.operation
        results: dict[int, dict[str, Any]] = {}
        url = operation.get("url") or operation.get("partialDataUrl")
        if url:
            try:
                results = self._results(url)
            except Exception as exc:  # noqa: BLE001 — the outcome of every line is unknown: logged failed
                now = datetime.now(UTC)
                return [self._record(run_id, p, "failed", f"bulk result download: {type(exc).__name__}: {exc}",
                                     planned_at, now, 1) for p in rows], []
        now = datetime.now(UTC)
        records: list[PushRecord] = []
        stale: list[_Pending] = []
        for number, p in enumerate(rows):
            result = results.get(number)
            if result is None:
                records.append(self._record(
                    run_id, p, "failed", f"no result for line {number}: bulk operation {operation.get('id')} ended "
                                         f"{operation.get('status')} (errorCode {operation.get('errorCode')})",
                    planned_at, now, 1))
                continue
            payload = (result.get("data") or {}).get("inventorySetQuantities") or {}
            errors = payload.get("userErrors") or []
            if result.get("errors"):
                message = "; ".join(str(e.get("message", e)) for e in result["errors"])
                records.append(self._record(run_id, p, "failed", f"GraphQL errors: {message}", planned_at, now, 1))
            elif errors and all(e.get("code") == STALE for e in errors):
                stale.append(p)
            elif errors:
                message = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
                records.append(self._record(run_id, p, "failed", message, planned_at, now, 1))
            else:
                records.append(self._record(run_id, p, "applied", None, planned_at, now, 1))
        return records, stale

    def _results(self, url: str) -> dict[int, dict[str, Any]]:
        """The result JSONL by `__lineNumber` (lines that are not JSON objects with one are left out: their rows
        count as without a result)."""
        found: dict[int, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="ichigen-bulk-push-") as folder:
            path = download(self.client, url, Path(folder) / "result.jsonl")
            with path.open("rb") as lines:
                for raw in lines:
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(line, dict) and isinstance(line.get("__lineNumber"), int):
                        found[line["__lineNumber"]] = line
        return found

    # ------------------------------------------------------------------------------------------ stale rows
    def _continue_stale(self, run_id: str, rows: list[_Pending], planned_at: datetime) -> list[PushRecord]:
        """What the direct path does after a stale round: re-read the rows, lower each target by what sold since,
        and push them by direct calls from attempt 2 on."""
        try:
            fresh = self.current_available([p.change.target_ref for p in rows])
        except Exception as exc:  # noqa: BLE001 — logged per row, the next cycle takes them
            now = datetime.now(UTC)
            return [self._record(run_id, p, "stale", f"re-read after a stale compare failed: {exc}", planned_at,
                                 now, 1) for p in rows]
        lower_by_sales(rows, fresh)
        chunks = [rows[i: i + MAX_PER_CALL] for i in range(0, len(rows), MAX_PER_CALL)]
        return self._push_chunks(run_id, chunks, planned_at, first_attempt=2, key_prefix="stale")
