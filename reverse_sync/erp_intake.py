"""ERP order intake (受注連携): every unified channel order into the ERP's intake, exactly once per order version.

plan → guard → apply → log, the shape of the stock sync (DECISIONS.md D40):

- plan: the orders and lines of the published serving copy (`fct_orders`, `int_order_lines__unified`, and
  `int_orders__intake_details` when present) — channel-agnostic, every channel of the unified model — minus
  what the ERP's intake already holds, read over the ERP connection (`erp.kind`: sqlite3 or psycopg). What
  was posted is the ground truth; there is no state file on our side.
- an order's version is a hash of what the ERP books (lines in ERP SKUs with quantity and price, money,
  payment method): a status move (paid, shipped) is not a new version, an edit of lines or money is. A
  cancelled order that was posted gets one `cancel` version; one cancelled (or fully refunded: no units
  left) before it was ever posted is not posted (there is nothing to book) and is counted.
- held: an order with a line that maps to no ERP SKU (or a missing or negative amount) is not posted;
  it is logged `held` with the reason on every run until it maps, so it is never lost.
- guard: refuse everything when the serving copy is missing or stale or the last build failed.
- apply: one transaction per chunk, `INSERT … ON CONFLICT DO NOTHING` against the intake's UNIQUE (channel,
  channel_order_id, order_version): a crash mid-run and a rerun, or two runs at once, never post twice.
- log: every posted / held / refused / dry-run / failed order → the push log (field `erp_intake`, in the
  order's channel folder), which dbt reads as the source `push_log`. The log is written at the end of a run:
  after a kill -9 the intake tables (not the log) say what was posted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

import duckdb

from ichigen.config import Config
from ichigen.publish import last_build, published_version
from ingestion.erp import ErpDatabase, open_erp
from reverse_sync.guard import GuardVerdict, freshness_reasons
from reverse_sync.plan import new_run_id
from reverse_sync.push_log import PushRecord, write_push_log

FIELD = "erp_intake"
CHUNK_SIZE = 100
CANCEL_VERSION = "cancel"  # one cancellation per order

ORDERS_SQL = """
select o.order_key, o.channel, o.order_id, o.order_name, o.ordered_at_utc, o.status, o.total_jpy, o.customer_id,
       {details}
from main.fct_orders as o
{join}
order by o.ordered_at_utc, o.order_key
"""
DETAILS = ("customer_email", "payment_method", "shipping_jpy", "discount_jpy")
LINES_SQL = """
select l.order_key, l.line_number, l.line_id, l.channel_sku, l.erp_sku,
       coalesce(l.current_quantity, l.quantity) as quantity, l.unit_price_jpy,
       cast(round(p.tax_rate * 100) as integer) as tax_percent
from intermediate.int_order_lines__unified as l
left join main.dim_product as p on p.sku = l.erp_sku
order by l.order_key, l.line_number, l.line_id
"""


@dataclass(frozen=True)
class IntakeLine:
    line_no: int
    erp_sku: str
    quantity: int
    unit_price_jpy: int
    tax_percent: int | None


@dataclass(frozen=True)
class IntakeOrder:
    channel: str
    channel_order_id: str
    order_version: str
    event: str  # 'order' | 'cancel'
    order_name: str | None
    ordered_at: datetime | None
    customer_id: str | None
    customer_email: str | None
    payment_method: str | None
    shipping_jpy: int | None
    discount_jpy: int | None
    total_jpy: int
    lines: tuple[IntakeLine, ...]

    @property
    def ref(self) -> str:
        return f"{self.channel_order_id}#{self.order_version}"


@dataclass(frozen=True)
class HeldOrder:
    channel: str
    channel_order_id: str
    total_jpy: int
    reason: str


@dataclass(frozen=True)
class IntakeCustomer:
    channel: str
    channel_customer_id: str
    customer_version: str
    email: str | None


@dataclass
class IntakePlan:
    run_id: str
    planned_at: datetime
    serving_version: str | None
    published_at: datetime | None
    orders: list[IntakeOrder]
    customers: list[IntakeCustomer]
    held: list[HeldOrder]
    already_posted: int
    nothing_to_book: int  # cancelled or without units before any version was posted


@dataclass
class IntakeResult:
    plan: IntakePlan
    dry_run: bool
    verdict: GuardVerdict
    posted: list[IntakeOrder] = field(default_factory=list)
    already_present: int = 0  # planned, but another run posted the same version first (ON CONFLICT)
    customers_posted: int = 0
    customer_errors: list[str] = field(default_factory=list)  # chunks rolled back; planned again next run
    failed: list[tuple[IntakeOrder, str]] = field(default_factory=list)
    records: list[PushRecord] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.plan.run_id


# -- plan ---------------------------------------------------------------------------------------------------
def version_key(*parts: Any) -> str:
    """A short deterministic hash of what the ERP books for an order (or a customer)."""
    text = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_unified_orders(serving: duckdb.DuckDBPyConnection) -> tuple[list[dict], dict[str, list[dict]]]:
    """Orders (with intake details where the model exists) and their lines, from the serving copy."""
    has_details = serving.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'intermediate' and table_name = 'int_orders__intake_details'"
    ).fetchone()[0]
    if has_details:
        sql = ORDERS_SQL.format(details=", ".join(f"d.{c}" for c in DETAILS),
                                join="left join intermediate.int_orders__intake_details as d "
                                     "on d.order_key = o.order_key")
    else:
        sql = ORDERS_SQL.format(details=", ".join(f"null as {c}" for c in DETAILS), join="")
    cursor = serving.execute(sql)
    names = [d[0] for d in cursor.description]
    orders = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    cursor = serving.execute(LINES_SQL)
    names = [d[0] for d in cursor.description]
    lines = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return orders, {key: list(group) for key, group in groupby(lines, key=lambda r: r["order_key"])}


def _hold_reason(order: dict, lines: list[dict]) -> str | None:
    unmapped = [f"line {line['line_number']}: channel SKU {line['channel_sku']!r} matches no ERP SKU"
                for line in lines if line["quantity"] > 0 and not line["erp_sku"]]
    if unmapped:
        return "unknown SKU — " + "; ".join(unmapped)
    if order["total_jpy"] is None or order["total_jpy"] < 0 or any(
            line["unit_price_jpy"] is None or line["unit_price_jpy"] < 0 for line in lines):
        return "missing or negative amount"
    return None


def _intake_order(order: dict, lines: tuple[IntakeLine, ...], version: str, event: str) -> IntakeOrder:
    return IntakeOrder(
        channel=order["channel"], channel_order_id=order["order_id"], order_version=version, event=event,
        order_name=order["order_name"], ordered_at=order["ordered_at_utc"], customer_id=order["customer_id"],
        customer_email=order["customer_email"], payment_method=order["payment_method"],
        shipping_jpy=order["shipping_jpy"], discount_jpy=order["discount_jpy"], total_jpy=int(order["total_jpy"]),
        lines=lines,
    )


def plan_intake(
    orders: list[dict],
    lines_by_order: dict[str, list[dict]],
    posted: set[tuple[str, str, str]],
    posted_customers: set[tuple[str, str, str]],
    manifest: dict | None,
) -> IntakePlan:
    """What to post: each order's current version unless the intake holds it; cancels of posted orders."""
    posted_orders = {(channel, order_id) for channel, order_id, version in posted if version != CANCEL_VERSION}
    planned: list[IntakeOrder] = []
    held: list[HeldOrder] = []
    customers: dict[tuple[str, str], IntakeCustomer] = {}
    already = nothing_to_book = 0
    for order in orders:
        key = (order["channel"], order["order_id"])
        lines = lines_by_order.get(order["order_key"], [])
        if order["status"] == "cancelled":
            if key not in posted_orders:
                nothing_to_book += 1
            elif (*key, CANCEL_VERSION) in posted:
                already += 1
            else:
                planned.append(_intake_order(order, (), CANCEL_VERSION, "cancel"))
            continue
        if not any(line["quantity"] > 0 for line in lines):  # fully refunded: a return, not a new booking
            if key in posted_orders:
                already += 1
            else:
                nothing_to_book += 1
            continue
        reason = _hold_reason(order, lines)
        if reason:
            held.append(HeldOrder(order["channel"], order["order_id"], int(order["total_jpy"] or 0), reason))
            continue
        intake_lines = tuple(
            IntakeLine(n, line["erp_sku"], int(line["quantity"]), int(line["unit_price_jpy"]), line["tax_percent"])
            for n, line in enumerate((x for x in lines if x["quantity"] > 0), start=1)
        )
        version = version_key(order["total_jpy"], order["shipping_jpy"], order["discount_jpy"],
                              order["payment_method"], [(x.erp_sku, x.quantity, x.unit_price_jpy) for x in intake_lines])
        if (*key, version) in posted:
            already += 1
        else:
            planned.append(_intake_order(order, intake_lines, version, "order"))
        if order["customer_id"]:  # orders come oldest first: the newest order's e-mail wins
            customer_version = version_key(order["customer_email"])
            customers[(order["channel"], order["customer_id"])] = IntakeCustomer(
                order["channel"], order["customer_id"], customer_version, order["customer_email"])
    published_at = manifest.get("published_at") if manifest else None
    return IntakePlan(
        run_id=new_run_id("erp-intake"),
        planned_at=datetime.now(UTC),
        serving_version=(manifest or {}).get("version"),
        published_at=datetime.fromisoformat(published_at) if published_at else None,
        orders=planned,
        customers=[c for c in customers.values()
                   if (c.channel, c.channel_customer_id, c.customer_version) not in posted_customers],
        held=held,
        already_posted=already,
        nothing_to_book=nothing_to_book,
    )


# -- the ERP side -------------------------------------------------------------------------------------------
def _execute(database: ErpDatabase, sql: str, params: tuple = ()) -> Any:
    cursor = database.connection.cursor()
    cursor.execute(sql.replace("?", "%s") if database.kind == "postgres" else sql, params)
    return cursor


def _stamp(database: ErpDatabase, ts: datetime | None) -> Any:
    """The ERP's timestamp form (D5): ISO-8601 UTC text in SQLite, timestamptz in PostgreSQL."""
    if ts is None:
        return None
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if database.kind == "sqlite" else ts


def intake_state(database: ErpDatabase) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(channel, order id, version) of every posted order version, and the same for customers."""
    orders = {tuple(r.values()) for r in database.rows(
        "SELECT channel, channel_order_id, order_version FROM order_intake")}
    customers = {tuple(r.values()) for r in database.rows(
        "SELECT channel, channel_customer_id, customer_version FROM customer_intake")}
    database.connection.commit()  # end the read transaction before the writes
    return orders, customers


def _post_order(database: ErpDatabase, order: IntakeOrder, run_id: str, now: datetime) -> bool:
    """Insert one order version and its lines; False when the intake already held that version."""
    row = _execute(
        database,
        "INSERT INTO order_intake (channel, channel_order_id, order_version, event, order_name, ordered_at, "
        "customer_id, customer_email, payment_method, shipping_jpy, discount_jpy, total_jpy, posted_at, "
        "posted_by_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (channel, channel_order_id, order_version) DO NOTHING RETURNING intake_id",
        (order.channel, order.channel_order_id, order.order_version, order.event, order.order_name,
         _stamp(database, order.ordered_at), order.customer_id, order.customer_email, order.payment_method,
         order.shipping_jpy, order.discount_jpy, order.total_jpy, _stamp(database, now), run_id),
    ).fetchall()  # read to the end: SQLite keeps a RETURNING statement open until then
    if not row:
        return False
    for line in order.lines:
        _execute(database, "INSERT INTO order_intake_lines (intake_id, line_no, erp_sku, quantity, unit_price_jpy, "
                           "tax_percent) VALUES (?, ?, ?, ?, ?, ?)",
                 (row[0][0], line.line_no, line.erp_sku, line.quantity, line.unit_price_jpy, line.tax_percent))
    return True


def _post_customer(database: ErpDatabase, customer: IntakeCustomer, run_id: str, now: datetime) -> bool:
    cursor = _execute(
        database,
        "INSERT INTO customer_intake (channel, channel_customer_id, customer_version, email, posted_at, "
        "posted_by_run) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (channel, channel_customer_id, customer_version) DO NOTHING",
        (customer.channel, customer.channel_customer_id, customer.customer_version, customer.email,
         _stamp(database, now), run_id),
    )
    return cursor.rowcount == 1


def _chunks(items: list, size: int) -> Iterator[list]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def apply_plan(
    database: ErpDatabase,
    plan: IntakePlan,
    result: IntakeResult,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[int, int], None] | None = None,
) -> None:
    """Post customers, then orders, one transaction per chunk; a failed chunk is rolled back and reported."""
    for chunk in _chunks(plan.customers, chunk_size):
        try:
            now = datetime.now(UTC)
            result.customers_posted += sum(_post_customer(database, c, plan.run_id, now) for c in chunk)
            database.connection.commit()
        except Exception as exc:  # noqa: BLE001 — orders do not depend on customers; next run plans them again
            database.connection.rollback()
            result.customer_errors.append(f"{len(chunk)} customers: {type(exc).__name__}: {exc}")
    done = 0
    for chunk in _chunks(plan.orders, chunk_size):
        posted: list[IntakeOrder] = []
        try:
            now = datetime.now(UTC)
            for order in chunk:
                if _post_order(database, order, plan.run_id, now):
                    posted.append(order)
            database.connection.commit()
        except Exception as exc:  # noqa: BLE001 — logged per order; the next run plans them again
            database.connection.rollback()
            result.failed += [(order, f"{type(exc).__name__}: {exc}") for order in chunk]
        else:
            result.posted += posted
            result.already_present += len(chunk) - len(posted)
        done += len(chunk)
        if on_chunk:
            on_chunk(done, len(plan.orders))


# -- log ----------------------------------------------------------------------------------------------------
def _record(plan: IntakePlan, channel: str, ref: str, total: int, status: str, error: str | None,
            pushed_at: datetime | None) -> PushRecord:
    return PushRecord(plan.run_id, channel, FIELD, None, ref, None, total, status, error, plan.planned_at,
                      pushed_at, 1)


def build_records(result: IntakeResult, refusal: str | None) -> list[PushRecord]:
    plan, now = result.plan, datetime.now(UTC)
    records = [_record(plan, h.channel, h.channel_order_id, h.total_jpy, "held", h.reason, None) for h in plan.held]
    if refusal is not None or result.dry_run:
        status = "refused" if refusal is not None else "dry_run"
        return records + [_record(plan, o.channel, o.ref, o.total_jpy, status, refusal, None) for o in plan.orders]
    records += [_record(plan, o.channel, o.ref, o.total_jpy, "applied", None, now) for o in result.posted]
    records += [_record(plan, o.channel, o.ref, o.total_jpy, "failed", error, now) for o, error in result.failed]
    return records


def write_intake_log(config: Config, records: Iterable[PushRecord]) -> None:
    """One push-log file per channel (D7 keeps each channel's log in its own folder)."""
    by_channel: dict[str, list[PushRecord]] = {}
    for record in records:
        by_channel.setdefault(record.channel, []).append(record)
    for channel_records in by_channel.values():
        write_push_log(config.push_log_dir, channel_records)


# -- one run ------------------------------------------------------------------------------------------------
def read_serving(config: Config) -> tuple[list[dict], dict[str, list[dict]], dict | None]:
    if not config.serving_path.exists():
        raise FileNotFoundError(f"no published serving copy at {config.serving_path}: run a build first "
                                "(ichigen once)")
    serving = duckdb.connect(str(config.serving_path), read_only=True)
    try:
        orders, lines = read_unified_orders(serving)
    finally:
        serving.close()
    return orders, lines, published_version(config.serving_path)


def sync_intake(
    config: Config,
    *,
    dry_run: bool = False,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> IntakeResult:
    """Plan → guard → apply (or dry run) → log, against the configured ERP (`erp.kind`)."""
    orders, lines, manifest = read_serving(config)
    with open_erp(config, read_only=False) as database:
        posted, posted_customers = intake_state(database)
        plan = plan_intake(orders, lines, posted, posted_customers, manifest)
        reasons = freshness_reasons(f"erp intake plan {plan.run_id}", plan.published_at, config.guard_rails,
                                    last_build(config.warehouse_path), now or datetime.now(UTC))
        result = IntakeResult(plan, dry_run, GuardVerdict(allowed=not reasons, reasons=tuple(reasons)))
        if result.verdict.allowed and not dry_run:
            apply_plan(database, plan, result, chunk_size, on_chunk)
    result.records = build_records(result, " | ".join(reasons) if reasons else None)
    write_intake_log(config, result.records)
    return result
