"""File drops (ファイル連携): what physical stores, B2B customers and the carrier put into an inbox folder.

    <inbox>/pos/sales/POS_URIAGE_<store>_<YYYYMMDD>.csv     POS daily sales, CP932, one file per store and day
    <inbox>/pos/members/POS_KAIIN_<YYYYMMDD>.csv           POS members master (full export), CP932
    <inbox>/b2b/orders/HACCHU_<customer>_<po>.xlsx          one B2B purchase order per workbook
    <inbox>/carrier/trackings/B2_<YYYYMMDD>.csv             Yamato B2 style tracking numbers, CP932

Every file is written to a dot-temp name and renamed, so a reader of the inbox never sees half a file.
Content is deterministic from the world's seed and the day (products by JAN from `world.products`, people
from `world.customers` plus store-only members); the same calls give byte-identical CSVs.

CP932, not Shift_JIS: store names and member names carry NEC/IBM extension characters (①, ㈱, 髙, 﨑, Ⅱ) that
`shift_jis` cannot encode, exactly the trap real POS exports set. Customer codes of B2B buyers are `B2B-0001`…
(the ERP's B2B customer codes, `customers.customer_code`).
"""

from __future__ import annotations

import csv
import io
import os
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from faker import Faker
from openpyxl import Workbook

from sandbox.world import JST, World, tax_inclusive, to_halfwidth_kana

ENCODING = "cp932"

POS_SALES_HEADER = ("店舗コード", "レジ番号", "レシート番号", "取引日時", "会員番号", "JANコード", "商品名", "数量",
                    "単価", "金額")
POS_MEMBERS_HEADER = ("会員番号", "氏名", "氏名カナ", "電話番号", "郵便番号", "メールアドレス", "登録店舗", "登録日")
B2B_ORDER_HEADER = ("取引先コード", "発注番号", "発注日", "納品希望日", "JAN", "品名", "数量", "単価(税抜)")
CARRIER_HEADER = ("お客様管理番号", "送り状番号", "出荷日", "配達予定日")

# (store code, name, registers, receipts a day): names carry CP932-only characters on purpose.
STORES = (("S001", "渋谷店", 2, 9), ("S002", "梅田店", 2, 7), ("S003", "髙島屋出店①", 1, 4),
          ("S004", "川﨑ラゾーナⅡ店", 1, 3))
B2B_CUSTOMERS = tuple(f"B2B-{n:04d}" for n in range(1, 6))
# Store-only members who registered with a company name (㈱ is what a cashier types).
COMPANY_MEMBERS = ("㈱髙野商店", "㈱山﨑工務店", "有限会社ⅡＹ企画")
KANJI_VARIANTS = {"高": "髙", "崎": "﨑"}  # the same family name as a store clerk writes it


@dataclass(frozen=True)
class PosMember:
    member_id: str
    customer_id: int | None  # the online customer this member is (None: store-only)


def _rng(world: World, *parts: object) -> random.Random:
    """A generator per (seed, kind, day): a file's content does not depend on which other files were dropped."""
    return random.Random(":".join(str(p) for p in (world.seed, *parts)))


def write_atomic(path: Path, data: bytes) -> Path:
    """Write the whole file or nothing: a reader sees the old file or the new one (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def _csv_bytes(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")  # Windows POS exports end lines with CRLF
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(ENCODING)


def yamato_tracking_number(serial: int) -> str:
    """12 digits: 11 serial digits + a check digit (the serial mod 7, as Yamato's slips carry)."""
    body = f"{serial % 10**11:011d}"
    return f"{body}{int(body) % 7}"


class FileDrops:
    """Writes the file sources of one world into `inbox`. `drop_day(day)` writes one JST business day's files
    (tests call it); `tick(now)` is the simulator's hook: it drops every day that has ended since the last call."""

    def __init__(self, world: World, inbox: str | os.PathLike[str]):
        self.world = world
        self.inbox = Path(inbox)
        self._reported_orders: set[int] = set()
        self._last_day: date | None = None
        self.members = self._members()

    # ------------------------------------------------------------------------------------------ schedule
    def drop_day(self, day: date) -> list[Path]:
        """Every file of JST business day `day`: each store's sales, the members export, the day's B2B orders
        and the carrier's tracking numbers for shop orders shipped (and not yet reported) by then."""
        paths = [self.drop_pos_sales(code, day) for code, *_ in STORES]
        paths.append(self.drop_pos_members(day))
        paths += self.drop_b2b_orders(day)
        tracking = self.drop_carrier_trackings(day)
        if tracking is not None:
            paths.append(tracking)
        self._last_day = max(self._last_day or day, day)
        return paths

    def drop_history(self, days: int, today: date | None = None) -> list[Path]:
        """The last `days` complete JST days before `today` (default: the world's clock)."""
        today = today or self.world.clock().astimezone(JST).date()
        paths: list[Path] = []
        for back in range(days, 0, -1):
            paths += self.drop_day(today - timedelta(days=back))
        return paths

    def tick(self, now: datetime | None = None) -> list[Path]:
        """Drop the files of every JST day that ended since the last drop (the simulator calls this)."""
        today = (now or self.world.clock()).astimezone(JST).date()
        if self._last_day is None:
            self._last_day = today - timedelta(days=1)
            return []
        paths: list[Path] = []
        day = self._last_day + timedelta(days=1)
        while day < today:  # bounded: one pass per ended day
            paths += self.drop_day(day)
            day += timedelta(days=1)
        return paths

    # ------------------------------------------------------------------------------------------ POS
    def pos_sales_rows(self, store_code: str, day: date) -> list[tuple[object, ...]]:
        _, _, registers, receipts = next(s for s in STORES if s[0] == store_code)
        rng = _rng(self.world, "pos_sales", store_code, day.isoformat())
        products = [p for p in self.world.products if p.jan]
        member_ids = [m.member_id for m in self.members]
        rows: list[tuple[object, ...]] = []
        opening = datetime.combine(day, time(10, 0), JST)
        for receipt in range(1, receipts + rng.randint(0, 3) + 1):
            register = f"{rng.randint(1, registers):02d}"
            at = opening + timedelta(seconds=rng.randint(0, 11 * 3600 - 1))
            member = rng.choice(member_ids) if rng.random() < 0.4 else ""
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                product = rng.choice(products)
                quantity = -1 if rng.random() < 0.03 else rng.choice((1, 1, 1, 2))  # a return books −1
                price = tax_inclusive(product.list_price, product.tax_class)  # shelf prices include tax
                rows.append((store_code, register, f"{receipt:04d}", f"{at:%Y/%m/%d %H:%M:%S}", member,
                             product.jan, product.name, quantity, price, price * quantity))
        rows.sort(key=lambda r: (r[3], r[1], r[2]))
        return rows

    def drop_pos_sales(self, store_code: str, day: date) -> Path:
        path = self.inbox / "pos" / "sales" / f"POS_URIAGE_{store_code}_{day:%Y%m%d}.csv"
        return write_atomic(path, _csv_bytes(POS_SALES_HEADER, self.pos_sales_rows(store_code, day)))

    def _members(self) -> list[PosMember]:
        rng = _rng(self.world, "pos_members")
        online = [c for c in self.world.customers if rng.random() < 0.4]
        members = [PosMember(f"{2_900_000_000 + 17 * i:010d}", c.id) for i, c in enumerate(online)]
        store_only = max(3, len(online) // 3)
        members += [PosMember(f"{2_900_000_000 + 17 * (len(online) + i):010d}", None) for i in range(store_only)]
        return members

    def pos_member_rows(self) -> list[tuple[object, ...]]:
        rng = _rng(self.world, "pos_member_rows")
        fake = Faker("ja_JP")
        fake.seed_instance(self.world.seed * 31 + 7)
        customers = {c.id: c for c in self.world.customers}
        rows: list[tuple[object, ...]] = []
        company = iter(COMPANY_MEMBERS)
        for member in self.members:
            customer = customers.get(member.customer_id) if member.customer_id else None
            if customer is not None:
                last, first = customer.last_name, customer.first_name
                kana = f"{customer.last_name_kana} {customer.first_name_kana}"
                mobile = customer.address["phone"].replace("-", "")
                postal = customer.address["zip"]
                email = customer.email if rng.random() < 0.8 else ""
                registered = min(customer.created_at.astimezone(JST).date() + timedelta(days=rng.randint(0, 60)),
                                 self.world.now.astimezone(JST).date())
            else:
                first, first_kana, _ = fake.first_name_pair()
                last, last_kana, _ = fake.last_name_pair()
                kana = f"{last_kana} {first_kana}"
                mobile = f"0{rng.choice((90, 80, 70))}{rng.randint(0, 99_999_999):08d}"
                postal = f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
                email = ""
                registered = self.world.now.astimezone(JST).date() - timedelta(days=rng.randint(1, 700))
            for plain, variant in KANJI_VARIANTS.items():
                if plain in last and rng.random() < 0.7:
                    last = last.replace(plain, variant)
            name = rng.choice((f"{last}　{first}", f"{last} {first}", f"{last}{first}"))
            if customer is None and rng.random() < 0.3:
                name = next(company, name)
            if rng.random() < 0.35:
                kana = to_halfwidth_kana(kana)  # old registers only take half-width kana
            rows.append((member.member_id, name, kana, self._phone_format(rng, mobile),
                         self._postal_format(rng, postal), email.upper() if rng.random() < 0.1 else email,
                         rng.choice(STORES)[1], f"{registered:%Y/%m/%d}"))
        return rows

    @staticmethod
    def _phone_format(rng: random.Random, digits: str) -> str:
        a, b, c = digits[:3], digits[3:7], digits[7:]
        return rng.choice((f"{a}-{b}-{c}", digits, f"{a}({b}){c}", f"+81-{a[1:]}-{b}-{c}", f"{a}－{b}－{c}"))

    @staticmethod
    def _postal_format(rng: random.Random, postal: str) -> str:
        return rng.choice((postal, postal.replace("-", ""), f"〒{postal}"))

    def drop_pos_members(self, day: date) -> Path:
        path = self.inbox / "pos" / "members" / f"POS_KAIIN_{day:%Y%m%d}.csv"
        return write_atomic(path, _csv_bytes(POS_MEMBERS_HEADER, self.pos_member_rows()))

    # ------------------------------------------------------------------------------------------ B2B
    def b2b_orders(self, day: date) -> list[tuple[str, str, list[tuple[object, ...]]]]:
        """The day's purchase orders as (customer code, PO number, rows in B2B_ORDER_HEADER order)."""
        rng = _rng(self.world, "b2b", day.isoformat())
        products = [p for p in self.world.products if p.jan]
        orders = []
        for n in range(rng.randint(1, 2)):
            customer = rng.choice(B2B_CUSTOMERS)
            po = f"PO{day:%y%m%d}{n + 1:02d}{customer[-2:]}"
            due = day + timedelta(days=rng.randint(3, 14))
            lines = rng.sample(products, k=min(len(products), rng.randint(2, 6)))
            rows = [(customer, po, day, due, p.jan, p.name, rng.choice((6, 12, 24, 36, 48)), p.list_price)
                    for p in lines]
            orders.append((customer, po, rows))
        return orders

    def drop_b2b_orders(self, day: date) -> list[Path]:
        paths = []
        for customer, po, rows in self.b2b_orders(day):
            workbook = Workbook()
            sheet = workbook.active
            sheet.title = "発注書"
            sheet.append([f"発注書 {po}"])  # title block above the table, as buyers' templates have
            sheet.append([])
            sheet.append(list(B2B_ORDER_HEADER))
            for row in rows:
                sheet.append(list(row))
            for cell in sheet["C"][3:] + sheet["D"][3:]:
                cell.number_format = "yyyy/mm/dd"
            buffer = io.BytesIO()
            workbook.save(buffer)
            paths.append(write_atomic(self.inbox / "b2b" / "orders" / f"HACCHU_{customer}_{po}.xlsx",
                                       buffer.getvalue()))
        return paths

    # ------------------------------------------------------------------------------------------ carrier
    def carrier_rows(self, day: date) -> list[tuple[object, ...]]:
        """Shop orders fulfilled and not yet reported, shipped on `day`: お客様管理番号 is the order name
        without its '#' (B2 takes letters, digits and hyphens only)."""
        rows = []
        with self.world.lock:
            shipped = [o for o in self.world.orders
                       if o.fulfillment_status == "FULFILLED" and o.id not in self._reported_orders]
        for order in sorted(shipped, key=lambda o: o.number):
            rng = _rng(self.world, "carrier", order.id)
            remote = order.shipping_address.get("province") in ("北海道", "沖縄県")
            arrives = day + timedelta(days=rng.randint(2, 3) if remote else rng.randint(1, 2))
            tracking = yamato_tracking_number(rng.randint(10**10, 10**11 - 1))
            rows.append((f"SHOP-{order.number}", tracking, f"{day:%Y/%m/%d}", f"{arrives:%Y/%m/%d}"))
            self._reported_orders.add(order.id)
        return rows

    def drop_carrier_trackings(self, day: date) -> Path | None:
        rows = self.carrier_rows(day)
        if not rows:
            return None
        path = self.inbox / "carrier" / "trackings" / f"B2_{day:%Y%m%d}.csv"
        return write_atomic(path, _csv_bytes(CARRIER_HEADER, rows))
