"""The filters every page shares: the period (last 7/30/90 days or a custom JST date range) and the channels.

A page calls `sidebar(...)` and gets a `Filters` value back. The widgets keep their state for the whole
session (`persist_state="session"`), so a manager who picks "last 90 days, Rakuten only" on one page finds
the same choice on the next. Periods are JST calendar days ending today (JST), both ends included; the
previous period is the one of equal length just before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import streamlit as st

from dashboards import channels as ch
from dashboards.formatting import day, today_jst
from dashboards.i18n import keep_on_language_change, labels, t

PRESET_DAYS: dict[str, int] = {"7d": 7, "30d": 30, "90d": 90}
PERIOD_CHOICES: tuple[str, ...] = (*PRESET_DAYS, "custom")
DEFAULT_PERIOD = "30d"

# Session-state keys of the filter widgets (tests set them through these).
PERIOD_KEY = "filter_period"
RANGE_KEY = "filter_range"
CHANNELS_KEY = "filter_channels"
keep_on_language_change(PERIOD_KEY, CHANNELS_KEY)  # their option labels are translated
_CHANNELS_SEEN_KEY = "_filter_channels_seen"  # the channel options of the previous run


@dataclass(frozen=True)
class Period:
    """JST calendar days `start`..`end`, both included."""

    start: date
    end: date

    @classmethod
    def last(cls, days: int, today: date) -> Period:
        return cls(today - timedelta(days=days - 1), today)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of equal length that ends the day before this one starts."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


@dataclass(frozen=True)
class Filters:
    period: Period
    channels: tuple[str, ...]

    @property
    def previous(self) -> Period:
        return self.period.previous()

    def summary(self) -> str:
        prev = self.previous
        return t(
            "filters.summary",
            start=day(self.period.start),
            end=day(self.period.end),
            days=self.period.days,
            prev_start=day(prev.start),
            prev_end=day(prev.end),
        )


def period_for(choice: str, custom: object, today: date) -> Period:
    """The period a choice means; `custom` is the date_input value (a 1- or 2-tuple while being picked)."""
    if choice in PRESET_DAYS:
        return Period.last(PRESET_DAYS[choice], today)
    if isinstance(custom, date):
        return Period(custom, custom)
    picked = [d for d in (custom or ()) if isinstance(d, date)]
    if not picked:
        return Period.last(PRESET_DAYS[DEFAULT_PERIOD], today)
    start, end = min(picked), max(picked)
    return Period(start, end)


def sidebar(channels: Sequence[str], *, today: date | None = None) -> Filters:
    """Draw the shared filters in the sidebar and return what they select.

    `channels` are the channel slugs the page's data holds; all are selected until the user narrows them.
    """
    today = today or today_jst()
    options = ch.ordered(channels)
    state = st.session_state
    # Defaults go in through the session state (not `index=`/`default=`), so that re-assigning the keys —
    # as the language switch does — is not a conflict. A remembered channel the data no longer holds is
    # dropped rather than breaking the multiselect; when every channel was selected and a publish brings
    # a new one, the new one is selected too.
    state.setdefault(PERIOD_KEY, DEFAULT_PERIOD)
    known_before = state.get(_CHANNELS_SEEN_KEY)
    if CHANNELS_KEY not in state or (known_before != options and state[CHANNELS_KEY] == known_before):
        state[CHANNELS_KEY] = list(options)
    elif any(c not in options for c in state[CHANNELS_KEY]):
        state[CHANNELS_KEY] = [c for c in state[CHANNELS_KEY] if c in options]
    state[_CHANNELS_SEEN_KEY] = list(options)
    # Each page draws its own copy of these widgets (Streamlit ties a widget to the page that draws it), so
    # the first run of a page a user switches to would start its widgets from their defaults. Re-assigning
    # the keys hands the values chosen on the previous page to this page's widgets.
    for key in (PERIOD_KEY, RANGE_KEY, CHANNELS_KEY):
        if key in state:
            state[key] = state[key]
    bar = st.sidebar
    bar.subheader(t("filters.header"))
    choice = bar.radio(
        t("filters.period"),
        PERIOD_CHOICES,
        format_func=labels({key: f"filters.period.{key}" for key in PERIOD_CHOICES}).__getitem__,
        key=PERIOD_KEY,
        persist_state="session",
    )
    custom: object = None
    if choice == "custom":
        # its default goes in through the session state too, never `value=` (the key is re-assigned above)
        state.setdefault(RANGE_KEY, (today - timedelta(days=PRESET_DAYS[DEFAULT_PERIOD] - 1), today))
        custom = bar.date_input(
            t("filters.date_range"),
            max_value=today,
            format="YYYY/MM/DD",
            key=RANGE_KEY,
            persist_state="session",
        )
    names = {slug: ch.name(slug) for slug in options}
    chosen = bar.multiselect(
        t("filters.channels"),
        options,
        format_func=names.__getitem__,
        placeholder=t("filters.channels.placeholder"),
        key=CHANNELS_KEY,
        persist_state="session",
    )
    return Filters(
        period=period_for(choice, custom, today), channels=tuple(c for c in chosen if c in options)
    )
