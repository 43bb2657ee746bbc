"""GIVEN the dbt macro jst_date() (dbt_project/macros/money.sql), which shifts the epoch by nine hours instead of
asking icu for Asia/Tokyo, WHEN DuckDB evaluates it, THEN it gives the JST calendar date that Python's zoneinfo
gives for the same instant: around every midnight in Japan, at random instants from 1952 to 2100, before 1970
(negative epoch), and NULL for NULL.

The macro file is plain Jinja (no dbt context needed), so it is rendered here with jinja2 and evaluated by
DuckDB: no dbt run.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import jinja2
import pyarrow as pa

MACROS = Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "money.sql"
TOKYO = ZoneInfo("Asia/Tokyo")


def test_jst_date_is_the_calendar_date_in_tokyo():
    jst_date = jinja2.Environment().from_string(MACROS.read_text(encoding="utf-8")).module.jst_date
    rng = random.Random(20261125)
    instants: list[datetime | None] = [None]
    for day in (datetime(1952, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, tzinfo=UTC),
                datetime(2024, 2, 28, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)):
        midnight_utc = day.replace(hour=15)  # 00:00 the next day in Tokyo
        instants += [midnight_utc + timedelta(microseconds=d) for d in (-1, 0, 1)]
    start, span = datetime(1952, 1, 1, tzinfo=UTC), (datetime(2100, 1, 1) - datetime(1952, 1, 1)).total_seconds()
    instants += [start + timedelta(seconds=rng.uniform(0, span)) for _ in range(20_000)]
    con = duckdb.connect()
    con.register("instants", pa.table({"ts": pa.array(instants, pa.timestamp("us", tz="UTC"))}))

    got = con.execute(f"select ts, {jst_date('ts')} as d from instants").fetchall()

    assert len(got) == len(instants)
    wrong = [(ts, d) for ts, d in got if d != (ts.astimezone(TOKYO).date() if ts is not None else None)]
    assert wrong == []
    assert sum(1 for _, d in got if d is None) == 1
