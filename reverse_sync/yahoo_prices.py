"""Yahoo!ショッピング price push: `updateItems` (商品一括更新API, ≤ 100 items a call; DECISIONS.md D92).

`POST /ShoppingWebService/V1/updateItems`, form `seller_id` and `item1` … `item100`, each one item's fields
URL-encoded (`item_code=tote-01&price=1980`). The store answers one `<Result>` per item with `<Status>OK`
or `NG` and an `<Error>`: an NG item is logged `failed` with Yahoo's code and message, the rest `applied`.

Yahoo keeps the price (通常販売価格) per item code, not per sub code: a plan's listings `code:sub` are grouped
by item code and the item gets their price. When the targets of one item's sub codes differ — planned ones, or
siblings already at their target that the item's new price would move (`item_targets`) — no single price can be
right: the planned rows are logged `failed` (the item needs splitting in the store, or the ERP's variants one
list price) and nothing is sent for it. A price is absolute, so the request loop may resend after a lost answer; an answer that is lost for good
is logged `failed` and the next cycle plans again from what ingestion read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

from ingestion import yahoo as api
from ingestion.errors import ChannelError
from ingestion.http import ChannelClient
from reverse_sync.plan import PlannedChange
from reverse_sync.push_log import PushRecord

MAX_ITEMS_PER_CALL = 100


def item_of(target_ref: str) -> str:
    """`code:subcode` (or a bare code) → the item code Yahoo keeps the price on."""
    return target_ref.partition(":")[0]


class YahooPricePusher:
    def __init__(self, client: ChannelClient, seller_id: str,
                 item_targets: dict[str, dict[str, int]] | None = None):
        self.client = client
        self.seller_id = seller_id
        self.item_targets = item_targets or {}  # item code → {listing code: target price} of every listed sub code

    def push(self, run_id: str, changes: list[PlannedChange], planned_at: datetime,
             on_progress: Callable[[int, int], None] | None = None) -> list[PushRecord]:
        by_item: dict[str, list[PlannedChange]] = {}
        for change in changes:
            by_item.setdefault(item_of(change.target_ref), []).append(change)
        records: list[PushRecord] = []
        ready: list[tuple[str, list[PlannedChange]]] = []
        for item, rows in by_item.items():
            wanted = self.item_targets.get(item, {}) | {c.target_ref: c.new_value for c in rows}
            if len(set(wanted.values())) > 1:
                shown = ", ".join(f"{ref}={price}" for ref, price in sorted(wanted.items()))
                records += [PushRecord.of_change(run_id, c, "failed", f"item {item}: its sub codes have different target prices "
                                    f"({shown}); Yahoo holds one price per item code", planned_at) for c in rows]
            else:
                ready.append((item, rows))
        for index in range(0, len(ready), MAX_ITEMS_PER_CALL):
            records += self._push_call(run_id, ready[index:index + MAX_ITEMS_PER_CALL], planned_at)
            if on_progress:
                on_progress(len(records), len(changes))
        return records

    def _push_call(self, run_id: str, items: list[tuple[str, list[PlannedChange]]],
                   planned_at: datetime) -> list[PushRecord]:
        form = {"seller_id": self.seller_id}
        for slot, (item, rows) in enumerate(items, 1):
            form[f"item{slot}"] = urlencode({"item_code": item, "price": str(rows[0].new_value)})
        try:
            response = self.client.request("POST", f"{api.API}/updateItems", operation="updateItems", data=form)
            results = api.parse_xml(response, "yahoo: updateItems").findall("Result")
        except ChannelError as exc:
            return [PushRecord.of_change(run_id, c, "failed", f"{type(exc).__name__}: {exc}", planned_at)
                    for _, rows in items for c in rows]
        answers: dict[str, str | None] = {}
        for result in results:
            code = result.findtext("ItemCode") or ""
            if result.findtext("Status") == "OK":
                answers[code] = None
            else:
                answers[code] = f"{result.findtext('Error/Code')}: {result.findtext('Error/Message')}"
        records = []
        for item, rows in items:
            if item not in answers:
                error: str | None = f"item {item}: no result in the updateItems answer"
            else:
                error = answers[item] and f"item {item}: {answers[item]}"
            records += [PushRecord.of_change(run_id, c, "failed" if error else "applied", error, planned_at) for c in rows]
        return records

