"""Rakuten price push: Items API 2.0 `PATCH /es/2.0/items/manage-numbers/{manageNumber}` (DECISIONS.md D91).

One request per item (商品管理番号) carrying every planned variant of it:
`{"variants": {"<variantId>": {"standardPrice": "1980"}}}` (standardPrice is a string of digits, tax inclusive
JPY). RMS answers 204, or refuses the whole request with `{"errors": [{code, message, metadata
{propertyPath}}]}`: a refusal that names one variant (`variants.<id>.…`) fails that row only and the rest of
the item is sent again (bounded); one that names none fails the item's rows. A price is absolute and carries no
race with sales, so the request loop may resend it after a lost answer (it sets the same value again).
The Items API shares the shop's ~1 request/s with every other RMS call (the channel's rate limiter).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord
from reverse_sync.rakuten import split_ref

ITEMS_PATCH_PATH = "/es/2.0/items/manage-numbers/{}"
MAX_ATTEMPTS = 3  # per item: the first request plus re-sends without variants RMS named as wrong
_PROPERTY_PATH = re.compile(r'"propertyPath"\s*:\s*"variants\.([^".]+)')


class RakutenPricePusher:
    def __init__(self, client: ChannelClient):
        self.client = client

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        by_item: dict[str, list[PlannedChange]] = {}
        for change in changes:
            by_item.setdefault(split_ref(change.target_ref)[0], []).append(change)
        records: list[PushRecord] = []
        for manage, item_changes in by_item.items():
            records += self._push_item(run_id, manage, item_changes, planned_at)
            if on_progress:
                on_progress(len(records), len(changes))
        return records

    def _push_item(self, run_id: str, manage: str, pending: list[PlannedChange],
                   planned_at: datetime) -> list[PushRecord]:
        records: list[PushRecord] = []
        for attempt in range(1, MAX_ATTEMPTS + 1):
            body = {"variants": {split_ref(c.target_ref)[1]: {"standardPrice": str(c.new_value)} for c in pending}}
            try:
                self.client.request("PATCH", ITEMS_PATCH_PATH.format(quote(manage, safe="")),
                                    operation="items.patch", json=body)
            except ChannelError as exc:
                named = set(_PROPERTY_PATH.findall(str(exc)))
                wrong = [c for c in pending if split_ref(c.target_ref)[1] in named]
                if not wrong or exc.status is None or not 400 <= exc.status < 500:
                    return records + [PushRecord.of_change(run_id, c, "failed", str(exc), planned_at, attempt) for c in pending]
                # RMS validated the request as a whole and applied none of it: fail the named variants, resend the rest
                records += [PushRecord.of_change(run_id, c, "failed", str(exc), planned_at, attempt) for c in wrong]
                pending = [c for c in pending if c not in wrong]
                if not pending:
                    return records
                continue
            return records + [PushRecord.of_change(run_id, c, "applied", None, planned_at, attempt) for c in pending]
        return records + [PushRecord.of_change(run_id, c, "failed", f"not applied after {MAX_ATTEMPTS} attempts", planned_at,
                                  MAX_ATTEMPTS) for c in pending]

