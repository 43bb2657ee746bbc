"""Quarantine counts are visible in Dagster: every ingest asset carries a check that warns with the reasons."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import dagster as dg

from orchestration.assets import QUARANTINE_CHECK, build_landing_asset

STAMP = datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_erp(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE products (sku TEXT PRIMARY KEY, jan TEXT, name TEXT, name_kana TEXT, category TEXT,"
            " size TEXT, color TEXT, list_price INTEGER, tax_class TEXT, safety_stock INTEGER, updated_at TEXT,"
            " is_bundle INTEGER NOT NULL DEFAULT 0);"
        )
        db.executemany("INSERT INTO products (sku, jan, name, name_kana, category, size, color, list_price, tax_class,"
                       " safety_stock, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)


def product(sku, list_price) -> tuple:
    return (sku, "4901234567894", "Tシャツ", "ﾃｨｰｼｬﾂ", "トップス", "M", None, list_price, "standard", 1, STAMP)


def materialize_products(tmp_config) -> dg.AssetCheckEvaluation:
    products = dg.AssetKey(["erp", "products"])
    result = dg.materialize([build_landing_asset(tmp_config)], selection=[products], raise_on_error=True)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == QUARANTINE_CHECK and evaluation.asset_key == products
    return evaluation


def test_a_clean_batch_passes_the_quarantine_check(tmp_config):
    write_erp(tmp_config.resolve(tmp_config.erp.sqlite_path), [product("TS-1", 1800), product("TS-2", 2000)])
    evaluation = materialize_products(tmp_config)
    assert evaluation.passed
    assert evaluation.metadata["rows_landed"].value == 2


def test_a_quarantined_record_warns_with_its_reason_and_the_rest_lands(tmp_config):
    # SQLite keeps whatever it is given: a price typed by hand as text is what a real ERP export can hold.
    write_erp(tmp_config.resolve(tmp_config.erp.sqlite_path), [product("TS-1", 1800), product("TS-2", "千八百円")])
    evaluation = materialize_products(tmp_config)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["rows_quarantined"].value == 1
    assert evaluation.metadata["rows_landed"].value == 1
    reasons = evaluation.metadata["reasons"].value
    assert len(reasons) == 1 and "list_price" in next(iter(reasons)) and next(iter(reasons.values())) == 1
