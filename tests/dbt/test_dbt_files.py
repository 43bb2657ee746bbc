"""dbt staging for the file sources: the sandbox's files for two days, landed by ingestion.files (real CP932
CSVs and workbooks), built by dbt into stg_pos__sales, stg_b2b__orders and stg_carrier__trackings with their
tests; and the same models over an empty landing zone."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from ichigen_dbt_helpers import DbtResult, start_dbt

from ingestion.files import ENTITIES, ingest_files

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))
from sandbox_testkit import small_world  # noqa: E402

from sandbox.files import POS_SALES_HEADER, STORES, FileDrops, _csv_bytes  # noqa: E402

MODELS = ("--select", "stg_pos__sales stg_b2b__orders stg_carrier__trackings")
DAY = date(2026, 11, 22)


@dataclass
class Builds:
    drops: FileDrops
    full: DbtResult  # the sandbox's files for two days, one store's day re-sent, another's corrected
    empty: DbtResult  # no landing zone at all
    corrected_receipt: list[tuple]  # the receipt's lines before the correction
    corrected_total: int


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    from ichigen.config import load_config

    root = tmp_path_factory.mktemp("files_dbt")
    config = load_config().with_overrides(**{"base_dir": str(root), "paths.landing": "landing",
                                             "paths.inbox": "inbox", "files.settle_seconds": 0})
    world = small_world(skus=10, customers=20, history_days=3, orders_per_day=10)
    drops = FileDrops(world, config.inbox_dir)
    drops.drop_day(DAY)
    for source, entities in ENTITIES.items():
        for entity in entities:
            ingest_files(config, source, entity)
    # The store re-sends the day (same content: lands nothing), S002 sends a corrected day (one receipt
    # shortened to its first line, 100 yen off), and the next day arrives.
    drops.drop_pos_sales("S001", DAY)
    rows = drops.pos_sales_rows("S002", DAY)
    receipt = [r for r in rows if r[1:3] == rows[0][1:3]]
    corrected = [r for r in rows if r[1:3] != rows[0][1:3]] + [(*receipt[0][:9], receipt[0][9] - 100)]
    (config.inbox_dir / "pos" / "sales" / f"POS_URIAGE_S002_{DAY:%Y%m%d}.csv").write_bytes(
        _csv_bytes(POS_SALES_HEADER, sorted(corrected, key=lambda r: (r[3], r[1], r[2]))))
    drops.drop_day(date(2026, 11, 23))
    for source, entities in ENTITIES.items():
        for entity in entities:
            ingest_files(config, source, entity)
    full = start_dbt(root / "full", "build", *MODELS, landing=config.landing_dir)
    empty = start_dbt(root / "empty", "build", *MODELS, landing=root / "no_landing")
    return Builds(drops, full.result(), empty.result(), receipt, receipt[0][9] - 100)


def test_build_passes_every_test(builds):
    full, empty = builds.full, builds.empty
    for result in (full, empty):
        assert result.returncode == 0, result.output[-3000:]
        statuses = result.statuses()
        assert not [k for k, s in statuses.items() if s not in ("pass", "success")]
        # every selected model's own tests ran, its declared not-null columns among them (D175)
        for model in MODELS[1].split():
            assert statuses[f"model.ichigen.{model}"] == "success"
            assert any(k.startswith(f"test.ichigen.declared_not_null_{model}") for k in statuses), model
        assert sum(1 for s in statuses.values() if s == "pass") >= 10


def test_pos_sales_match_the_files(builds):
    drops, full, empty = builds.drops, builds.full, builds.empty
    expected = sum(len(drops.pos_sales_rows(code, day)) for code, *_ in STORES for day in (DAY, date(2026, 11, 23)))
    receipt, corrected_total = builds.corrected_receipt, builds.corrected_total
    assert full.query("select count(*) from staging.stg_pos__sales") == [(expected - len(receipt) + 1,)]
    register, number = receipt[0][1], receipt[0][2]
    assert full.query(f"""select count(*), sum(line_total_jpy), min(file_name) from staging.stg_pos__sales
                          where store_code = 'S002' and business_date_jst = '2026-11-22'
                          and register_no = '{register}' and receipt_no = '{number}'""") == [
        (1, corrected_total, f"POS_URIAGE_S002_{DAY:%Y%m%d}.csv")]  # the corrected file won
    rows = drops.pos_sales_rows("S003", DAY)
    total = sum(r[9] for r in rows)
    assert full.query("""select sum(line_total_jpy), min(business_date_jst), max(business_date_jst)
                         from staging.stg_pos__sales where store_code = 'S003' and business_date_jst = '2026-11-22'""") == [
        (total, DAY, DAY)]
    first = rows[0]
    hh, mm, ss = (int(x) for x in first[3][11:].split(":"))
    utc_hour = full.query(f"""select hour(transacted_at_utc at time zone 'UTC') from staging.stg_pos__sales
                              where store_code = 'S003' and business_date_jst = '2026-11-22' and
                              receipt_no = '{first[2]}' and register_no = '{first[1]}' and line_no = 1""")
    assert utc_hour == [((hh - 9) % 24,)]  # JST → UTC
    assert full.query("select count(*) from staging.stg_pos__sales where not is_valid_jan") == [(0,)]
    assert empty.query("select count(*) from staging.stg_pos__sales") == [(0,)]


def test_b2b_orders_and_carrier_trackings(builds):
    drops, full = builds.drops, builds.full
    orders = drops.b2b_orders(DAY) + drops.b2b_orders(date(2026, 11, 23))
    lines = sum(len(rows) for _, _, rows in orders)
    assert full.query("select count(*), count(distinct order_key) from staging.stg_b2b__orders") == [
        (lines, len(orders))]
    customer, po, rows = orders[0]
    assert full.query(f"""select sum(line_total_tax_excl_jpy) from staging.stg_b2b__orders
                          where order_key = '{customer}|{po}'""") == [(sum(r[6] * r[7] for r in rows),)]
    trackings = full.query("select tracking_number, order_reference, shipped_on_jst from staging.stg_carrier__trackings")
    assert trackings and all(len(t) == 12 and ref.startswith("SHOP-") for t, ref, _ in trackings)
    assert len({ref for _, ref, _ in trackings}) == len(trackings)  # each shipped order reported once
