"""File ingestion (ingestion.files) against real files in a tmp inbox and a real landing zone: CP932 with
NEC/IBM extension characters, encodings mixed up, broken rows and sheets, invalid JANs, the same file twice,
and the sandbox's own drops end to end."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import polars as pl
import pytest
from openpyxl import Workbook

import ingestion
from ingestion.files import ENTITIES, FILE_COLUMNS, ingest_files, jan_is_valid
from ingestion.landing import LandingZone

SALES_HEADER = "店舗コード,レジ番号,レシート番号,取引日時,会員番号,JANコード,商品名,数量,単価,金額"
JAN_A, JAN_B = "4901234567894", "4549131970258"  # valid check digits
JAN_BAD = "4901234567890"


@pytest.fixture
def config(tmp_config):
    return tmp_config.with_overrides(**{"paths.inbox": "inbox", "files.settle_seconds": 0})


def drop(config, folder: str, name: str, data: bytes):
    path = config.inbox_dir / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def sales_csv(*lines: str, encoding: str = "cp932") -> bytes:
    return ("\r\n".join([SALES_HEADER, *lines]) + "\r\n").encode(encoding)


def landed(config, source: str, entity: str) -> pl.DataFrame:
    return LandingZone(config.landing_dir).landed(source, entity).collect()


def quarantined(config, source: str, entity: str) -> pl.DataFrame:
    return LandingZone(config.landing_dir).quarantined(source, entity).collect()


def test_jan_check_digit():
    assert jan_is_valid(JAN_A) and jan_is_valid(JAN_B) and jan_is_valid("49123456")
    assert not jan_is_valid(JAN_BAD) and not jan_is_valid("490123456789") and not jan_is_valid("４９０１２３４５６７８９４")


def test_cp932_file_with_extension_characters_lands(config):
    name = "POS_URIAGE_S003_20261122.csv"
    drop(config, "pos/sales", name, sales_csv(
        f"S003,01,0001,2026/11/22 10:05:00,2900000017,{JAN_A},髙島屋限定①マグ㈱﨑Ⅱ,2,1980,3960",
        f"S003,01,0002,2026/11/23 08:59:59,,{JAN_B},帆布トート,-1,3300,-3300",
    ))
    report = ingest_files(config, "pos", "sales")
    assert report.result.rows_landed == 2 and report.result.rows_quarantined == 0
    frame = landed(config, "pos", "sales").sort("file_row")
    assert frame.get_column("product_name").to_list() == ["髙島屋限定①マグ㈱﨑Ⅱ", "帆布トート"]
    assert frame.get_column("transacted_at").to_list() == [  # JST → UTC
        datetime(2026, 11, 22, 1, 5, tzinfo=UTC), datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)]
    assert frame.get_column("member_id").to_list() == ["2900000017", None]
    assert frame.get_column("amount").to_list() == [3960, -3300]
    assert frame.get_column("file_row").to_list() == [2, 3]
    assert set(frame.get_column("file_name")) == {name}
    assert len(frame.get_column("file_sha256")[0]) == 64
    assert (config.inbox_dir / "processed" / "pos" / "sales" / name).exists()
    assert not (config.inbox_dir / "pos" / "sales" / name).exists()
    assert set(FILE_COLUMNS) <= set(frame.columns)


@pytest.mark.parametrize("data, expected", [
    (sales_csv(f"S001,01,0001,2026/11/22 10:05:00,,{JAN_A},髙島屋① マグ,1,1980,1980", encoding="utf-8"),
     "UTF-8"),
    (b"\xef\xbb\xbf" + sales_csv(f"S001,01,0001,2026/11/22 10:05:00,,{JAN_A},マグ,1,1980,1980", encoding="utf-8"),
     "UTF-8"),
    (sales_csv(f"S001,01,0001,2026/11/22 10:05:00,,{JAN_A},マグ,1,1980,1980", encoding="euc_jp"), "CP932"),
], ids=["utf8", "utf8-bom", "euc-jp"])
def test_file_in_the_wrong_encoding_fails_with_a_reason_naming_it(config, data, expected):
    name = "POS_URIAGE_S001_20261122.csv"
    drop(config, "pos/sales", name, data)
    report = ingest_files(config, "pos", "sales")
    assert report.result.rows_landed == 0 and [p.name for p in report.failed] == [name]
    reason = (config.inbox_dir / "failed" / "pos" / "sales" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert name in reason and expected in reason
    assert landed(config, "pos", "sales").height == 0


def test_cp932_file_where_the_header_is_missing_a_column_fails(config):
    name = "POS_KAIIN_20261122.csv"
    drop(config, "pos/members", name, "会員番号,氏名,電話番号\r\n001,髙橋 一郎,090-1111-2222\r\n".encode("cp932"))
    report = ingest_files(config, "pos", "members")
    assert [p.name for p in report.failed] == [name]
    reason = (config.inbox_dir / "failed" / "pos" / "members" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert name in reason and "氏名カナ" in reason and "登録日" in reason


def test_broken_row_and_invalid_jan_are_quarantined_the_rest_lands(config):
    name = "POS_URIAGE_S001_20261122.csv"
    drop(config, "pos/sales", name, sales_csv(
        f"S001,01,0001,2026/11/22 10:05:00,,{JAN_A},マグ,1,1980,1980",
        "S001,01,0002,2026/11/22 10:06:00,,マグ,1",  # truncated row
        f"S001,02,0003,2026/11/22 11:00:00,,{JAN_BAD},トート,1,3300,3300",  # check digit wrong
        f"S001,02,0004,2026/11/22 11:30:00,,{JAN_B},トート,一,3300,3300",  # not a number
        f"S001,02,0005,2026/11/22 12:00:00,,{JAN_B},トート,\"1,000\",3,3000",  # thousands separator is fine
    ))
    report = ingest_files(config, "pos", "sales")
    assert (report.result.rows_landed, report.result.rows_quarantined) == (2, 3)
    assert landed(config, "pos", "sales").sort("file_row").get_column("receipt_no").to_list() == ["0001", "0005"]
    bad = quarantined(config, "pos", "sales").sort("record_key")
    assert bad.get_column("record_key").to_list() == [f"{name}#3", f"{name}#4", f"{name}#5"]
    reasons = bad.get_column("reason").to_list()
    assert reasons[0].startswith(f"{name} row 3: ") and "7 fields" in reasons[0]
    assert JAN_BAD in reasons[1] and "JAN" in reasons[1]
    assert "数量" in reasons[2]
    raw = json.loads(bad.get_column("raw")[0])
    assert raw["file_name"] == name and raw["file_row"] == 3 and raw["text"] == "S001,01,0002,2026/11/22 10:06:00,,マグ,1"
    assert (config.inbox_dir / "processed" / "pos" / "sales" / name).exists()


def test_same_file_dropped_twice_lands_once(config):
    data = sales_csv(f"S002,01,0001,2026/11/22 10:05:00,,{JAN_A},マグ,1,1980,1980")
    drop(config, "pos/sales", "POS_URIAGE_S002_20261122.csv", data)
    first = ingest_files(config, "pos", "sales")
    drop(config, "pos/sales", "POS_URIAGE_S002_20261122.csv", data)  # the POS re-sends
    drop(config, "pos/sales", "copy of POS_URIAGE_S002_20261122.csv", data)  # someone copies it in again
    second = ingest_files(config, "pos", "sales")
    assert first.result.rows_landed == 1
    assert second.result.rows_landed == 0 and len(second.duplicates) == 2 and second.result.batch_id is None
    assert landed(config, "pos", "sales").height == 1
    assert len(list((config.inbox_dir / "processed" / "pos" / "sales").iterdir())) == 3  # none overwritten


def test_a_file_whose_rows_were_all_quarantined_is_not_quarantined_again(config):
    data = sales_csv(f"S002,01,0001,2026/11/22 10:05:00,,{JAN_BAD},マグ,1,1980,1980")
    drop(config, "pos/sales", "a.csv", data)
    ingest_files(config, "pos", "sales")
    drop(config, "pos/sales", "a.csv", data)
    again = ingest_files(config, "pos", "sales")
    assert len(again.duplicates) == 1 and quarantined(config, "pos", "sales").height == 1


def workbook_bytes(header: list[str], rows: list[list], title_rows: int = 2) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "発注書"
    for _ in range(title_rows):
        sheet.append(["発注書"])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


B2B_HEADER = ["取引先コード", "発注番号", "発注日", "納品希望日", "JAN", "品名", "数量", "単価(税抜)"]


def test_xlsx_order_lands_with_dates_and_integer_prices(config):
    drop(config, "b2b/orders", "HACCHU_B2B-0001_PO1.xlsx", workbook_bytes(B2B_HEADER, [
        ["B2B-0001", "PO1", datetime(2026, 11, 20), "2026/11/30", JAN_A, "マグ", 24, 1500],
        ["B2B-0001", "PO1", datetime(2026, 11, 20), None, JAN_BAD, "トート", 12, 2000],
        ["B2B-0001", "PO1", datetime(2026, 11, 20), None, JAN_B, "トート", 0, 2000],
    ]))
    report = ingest_files(config, "b2b", "orders")
    assert (report.result.rows_landed, report.result.rows_quarantined) == (1, 2)
    row = landed(config, "b2b", "orders").row(0, named=True)
    assert (row["customer_code"], row["ordered_on"], row["requested_delivery_on"], row["quantity"],
            row["unit_price_tax_excl"], row["file_row"], row["sheet_name"]) == (
        "B2B-0001", date(2026, 11, 20), date(2026, 11, 30), 24, 1500, 4, "発注書")
    assert sorted(quarantined(config, "b2b", "orders").get_column("record_key")) == [
        "HACCHU_B2B-0001_PO1.xlsx#5", "HACCHU_B2B-0001_PO1.xlsx#6"]


def test_header_variants_match_after_nfkc(config):
    header = ["取引先コード", "発注番号", "発注日", "納品希望日", "ＪＡＮ", "品 名", "数量", "単価（税抜）"]
    drop(config, "b2b/orders", "variant.xlsx", workbook_bytes(header, [
        ["B2B-0002", "PO9", "2026/11/21", None, JAN_B, "トート", "１２", "2,000"]], title_rows=0))
    report = ingest_files(config, "b2b", "orders")
    assert report.result.rows_landed == 1, report
    row = landed(config, "b2b", "orders").row(0, named=True)
    assert (row["jan"], row["quantity"], row["unit_price_tax_excl"], row["file_row"]) == (JAN_B, 12, 2000, 2)


def test_xlsx_missing_a_column_or_not_a_workbook_fails(config):
    drop(config, "b2b/orders", "no_price.xlsx", workbook_bytes(B2B_HEADER[:-1], [
        ["B2B-0001", "PO1", datetime(2026, 11, 20), None, JAN_A, "マグ", 24]]))
    drop(config, "b2b/orders", "renamed.xlsx", b"PK\x03\x04 not really a zip")
    report = ingest_files(config, "b2b", "orders")
    assert sorted(p.name for p in report.failed) == ["no_price.xlsx", "renamed.xlsx"]
    failed = config.inbox_dir / "failed" / "b2b" / "orders"
    assert "単価(税抜)" in (failed / "no_price.xlsx.reason.txt").read_text(encoding="utf-8")
    assert "renamed.xlsx is not an .xlsx workbook" in (failed / "renamed.xlsx.reason.txt").read_text(encoding="utf-8")
    assert landed(config, "b2b", "orders").height == 0


def test_carrier_file_lands_and_checks_tracking_numbers(config):
    drop(config, "carrier/trackings", "B2_20261122.csv", (
        "お客様管理番号,送り状番号,出荷日,配達予定日\r\n"
        "SHOP-1001,123456789013,2026/11/22,2026/11/24\r\n"
        "SHOP-1002,12345,2026/11/22,2026/11/24\r\n"
        "SHOP-1003,123456789020,2026/02/30,\r\n"  # no such day
        "SHOP-1004,123456789020,2026/11/22 09:00,\r\n").encode("cp932"))  # a time where a date belongs
    report = ingest_files(config, "carrier", "trackings")
    assert (report.result.rows_landed, report.result.rows_quarantined) == (1, 3)
    reasons = sorted(quarantined(config, "carrier", "trackings").get_column("reason"))
    assert "12-digit" in reasons[0] and "'2026/02/30' is not a date" in reasons[1] and "09:00" in reasons[2]
    row = landed(config, "carrier", "trackings").row(0, named=True)
    assert (row["order_reference"], row["tracking_number"], row["shipped_on"]) == (
        "SHOP-1001", "123456789013", date(2026, 11, 22))


def test_unsettled_and_temp_files_wait(config):
    drop(config, "pos/sales", ".POS_URIAGE_S001_20261122.csv.tmp", sales_csv())
    busy = config.with_overrides(**{"files.settle_seconds": 3600})
    drop(config, "pos/sales", "POS_URIAGE_S001_20261122.csv",
         sales_csv(f"S001,01,0001,2026/11/22 10:05:00,,{JAN_A},マグ,1,1980,1980"))
    assert ingest_files(busy, "pos", "sales").result.rows_landed == 0
    assert ingest_files(config, "pos", "sales").result.rows_landed == 1
    assert (config.inbox_dir / "pos" / "sales" / ".POS_URIAGE_S001_20261122.csv.tmp").exists()


def test_sandbox_drops_land_through_the_registry(config):
    """The sandbox's files for one day, through `ingestion.ingest` as the Dagster assets call it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sandbox"))
    from sandbox_testkit import small_world

    from sandbox.files import FileDrops

    world = small_world(skus=10, customers=20, history_days=3, orders_per_day=10)
    paths = FileDrops(world, config.inbox_dir).drop_day(date(2026, 11, 22))
    results = {(s, e): ingestion.ingest(config, s, e) for s, entities in ENTITIES.items() for e in entities}
    assert set(results) == {("pos", "sales"), ("pos", "members"), ("b2b", "orders"), ("carrier", "trackings")}
    for key, result in results.items():
        assert result.rows_landed > 0 and result.rows_quarantined == 0, key
    members = landed(config, "pos", "members")
    assert list(members.columns[:8]) == ["member_id", "name", "name_kana", "phone", "postal_code", "email",
                                         "home_store", "registered_on"]  # the contract (DECISIONS.md D46)
    assert members.get_column("member_id").str.len_chars().min() == 10
    assert any("①" in s for s in members.get_column("home_store"))
    assert not [p for p in paths if p.exists()], "every dropped file moved to processed/"


def test_a_crash_between_landing_and_moving_does_not_land_twice(config, monkeypatch):
    import ingestion.files as files

    drop(config, "pos/sales", "POS_URIAGE_S001_20261122.csv",
         sales_csv(f"S001,01,0001,2026/11/22 10:05:00,,{JAN_A},マグ,1,1980,1980"))

    def crash(path, folder):
        raise OSError("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(files, "_move", crash)
        with pytest.raises(OSError):
            ingest_files(config, "pos", "sales")
    assert landed(config, "pos", "sales").height == 1  # the batch was renamed into place before the crash
    assert (config.inbox_dir / "pos" / "sales" / "POS_URIAGE_S001_20261122.csv").exists()
    after_restart = ingest_files(config, "pos", "sales")
    assert len(after_restart.duplicates) == 1 and after_restart.result.rows_landed == 0
    assert landed(config, "pos", "sales").height == 1
