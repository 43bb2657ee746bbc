"""Plan: diff the published targets against what each channel last showed, keep only real changes.

The channel's last known state is the newest of (a) what ingestion last landed from the channel and (b) what
we pushed since and the channel accepted (push log), so a second apply right after the first plans nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ichigen.publish import published_version


@dataclass(frozen=True)
class ChannelListing:
    """One SKU as a channel holds it: the channel's own reference and the value it showed last (`quantity`: units
    for a stock plan, tax-inclusive JPY for a price plan)."""

    sku: str
    target_ref: str  # the channel's id for what we push to, e.g. "<inventoryItemId>@<locationId>"
    quantity: int
    seen_at: datetime


@dataclass(frozen=True)
class PlannedChange:
    channel: str
    field: str
    sku: str
    target_ref: str
    old_value: int
    new_value: int
    reason: str
    # When the channel showed old_value (the landed read, or our own applied push); None: not known. Amazon's
    # large stock pushes look for sales from here on (D200).
    seen_at: datetime | None = None


@dataclass
class Plan:
    channel: str
    field: str
    run_id: str
    planned_at: datetime
    targets_version: str | None
    targets_published_at: datetime | None
    changes: list[PlannedChange]
    listed: int  # SKUs the channel lists that have a target
    unchanged: int
    without_listing: list[str] = field(default_factory=list)  # targets for SKUs the channel does not list
    without_target: list[str] = field(default_factory=list)  # listings for which no target exists

    @property
    def is_empty(self) -> bool:
        return not self.changes


def new_run_id(channel: str) -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}Z-{channel}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class StockTarget:
    sku: str
    target_quantity: int
    explain: str


def _read_targets(serving_path: Path, sql: str, channel: str) -> list[tuple]:
    """One channel's (sku, value, explain) rows from a mart of the published serving copy, read-only."""
    if not serving_path.exists():
        raise FileNotFoundError(
            f"no published serving copy at {serving_path}: run a build first (ichigen once)"
        )
    con = duckdb.connect(str(serving_path), read_only=True)
    try:
        return con.execute(sql, [channel]).fetchall()
    finally:
        con.close()


def read_stock_targets(serving_path: Path, channel: str) -> tuple[dict[str, StockTarget], dict | None]:
    """Targets for one channel from the published serving copy (read-only), with the published manifest."""
    rows = _read_targets(
        serving_path, "select sku, target_quantity, explain from mart_channel_stock_targets where channel = ?", channel)
    targets = {sku: StockTarget(sku, int(qty), explain or "") for sku, qty, explain in rows}
    return targets, published_version(serving_path)


@dataclass(frozen=True)
class PriceTarget:
    sku: str
    target_price: int  # tax-inclusive JPY, as the channel shows it
    explain: str


def read_price_targets(serving_path: Path, channel: str) -> tuple[dict[str, PriceTarget], dict | None]:
    """Price targets for one channel (mart_channel_price_targets) from the serving copy, with its manifest."""
    rows = _read_targets(
        serving_path, "select sku, target_price_tax_incl, explain from mart_channel_price_targets where channel = ?",
        channel)
    targets = {sku: PriceTarget(sku, int(price), explain or "") for sku, price, explain in rows}
    return targets, published_version(serving_path)


def plan_stock(
    channel: str,
    targets: dict[str, StockTarget],
    listings: dict[str, ChannelListing],
    manifest: dict | None,
    full: bool = False,
) -> Plan:
    """Changes that bring the channel's shown quantity to the target, one per listed SKU that differs (every
    listed SKU with `full`)."""
    wanted = {sku: (t.target_quantity, t.explain) for sku, t in targets.items()}
    return plan_field(channel, "stock", wanted, listings, manifest, full)


def plan_prices(
    channel: str,
    targets: dict[str, PriceTarget],
    listings: dict[str, ChannelListing],
    manifest: dict | None,
    full: bool = False,
) -> Plan:
    """Changes that bring the channel's shown price to the target (listings' `quantity` holds the price)."""
    wanted = {sku: (t.target_price, t.explain) for sku, t in targets.items()}
    return plan_field(channel, "price", wanted, listings, manifest, full)


def plan_field(
    channel: str,
    field_name: str,
    wanted: dict[str, tuple[int, str]],
    listings: dict[str, ChannelListing],
    manifest: dict | None,
    full: bool = False,
) -> Plan:
    """One change per listed SKU whose shown value differs from the wanted (value, explain). A `full` plan
    re-sends every listed SKU (a resync that heals drift our record of the channel cannot see)."""
    changes: list[PlannedChange] = []
    unchanged = 0
    for sku in sorted(wanted.keys() & listings.keys()):
        (value, explain), listing = wanted[sku], listings[sku]
        if value == listing.quantity and not full:
            unchanged += 1
            continue
        changes.append(
            PlannedChange(
                channel=channel,
                field=field_name,
                sku=sku,
                target_ref=listing.target_ref,
                old_value=listing.quantity,
                new_value=value,
                reason=explain,
                seen_at=listing.seen_at,
            )
        )
    published_at = None
    if manifest and manifest.get("published_at"):
        published_at = datetime.fromisoformat(manifest["published_at"])
    return Plan(
        channel=channel,
        field=field_name,
        run_id=new_run_id(channel),
        planned_at=datetime.now(UTC),
        targets_version=(manifest or {}).get("version"),
        targets_published_at=published_at,
        changes=changes,
        listed=len(wanted.keys() & listings.keys()),
        unchanged=unchanged,
        without_listing=sorted(wanted.keys() - listings.keys()),
        without_target=sorted(listings.keys() - wanted.keys()),
    )


def latest_listings(landed: pl.DataFrame, pushed: pl.DataFrame) -> dict[str, ChannelListing]:
    """Newest known quantity per channel reference, from landed channel state and applied pushes.

    Both frames have columns sku, target_ref, quantity, seen_at (UTC).
    """
    frames = [f.select("sku", "target_ref", "quantity", "seen_at") for f in (landed, pushed) if f.height]
    if not frames:
        return {}
    newest = (
        pl.concat(frames, how="vertical_relaxed")
        .sort("seen_at")
        .group_by("target_ref", maintain_order=True)
        .last()
    )
    return {
        row["sku"]: ChannelListing(row["sku"], row["target_ref"], int(row["quantity"]), row["seen_at"])
        for row in newest.iter_rows(named=True)
        if row["sku"]
    }
