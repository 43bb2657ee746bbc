"""Contract tests of the Yahoo!ショッピング store API sandbox (sandbox/yahoo.py), over real HTTP."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from defusedxml.ElementTree import fromstring
from sandbox_testkit import NOW, small_world

from sandbox.server import serve_yahoo
from sandbox.yahoo import JST, YahooFaults, item_code

TOKEN = "yahoo_test_token"
SELLER = "ichigen-select"
API = "/ShoppingWebService/V1"


@pytest.fixture
def store():
    started = []

    def start(world=None, **kw):
        world = world or small_world(orders_per_day=40)
        kw.setdefault("requests_per_second", 500.0)
        kw.setdefault("burst", 50)
        handle = serve_yahoo(world, port=0, access_token=TOKEN, seller_id=SELLER, **kw)
        client = httpx.Client(base_url=handle.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        started.append((handle, client))
        return handle, client, world

    yield start
    for handle, client in started:
        client.close()
        handle.stop()


def _order_list(client, start, result, condition="", field="OrderId,LastUpdateTime"):
    body = (f"<Req><Search><Result>{result}</Result><Start>{start}</Start><Condition>{condition}</Condition>"
            f"<Field>{field}</Field></Search><SellerId>{SELLER}</SellerId></Req>")
    response = client.post(f"{API}/orderList", content=body.encode())
    assert response.status_code == 200, response.text
    root = fromstring(response.content)
    total = int(root.findtext("Search/TotalCount"))
    return total, [(int(o.findtext("Index")), o.findtext("OrderId")) for o in root.findall("Search/OrderInfo")]


def _stamp(ts):
    return ts.astimezone(JST).strftime("%Y%m%d%H%M%S")


def test_auth_is_enforced_with_yahoos_401(store) -> None:
    handle, client, _ = store()
    missing = httpx.post(f"{handle.url}{API}/getStock", data={"seller_id": SELLER, "item_code": "x"})
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert fromstring(missing.content).tag == "Error"
    wrong = httpx.post(f"{handle.url}{API}/getStock", data={"seller_id": SELLER, "item_code": "x"},
                       headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["WWW-Authenticate"]
    no_seller = client.post(f"{API}/getStock", data={"item_code": "x"})
    assert no_seller.status_code == 400 and fromstring(no_seller.content).findtext("Code") == "px-04001"


def test_order_list_pages_return_every_order_once_across_pages_and_windows(store) -> None:
    _, client, world = store()
    orders = world.mall("yahoo").orders
    assert len(orders) > 30
    total, _ = _order_list(client, 1, 1)
    assert total == len(orders)
    seen: list[str] = []
    for start in range(1, total + 1, 7):
        _, page = _order_list(client, start, 7)
        assert [i for i, _ in page] == list(range(start, start + len(page)))
        seen += [oid for _, oid in page]
    assert sorted(seen) == sorted(o.order_id for o in orders) and len(seen) == len(set(seen))

    # Two adjacent UpdateTime windows [a, m) and [m, b) split the orders without overlap or gap.
    stamps = sorted(o.updated_at for o in orders)
    lo, mid, hi = stamps[0], stamps[len(stamps) // 2], stamps[-1] + timedelta(seconds=1)
    halves = []
    for a, b in ((lo, mid), (mid, hi)):
        cond = f"<UpdateTimeFrom>{_stamp(a)}</UpdateTimeFrom><UpdateTimeTo>{_stamp(b)}</UpdateTimeTo>"
        n, page = _order_list(client, 1, 1000, cond)
        assert n == len(page)
        halves.append({oid for _, oid in page})
    assert not halves[0] & halves[1]
    assert halves[0] | halves[1] == {o.order_id for o in orders}


def test_order_info_renders_buyer_status_and_lines(store) -> None:
    _, client, world = store()
    order = next(o for o in world.mall("yahoo").orders if len(o.lines) > 1)
    body = (f"<Req><Target><OrderId>{order.order_id}</OrderId><Field>OrderId,OrderStatus,PayStatus,ShipStatus,"
            f"BillLastName,BillMailAddress,TotalPrice</Field></Target><SellerId>{SELLER}</SellerId></Req>")
    root = fromstring(client.post(f"{API}/orderInfo", content=body).content)
    assert root.tag == "ResultSet" and root.get("totalResultsReturned") == "1"
    info = root.find("Result/OrderInfo")
    assert info.findtext("Pay/BillLastName") == order.buyer.family_name
    assert int(info.findtext("Detail/TotalPrice")) == order.total
    items = info.findall("Item")
    assert len(items) == len(order.lines)
    assert sum(int(i.findtext("UnitPrice")) * int(i.findtext("Quantity")) for i in items) == order.lines_total
    unknown = client.post(f"{API}/orderInfo", content=body.replace(order.order_id, "nope-1"))
    assert unknown.status_code == 400 and fromstring(unknown.content).tag == "Error"


def test_item_list_paging_and_its_limit(store) -> None:
    _, client, world = store(small_world(skus=60))
    codes: list[str] = []
    start = 1
    for _ in range(100):
        root = fromstring(client.get(f"{API}/myItemList",
                                     params={"seller_id": SELLER, "start": start, "results": 2}).content)
        assert int(root.get("firstResultPosition")) == start
        page = [r.findtext("ItemCode") for r in root.findall("Result")]
        codes += page
        start += len(page)
        if start > int(root.get("totalResultsAvailable")):
            break
    assert sorted(codes) == sorted({s.parent_code for s in world.mall("yahoo").listings})
    too_many = client.get(f"{API}/myItemList", params={"seller_id": SELLER, "results": 101})
    assert too_many.status_code == 400


def test_set_stock_sets_adds_subtracts_and_skips_unknown_codes(store) -> None:
    _, client, world = store()
    listings = [s for s in world.mall("yahoo").listings if s.variant_code != s.parent_code][:3]
    codes = [item_code(s) for s in listings]
    response = client.post(f"{API}/setStock", data={
        "seller_id": SELLER, "item_code": ",".join(codes + ["no-such:code"]), "quantity": "7,+2,-999,5"})
    assert response.status_code == 200, response.text
    before_second = listings[1].quantity
    assert listings[0].quantity == 7 and listings[2].quantity == 0
    root = fromstring(response.content)
    assert root.get("totalResultsReturned") == "3"
    got = fromstring(client.post(f"{API}/getStock", data={"seller_id": SELLER, "item_code": codes[1]}).content)
    assert int(got.findtext("Result/Quantity")) == before_second
    mismatch = client.post(f"{API}/setStock", data={"seller_id": SELLER, "item_code": codes[0], "quantity": "1,2"})
    assert mismatch.status_code == 400
    too_many = client.post(f"{API}/getStock", data={"seller_id": SELLER, "item_code": ",".join(["a"] * 1001)})
    assert too_many.status_code == 400


def test_the_store_rate_limit_answers_429_and_recovers(store) -> None:
    _, client, _ = store(requests_per_second=2.0, burst=2)
    answers = [client.post(f"{API}/getStock", data={"seller_id": SELLER, "item_code": "x"}) for _ in range(6)]
    statuses = [r.status_code for r in answers]
    assert statuses[:2] == [200, 200] and 429 in statuses
    refused = next(r for r in answers if r.status_code == 429)
    assert fromstring(refused.content).findtext("Code") == "px-04290"
    time.sleep(0.6)
    assert client.post(f"{API}/getStock", data={"seller_id": SELLER, "item_code": "x"}).status_code == 200


def test_faults_happen_at_the_configured_rate_and_truncation_still_applies(store, tmp_path) -> None:
    faults = YahooFaults(rate=0.25, seed=3, slow_seconds=0.01)
    log = tmp_path / "traffic.jsonl"
    # the store's own budget out of the way: on a quiet machine 240 calls come faster than 500/s, and requests
    # refused for the budget are answered before any fault is drawn
    handle, client, world = store(faults=faults, traffic_log=log, requests_per_second=1_000_000.0, burst=1000)
    listing = next(s for s in world.mall("yahoo").listings if s.erp_sku)
    code = item_code(listing)
    statuses = []
    truncated_applied = False
    for _ in range(240):
        before = listing.quantity
        r = client.post(f"{API}/setStock", data={"seller_id": SELLER, "item_code": code, "quantity": "+1"})
        statuses.append(r.status_code)
        if r.status_code == 200:
            try:
                fromstring(r.content)
            except Exception:  # noqa: BLE001 — a truncated body does not parse
                truncated_applied = truncated_applied or listing.quantity == before + 1
    counts = httpx.get(f"{handle.url}/_sandbox/yahoo/faults").json()
    faulted = sum(counts["faults"].values())
    # 429 bursts add two follow-ups each; the drawn rate itself stays near 25 %.
    first_draws = faulted - 2 * counts["faults"].get("429", 0) // 3
    assert 0.15 * 240 <= first_draws <= 0.35 * 240, counts
    assert {"429", "500", "503", "slow", "truncated"} <= set(counts["faults"]), counts
    assert truncated_applied
    assert statuses.count(500) + statuses.count(503) == counts["faults"]["500"] + counts["faults"]["503"]
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 240 and all(line["channel"] == "yahoo" for line in lines)
    assert TOKEN not in log.read_text(encoding="utf-8")


def test_sandbox_order_endpoint_places_an_order_and_takes_the_stock(store) -> None:
    handle, _, world = store()
    listing = next(s for s in world.mall("yahoo").listings if s.erp_sku and s.quantity >= 1)
    before = listing.quantity
    placed = httpx.post(f"{handle.url}/_sandbox/yahoo/orders",
                        json={"lines": [{"item_code": item_code(listing), "quantity": 1}],
                              "at": (NOW + timedelta(minutes=5)).isoformat()}).json()
    assert len(placed) == 1 and listing.quantity == before - 1
    truth = httpx.get(f"{handle.url}/_sandbox/yahoo/orders").json()
    assert placed[0]["order_id"] in {o["order_id"] for o in truth}
