"""GIVEN the dbt macro latest_version() (dbt_project/macros/latest_version.sql), which ranks only the keys landed
more than once, WHEN DuckDB runs it over landed rows with re-landed versions, ties, NULL keys and two-column
keys, THEN it keeps exactly the rows that ranking every row by the same order keeps.

The macro file is plain Jinja (no dbt context needed), so it is rendered here with jinja2 and run over a real
DuckDB table: no dbt run.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import jinja2
import pyarrow as pa
import pytest

MACROS = Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "latest_version.sql"
ORDER = "updated_at desc nulls last, _fetched_at desc nulls last, _batch_id desc"

JOIN_MACRO = MACROS.with_name("null_safe_match.sql")


@pytest.fixture(scope="module")
def macros():
    # null_safe_match() lives in its own file: dbt sees every macro file, so the test renders both together.
    return jinja2.Environment().from_string(MACROS.read_text(encoding="utf-8")
                                            + JOIN_MACRO.read_text(encoding="utf-8")).module


def landed_rows(seed: int, rows: int) -> pa.Table:
    """Versions of a few hundred keys over a few batches: most keys once, some re-landed (look-back), some with
    equal updated_at (ties broken by fetch time, then batch), some NULL keys and NULL updated_at. Rows that tie on
    every ordering column have no defined winner in either form, so batch ids are unique here."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    keys, shops, updated, fetched, batches, payload = [], [], [], [], [], []
    for n in range(rows):
        keys.append(None if rng.random() < 0.03 else f"o-{rng.randrange(rows // 2)}")
        shops.append(rng.choice(["a", "b", None]))
        updated.append(None if rng.random() < 0.05 else start + timedelta(minutes=rng.randrange(5)))
        batch = rng.randrange(4)
        fetched.append(start + timedelta(hours=batch))
        batches.append(f"2026110{batch}T000000Z-{n:04d}")  # unique: no two rows tie on every ordering column
        payload.append(n)
    return pa.table({"order_id": keys, "shop": shops, "updated_at": updated, "_fetched_at": fetched,
                     "_batch_id": batches, "payload": payload})


def same_rows(con: duckdb.DuckDBPyConnection, ours: str, reference: str) -> tuple[int, int, int]:
    """(rows ours, rows of the reference, rows in either one and not the other, counting duplicates)."""
    count = con.execute(f"select (select count(*) from ({ours})), (select count(*) from ({reference}))").fetchone()
    differ = con.execute(f"select (select count(*) from (({ours}) except all ({reference}))) + "
                         f"(select count(*) from (({reference}) except all ({ours})))").fetchone()
    return count[0], count[1], differ[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("keys", [["order_id"], ["order_id", "shop"]])
def test_the_same_rows_as_ranking_every_row(macros, seed: int, keys: list[str]) -> None:
    con = duckdb.connect()
    con.register("landed", landed_rows(seed, 600))
    ours = macros.latest_version("landed", keys, columns="order_id, shop, payload")
    reference = (f"select order_id, shop, payload from landed qualify row_number() over "
                 f"(partition by {', '.join(keys)} order by {ORDER}) = 1")
    ours_count, reference_count, differ = same_rows(con, ours, reference)
    assert differ == 0
    assert ours_count == reference_count
    distinct = con.execute(f"select count(*) from (select distinct {', '.join(keys)} from landed)").fetchone()[0]
    assert ours_count == distinct  # one row per key, NULL keys included
    repeated = con.execute(f"select count(*) from (select 1 from landed group by {', '.join(keys)} "
                           "having count(*) > 1)").fetchone()[0]
    assert 0 < repeated < distinct  # the data has both kinds of key


def test_the_latest_version_wins_and_a_filter_applies_before_the_choice(macros) -> None:
    con = duckdb.connect()
    con.execute("""create table landed as select * from (values
        ('o-1', timestamptz '2026-11-01 00:00+00', timestamptz '2026-11-01 01:00+00', 'b1', 'first'),
        ('o-1', timestamptz '2026-11-02 00:00+00', timestamptz '2026-11-02 01:00+00', 'b2', 'edited'),
        ('o-1', timestamptz '2026-11-02 00:00+00', timestamptz '2026-11-02 00:30+00', 'b0', 'same time, fetched earlier'),
        ('o-2', timestamptz '2026-11-01 00:00+00', timestamptz '2026-11-01 01:00+00', 'b1', 'only'),
        ('o-3', null, timestamptz '2026-11-03 01:00+00', 'b3', 'no updated_at'),
        ('o-3', timestamptz '2026-11-01 00:00+00', timestamptz '2026-11-01 01:00+00', 'b1', 'dated')
    ) as t(order_id, updated_at, _fetched_at, _batch_id, note)""")
    kept = dict(con.execute(macros.latest_version("landed", ["order_id"], columns="order_id, note")).fetchall())
    assert kept == {"o-1": "edited", "o-2": "only", "o-3": "dated"}
    older = dict(con.execute(macros.latest_version("landed", ["order_id"], columns="order_id, note",
                                                   where="_batch_id in ('b0', 'b1')")).fetchall())
    assert older == {"o-1": "same time, fetched earlier", "o-2": "only", "o-3": "dated"}
