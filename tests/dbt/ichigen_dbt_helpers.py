"""Helpers for the dbt tests: a hand-made landing zone in the D4 layout, and a `dbt` runner.

(A plain module with a unique name, not conftest.py, so test modules can import it without clashing with
other test folders' conftest modules; this folder has no __init__.py, as a package named `dbt` would shadow
dbt itself.)

Every dbt invocation gets its own warehouse, target and log folders under tmp_path, so tests (and
pytest-xdist workers) never share dbt state with each other or with a developer's `dbt_project/target`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = PROJECT_ROOT / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"

TS = pa.timestamp("us", tz="UTC")
_META = [("_batch_id", pa.string()), ("_fetched_at", TS), ("_raw", pa.string())]
LINE_ITEM = pa.struct(
    [
        ("line_item_id", pa.string()),
        ("sku", pa.string()),
        ("quantity", pa.int64()),
        ("current_quantity", pa.int64()),
        ("unit_price", pa.string()),
        ("variant_id", pa.string()),
        ("inventory_item_id", pa.string()),
        ("title", pa.string()),
    ]
)

# The typed columns of each landed entity, exactly as DECISIONS.md D4 lists them.
SCHEMAS: dict[tuple[str, str], pa.Schema] = {
    ("shopify", "orders"): pa.schema(
        [
            ("order_id", pa.string()),
            ("order_name", pa.string()),
            ("created_at", TS),
            ("updated_at", TS),
            ("processed_at", TS),
            ("cancelled_at", TS),
            ("display_financial_status", pa.string()),
            ("display_fulfillment_status", pa.string()),
            ("currency_code", pa.string()),
            ("total_price", pa.string()),
            ("subtotal_price", pa.string()),
            ("total_shipping_price", pa.string()),
            ("total_discounts", pa.string()),
            ("total_tax", pa.string()),
            ("customer_id", pa.string()),
            ("email", pa.string()),
            ("payment_gateway_names", pa.list_(pa.string())),
            ("line_items", pa.list_(LINE_ITEM)),
            *_META,
        ]
    ),
    ("shopify", "product_variants"): pa.schema(
        [
            ("variant_id", pa.string()),
            ("sku", pa.string()),
            ("barcode", pa.string()),
            ("price", pa.string()),
            ("inventory_item_id", pa.string()),
            ("product_id", pa.string()),
            ("product_title", pa.string()),
            ("variant_title", pa.string()),
            ("updated_at", TS),
            *_META,
        ]
    ),
    ("shopify", "inventory_levels"): pa.schema(
        [
            ("inventory_item_id", pa.string()),
            ("location_id", pa.string()),
            ("sku", pa.string()),
            ("variant_id", pa.string()),
            ("available", pa.int64()),
            ("on_hand", pa.int64()),
            ("updated_at", TS),
            *_META,
        ]
    ),
    ("erp", "products"): pa.schema(
        [
            ("sku", pa.string()),
            ("jan", pa.string()),
            ("name", pa.string()),
            ("name_kana", pa.string()),
            ("category", pa.string()),
            ("size", pa.string()),
            ("color", pa.string()),
            ("list_price", pa.int64()),
            ("tax_class", pa.string()),
            ("safety_stock", pa.int64()),
            ("updated_at", TS),
            *_META,
        ]
    ),
    ("erp", "warehouses"): pa.schema(
        [
            ("warehouse_code", pa.string()),
            ("name", pa.string()),
            ("sellable", pa.bool_()),
            ("updated_at", TS),
            *_META,
        ]
    ),
    ("erp", "stock"): pa.schema(
        [
            ("sku", pa.string()),
            ("warehouse_code", pa.string()),
            ("on_hand", pa.int64()),
            ("updated_at", TS),
            *_META,
        ]
    ),
    # customer identity and bundle entities (contracts in DECISIONS.md D50)
    ("shopify", "customers"): pa.schema(
        [
            ("customer_id", pa.string()),
            ("first_name", pa.string()),
            ("last_name", pa.string()),
            ("email", pa.string()),
            ("phone", pa.string()),
            ("zip", pa.string()),
            ("province", pa.string()),
            ("city", pa.string()),
            ("address1", pa.string()),
            ("created_at", TS),
            ("updated_at", TS),
            *_META,
        ]
    ),
    ("erp", "customers"): pa.schema(
        [
            *[(name, pa.string()) for name in (
                "customer_code", "company_name", "company_name_kana", "contact_name", "contact_name_kana",
                "email", "phone", "postal_code", "prefecture", "address1", "erp_rank")],
            ("updated_at", TS),
            *_META,
        ]
    ),
    ("erp", "bundles"): pa.schema(
        [
            ("bundle_sku", pa.string()),
            ("component_sku", pa.string()),
            ("quantity", pa.int64()),
            ("updated_at", TS),
            *_META,
        ]
    ),
    ("pos", "members"): pa.schema(
        [
            *[(name, pa.string()) for name in (
                "member_id", "name", "name_kana", "phone", "postal_code", "email", "home_store")],
            ("registered_on", pa.date32()),
            *_META,
        ]
    ),
}

CURSOR_FIELD = "updated_at"

# The push log (DECISIONS.md D7), written by reverse sync.
PUSH_LOG_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("channel", pa.string()),
        ("field", pa.string()),
        ("sku", pa.string()),
        ("target_ref", pa.string()),
        ("old_value", pa.int64()),
        ("new_value", pa.int64()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("planned_at", TS),
        ("pushed_at", TS),
        ("attempt", pa.int64()),
    ]
)


def utc(text: str) -> datetime:
    """'2026-11-22T01:00:00Z' -> an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def write_batch(landing: Path, slug: str, entity: str, rows: list[dict[str, Any]], fetched_at: str) -> Path:
    """Land one batch the way D4 says: date=<UTC fetch date>/<batch_id>.parquet, written to a dot-tmp name
    and renamed, every row carrying _batch_id, _fetched_at and _raw, file metadata `ichigen.batch`."""
    fetched = utc(fetched_at)
    batch_id = f"{fetched:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"
    schema = SCHEMAS[(slug, entity)]
    full_rows = []
    for row in rows:
        unknown = set(row) - set(schema.names)
        assert not unknown, f"{slug}/{entity}: columns not in D4: {unknown}"
        record = {name: row.get(name) for name in schema.names if not name.startswith("_")}
        for name, value in record.items():
            if isinstance(value, str) and pa.types.is_timestamp(schema.field(name).type):
                record[name] = utc(value)
        raw = json.dumps({k: v.isoformat() if isinstance(v, datetime) else v for k, v in record.items()}, default=str)
        full_rows.append({**record, "_batch_id": batch_id, "_fetched_at": fetched, "_raw": raw})
    table = pa.Table.from_pylist(full_rows, schema=schema)
    cursor_values = [r[CURSOR_FIELD] for r in full_rows if r.get(CURSOR_FIELD) is not None]
    meta = {
        "batch_id": batch_id,
        "source": slug,
        "entity": entity,
        "fetched_at": fetched.isoformat(),
        "cursor_field": CURSOR_FIELD,
        "cursor_from": min(cursor_values).isoformat() if cursor_values else None,
        "cursor_to": max(cursor_values).isoformat() if cursor_values else None,
        "row_count": len(full_rows),
    }
    table = table.replace_schema_metadata({"ichigen.batch": json.dumps(meta)})
    folder = landing / slug / entity / f"date={fetched:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{batch_id}.parquet"
    tmp = folder / f".{batch_id}.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def write_push_log(root: Path, channel: str, run_id: str, rows: list[dict[str, Any]]) -> Path:
    """One sync run's push log: <root>/<channel>/date=YYYY-MM-DD/<run_id>.parquet (D7)."""
    records = []
    for row in rows:
        record = {name: row.get(name) for name in PUSH_LOG_SCHEMA.names}
        record.update(run_id=run_id, channel=channel)
        for name in ("planned_at", "pushed_at"):
            if isinstance(record[name], str):
                record[name] = utc(record[name])
        records.append(record)
    table = pa.Table.from_pylist(records, schema=PUSH_LOG_SCHEMA)
    folder = root / channel / f"date={records[0]['planned_at']:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run_id}.parquet"
    pq.write_table(table, path)
    return path


@dataclass
class DbtResult:
    returncode: int
    output: str
    run_results: dict[str, Any] | None
    warehouse: Path

    def statuses(self) -> dict[str, str]:
        """unique_id -> status (success, pass, fail, error, skipped, warn) from run_results.json."""
        if not self.run_results:
            return {}
        return {r["unique_id"]: r["status"] for r in self.run_results["results"]}

    def query(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


class DbtRun:
    """A `dbt` invocation running in the background (`start_dbt`); `.result()` waits for it."""

    def __init__(self, proc: subprocess.Popen, target: Path, warehouse: Path, log_file: Path) -> None:
        self._proc, self._target, self._warehouse, self._log_file = proc, target, warehouse, log_file
        self._result: DbtResult | None = None

    def result(self, timeout: float = 600) -> DbtResult:
        if self._result is None:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
            results_file = self._target / "run_results.json"
            run_results = json.loads(results_file.read_text()) if results_file.exists() else None
            output = self._log_file.read_text(errors="replace")
            self._result = DbtResult(self._proc.returncode, output, run_results, self._warehouse)
        return self._result

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def start_dbt(
    workdir: Path,
    *args: str,
    landing: Path | None = None,
    push_log: Path | None = None,
    warehouse: Path | None = None,
) -> DbtRun:
    """Start `.venv/bin/dbt <args>` against dbt_project with every path inside `workdir` (own warehouse,
    target and log folders, so runs can go in parallel). Each invocation costs ~5 s of start-up and ~5 s of
    parsing before the first node, so tests start their runs together and wait on them later."""
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = warehouse or workdir / "warehouse.duckdb"
    env = {
        **os.environ,
        "ICHIGEN_WAREHOUSE_PATH": str(warehouse),
        "ICHIGEN_LANDING_ROOT": str(landing or workdir / "landing"),
        "ICHIGEN_PUSH_LOG_ROOT": str(push_log or workdir / "push_log"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    target = workdir / "dbt_target"
    cmd = [
        str(DBT),
        *args,
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(target),
        "--log-path",
        str(workdir / "dbt_logs"),
    ]
    log_file = workdir / "dbt_output.txt"
    with log_file.open("w") as out:  # the child keeps its own handle
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    return DbtRun(proc, target, warehouse, log_file)


def run_dbt(workdir: Path, *args: str, **paths: Path | None) -> DbtResult:
    """Run dbt and wait for it (see start_dbt)."""
    return start_dbt(workdir, *args, **paths).result()
