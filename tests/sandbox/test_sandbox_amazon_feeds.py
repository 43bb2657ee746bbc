"""Contract tests of the sandbox's Feeds API 2021-06-30 (sandbox.amazon_feeds) over real HTTP."""

from __future__ import annotations

import time

import httpx
from test_sandbox_amazon import amazon_factory  # noqa: F401 (the fixture)

from sandbox.amazon import MARKETPLACE_ID, SELLER_ID

FEEDS = "/feeds/2021-06-30"


def patch_message(message_id: int, sku: str, quantity, **extra) -> dict:
    return {"messageId": message_id, "sku": sku, "operationType": "PATCH", "productType": "PRODUCT",
            "patches": [{"op": "replace", "path": "/attributes/fulfillment_availability",
                         "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}]}], **extra}


def submit(a, document: dict | bytes) -> str:
    headers = {"x-amz-access-token": a.token}
    created = a.http.post(f"{FEEDS}/documents", json={"contentType": "application/json; charset=UTF-8"},
                          headers=headers)
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    content = document if isinstance(document, bytes) else httpx.Request("PUT", url, json=document).content
    assert httpx.put(url, content=content, timeout=10).status_code == 200
    feed = a.http.post(f"{FEEDS}/feeds", headers=headers, json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE_ID],
        "inputFeedDocumentId": created.json()["feedDocumentId"]})
    assert feed.status_code == 202, feed.text
    return feed.json()["feedId"]


def wait_done(a, feed_id: str) -> tuple[list[str], dict]:
    seen: list[str] = []
    for _ in range(100):
        feed = a.get(f"{FEEDS}/feeds/{feed_id}").json()
        if not seen or seen[-1] != feed["processingStatus"]:
            seen.append(feed["processingStatus"])
        if feed["processingStatus"] in ("DONE", "FATAL"):
            located = a.get(f"{FEEDS}/documents/{feed['resultFeedDocumentId']}").json()
            return seen, httpx.get(located["url"], timeout=10).json()
        time.sleep(0.05)
    raise AssertionError(f"feed {feed_id} did not finish within 100 polls: {seen}")


def test_a_feed_goes_through_its_states_applies_good_messages_and_reports_bad_ones(amazon_factory):  # noqa: F811
    a = amazon_factory(feed_processing_seconds=0.5)
    skus = sorted(s.listing_id for s in a.world.mall("amazon").listings)[:4]
    before = {s.listing_id: s.quantity for s in a.world.mall("amazon").listings}
    document = {"header": {"sellerId": SELLER_ID, "version": "2.0"}, "messages": [
        patch_message(1, skus[0], before[skus[0]] + 7),
        patch_message(2, skus[1], -1),  # a negative quantity
        patch_message(3, skus[2], 5, attributes={"x": 1}),  # attributes are not applicable to PATCH
        patch_message(3, skus[3], 9),  # messageId repeated
        patch_message(4, "NO-SUCH-SKU", 1),
    ]}

    seen, report = wait_done(a, submit(a, document))

    assert seen[0] == "IN_QUEUE" and seen[-1] == "DONE" and "IN_PROGRESS" in seen
    assert report["summary"] == {"errors": 4, "warnings": 0, "messagesProcessed": 5, "messagesAccepted": 1,
                                 "messagesInvalid": 4}
    assert sorted(i["messageId"] for i in report["issues"]) == [2, 3, 3, 4]
    assert all(i["severity"] == "ERROR" and i["message"] for i in report["issues"])
    after = {s.listing_id: s.quantity for s in a.world.mall("amazon").listings}
    assert after == {**before, skus[0]: before[skus[0]] + 7}  # only the good message applied


def test_a_document_for_another_seller_ends_fatal_and_applies_nothing(amazon_factory):  # noqa: F811
    a = amazon_factory(feed_processing_seconds=0.2)
    sku = a.world.mall("amazon").listings[0].listing_id
    before = a.world.mall("amazon").by_listing[sku].quantity

    seen, report = wait_done(a, submit(a, {"header": {"sellerId": "SOMEONE-ELSE", "version": "2.0"},
                                            "messages": [patch_message(1, sku, before + 5)]}))

    assert seen[-1] == "FATAL" and report["summary"]["messagesAccepted"] == 0
    assert "sellerId" in report["issues"][0]["message"]
    assert a.world.mall("amazon").by_listing[sku].quantity == before


def test_create_feed_is_throttled_after_its_burst_of_15(amazon_factory):  # noqa: F811
    a = amazon_factory(rate_scale=1.0, feed_processing_seconds=60)
    headers = {"x-amz-access-token": a.token}
    document_id = a.http.post(f"{FEEDS}/documents", json={"contentType": "application/json"},
                              headers=headers).json()["feedDocumentId"]
    answers = [a.http.post(f"{FEEDS}/feeds", headers=headers, json={
        "feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [MARKETPLACE_ID], "inputFeedDocumentId": document_id})
        for _ in range(16)]

    assert [r.status_code for r in answers] == [202] * 15 + [429]
    assert answers[-1].json()["errors"][0]["code"] == "QuotaExceeded"
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "0.0083"


def test_the_upload_url_needs_its_signature(amazon_factory):  # noqa: F811
    a = amazon_factory()
    url = a.http.post(f"{FEEDS}/documents", json={"contentType": "application/json"},
                      headers={"x-amz-access-token": a.token}).json()["url"]
    forged = url.split("X-Amz-Signature=")[0] + "X-Amz-Signature=forged"

    assert httpx.put(forged, content=b"{}", timeout=10).status_code == 403
    assert httpx.put(url, content=b"{}", timeout=10).status_code == 200
