"""Amazon Feeds API 2021-06-30 for JSON_LISTINGS_FEED, as the sandbox's Amazon mall serves it.

The flow, with the shapes of ../shared/reference/amazon/feeds_2021-06-30.json and the listings feed schemas:
1. `POST /feeds/2021-06-30/documents` (createFeedDocument, {"contentType"}) → 201 {feedDocumentId, url}: the
   url is a pre-signed-style upload address on the sandbox itself (`/_s3/feed-documents/{id}?X-Amz-…`), valid
   for 5 minutes, that needs no SP-API token (like S3's).
2. `PUT <url>` with the JSON_LISTINGS_FEED document.
3. `POST /feeds/2021-06-30/feeds` (createFeed, {feedType, marketplaceIds, inputFeedDocumentId}) → 202 {feedId}.
4. `GET /feeds/2021-06-30/feeds/{feedId}` (getFeed): IN_QUEUE for the first tenth of `processing_seconds`,
   IN_PROGRESS until `processing_seconds` after createFeed, then DONE (or FATAL for a document that cannot be
   read at all) with `resultFeedDocumentId`. Processing happens on a timer, whether or not anyone polls.
5. `GET /feeds/2021-06-30/documents/{id}` (getFeedDocument) → {feedDocumentId, url}; `GET <url>` returns the
   processing report (header, issues per messageId, summary).

Validation follows listings-feed-schema-v2 (written out here: the sandbox reads nothing from ../shared): the
header needs sellerId (this seller) and version "2.0", 1–25,000 messages; each message needs a unique integer
messageId, a sku and an operationType, and the fields its operationType requires or forbids. Bad messages get
ERROR issues and are not applied; good ones are applied to the mall when processing completes. What the
sandbox applies: PATCH (add/replace/merge) and PARTIAL_UPDATE/UPDATE of fulfillment_availability (DEFAULT
channel quantity) and purchasable_offer (our_price value_with_tax). DELETE and other attributes are answered
with an ERROR issue (not simulated).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FEEDS_PATH = "/feeds/2021-06-30"
UPLOAD_PATH = "/_s3/feed-documents"
FEED_TYPE = "JSON_LISTINGS_FEED"
MAX_MESSAGES = 25_000
MAX_MESSAGE_ID = 2_147_483_647
URL_TTL_SECONDS = 300.0
OPERATION_TYPES = ("UPDATE", "PARTIAL_UPDATE", "PATCH", "DELETE")
PATCH_OPS = ("add", "replace", "merge", "delete")
QUANTITY_PATH = "/attributes/fulfillment_availability"
PRICE_PATH = "/attributes/purchasable_offer"
JP_MARKETPLACE_ID = "A1VC38T7YXB528"  # the only marketplace the sandbox seller sells on (Amazon.co.jp)
# Per operationType: fields it requires and fields it must not carry (the schema's oneOf branches).
REQUIRED_FIELDS = {"UPDATE": ("productType", "attributes"), "PARTIAL_UPDATE": ("productType", "attributes"),
                   "PATCH": ("productType", "patches"), "DELETE": ()}
FORBIDDEN_FIELDS = {"UPDATE": ("patches",), "PARTIAL_UPDATE": ("requirements", "patches"),
                    "PATCH": ("requirements", "attributes"),
                    "DELETE": ("requirements", "attributes", "productType", "patches")}


class FeedsError(Exception):
    """An answer other than 2xx: status, ErrorList code and message (AmazonAPI renders it)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class FeedDocument:
    document_id: str
    content_type: str
    signature: str
    created: float  # monotonic
    content: bytes | None = None


@dataclass
class Feed:
    feed_id: str
    input_document_id: str
    marketplace_ids: list[str]
    created_at: str  # ISO 8601 UTC
    created: float  # monotonic
    status: str = "IN_QUEUE"
    started_at: str | None = None
    ended_at: str | None = None
    result_document_id: str | None = None
    timer: threading.Timer | None = field(default=None, repr=False)


def offer_changes(patches: list[Any]) -> tuple[int | None, int | None, str | None]:
    """(quantity, price, problem) from JSON-patch style operations on the two offer attributes. Shared by
    patchListingsItem and the feed's PATCH messages; a PARTIAL_UPDATE is the same as `replace` of each
    attribute."""
    quantity = price = None
    for patch in patches:
        if not isinstance(patch, dict) or patch.get("op") not in PATCH_OPS or not isinstance(patch.get("path"), str):
            return None, None, "each patch needs an op (add, replace, merge, delete) and a path"
        if patch["op"] == "delete":
            return None, None, f"'delete' of {patch['path']} is not simulated by the sandbox"
        value = patch.get("value")
        first = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}
        if patch["path"] == QUANTITY_PATH:
            quantity = first.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
                return None, None, "'quantity' must be a whole number ≥ 0."
        elif patch["path"] == PRICE_PATH:
            if first.get("currency") != "JPY" or first.get("marketplace_id") != JP_MARKETPLACE_ID:
                return None, None, (f"purchasable_offer needs currency 'JPY' and marketplace_id '{JP_MARKETPLACE_ID}' "
                                    f"(got {first.get('currency')!r}, {first.get('marketplace_id')!r}).")
            schedule = ((first.get("our_price") or [{}])[0].get("schedule") or [{}])[0]
            price = schedule.get("value_with_tax")
            if not isinstance(price, int) or isinstance(price, bool) or price <= 0:
                return None, None, "'value_with_tax' must be a whole number of yen > 0."
        else:
            return None, None, f"{patch['path']} is not simulated by the sandbox (only fulfillment_availability " \
                               "and purchasable_offer)"
    return quantity, price, None


def _message_problem(message: Any, seen_ids: set[int]) -> str | None:
    """Why one feed message breaks listings-feed-schema-v2, or None."""
    if not isinstance(message, dict):
        return "a message must be an object"
    message_id = message.get("messageId")
    if not isinstance(message_id, int) or isinstance(message_id, bool) or not 1 <= message_id <= MAX_MESSAGE_ID:
        return "'messageId' must be an integer between 1 and 2147483647"
    if message_id in seen_ids:
        return f"'messageId' {message_id} is not unique within the feed"
    seen_ids.add(message_id)
    if not isinstance(message.get("sku"), str) or not message["sku"]:
        return "'sku' is required"
    operation = message.get("operationType")
    if operation not in OPERATION_TYPES:
        return f"'operationType' must be one of {', '.join(OPERATION_TYPES)}"
    missing = [name for name in REQUIRED_FIELDS[operation] if message.get(name) in (None, "", [], {})]
    if missing:
        return f"{operation} requires {', '.join(missing)}"
    extra = [name for name in FORBIDDEN_FIELDS[operation] if name in message]
    if extra:
        return f"{', '.join(extra)} not applicable to {operation}"
    if operation == "DELETE":
        return "DELETE is not simulated by the sandbox"
    return None


def _patches_of(message: dict[str, Any]) -> list[Any]:
    if message["operationType"] == "PATCH":
        return message["patches"] if isinstance(message["patches"], list) else [None]
    attributes = message["attributes"] if isinstance(message["attributes"], dict) else {}
    return [{"op": "replace", "path": f"/attributes/{name}", "value": value} for name, value in attributes.items()]


class FeedsService:
    """Feed documents and feeds of one seller. `apply(sku, quantity, price)` changes the mall (under its lock)
    and answers False for a SKU the seller does not have; `clock()` is the world's time (ISO 8601 UTC) for the Feed's times."""

    def __init__(self, seller_id: str, processing_seconds: float, apply: Callable[[str, int | None, int | None], bool],
                 clock: Callable[[], str], on_processed: Callable[[Feed], None] | None = None):
        self.seller_id = seller_id
        self.processing_seconds = processing_seconds
        self.apply = apply
        self.clock = clock
        self.on_processed = on_processed
        self.documents: dict[str, FeedDocument] = {}
        self.feeds: dict[str, Feed] = {}
        self.applied = 0  # messages applied to the mall, over all feeds
        self._lock = threading.Lock()
        self._closed = False

    # -- documents ---------------------------------------------------------------------------------------
    def create_document(self, body: Any, base_url: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("contentType"), str) or not body["contentType"]:
            raise FeedsError(400, "InvalidInput", "contentType is required.")
        document = self._new_document(body["contentType"])
        return {"feedDocumentId": document.document_id, "url": self._url(document, base_url)}

    def _new_document(self, content_type: str, content: bytes | None = None) -> FeedDocument:
        document = FeedDocument(f"amzn1.tortuga.4.fe.{secrets.token_hex(12)}", content_type,
                                secrets.token_hex(16), time.monotonic(), content)
        with self._lock:
            self.documents[document.document_id] = document
        return document

    @staticmethod
    def _url(document: FeedDocument, base_url: str) -> str:
        return (f"{base_url.rstrip('/')}{UPLOAD_PATH}/{document.document_id}"
                f"?X-Amz-Expires={int(URL_TTL_SECONDS)}&X-Amz-Signature={document.signature}")

    def get_document(self, document_id: str, base_url: str) -> dict[str, Any]:
        document = self.documents.get(document_id)
        if document is None:
            raise FeedsError(404, "NotFound", f"Feed document {document_id} not found.")
        document.signature, document.created = secrets.token_hex(16), time.monotonic()  # a fresh 5-minute URL
        return {"feedDocumentId": document_id, "url": self._url(document, base_url)}

    def _signed(self, document_id: str, signature: str | None) -> FeedDocument:
        document = self.documents.get(document_id)
        if document is None or signature != document.signature:
            raise FeedsError(403, "AccessDenied", "The request signature we calculated does not match.")
        if time.monotonic() - document.created > URL_TTL_SECONDS:
            raise FeedsError(403, "AccessDenied", "Request has expired.")
        return document

    def upload(self, document_id: str, signature: str | None, content: bytes) -> None:
        self._signed(document_id, signature).content = content

    def download(self, document_id: str, signature: str | None) -> bytes:
        content = self._signed(document_id, signature).content
        if content is None:
            raise FeedsError(404, "NoSuchKey", "The specified key does not exist.")
        return content

    # -- feeds -------------------------------------------------------------------------------------------
    def create_feed(self, body: Any, marketplace_id: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise FeedsError(400, "InvalidInput", "Request body must be a CreateFeedSpecification.")
        if body.get("feedType") != FEED_TYPE:
            raise FeedsError(400, "InvalidInput", f"feedType {body.get('feedType')!r} is not supported by the "
                                                  f"sandbox (only {FEED_TYPE}).")
        marketplaces = body.get("marketplaceIds")
        if not isinstance(marketplaces, list) or marketplaces != [marketplace_id]:
            raise FeedsError(400, "InvalidInput", f"Invalid marketplaceIds: {marketplaces}.")
        document = self.documents.get(body.get("inputFeedDocumentId") or "")
        if document is None:
            raise FeedsError(400, "InvalidInput", "inputFeedDocumentId does not name a feed document.")
        feed = Feed(str(secrets.randbelow(9 * 10**10) + 10**10), document.document_id, marketplaces, self.clock(),
                    time.monotonic())
        with self._lock:
            if self._closed:
                raise FeedsError(503, "ServiceUnavailable", "The sandbox is shutting down.")
            self.feeds[feed.feed_id] = feed
            feed.timer = threading.Timer(self.processing_seconds, self._process, (feed,))
            feed.timer.daemon = True
            feed.timer.start()
        return {"feedId": feed.feed_id}

    def get_feed(self, feed_id: str) -> dict[str, Any]:
        feed = self.feeds.get(feed_id)
        if feed is None:
            raise FeedsError(404, "NotFound", f"Feed {feed_id} not found.")
        with self._lock:
            if feed.status == "IN_QUEUE" and time.monotonic() - feed.created >= self.processing_seconds / 10:
                feed.status, feed.started_at = "IN_PROGRESS", self.clock()
            rendered: dict[str, Any] = {"feedId": feed.feed_id, "feedType": FEED_TYPE,
                                        "marketplaceIds": feed.marketplace_ids, "createdTime": feed.created_at,
                                        "processingStatus": feed.status}
            if feed.started_at:
                rendered["processingStartTime"] = feed.started_at
            if feed.ended_at:
                rendered["processingEndTime"] = feed.ended_at
            if feed.result_document_id:
                rendered["resultFeedDocumentId"] = feed.result_document_id
        return rendered

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers = [f.timer for f in self.feeds.values() if f.timer is not None]
        for timer in timers:
            timer.cancel()

    def _process(self, feed: Feed) -> None:
        """The end of processing: validate, apply the good messages, write the report."""
        content = self.documents[feed.input_document_id].content
        report = self._report(feed, content)
        document = self._new_document("application/json", json.dumps(report, ensure_ascii=False).encode())
        with self._lock:
            feed.started_at = feed.started_at or self.clock()
            feed.ended_at = self.clock()
            feed.status = "FATAL" if report["summary"]["messagesProcessed"] == 0 and report["issues"] else "DONE"
            feed.result_document_id = document.document_id
        if self.on_processed is not None:
            self.on_processed(feed)

    def _report(self, feed: Feed, content: bytes | None) -> dict[str, Any]:
        header = {"sellerId": self.seller_id, "version": "2.0", "feedId": feed.feed_id}
        fatal = _document_problem(content, self.seller_id)
        if fatal:
            return {"header": header, "issues": [{"code": "100001", "severity": "ERROR", "message": fatal}],
                    "summary": _summary(0, 0, 1)}
        messages = json.loads(content or b"")["messages"]
        issues: list[dict[str, Any]] = []
        seen_ids: set[int] = set()
        accepted = 0
        for message in messages:
            problem = _message_problem(message, seen_ids)
            if problem is None:
                quantity, price, problem = offer_changes(_patches_of(message))
                if problem is None and not self.apply(message["sku"], quantity, price):
                    problem = f"SKU '{message['sku']}' does not exist for this seller."
            if problem is None:
                accepted += 1
                continue
            issue: dict[str, Any] = {"severity": "ERROR", "code": "90000", "message": problem}
            if isinstance(message, dict) and isinstance(message.get("messageId"), int) and message["messageId"] >= 1:
                issue["messageId"] = message["messageId"]
            if isinstance(message, dict) and isinstance(message.get("sku"), str) and message["sku"]:
                issue["sku"] = message["sku"]
            issues.append(issue)
        self.applied += accepted
        return {"header": header, "issues": issues, "summary": _summary(len(messages), accepted, len(issues))}


def _document_problem(content: bytes | None, seller_id: str) -> str | None:
    """Why the whole document cannot be processed (the feed ends FATAL), or None."""
    if content is None:
        return "The feed document was never uploaded."
    try:
        document = json.loads(content)
    except ValueError as exc:
        return f"The feed document is not valid JSON: {exc}"
    header = document.get("header") if isinstance(document, dict) else None
    if not isinstance(header, dict) or header.get("version") != "2.0" or not isinstance(header.get("sellerId"), str):
        return "The feed header needs sellerId and version \"2.0\"."
    if header["sellerId"] != seller_id:
        return f"sellerId {header['sellerId']!r} is not the submitting seller."
    messages = document.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        return f"A feed holds between 1 and {MAX_MESSAGES:,} messages."
    return None


def _summary(processed: int, accepted: int, errors: int) -> dict[str, int]:
    return {"errors": errors, "warnings": 0, "messagesProcessed": processed, "messagesAccepted": accepted,
            "messagesInvalid": processed - accepted}

