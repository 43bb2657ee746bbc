"""Amazon's Notifications API v1 over the sandbox mall: destinations, ORDER_CHANGE subscriptions, and the
notifications themselves, published to an SQS queue (moto in server mode on 127.0.0.1 in tests; real SQS is
only a different endpoint).

- `POST /notifications/v1/destinations` {name, resourceSpecification: {sqs: {arn}}} → {payload: Destination}
- `POST /notifications/v1/subscriptions/ORDER_CHANGE` {payloadVersion "1.0", destinationId,
  processingDirective?} → {payload: Subscription}; a second subscription for the type → 409 Conflict.
- Every order created or changed on the mall after that publishes one `ORDER_CHANGE` notification
  (OrderChangeNotification.json: NotificationVersion, NotificationType, PayloadVersion, EventTime, Payload
  .OrderChangeNotification {AmazonOrderId, Summary {OrderStatus, OrderItems[] …}}, NotificationMetadata) as
  the SQS message body. A background thread sends them, so the mall's listener never waits on the network.
- Faults (`NotificationFaults`, seeded): a notification is dropped, sent twice or held back `delay_seconds`
  at the configured rates — Amazon delivers at least once, not always, and not always in order.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sandbox import malls
from sandbox.malls import MallOrder

NOTIFICATION_TYPE = "ORDER_CHANGE"
APPLICATION_ID = "amzn1.sellerapps.app.sandbox-ichigen"
ORDER_STATUS = {  # the notification's Summary.OrderStatus (the v0 spelling Amazon still uses there)
    malls.ORDERED: "Pending", malls.PENDING_PAYMENT: "Pending", malls.AWAITING_SHIPMENT: "Unshipped",
    malls.SHIPPED: "Shipped", malls.DELIVERED: "Shipped", malls.RETURNED: "Shipped",
    malls.CANCELLED: "Canceled",
}


@dataclass
class NotificationFaults:
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_rate: float = 0.0
    delay_seconds: float = 0.5
    seed: int = 0


def iso_ms(ts) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def order_change(order: MallOrder, seller_id: str, marketplace_id: str, subscription_id: str,
                 kind: str) -> dict[str, Any]:
    """One ORDER_CHANGE notification for the order as it is now."""
    shipped = sum(li.current_quantity for li in order.lines) if order.shipped_at else 0
    unshipped = 0 if order.shipped_at or order.state == malls.CANCELLED else sum(li.quantity for li in order.lines)
    return {
        "NotificationVersion": "1.0",
        "NotificationType": NOTIFICATION_TYPE,
        "PayloadVersion": "1.0",
        "EventTime": iso_ms(order.updated_at),
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel",
            "SellerId": seller_id,
            "AmazonOrderId": order.order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": iso_ms(order.updated_at),
                                   "ChangeReason": "Order placed" if kind == "order_created" else "Order status changed"},
            "Summary": {
                "MarketplaceId": marketplace_id,
                "OrderStatus": ORDER_STATUS[order.state],
                "PurchaseDate": iso_ms(order.created_at),
                "DestinationPostalCode": order.buyer.zip,
                "FulfillmentType": "MFN",
                "OrderType": "StandardOrder",
                "NumberOfItemsShipped": shipped,
                "NumberOfItemsUnshipped": unshipped,
                "OrderItems": [{"OrderItemId": f"{order.order_id.replace('-', '')[-8:]}{li.line_no:06d}",
                                "SellerSKU": li.listing_id, "SupplySourceId": "", "Quantity": li.quantity}
                               for li in order.lines],
            },
        }},
        "NotificationMetadata": {"ApplicationId": APPLICATION_ID, "SubscriptionId": subscription_id,
                                 "PublishTime": iso_ms(order.updated_at), "NotificationId": str(uuid.uuid4())},
    }


class NotificationPublisher:
    """Destinations, subscriptions and the sender thread. `close()` stops the thread."""

    def __init__(self, mall: Any, seller_id: str, marketplace_id: str, sqs_endpoint: str | None,
                 faults: NotificationFaults | None = None, on_publish: Any = None):
        self.mall = mall
        self.seller_id = seller_id
        self.marketplace_id = marketplace_id
        self.sqs_endpoint = sqs_endpoint
        self.faults = faults or NotificationFaults()
        self.on_publish = on_publish  # callback(queue_name, notification) after each send (the traffic log)
        self.destinations: dict[str, dict[str, Any]] = {}
        self.subscription: dict[str, Any] | None = None
        self.stats: Counter[str] = Counter()
        self._rng = random.Random(f"amazon-notifications:{self.faults.seed}")
        self._due: list[tuple[float, int, str, dict[str, Any]]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._closed = False
        self._sqs = None
        self._inflight = 0
        self._thread = threading.Thread(target=self._run, name="sandbox-amazon-notifications", daemon=True)
        self._thread.start()

    # -- API -----------------------------------------------------------------------------------------
    def create_destination(self, body: Any) -> dict[str, Any]:
        arn = ((((body or {}).get("resourceSpecification") or {}).get("sqs") or {}).get("arn")) \
            if isinstance(body, dict) else None
        if not arn or not str(arn).startswith("arn:aws:sqs:") or not body.get("name"):
            raise ValueError("name and resourceSpecification.sqs.arn (arn:aws:sqs:…) are required")
        destination = {"destinationId": str(uuid.uuid4()), "name": body["name"], "resource": {"sqs": {"arn": arn}}}
        self.destinations[destination["destinationId"]] = destination
        return {"payload": destination}

    def create_subscription(self, notification_type: str, body: Any) -> dict[str, Any]:
        if notification_type != NOTIFICATION_TYPE:
            raise ValueError(f"the sandbox publishes {NOTIFICATION_TYPE} only")
        if not isinstance(body, dict) or body.get("destinationId") not in self.destinations \
                or body.get("payloadVersion") != "1.0":
            raise ValueError("payloadVersion \"1.0\" and a known destinationId are required")
        if self.subscription is not None:
            raise FileExistsError("A subscription for the specified notification type already exists.")
        subscription = {"subscriptionId": str(uuid.uuid4()), "payloadVersion": "1.0",
                        "destinationId": body["destinationId"]}
        if body.get("processingDirective"):
            subscription["processingDirective"] = body["processingDirective"]
        self.subscription = subscription
        self.mall.listeners.append(self._listener)
        return {"payload": subscription}

    # -- publishing ----------------------------------------------------------------------------------
    def _listener(self, kind: str, record: Any) -> None:
        """Called under the world's lock: build the notification, leave the sending to the thread."""
        if kind not in ("order_created", "order_updated") or self.subscription is None:
            return
        arn = self.destinations[self.subscription["destinationId"]]["resource"]["sqs"]["arn"]
        notification = order_change(record, self.seller_id, self.marketplace_id,
                                    self.subscription["subscriptionId"], kind)
        faults, now = self.faults, time.monotonic()
        roll = self._rng.random()
        if roll < faults.drop_rate:
            self.stats["dropped"] += 1
            return
        copies = 2 if roll < faults.drop_rate + faults.duplicate_rate else 1
        delayed = self._rng.random() < faults.delay_rate
        self.stats["duplicated"] += copies - 1
        self.stats["delayed"] += int(delayed)
        with self._cv:
            for _ in range(copies):
                heapq.heappush(self._due, (now + (faults.delay_seconds if delayed else 0.0), next(self._order),
                                           arn.rsplit(":", 1)[-1], notification))
            self._cv.notify()

    def _client(self):
        if self._sqs is None:
            import boto3  # only the notification path needs it

            self._sqs = boto3.client("sqs", endpoint_url=self.sqs_endpoint, region_name="us-west-2",
                                     aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
        return self._sqs

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    self._cv.wait(timeout=0.05 if not self._due else max(0.0, self._due[0][0] - time.monotonic()))
                if self._closed:
                    return
                _at, _n, queue_name, notification = heapq.heappop(self._due)
                self._inflight += 1
            try:
                client = self._client()
                url = client.get_queue_url(QueueName=queue_name)["QueueUrl"]
                client.send_message(QueueUrl=url, MessageBody=json.dumps(notification, ensure_ascii=False))
                self.stats["published"] += 1
                if self.on_publish is not None:
                    self.on_publish(queue_name, notification)
            except Exception:  # noqa: BLE001 — a lost notification is what Amazon does too; counted
                self.stats["send_failed"] += 1
            finally:
                with self._cv:
                    self._inflight -= 1

    def pending(self) -> int:
        with self._cv:
            return len(self._due) + self._inflight

    def wait_idle(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout)
        if self._listener in self.mall.listeners:
            self.mall.listeners.remove(self._listener)
