"""The native fast path (ingestion.pagescan, D243) against the DuckDB path it stands in for.

GIVEN Admin GraphQL orders pages — the sandbox's own, and the same pages changed one way at a time (white space,
escapes, other number and timestamp forms, missing, null, repeated and extra keys, bad values, broken bytes)
WHEN they are mapped with the fast path allowed (`map_pages`) and by DuckDB alone (`native=False`)
THEN both give the same landed table (every column, `_raw` included, same order) and the same quarantine; and the
fast path takes exactly the forms it claims (it must not fall back on the sandbox's pages, an offset timestamp,
a null customer...) and leaves the others to DuckDB (it must not land a pretty-printed node, a string quantity...).
"""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest
from test_columnar import SPEC, page_of, sandbox_pages

from ingestion.columnar import map_pages
from ingestion.landing import LandingZone
from ingestion.pagescan import map_pages as scan_pages

MAPPING = SPEC.columnar
TYPED = {name: dtype for name, dtype in SPEC.schema.columns.items() if not name.startswith("_") or name == "_raw"}


def landed(table: pa.Table) -> pa.Table:
    """As `LandingZone.write_batch` would land it (the landed Arrow types), for comparing the two paths."""
    return LandingZone._table("shopify", "orders", table, {k: v for k, v in TYPED.items() if k != "_raw"})


def both_paths(pages: list[str | bytes]):
    """(fast-path-allowed result, DuckDB-only result), each as (landed table, quarantine) or the error raised."""
    results = []
    for native in (True, False):
        try:
            mapped = map_pages(MAPPING, pages, native=native)
        except Exception as exc:  # noqa: BLE001 — the two paths must fail alike
            results.append(("error", type(exc).__name__, str(exc)))
            continue
        results.append((landed(mapped.table),
                        [(r.record_key, r.reason, r.raw) for r in mapped.bad]))
    return results


def assert_same(pages: list[str | bytes]) -> None:
    fast, reference = both_paths(pages)
    if isinstance(reference[0], pa.Table):
        assert isinstance(fast[0], pa.Table), fast
        assert fast[0].num_rows == reference[0].num_rows
        for name in reference[0].column_names:
            assert fast[0].column(name).equals(reference[0].column(name)), name
        assert fast[1] == reference[1]
    else:
        assert fast == reference


@pytest.fixture(scope="module")
def pages() -> list[str]:
    return sandbox_pages()


@pytest.fixture(scope="module")
def node(pages) -> dict:
    """A sandbox order with two line items and a customer: the base every change below starts from."""
    for page in pages:
        for candidate in json.loads(page)["data"]["orders"]["nodes"]:
            if len(candidate["lineItems"]["nodes"]) >= 2 and candidate.get("customer"):
                return candidate
    raise AssertionError("no sandbox order with two lines")


def compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_the_sandbox_pages_take_the_fast_path_and_land_what_duckdb_lands(pages):
    assert scan_pages(MAPPING, pages) is not None, "the sandbox's own pages must not fall back"
    assert_same(pages)
    as_bytes = [p.encode() for p in pages]
    assert scan_pages(MAPPING, as_bytes) is not None
    assert_same(as_bytes)


def test_many_pages_are_split_across_threads_in_order(pages):
    many = pages * 40  # ≥ 2 × MIN_PAGES_PER_THREAD: scanned in parts, one record batch each
    table = scan_pages(MAPPING, many)
    assert table is not None and len(table.to_batches()) >= 2
    assert_same(many)


# (what is changed, the node after the change) — forms the fast path takes itself
def _taken(node: dict) -> list[tuple[str, dict]]:
    line = node["lineItems"]["nodes"][0]
    return [
        ("offset timestamp", {**node, "createdAt": "2026-11-13T13:20:25+09:00"}),
        ("negative offset, fraction", {**node, "updatedAt": "2026-11-13T04:20:25.123-03:30"}),
        ("six fraction digits", {**node, "processedAt": "2024-02-29T23:59:59.999999Z"}),
        ("null optional timestamp", {**node, "cancelledAt": None}),
        ("missing optional timestamp", {k: v for k, v in node.items() if k != "processedAt"}),
        ("null customer", {**node, "customer": None}),
        ("missing customer", {k: v for k, v in node.items() if k != "customer"}),
        ("null money set", {**node, "totalTaxSet": None}),
        ("negative money", {**node, "totalDiscountsSet": {"shopMoney": {"amount": "-120", "currencyCode": "JPY"}}}),
        ("null line items", {**node, "lineItems": None}),
        ("empty line items", {**node, "lineItems": {"nodes": []}}),
        ("null gateways", {**node, "paymentGatewayNames": None}),
        ("empty gateways", {**node, "paymentGatewayNames": []}),
        ("null variant", {**node, "lineItems": {"nodes": [{**line, "variant": None}]}}),
        ("null quantity", {**node, "lineItems": {"nodes": [{**line, "quantity": None}]}}),
        ("negative quantity", {**node, "lineItems": {"nodes": [{**line, "currentQuantity": -3}]}}),
        ("18-digit quantity", {**node, "lineItems": {"nodes": [{**line, "quantity": 999999999999999999}]}}),
        ("extra keys of every type", {**node, "extra": {"a": [1, True, False, None, "x", {}]}, "zz": []}),
        ("canonical escapes", {**node, "name": 'a"b\\c\nd\te\x01f\x7fg\x08h\x0ci\rj'}),
        ("four-byte UTF-8", {**node, "email": "😀@例え.jp"}),
        ("empty optional text", {**node, "email": ""}),
    ]


def _fallen_back(node: dict) -> list[tuple[str, str]]:
    """(what is changed, the page text): forms left to DuckDB (good or bad, DuckDB decides)."""
    line = node["lineItems"]["nodes"][0]

    def page(n) -> str:
        return page_of([n])

    return [
        ("pretty-printed", json.dumps({"data": {"orders": {"nodes": [node]}}}, ensure_ascii=False, indent=1)),
        ("space after a colon", page(node).replace('"name":', '"name": ', 1)),
        ("lone surrogate", page({**node, "name": "a"}).replace('"name":"a"', '"name":"a\\ud800"', 1)),
        ("unknown escape", page({**node, "name": "a"}).replace('"name":"a"', '"name":"a\\x41"', 1)),
        ("escaped key", page(node).replace('"name":', '"n\\u0061me":', 1)),
        ("escaped money", page({**node, "totalPriceSet": {"shopMoney": {"amount": "1"}}}).replace(
            '"amount":"1"', '"amount":"\\u0031"', 1)),
        ("string quantity", page({**node, "lineItems": {"nodes": [{**line, "quantity": "2"}]}})),
        ("fractional quantity", page({**node, "lineItems": {"nodes": [{**line, "quantity": 2.0}]}})),
        ("19-digit quantity", page({**node, "lineItems": {"nodes": [{**line, "quantity": 10 ** 18}]}})),
        ("negative zero", page({**node, "lineItems": {"nodes": [{**line, "quantity": 0}]}}).replace(
            '"quantity":0', '"quantity":-0', 1)),
        ("number as text", page({**node, "name": 1072})),
        ("space separator", page({**node, "createdAt": "2026-11-13 04:20:25Z"})),
        ("no offset", page({**node, "createdAt": "2026-11-13T04:20:25"})),
        ("seven fraction digits", page({**node, "createdAt": "2026-11-13T04:20:25.1234567Z"})),
        ("30 February", page({**node, "createdAt": "2026-02-30T04:20:25Z"})),
        ("money with spaces", page({**node, "totalPriceSet": {"shopMoney": {"amount": " 100 "}}})),
        ("money with a comma", page({**node, "totalPriceSet": {"shopMoney": {"amount": "1,000"}}})),
        ("money as a number", page({**node, "totalPriceSet": {"shopMoney": {"amount": 100}}})),
        ("empty id", page({**node, "id": ""})),
        ("missing id", page({k: v for k, v in node.items() if k != "id"})),
        ("null updatedAt", page({**node, "updatedAt": None})),
        ("missing line id", page({**node, "lineItems": {"nodes": [{k: v for k, v in line.items() if k != "id"}]}})),
        ("repeated key", page(node).replace('"name":', '"name":"#0","name":', 1)),
        ("null gateway", page({**node, "paymentGatewayNames": [None]})),
        ("node not an object", page_of([node, 3])),
        ("line not an object", page({**node, "lineItems": {"nodes": ["x"]}})),
        ("customer not an object", page({**node, "customer": "gid://shopify/Customer/1"})),
        ("null nodes", '{"data":{"orders":{"nodes":null}}}'),
        ("float in a node", page({**node, "extra": 1.5})),
    ]


def _taken_escapes(node: dict) -> list[tuple[str, str]]:
    """(what is changed, the page text): escapes DuckDB's writer would not write itself. The scanner decodes
    them for the values and writes the node's `_raw` again in DuckDB's form, as DuckDB does."""
    line = node["lineItems"]["nodes"][0]

    def page(n, old: str, new: str) -> str:
        text = page_of([node, n])
        assert old in text
        return text.replace(old, new)

    return [
        ("escaped non-ASCII", page({**node, "name": "café"}, "café", "caf\\u00e9")),
        ("escaped slash", page({**node, "name": "a/b"}, "a/b", "a\\/b")),
        ("lower-case control escape", page({**node, "name": "a\x1f"}, "\\u001f", "\\u001f")),
        ("upper-case control escape", page({**node, "name": "a\x1f"}, "\\u001f", "\\u001F")),
        ("long form of a short escape", page({**node, "name": "a\nb"}, "a\\nb", "a\\u000Ab")),
        ("HTML-safe escapes, as Rails writes them", page({**node, "email": "a&b<c>@x.jp"}, "a&b<c>",
                                                          "a\\u0026b\\u003cc\\u003e")),
        ("surrogate pair", page({**node, "name": "😀"}, "😀", "\\ud83d\\ude00")),
        ("escaped line separator", page({**node, "name": "a\u2028b"}, "a\u2028b", "a\\u2028b")),
        ("raw line separator", page_of([node, {**node, "name": "a\u2028b\u2029"}])),
        ("escaped line title", page({**node, "lineItems": {"nodes": [{**line, "title": "A&B"}]}}, "A&B",
                                    "A\\u0026B")),
        ("NUL", page_of([node, {**node, "name": "a\x00b", "note": "\x00"}])),
        ("escapes in an undeclared text", page({**node, "note": "x/y"}, "x/y", "x\\/y\\u00e9")),
    ]


def test_escapes_the_fast_path_takes_land_as_duckdb_lands_them(node):
    for label, text in _taken_escapes(node):
        assert scan_pages(MAPPING, [text]) is not None, f"{label}: fell back"
        assert_same([text])


def test_forms_the_fast_path_takes_land_as_duckdb_lands_them(node):
    for label, changed in _taken(node):
        text = page_of([node, changed])
        assert scan_pages(MAPPING, [text]) is not None, f"{label}: fell back"
        assert_same([text])


def test_forms_left_to_duckdb_fall_back_and_land_as_before(node, pages):
    for label, text in _fallen_back(node):
        assert scan_pages(MAPPING, [text]) is None, f"{label}: taken by the fast path"
        assert_same([text])
        # one such page among good ones: the whole call falls back, and still lands them all alike
        assert scan_pages(MAPPING, [*pages[:2], text]) is None, label
        assert_same([*pages[:2], text])


def test_an_empty_page_and_no_pages_stay_on_the_fast_path():
    for call in ([page_of([])], []):
        table = scan_pages(MAPPING, call)
        assert table is not None and table.num_rows == 0 and table.column_names[-1] == "_raw"
        assert_same(call)


def test_page_level_numbers_and_trailing_space_stay_on_the_fast_path(node):
    text = ('{"data":{"orders":{"pageInfo":{"hasNextPage":false},"nodes":[' + compact(node) + ']}},'
            '"extensions":{"cost":{"requestedQueryCost":962,"throttleStatus":{"restoreRate":1.0e2,'
            '"currentlyAvailable":-0.5}}}}\n')
    assert scan_pages(MAPPING, [text]) is not None
    assert_same([text])


def test_broken_bytes_never_land_natively(pages):
    """Random truncations and byte changes of a real page (bounded: 300 of each, seeded): whatever DuckDB does
    with them — land, quarantine or refuse — the fast-path-allowed call does the same, and never crashes."""
    rng = random.Random(20261125)
    base = pages[0].encode()
    for _ in range(300):
        cut = base[:rng.randrange(1, len(base))]
        assert scan_pages(MAPPING, [cut]) is None
    checked = 0
    for _ in range(300):
        at = rng.randrange(len(base))
        changed = base[:at] + bytes([rng.randrange(256)]) + base[at + 1:]
        if scan_pages(MAPPING, [changed]) is not None:
            checked += 1
        assert_same([changed])
    assert checked > 0  # some single-byte changes keep a valid page (a digit, a letter in a text)


def test_escapes_anywhere_land_as_duckdb_lands_them(pages):
    """200 pages (seeded), each with 1–4 escapes put at the start of random string values of a real page: in
    declared texts (decoded, `_raw` rewritten), undeclared ones (rewritten), keys' neighbours, timestamps and
    money (left to DuckDB). Both paths agree on each; most are taken natively."""
    rng = random.Random(20261126)
    escapes = ["\\/", "\\u0026", "\\u00e9", "\\ud83d\\ude00", "\\u001f", "\\u001F", "\\u000A", "\\n",
               "\\u2028", "\\u0000", '\\"', "\\\\"]
    base = pages[1]
    starts = [i + 2 for i in range(len(base)) if base.startswith(':"', i)]
    taken = 0
    for _ in range(200):
        text = base
        for at in sorted(rng.sample(starts, rng.randrange(1, 5)), reverse=True):
            text = text[:at] + rng.choice(escapes) + text[at:]
        json.loads(text)  # still a valid page
        taken += scan_pages(MAPPING, [text]) is not None
        assert_same([text])
    assert taken > 50


def test_invalid_utf8_is_refused_as_before(pages):
    broken = pages[0].encode().replace(b"#", b"\xff", 1)
    assert scan_pages(MAPPING, [broken]) is None
    fast, reference = both_paths([broken])
    assert fast == reference and fast[0] == "error" and "utf" in fast[2].lower()
