"""Small pieces every connector shares: the ingest result, record errors, UTC time parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class IngestResult:
    """What one `ingest` call did. `batch_id` is None when nothing landed (zero rows write no batch).

    cursor_from: the lower bound the fetch asked for (cursor − look-back, or the backfill start); None for a
    full snapshot. cursor_to: max(cursor_field) over the rows landed in this batch.
    """

    source: str
    entity: str
    rows_landed: int
    rows_quarantined: int
    batch_id: str | None
    cursor_from: datetime | None
    cursor_to: datetime | None
    path: Path | None = None
    quarantine_path: Path | None = None
    pages: int = 0
    retries: int = 0
    truncated: bool = False  # the page bound stopped a cursor-ordered fetch early; the next run continues


class RecordError(ValueError):
    """One source record cannot be landed (no key, unparseable value). It goes to quarantine with this reason."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_utc(value: Any, *, field: str, assume_utc: bool = False) -> datetime | None:
    """An ISO-8601 timestamp with an offset (or a tz-aware datetime) → aware UTC datetime, microseconds.

    None stays None. A naive datetime object (e.g. PostgreSQL `timestamp` without zone) is taken as UTC; a
    string without an offset is refused unless `assume_utc` (a source whose contract says its text is UTC),
    because guessing the zone of text is how JST data ends up 9 h off.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        raise RecordError(f"{field} {value!r} is a date, not a timestamp")
    if not isinstance(value, str):
        raise RecordError(f"{field} {value!r} is not a timestamp")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"{field} {value!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        if assume_utc:
            return parsed.replace(tzinfo=UTC)
        raise RecordError(f"{field} {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


def require(value: Any, *, field: str) -> Any:
    if value is None or value == "":
        raise RecordError(f"{field} is missing")
    return value


def decimal_text(value: Any, *, field: str) -> str | None:
    """A decimal amount kept as the text the source sent, after checking it is a number."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise RecordError(f"{field} {value!r} is not a decimal amount") from None
    if not number.is_finite():
        raise RecordError(f"{field} {value!r} is not a finite amount")
    return text


def to_int(value: Any, *, field: str) -> int | None:
    """An integer from an int, an integral float/Decimal, or digit text (SQLite is loosely typed)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field} {value!r} is a boolean, not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if value == int(value):
            return int(value)
        raise RecordError(f"{field} {value!r} is not a whole number")
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise RecordError(f"{field} {value!r} is not an integer") from None
    raise RecordError(f"{field} {value!r} is not an integer")


def format_utc(value: datetime) -> str:
    """`2026-11-23T01:02:03Z` — the form Shopify's search syntax and most APIs accept."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"cannot serialise {type(value).__name__} into _raw")


def raw_json(record: Any) -> str:
    """The `_raw` column: the record as the source returned it, as compact JSON text (UTF-8, not escaped)."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_default)
