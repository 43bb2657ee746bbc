"""File sources (ファイル連携): POS daily sales and members, B2B purchase orders, carrier tracking numbers.

Files are dropped into `paths.inbox`, one folder per source/entity (the asset key):

    <inbox>/pos/sales/*.csv            POS daily sales, CP932
    <inbox>/pos/members/*.csv          POS members master, CP932
    <inbox>/b2b/orders/*.xlsx          B2B purchase orders, Excel (every sheet that has the order table)
    <inbox>/carrier/trackings/*.csv    Yamato B2 style tracking numbers, CP932

A run takes the settled files of one folder (oldest name first, at most `files.max_files_per_run`), parses and
validates each row, lands every good row of every file as ONE batch (DECISIONS.md D4) with `file_name`,
`file_row`, `file_sha256` and `file_modified_at`, quarantines bad rows (file, row number, reason, raw text),
and only then moves the files to `<inbox>/processed/<slug>/<entity>/`. A file that cannot be read at all
(wrong encoding, a required column missing, broken structure) goes to `<inbox>/failed/<slug>/<entity>/` with
`<name>.reason.txt` beside it and lands nothing.

Idempotency is derived from what landed: a file whose SHA-256 is already in the landed batches (or in the
quarantine) is moved to processed/ without landing again, so the same file dropped twice lands once, and a
crash between landing and moving cannot land a file twice. Text lands exactly as in the file (no NFKC: that is
staging's job); timestamps are converted from JST to UTC; money is integer JPY as the file shows it.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import time
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from ichigen.config import Config
from ingestion.common import IngestResult, RecordError, raw_json, require, to_int, utcnow
from ingestion.landing import LandingZone, QuarantineRecord, land_and_report
from ingestion.schemas import UTC_TS, EntitySchema

JST = ZoneInfo("Asia/Tokyo")
ENCODING = "cp932"  # never shift_jis: it cannot decode ①, ㈱, 髙, 﨑, Ⅱ (NEC/IBM extensions every POS uses)
PROCESSED_DIR = "processed"
FAILED_DIR = "failed"

# Where each landed row came from: file, 1-based row (the CSV line / the Excel row), content hash, mtime.
FILE_COLUMNS: dict[str, pl.DataType] = {
    "file_name": pl.String(),
    "file_row": pl.Int64(),
    "file_sha256": pl.String(),
    "file_modified_at": UTC_TS,  # the cursor field: the newest file landed (the inbox itself is the queue)
}


class FileUnreadable(ValueError):
    """The whole file cannot be read (encoding, missing column, broken structure): it goes to failed/."""


# ------------------------------------------------------------------------------------------------ values
def _text(value: Any) -> str | None:
    """A cell as text; empty → None. Numbers from Excel lose a spurious `.0`."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _integer(value: Any, *, field: str) -> int:
    """Integer JPY or a quantity: digits with optional thousands separators and sign (`1,980`, `-1`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):  # an Excel cell
        return to_int(value, field=field)
    text = require(_text(value), field=field)
    if not _PLAIN_INTEGER.fullmatch(text):  # the common case skips the normalisation
        text = unicodedata.normalize("NFKC", text).replace(",", "").replace("¥", "")
    return to_int(text, field=field)


_PLAIN_INTEGER = re.compile(r"-?[0-9]+")
# YYYY/MM/DD or YYYY-MM-DD (or YYYYMMDD), optionally HH:MM[:SS]; a regex, as strptime costs ~10× more a row.
_DATE_TIME = re.compile(r"([0-9]{4})[/-]?([0-9]{1,2})[/-]?([0-9]{1,2})(?:[ T]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?")


def _parse_date_time(text: str) -> tuple[datetime, bool] | None:
    """(the wall-clock datetime, whether a time was given), or None when `text` is no date."""
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = match.groups()
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    return parsed, hour is not None


def _date(value: Any, *, field: str, required: bool = True) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if text is None:
        if required:
            raise RecordError(f"{field} is missing")
        return None
    parsed = _parse_date_time(text)
    if parsed is None or parsed[1]:
        raise RecordError(f"{field} {text!r} is not a date (YYYY/MM/DD)")
    return parsed[0].date()


def _jst_timestamp(value: Any, *, field: str) -> datetime:
    """A JST wall-clock time as the POS prints it → aware UTC."""
    text = require(_text(value), field=field)
    parsed = _parse_date_time(text)
    if parsed is None or not parsed[1]:
        raise RecordError(f"{field} {text!r} is not a JST timestamp (YYYY/MM/DD HH:MM:SS)")
    return parsed[0].replace(tzinfo=JST).astimezone(UTC)


@lru_cache(maxsize=65536)  # a day's sales repeat the same few thousand JANs
def jan_is_valid(code: str) -> bool:
    """JAN / EAN-13 (or the 8-digit short JAN): weights 3, 1, 3, … from the right, check digit excluded."""
    if len(code) not in (8, 13) or not code.isascii() or not code.isdigit():
        return False
    digits = [int(d) for d in code]
    total = sum(d * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits[:-1])))
    return (10 - total % 10) % 10 == digits[-1]


def _jan(value: Any, *, field: str) -> str:
    """The JAN as written in the file, after checking its check digit (full-width digits are read as digits)."""
    text = require(_text(value), field=field)
    if not jan_is_valid(unicodedata.normalize("NFKC", text)):
        raise RecordError(f"{field} {text!r} is not a valid JAN (13 or 8 digits with a correct check digit)")
    return text


_TRACKING = re.compile(r"[0-9]{12}")


def _tracking_number(value: Any, *, field: str) -> str:
    text = require(_text(value), field=field)
    if not _TRACKING.fullmatch(unicodedata.normalize("NFKC", text).replace("-", "")):
        raise RecordError(f"{field} {text!r} is not a 12-digit tracking number")
    return text


# ------------------------------------------------------------------------------------------------ row mappers
def _pos_sale(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "store_code": require(_text(row["店舗コード"]), field="店舗コード"),
        "register_no": require(_text(row["レジ番号"]), field="レジ番号"),
        "receipt_no": require(_text(row["レシート番号"]), field="レシート番号"),
        "transacted_at": _jst_timestamp(row["取引日時"], field="取引日時"),
        "member_id": _text(row["会員番号"]),
        "jan": _jan(row["JANコード"], field="JANコード"),
        "product_name": _text(row["商品名"]),
        "quantity": _integer(row["数量"], field="数量"),
        "unit_price": _integer(row["単価"], field="単価"),
        "amount": _integer(row["金額"], field="金額"),
    }


def _pos_member(row: dict[str, Any]) -> dict[str, Any]:
    # The landed column names are a contract (stg_pos__members is written on them): DECISIONS.md D46.
    return {
        "member_id": require(_text(row["会員番号"]), field="会員番号"),
        "name": _text(row["氏名"]),
        "name_kana": _text(row["氏名カナ"]),
        "phone": _text(row["電話番号"]),
        "postal_code": _text(row["郵便番号"]),
        "email": _text(row["メールアドレス"]),
        "home_store": _text(row["登録店舗"]),
        "registered_on": _date(row["登録日"], field="登録日", required=False),
    }


def _b2b_order_line(row: dict[str, Any]) -> dict[str, Any]:
    quantity = _integer(row["数量"], field="数量")
    if quantity <= 0:
        raise RecordError(f"数量 {quantity} must be at least 1")
    return {
        "customer_code": require(_text(row["取引先コード"]), field="取引先コード"),
        "po_number": require(_text(row["発注番号"]), field="発注番号"),
        "ordered_on": _date(row["発注日"], field="発注日"),
        "requested_delivery_on": _date(row["納品希望日"], field="納品希望日", required=False),
        "jan": _jan(row["JAN"], field="JAN"),
        "product_name": _text(row["品名"]),
        "quantity": quantity,
        "unit_price_tax_excl": _integer(row["単価(税抜)"], field="単価(税抜)"),
    }


def _carrier_tracking(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_reference": require(_text(row["お客様管理番号"]), field="お客様管理番号"),
        "tracking_number": _tracking_number(row["送り状番号"], field="送り状番号"),
        "shipped_on": _date(row["出荷日"], field="出荷日"),
        "expected_delivery_on": _date(row["配達予定日"], field="配達予定日", required=False),
    }


# ------------------------------------------------------------------------------------------------ kinds
@dataclass(frozen=True)
class FileKind:
    """One file source: where its files are, how to read them, the header it needs and how a row maps."""

    schema: EntitySchema
    suffixes: tuple[str, ...]
    header: tuple[str, ...]  # required columns, as the file names them
    map_row: Callable[[dict[str, Any]], dict[str, Any]]
    excel: bool = False

    @property
    def folder(self) -> str:
        return f"{self.schema.source}/{self.schema.entity}"


def _schema(source: str, entity: str, key: tuple[str, ...], columns: dict[str, pl.DataType]) -> EntitySchema:
    return EntitySchema(source, entity, key=key, cursor_field="file_modified_at", columns={**columns, **FILE_COLUMNS})


POS_SALES = _schema("pos", "sales", ("file_sha256", "file_row"), {
    "store_code": pl.String(), "register_no": pl.String(), "receipt_no": pl.String(),
    "transacted_at": UTC_TS,  # 取引日時, JST in the file
    "member_id": pl.String(), "jan": pl.String(), "product_name": pl.String(),
    "quantity": pl.Int64(), "unit_price": pl.Int64(), "amount": pl.Int64(),  # tax-inclusive JPY, as the receipt
})
POS_MEMBERS = _schema("pos", "members", ("member_id",), {
    "member_id": pl.String(), "name": pl.String(), "name_kana": pl.String(), "phone": pl.String(),
    "postal_code": pl.String(), "email": pl.String(), "home_store": pl.String(), "registered_on": pl.Date(),
})
B2B_ORDERS = _schema("b2b", "orders", ("customer_code", "po_number", "file_row"), {
    "customer_code": pl.String(), "po_number": pl.String(), "ordered_on": pl.Date(),
    "requested_delivery_on": pl.Date(), "jan": pl.String(), "product_name": pl.String(), "quantity": pl.Int64(),
    "unit_price_tax_excl": pl.Int64(),  # B2B trades tax-exclusive
    "sheet_name": pl.String(),
})
CARRIER_TRACKINGS = _schema("carrier", "trackings", ("tracking_number",), {
    "order_reference": pl.String(), "tracking_number": pl.String(), "shipped_on": pl.Date(),
    "expected_delivery_on": pl.Date(),
})

KINDS: dict[tuple[str, str], FileKind] = {
    (k.schema.source, k.schema.entity): k
    for k in (
        FileKind(POS_SALES, (".csv",), ("店舗コード", "レジ番号", "レシート番号", "取引日時", "会員番号", "JANコード",
                                        "商品名", "数量", "単価", "金額"), _pos_sale),
        FileKind(POS_MEMBERS, (".csv",), ("会員番号", "氏名", "氏名カナ", "電話番号", "郵便番号", "メールアドレス",
                                          "登録店舗", "登録日"), _pos_member),
        FileKind(B2B_ORDERS, (".xlsx",), ("取引先コード", "発注番号", "発注日", "納品希望日", "JAN", "品名", "数量",
                                         "単価(税抜)"), _b2b_order_line, excel=True),
        FileKind(CARRIER_TRACKINGS, (".csv",), ("お客様管理番号", "送り状番号", "出荷日", "配達予定日"), _carrier_tracking),
    )
}
ENTITIES: dict[str, tuple[str, ...]] = {}
for _source, _entity in KINDS:
    ENTITIES[_source] = (*ENTITIES.get(_source, ()), _entity)
SCHEMAS: dict[tuple[str, str], EntitySchema] = {key: kind.schema for key, kind in KINDS.items()}


# ------------------------------------------------------------------------------------------------ readers
@dataclass(frozen=True)
class SourceRow:
    row: int  # 1-based: the CSV line where the record starts, the Excel row
    values: dict[str, Any]  # header → cell
    raw: str  # the row as text, for the quarantine
    sheet: str | None = None
    error: str | None = None  # the row is broken as a whole (wrong number of fields): quarantine it


def header_name(cell: Any) -> str:
    """A header cell as matched against the required names: NFKC, no spaces (単価（税抜） = 単価(税抜),
    ＪＡＮ = JAN, "数 量" = 数量) — buyers' templates and POS exports vary in exactly these ways."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", _text(cell) or ""))


def _missing_columns(found: list[str], kind: FileKind) -> list[str]:
    return [name for name in kind.header if name not in found]


def _decode(data: bytes, kind: FileKind) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        raise FileUnreadable("is UTF-8 (it starts with a UTF-8 byte order mark); expected CP932")
    try:
        text = data.decode(ENCODING)
    except UnicodeDecodeError as exc:
        hint = ""
        try:
            data.decode("utf-8")
            hint = " — it decodes as UTF-8, so it was saved in the wrong encoding"
        except UnicodeDecodeError:
            pass
        raise FileUnreadable(f"is not CP932 text (byte 0x{data[exc.start]:02x} at offset {exc.start}){hint}") from None
    first_line = text.split("\n", 1)[0]
    if not any(name in first_line for name in kind.header):
        try:
            if any(name in data.decode("utf-8").split("\n", 1)[0] for name in kind.header):
                raise FileUnreadable("is UTF-8, not CP932: its header only reads as UTF-8")
        except UnicodeDecodeError:
            pass
    return text


def read_csv(data: bytes, kind: FileKind) -> Iterator[SourceRow]:
    """CP932 CSV with a header line. A row with the wrong number of fields is yielded with `error` set
    (quarantined by the caller); a file that is not CSV at all raises FileUnreadable."""
    text = _decode(data, kind)
    lines = re.split(r"\r\n|\r|\n", text)  # the line ends csv counts in line_num (not str.splitlines')
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [header_name(h) for h in next(reader, [])]
        if not any(header):
            raise FileUnreadable("is empty (no header line)")
        missing = _missing_columns(header, kind)
        if missing:
            raise FileUnreadable(f"lacks required column(s) {', '.join(missing)} (header: {','.join(header)})")
        previous = reader.line_num
        for cells in reader:
            start, previous = previous + 1, reader.line_num
            raw = "\n".join(lines[start - 1:reader.line_num])
            if not any(c.strip() for c in cells):
                continue  # blank line
            if len(cells) != len(header):
                yield SourceRow(start, {}, raw, error=f"has {len(cells)} fields, the header has {len(header)}")
                continue
            yield SourceRow(start, dict(zip(header, cells, strict=True)), raw)
    except csv.Error as exc:
        raise FileUnreadable(f"is not a readable CSV (line {reader.line_num}: {exc})") from None


def read_xlsx(data: bytes, kind: FileKind) -> Iterator[SourceRow]:
    """Every sheet whose first 20 rows hold the order table's header; rows below it until the sheet ends."""
    from openpyxl import load_workbook  # only file ingestion needs it

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FileUnreadable(f"is not an .xlsx workbook ({type(exc).__name__}: {exc})") from None
    try:
        tables, best_missing = [], list(kind.header)
        for sheet in workbook.worksheets:
            rows = list(sheet.iter_rows(values_only=True))
            for index, values in enumerate(rows[:20]):
                header = [header_name(v) for v in values]
                missing = _missing_columns(header, kind)
                if not missing:
                    tables.append((sheet.title, index, header, rows))
                    break
                if len(missing) < len(best_missing) and len(missing) < len(kind.header) // 2:
                    best_missing = missing
        if not tables:
            raise FileUnreadable(f"has no sheet with the order table: missing column(s) {', '.join(best_missing)}")
        for title, index, header, rows in tables:
            for offset, values in enumerate(rows[index + 1:], start=index + 2):
                if all(_text(v) is None for v in values):
                    continue
                cells = dict(zip(header, values, strict=False))
                yield SourceRow(offset, cells, raw_json([_text(v) if not isinstance(v, date) else v
                                                         for v in values]), title)
    finally:
        workbook.close()


# ------------------------------------------------------------------------------------------------ the run
@dataclass
class FileIngestReport:
    """What one run did with the inbox, beside the landing result."""

    result: IngestResult
    processed: list[Path] = field(default_factory=list)  # landed (or all rows quarantined) → processed/
    duplicates: list[Path] = field(default_factory=list)  # already landed before → processed/, nothing landed
    failed: list[Path] = field(default_factory=list)  # unreadable → failed/ with <name>.reason.txt


def kind_for(source: str, entity: str) -> FileKind:
    try:
        return KINDS[(source, entity)]
    except KeyError:
        raise ValueError(f"no file source {source}/{entity}; known: {', '.join(f'{s}/{e}' for s, e in KINDS)}") \
            from None


def pending_files(config: Config, kind: FileKind, now: float | None = None) -> list[Path]:
    """Settled files waiting in the kind's inbox folder, by name (dot files and temp files skipped)."""
    folder = config.inbox_dir / kind.folder
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    settle = config.files.settle_seconds
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in kind.suffixes
             and now - p.stat().st_mtime >= settle]
    return sorted(files)[: config.files.max_files_per_run]


def landed_hashes(landing: LandingZone, kind: FileKind) -> set[str]:
    """SHA-256 of every file already landed (rows) or wholly quarantined, read back from the landing zone."""
    source, entity = kind.schema.source, kind.schema.entity
    with landing.reading(f"landed file hashes {source}/{entity}"):
        hashes = set(landing.landed(source, entity, kind.schema.landed_columns)
                     .select("file_sha256").unique().collect().get_column("file_sha256").drop_nulls().to_list())
        quarantined = landing.quarantined(source, entity).select("raw").collect().get_column("raw").to_list()
    for raw in quarantined:
        try:
            hashes.add(json.loads(raw)["file_sha256"])
        except (ValueError, KeyError, TypeError):
            continue
    return hashes


def _move(path: Path, folder: Path) -> Path:
    """Move into `folder`, never over another file: a same-named later drop gets its hash in the name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        target = folder / f"{path.stem}.{digest}{path.suffix}"
    os.replace(path, target)
    return target


@contextmanager
def _inbox_lock(config: Config, kind: FileKind) -> Iterator[None]:
    """One run per kind at a time (the sensor and a manual run may overlap)."""
    config.inbox_dir.mkdir(parents=True, exist_ok=True)
    with open(config.inbox_dir / f".{kind.schema.source}-{kind.schema.entity}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ingest_files(config: Config, source: str, entity: str, *, landing: LandingZone | None = None,
                 now: datetime | None = None) -> FileIngestReport:
    """Land the settled files of `<inbox>/<source>/<entity>/` as one batch and move them on."""
    kind = kind_for(source, entity)
    landing = landing or LandingZone(config.landing_dir)
    fetched_at = now or utcnow()
    with _inbox_lock(config, kind):
        seen = landed_hashes(landing, kind)
        rows: list[dict[str, Any]] = []
        bad: list[QuarantineRecord] = []
        to_process: list[Path] = []
        duplicates: list[Path] = []
        failed: list[Path] = []
        processed_dir = config.inbox_dir / PROCESSED_DIR / kind.folder
        for path in pending_files(config, kind):
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                duplicates.append(_move(path, processed_dir))
                continue
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            try:
                file_rows, file_bad = _parse_file(path.name, data, digest, modified, kind)
            except FileUnreadable as exc:
                failed.append(_fail(config, kind, path, f"{path.name} {exc}"))
                continue
            rows += file_rows
            bad += file_bad
            seen.add(digest)
            to_process.append(path)
        result = land_and_report(landing, kind.schema, rows, bad, fetched_at=fetched_at, since=None)
        # Only after the batch is renamed into place: a crash before this line re-reads the files next run,
        # and their hashes are then found landed, so they move without landing twice.
        processed = [_move(p, processed_dir) for p in to_process]
    return FileIngestReport(result, processed, duplicates, failed)


def _parse_file(name: str, data: bytes, digest: str, modified: datetime,
                kind: FileKind) -> tuple[list[dict[str, Any]], list[QuarantineRecord]]:
    rows, bad = [], []
    reader = read_xlsx if kind.excel else read_csv
    for source_row in reader(data, kind):
        where = f"{name} row {source_row.row}"
        try:
            if source_row.error:
                raise RecordError(source_row.error)
            record = kind.map_row(source_row.values)
        except RecordError as exc:
            bad.append(QuarantineRecord(
                record_key=f"{name}#{source_row.row}",
                reason=f"{where}: {exc}",
                raw=raw_json({"file_name": name, "file_row": source_row.row, "file_sha256": digest,
                              "sheet_name": source_row.sheet, "text": source_row.raw}),
            ))
            continue
        if kind.excel:
            record["sheet_name"] = source_row.sheet
        record.update(file_name=name, file_row=source_row.row, file_sha256=digest, file_modified_at=modified,
                      _raw=raw_json({"file_name": name, "file_row": source_row.row, "text": source_row.raw}))
        rows.append(record)
    return rows, bad


def _fail(config: Config, kind: FileKind, path: Path, reason: str) -> Path:
    target = _move(path, config.inbox_dir / FAILED_DIR / kind.folder)
    target.with_name(f"{target.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    return target


def ingest(config: Config, entity: str, *, source: str, landing: LandingZone | None = None,
           now: datetime | None = None) -> IngestResult:
    """The registry's entry point (`ingestion.ingest(config, "pos", "sales")`)."""
    return ingest_files(config, source, entity, landing=landing, now=now).result


def connector(source: str) -> Callable[..., IngestResult]:
    """`ingest` bound to one file source, in the registry's `connector(config, entity, **kw)` shape."""
    def run(config: Config, entity: str, **kw: Any) -> IngestResult:
        return ingest(config, entity, source=source, **kw)

    return run


def inbox_state(config: Config, source: str, entity: str) -> list[tuple[str, float]]:
    """(name, mtime) of the files waiting for source/entity — what the Dagster sensor watches."""
    return [(p.name, p.stat().st_mtime) for p in pending_files(config, kind_for(source, entity))]

