"""Number, money and date formats shown to people: yen as `¥1,234,567`, dates and times in JST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from dashboards.i18n import lang, weekday

JST = timezone(timedelta(hours=9), "JST")  # Japan has no daylight saving time


def today_jst() -> date:
    return datetime.now(JST).date()


def yen(amount: int | float | None) -> str:
    """`¥1,234,567`; a negative amount as `-¥1,234`."""
    value = round(amount or 0)
    return f"-¥{-value:,}" if value < 0 else f"¥{value:,}"


def count(value: int | float | None) -> str:
    return f"{round(value or 0):,}"


def day(value: date, lang_: str | None = None) -> str:
    """A JST calendar date: `2026/11/20` in Japanese, `2026-11-20` in English."""
    return value.strftime("%Y/%m/%d" if (lang_ or lang()) == "ja" else "%Y-%m-%d")


def day_with_weekday(value: date, lang_: str | None = None) -> str:
    return f"{day(value, lang_)} ({weekday(value.weekday(), lang_)})"


def jst_timestamp(value: datetime) -> str:
    """An aware (or UTC-naive) timestamp shown in JST, e.g. `2026/11/23 17:45 JST`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(JST).strftime("%Y/%m/%d %H:%M JST")


def delta(current: int, previous: int, money: bool = False) -> str:
    """Period-over-period change for `st.metric`: `+¥12,345 (+5.2%)`, `-3 (-10.0%)`, `±0`.

    Streamlit colours the delta by its leading sign; the percentage is left out when the previous
    period had nothing to compare with.
    """
    diff = current - previous
    if diff == 0:
        return "±0"
    text = ("+" if diff > 0 else "") + (yen(diff) if money else f"{diff:,}")
    if previous:
        text += f" ({diff / previous * 100:+.1f}%)"
    return text
