"""The sandbox's file drops: CP932 that round-trips (NEC/IBM extension characters included), valid JANs,
deterministic content, and the simulator's day-by-day schedule."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook
from sandbox_testkit import NOW, small_world

from sandbox.files import (
    B2B_ORDER_HEADER,
    CARRIER_HEADER,
    POS_MEMBERS_HEADER,
    POS_SALES_HEADER,
    FileDrops,
    yamato_tracking_number,
)
from sandbox.world import JST, is_valid_jan

DAY = date(2026, 11, 22)
CP932_ONLY = "①㈱髙﨑Ⅱ"


@pytest.fixture(scope="module")
def dropped(tmp_path_factory):
    world = small_world(skus=12, customers=20, history_days=3, orders_per_day=10)
    inbox = tmp_path_factory.mktemp("inbox")
    drops = FileDrops(world, inbox)
    return world, inbox, drops.drop_day(DAY)


def read_csv(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("cp932"), newline="")))


def test_cp932_round_trip_with_extension_characters(dropped):
    _, inbox, paths = dropped
    csvs = [p for p in paths if p.suffix == ".csv"]
    text = "".join(p.read_bytes().decode("cp932") for p in csvs)
    for char in CP932_ONLY:
        assert char in text, f"{char} never appears in the dropped CSVs"
    for path in csvs:
        raw = path.read_bytes()
        assert raw.decode("cp932").encode("cp932") == raw
    members = (inbox / "pos" / "members" / f"POS_KAIIN_{DAY:%Y%m%d}.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):  # the trap: shift_jis cannot read a real POS export
        members.decode("shift_jis")


def test_headers_and_jans(dropped):
    _, inbox, paths = dropped
    sales = [p for p in paths if "POS_URIAGE_" in p.name]
    assert len(sales) == 4
    jans = []
    for path in sales:
        rows = read_csv(path)
        assert tuple(rows[0]) == POS_SALES_HEADER
        assert len(rows) > 1
        for row in rows[1:]:
            jans.append(row[5])
            assert int(row[8]) * int(row[7]) == int(row[9])
            datetime.strptime(row[3], "%Y/%m/%d %H:%M:%S")
    assert jans and all(is_valid_jan(j) for j in jans)
    members = read_csv(inbox / "pos" / "members" / f"POS_KAIIN_{DAY:%Y%m%d}.csv")
    assert tuple(members[0]) == POS_MEMBERS_HEADER
    assert len({row[0] for row in members[1:]}) == len(members) - 1
    assert any(any("ｱ" <= ch <= "ﾝ" for ch in row[2]) for row in members[1:]), "no half-width kana"
    assert all(date.fromisoformat(row[7].replace("/", "-")) <= NOW.astimezone(JST).date() for row in members[1:])
    workbooks = [p for p in paths if p.suffix == ".xlsx"]
    assert workbooks
    for path in workbooks:
        sheet = load_workbook(path, read_only=True).active
        table = [r for r in sheet.iter_rows(values_only=True)]
        assert tuple(table[2]) == B2B_ORDER_HEADER
        for row in table[3:]:
            assert row[0].startswith("B2B-") and is_valid_jan(row[4])
            assert isinstance(row[2], datetime) and row[3] > row[2]
    carrier = read_csv(inbox / "carrier" / "trackings" / f"B2_{DAY:%Y%m%d}.csv")
    assert tuple(carrier[0]) == CARRIER_HEADER and len(carrier) > 1
    for row in carrier[1:]:
        assert len(row[1]) == 12 and row[1].isdigit() and int(row[1][:11]) % 7 == int(row[1][11])


def test_members_are_world_customers_and_store_only_people(dropped):
    world, inbox, _ = dropped
    members = read_csv(inbox / "pos" / "members" / f"POS_KAIIN_{DAY:%Y%m%d}.csv")[1:]
    emails = {c.email for c in world.customers}
    online = [row for row in members if row[5].lower() in emails]
    assert online and len(online) < len(members)


def test_same_seed_same_bytes_and_carrier_reports_each_order_once(tmp_path):
    first, second = FileDrops(small_world(skus=8), tmp_path / "a"), FileDrops(small_world(skus=8), tmp_path / "b")
    a, b = first.drop_day(DAY), second.drop_day(DAY)
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True) if x.suffix == ".csv")
    assert first.drop_carrier_trackings(DAY + timedelta(days=1)) is None  # nothing shipped since


def test_tick_drops_each_ended_day_once(tmp_path):
    drops = FileDrops(small_world(skus=8), tmp_path)
    start = NOW + timedelta(hours=1)
    assert drops.tick(start) == []  # the first call only sets the clock
    assert drops.tick(start + timedelta(hours=1)) == []
    two_days_later = drops.tick(start + timedelta(days=2))
    days = sorted({p.stem.rsplit("_", 1)[-1] for p in two_days_later if "POS_URIAGE_" in p.name})
    today = start.astimezone(JST).date()
    assert days == [f"{today:%Y%m%d}", f"{today + timedelta(days=1):%Y%m%d}"]
    assert drops.tick(start + timedelta(days=2, hours=1)) == []


def test_yamato_tracking_number_has_its_check_digit():
    assert yamato_tracking_number(12345678901) == "123456789013"  # 12345678901 = 7 × 1763668414 + 3


def test_start_world_drops_the_last_days_into_its_inbox(tmp_path):
    from sandbox import start_world

    with start_world(data_dir=tmp_path, seed=5, skus=8, customers=10, history_days=3, orders_per_day=8,
                     port=0, restore_rate=1000.0, inbox_history_days=2) as running:
        assert running.inbox == tmp_path / "inbox"
        sales = sorted(p.name for p in (running.inbox / "pos" / "sales").iterdir())
        assert len(sales) == 2 * 4  # two days × four stores
        assert (running.inbox / "b2b" / "orders").is_dir() and (running.inbox / "pos" / "members").is_dir()
