"""Order lifecycles over arrays: what happens to an order after it is placed, and what it looks like at a moment.

The shop and the malls plan each order's payment, shipment, delivery, cancellation, refund or return when it is
placed (a row of uniform numbers decides), then apply each event when it falls due. The plans are written over
numpy arrays so one function serves both users:
- the generated history plans a whole channel's year at once and `replay`s it up to the world's `now` in a few
  array passes (the history is made as of `now`, so nearly every event is already due);
- a live order is the same function on a single row (`ordered_events`), its events applied one by one as time
  passes (World._apply, Mall._apply).
So the history and the live simulator cannot drift apart in what they plan; tests/sandbox/test_sandbox_lifecycle.py
checks that `replay` reaches the state the event-by-event path reaches.

Offsets are whole seconds after the order was placed; ABSENT marks an event the plan does not contain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

ABSENT = -1
# Payment families: paid at order (card; PayPay on the malls), paid later (bank transfer, konbini), paid at the door.
INSTANT, DEFERRED, COD = 0, 1, 2

SHOP_DRAWS = 5  # uniforms per order that `shop_plan` reads
MALL_DRAWS = 7

Plan = dict[str, np.ndarray]


def _hours(lo: float, hi: float, u: np.ndarray) -> np.ndarray:
    """Whole seconds of a uniform draw between `lo` and `hi` hours (what `round(rng.uniform(lo, hi) * 3600)` gives)."""
    return np.rint((lo + (hi - lo) * u) * 3600).astype(np.int64)


def _absent_unless(mask: np.ndarray, offsets: np.ndarray | int) -> np.ndarray:
    return np.where(mask, offsets, ABSENT).astype(np.int64)


def shop_plan(family: np.ndarray, u: np.ndarray) -> Plan:
    """The shop's plan per order (`u`: one row of SHOP_DRAWS uniforms per order).

    Card: cancelled within the day (3 %), else shipped in 4–60 h, then 2 % refunded and 1.5 % partly refunded
    3–10 days later. Bank and konbini: never paid (12 %) and cancelled after the 7-day deadline, else paid in
    0.2–72 h and shipped 4–48 h later. Cash on delivery: cancelled in 0.5–12 h (2 %), else shipped in 4–48 h and
    paid at the door 20–72 h later."""
    instant, deferred, cod = family == INSTANT, family == DEFERRED, family == COD
    cancelled = u[:, 0] < np.select([instant, deferred], [0.03, 0.12], 0.02)
    going = ~cancelled
    cancel = np.select([instant, deferred], [_hours(0.3, 20, u[:, 1]), 7 * 86400], _hours(0.5, 12, u[:, 1]))
    pay_deferred = _hours(0.2, 72, u[:, 1])
    ship = np.select([instant, deferred], [_hours(4, 60, u[:, 1]), pay_deferred + _hours(4, 48, u[:, 2])],
                     _hours(4, 48, u[:, 1]))
    pay = np.where(deferred, pay_deferred, ship + _hours(20, 72, u[:, 2]))
    refund_at = ship + _hours(72, 240, u[:, 4])
    refund_roll = u[:, 3]
    return {
        "pay": _absent_unless(going & (deferred | cod), pay),
        "ship": _absent_unless(going, ship),
        "cancel": _absent_unless(cancelled, cancel),
        "refund": _absent_unless(going & instant & (refund_roll < 0.02), refund_at),
        "partial_refund": _absent_unless(going & instant & (refund_roll >= 0.02) & (refund_roll < 0.035), refund_at),
    }


def mall_plan(family: np.ndarray, u: np.ndarray) -> Plan:
    """A mall's plan per order (`u`: one row of MALL_DRAWS uniforms per order).

    Confirmed in 0.05–3 h. Card / PayPay: cancelled (3 %) 0.2–20 h after confirmation, else shipped in 3–48 h.
    Bank / konbini: never paid (12 %) and cancelled after 7 days, else paid in 0.2–72 h and shipped 3–40 h later.
    Cash on delivery: cancelled (2 %) in 0.5–12 h, else shipped in 3–40 h and paid at delivery. Delivered 18–60 h
    after shipment; 2 % are returned 1–8 days after delivery. Events at the same second happen in the order of the
    plan's keys (a COD order is delivered, then paid)."""
    instant, deferred, cod = family == INSTANT, family == DEFERRED, family == COD
    confirm = _hours(0.05, 3, u[:, 0])
    cancelled = u[:, 1] < np.select([instant, deferred], [0.03, 0.12], 0.02)
    going = ~cancelled
    cancel = np.select([instant, deferred], [confirm + _hours(0.2, 20, u[:, 2]), 7 * 86400],
                       confirm + _hours(0.5, 12, u[:, 2]))
    pay_deferred = confirm + _hours(0.2, 72, u[:, 2])
    ship = np.select([instant, deferred], [confirm + _hours(3, 48, u[:, 2]), pay_deferred + _hours(3, 40, u[:, 3])],
                     confirm + _hours(3, 40, u[:, 2]))
    deliver = ship + _hours(18, 60, u[:, 4])
    return {
        "confirm": confirm,
        "ship": _absent_unless(going, ship),
        "deliver": _absent_unless(going, deliver),
        "pay": _absent_unless(going & (deferred | cod), np.where(cod, deliver, pay_deferred)),
        "cancel": _absent_unless(cancelled, cancel),
        "return": _absent_unless(going & (u[:, 5] < 0.02), deliver + _hours(24, 200, u[:, 6])),
    }


def ordered_events(plan: Plan, row: int) -> list[tuple[int, str]]:
    """One order's planned events as (offset, kind), in the order they happen (ties in the plan's kind order)."""
    events = [(int(offsets[row]), rank, kind) for rank, (kind, offsets) in enumerate(plan.items())
              if offsets[row] != ABSENT]
    return [(offset, kind) for offset, _rank, kind in sorted(events)]


Transition = Callable[[dict[str, np.ndarray], np.ndarray, np.ndarray], None]


@dataclass
class Replayed:
    applied: np.ndarray  # per order: how many of its events were applied
    last_at: np.ndarray  # per order: epoch seconds of the last event applied, -1 when none was
    pending: list[tuple[int, int, str]]  # (order row, epoch seconds, kind) still to come, each order's in time order


def replay(plan: Plan, created: np.ndarray, until: int, state: dict[str, np.ndarray],
           transitions: dict[str, Transition]) -> Replayed:
    """Apply every planned event due by `until` (epoch seconds) to the columns in `state`, each order's events in
    time order (ties in the plan's kind order), as applying them one by one would. `transitions[kind](state, rows,
    at)` applies one kind of event to the orders `rows` at epoch times `at`."""
    kinds = list(plan)
    offsets = np.stack([plan[k] for k in kinds], axis=1)
    never = np.iinfo(np.int64).max
    times = np.where(offsets != ABSENT, created[:, None] + offsets, never)
    slots = np.argsort(times, axis=1, kind="stable")  # stable: ties keep the kind order
    times = np.take_along_axis(times, slots, axis=1)
    applied = times <= until
    for slot in range(len(kinds)):
        for k, kind in enumerate(kinds):
            rows = np.flatnonzero(applied[:, slot] & (slots[:, slot] == k))
            if len(rows):
                transitions[kind](state, rows, times[rows, slot])
    later_rows, later_slots = np.nonzero(~applied & (times != never))  # row-major: each order's in time order
    pending = [(row, int(times[row, slot]), kinds[slots[row, slot]])
               for row, slot in zip(later_rows.tolist(), later_slots.tolist(), strict=True)]
    return Replayed(applied.sum(axis=1), np.where(applied, times, -1).max(axis=1), pending)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def as_datetime(epoch_seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=epoch_seconds)


def as_datetimes(epoch_seconds: np.ndarray) -> list[datetime | None]:
    """Aware UTC datetimes of epoch seconds; None for a negative value (a moment that did not happen)."""
    fromtimestamp = datetime.fromtimestamp
    return [fromtimestamp(s, UTC) if s >= 0 else None for s in epoch_seconds.tolist()]
