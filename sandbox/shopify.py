"""A Shopify shop speaking the Admin GraphQL API 2026-10, over the sandbox world.

`POST /admin/api/2026-10/graphql.json` with `X-Shopify-Access-Token`:
- a wrong or missing token → HTTP 401 `{"errors": "[API] Invalid API key or access token (unrecognized login or
  wrong password)"}`;
- every document is parsed and validated against Shopify's published schema (sandbox.shopify_schema); errors
  come back with HTTP 200 as `{"errors": [{"message", "locations", "extensions": {"code"}}]}`;
- cost: a leaky bucket per access token (restore_rate points/s, holding 10× that), the requested cost computed
  the Shopify way (sandbox.shopify_cost); a query above the single-query limit (1000, or the bucket if smaller)
  → MAX_COST_EXCEEDED; a bucket that cannot pay → THROTTLED (HTTP 200). Every answer carries
  `extensions.cost` {requestedQueryCost, actualQueryCost, throttleStatus}.
- executed with graphql-core over plain dicts and callables (sandbox.shopify_resolvers), so the response has
  exactly the shape the document asks for.

Sandbox-only endpoints (no token; not Shopify's) live under `/_sandbox/`: see `create_app`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    default_field_resolver,
    execute,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.shopify_bulk import DEFAULT_CONCURRENCY, OUTPUT_PATH, BulkOperations
from sandbox.shopify_cost import query_cost
from sandbox.shopify_resolvers import Resolvers
from sandbox.shopify_rest import RestAdmin, RestSettings
from sandbox.shopify_schema import API_VERSION, load_schema
from sandbox.shopify_snapshot import ShopSnapshot
from sandbox.shopify_staged import UPLOAD_PATH, StagedUploads, storage_error
from sandbox.webhooks import WebhookHub, WebhookSettings
from sandbox.world import World

INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
SINGLE_QUERY_MAX_COST = 1000
GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"

# graphql-ruby's codes for the static validation rules (what Shopify answers with).
RULE_CODES = {
    "ExecutableDefinitionsRule": "definitionNotExecutable",
    "UniqueOperationNamesRule": "operationNotUnique",
    "LoneAnonymousOperationRule": "anonymousOperationNotAlone",
    "KnownTypeNamesRule": "undefinedType",
    "FragmentsOnCompositeTypesRule": "fragmentOnNonCompositeType",
    "VariablesAreInputTypesRule": "variableRequiresValidType",
    "ScalarLeafsRule": "selectionMismatch",
    "FieldsOnCorrectTypeRule": "undefinedField",
    "UniqueFragmentNamesRule": "fragmentNotUnique",
    "KnownFragmentNamesRule": "undefinedFragment",
    "NoUnusedFragmentsRule": "useAndDefineFragment",
    "PossibleFragmentSpreadsRule": "cannotSpreadFragment",
    "NoFragmentCyclesRule": "infiniteLoop",
    "UniqueVariableNamesRule": "variableNotUnique",
    "NoUndefinedVariablesRule": "variableNotDefined",
    "NoUnusedVariablesRule": "variableNotUsed",
    "KnownDirectivesRule": "undefinedDirective",
    "UniqueDirectivesPerLocationRule": "directiveNotUniqueForLocation",
    "KnownArgumentNamesRule": "argumentNotAccepted",
    "UniqueArgumentNamesRule": "argumentNotUnique",
    "ValuesOfCorrectTypeRule": "argumentLiteralsIncompatible",
    "ProvidedRequiredArgumentsRule": "missingRequiredArguments",
    "VariablesInAllowedPositionRule": "variableMismatch",
    "OverlappingFieldsCanBeMergedRule": "fieldConflict",
    "UniqueInputFieldNamesRule": "inputFieldNotUnique",
}


# ------------------------------------------------------------------------------------------------ cost bucket
class CostBucket:
    """Shopify's leaky bucket: holds `maximum` points, refills at `restore_rate` points per second."""

    def __init__(self, restore_rate: float, maximum: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.restore_rate = float(restore_rate)
        self.maximum = float(maximum if maximum is not None else 10 * restore_rate)
        self._clock = clock
        self._available = self.maximum
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(self.maximum, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def take(self, cost: float) -> bool:
        with self._lock:
            self._refill()
            if cost > self._available:
                return False
            self._available -= cost
            return True

    def refund(self, points: float) -> None:
        with self._lock:
            self._refill()
            self._available = min(self.maximum, self._available + max(0.0, points))

    def drain(self) -> None:
        """Empty the bucket (for tests and fault injection)."""
        with self._lock:
            self._refill()
            self._available = 0.0

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._refill()
            return {"maximumAvailable": self.maximum, "currentlyAvailable": int(math.floor(self._available)),
                    "restoreRate": self.restore_rate}


# ------------------------------------------------------------------------------------------------ the API
class ShopifyAPI:
    """Answers one GraphQL request: `handle(token, body) -> (status, json)`. Transport-free, thread-safe."""

    def __init__(self, world: World, access_token: str = "shpat_sandbox", schema: GraphQLSchema | None = None,
                 schema_path: str | os.PathLike[str] | None = None, restore_rate: float = 100.0,
                 max_query_cost: int = SINGLE_QUERY_MAX_COST, webhooks: WebhookHub | None = None,
                 bulk_concurrency: int = DEFAULT_CONCURRENCY, bulk_processing_seconds: float = 0.3):
        self.world = world
        self.webhooks = webhooks
        self.access_token = access_token
        self.schema = schema or load_schema(schema_path)
        self.restore_rate = restore_rate
        self.max_query_cost = max_query_cost
        self.resolvers = Resolvers(world)
        self.staged = StagedUploads(self.resolvers.shop_id)
        self.bulk = BulkOperations(world, self.schema, lambda: self.resolvers.root([]), _field_resolver,
                                   _type_resolver, snapshot_root=self._snapshot_root, concurrency=bulk_concurrency,
                                   processing_seconds=bulk_processing_seconds, staged=self.staged,
                                   error=_line_error,
                                   on_finish=webhooks.bulk_operation_finished if webhooks is not None else None)
        self._buckets: dict[str, CostBucket] = {}
        self._buckets_lock = threading.Lock()
        self.requests = 0

    def _snapshot_root(self) -> dict[str, Any]:
        """A bulk query's root: the same resolvers over a copy of the shop (taken under the world's lock, which
        the caller holds), so its long execution runs without the lock (D213)."""
        return Resolvers(ShopSnapshot.take(self.world), self.resolvers.shop_id).root([])

    def bucket(self, token: str) -> CostBucket:
        with self._buckets_lock:
            if token not in self._buckets:
                self._buckets[token] = CostBucket(self.restore_rate)
            return self._buckets[token]

    def authorized(self, token: str | None) -> bool:
        return token is not None and token == self.access_token

    def handle(self, token: str | None, body: Any) -> tuple[int, Any]:
        self.requests += 1
        if not self.authorized(token):
            return 401, {"errors": INVALID_TOKEN}
        if not isinstance(body, dict) or not isinstance(body.get("query"), str) or not body["query"].strip():
            return 400, {"errors": {"query": "Required parameter missing or invalid"}}
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return 400, {"errors": {"variables": "must be a JSON object"}}
        bucket = self.bucket(token)
        operation_name = body.get("operationName")

        def answer(errors: list[dict[str, Any]], requested: int = 0, actual: int | None = 0) -> tuple[int, Any]:
            return 200, {"errors": errors, "extensions": {"cost": self._cost(requested, actual, bucket)}}

        document, parse_error, problems = _checked_document(self.schema, body["query"])
        if parse_error is not None:
            return answer([_error(parse_error, "parseError")])
        if problems:
            return answer(self._validation_errors(document, problems))

        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name:
            operation = next((o for o in operations if o.name and o.name.value == operation_name), None)
            if operation is None:
                return answer([{"message": f'No operation named "{operation_name}"',
                                "extensions": {"code": "BAD_REQUEST"}}])
        elif len(operations) == 1:
            operation = operations[0]
        else:
            return answer([{"message": "An operation name is required when the document holds several operations",
                            "extensions": {"code": "BAD_REQUEST"}}])
        coerced = get_variable_values(self.schema, operation.variable_definitions or [], variables)
        if isinstance(coerced, list):
            return answer([_error(e, "INVALID_VARIABLE") for e in coerced])

        requested = query_cost(self.schema, document, operation, coerced)
        limit = min(self.max_query_cost, int(bucket.maximum))
        if requested > limit:
            return answer([{
                "message": f"Query cost is {requested}, which exceeds the single query max cost limit ({limit}).\n\n"
                           "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
                           "cost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk "
                           "operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-"
                           "operations-with-admin-api for usage details.\n",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": limit},
            }], requested, None)
        if not bucket.take(requested):
            return answer([{"message": "Throttled", "extensions": {
                "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}], requested, None)

        warnings: list[dict[str, Any]] = []
        root = self.resolvers.root(warnings)
        if self.webhooks is not None:
            root.update(self.webhooks.graphql_roots())
        root.update(self.bulk.query_roots(warnings))
        root.update(self.bulk.mutation_roots())
        with self.world.lock:
            result: ExecutionResult = execute(
                self.schema, document, root_value=root, variable_values=variables,
                operation_name=operation_name, field_resolver=_field_resolver, type_resolver=_type_resolver,
            )
        actual = query_cost(self.schema, document, operation, coerced, result.data, estimate=False)
        actual = min(actual, requested)
        bucket.refund(requested - actual)
        response: dict[str, Any] = {}
        if result.errors:
            response["errors"] = [_execution_error(e) for e in result.errors]
        response["data"] = result.data
        response["extensions"] = {"cost": self._cost(requested, actual, bucket)}
        if warnings:
            response["extensions"]["search"] = warnings
        return 200, response

    @staticmethod
    def _cost(requested: int, actual: int | None, bucket: CostBucket) -> dict[str, Any]:
        return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": bucket.status()}

    def _validation_errors(self, document, problems: tuple[GraphQLError, ...]) -> list[dict[str, Any]]:
        codes: dict[tuple[str, str], str] = {}
        for rule in specified_rules:  # attribute each problem to its rule (only on the failure path)
            for e in validate(self.schema, document, [rule]):
                codes.setdefault((e.message, str(e.locations)), RULE_CODES.get(rule.__name__, "validationError"))
        return [_error(e, codes.get((e.message, str(e.locations)), "validationError")) for e in problems]


@functools.lru_cache(maxsize=512)
def _checked_document(schema: GraphQLSchema, query: str) -> tuple[DocumentNode | None, GraphQLError | None,
                                                                   tuple[GraphQLError, ...]]:
    """The parsed document, its parse error or its validation problems. A client sends the same few documents
    over and over (a push: one mutation thousands of times), so each text is parsed and validated once; the
    answer depends on nothing but the schema and the text."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return None, exc, ()
    return document, None, tuple(validate(schema, document))


def _error(exc: GraphQLError, code: str) -> dict[str, Any]:
    out: dict[str, Any] = {"message": exc.message}
    if exc.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in exc.locations]
    if exc.path:
        out["path"] = list(exc.path)
    out["extensions"] = {"code": code, **(exc.extensions or {})}
    return out


def _line_error(exc: GraphQLError, code: str | None = None) -> dict[str, Any]:
    """An error in one line of a bulk mutation's result, rendered as the shop renders errors."""
    return _error(exc, code) if code else _execution_error(exc)


def _execution_error(exc: GraphQLError) -> dict[str, Any]:
    """A resolver's GraphQLError keeps its code; anything else is the sandbox's own fault."""
    ext = dict(exc.extensions or {})
    code = ext.pop("code", None) or "INTERNAL_SERVER_ERROR"
    out = _error(exc, code)
    out["extensions"] = {"code": code, **ext}
    return out


def _field_resolver(source: Any, info, **args: Any) -> Any:
    """graphql-core's default behaviour over dicts (a callable value is called with (info, **args)), except that
    a field the sandbox does not model is an explicit error rather than a silent null."""
    if isinstance(source, dict):
        if info.field_name not in source:
            raise GraphQLError(
                f"The ichigen sandbox does not implement {info.parent_type.name}.{info.field_name} "
                "(valid in Shopify's schema, not modelled here).",
                extensions={"code": "SANDBOX_NOT_IMPLEMENTED"},
            )
        value = source[info.field_name]
        return value(info, **args) if callable(value) else value
    return default_field_resolver(source, info, **args)


def _type_resolver(value: Any, info, abstract_type) -> str | None:
    return value.get("__typename") if isinstance(value, dict) else None


# ------------------------------------------------------------------------------------------------ traffic log
class TrafficLog:
    """Appends one JSON line per API exchange (the format ../shared/tools/conformance reads). Headers are not
    recorded, so tokens sent in headers never reach the file; `mask` hides secrets carried in bodies."""

    def __init__(self, path: str | os.PathLike[str], channel: str = "shopify",
                 mask: Callable[[Any], Any] | None = None):
        self.path = Path(path)
        self.channel = channel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.channel = channel
        self.mask = mask or (lambda body: body)
        self._lock = threading.Lock()

    def record(self, method: str, path: str, query: dict[str, str], request_body: Any, status: int,
               response_body: Any) -> None:
        line = json.dumps({"channel": self.channel, "method": method, "path": path, "query": query,
                           "request_body": self.mask(request_body), "status": status,
                           "response_body": self.mask(response_body)}, ensure_ascii=False)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


# ------------------------------------------------------------------------------------------------ the app
def create_app(world: World, access_token: str = "shpat_sandbox", traffic_log: str | os.PathLike[str] | None = None,
               restore_rate: float = 100.0, schema_path: str | os.PathLike[str] | None = None,
               max_query_cost: int = SINGLE_QUERY_MAX_COST,
               webhooks: WebhookHub | WebhookSettings | None = None, bulk_concurrency: int = DEFAULT_CONCURRENCY,
               bulk_processing_seconds: float = 0.3, rest: RestSettings | None = None) -> Starlette:
    """The Starlette app. `app.state.api` is the ShopifyAPI (its buckets, its request count);
    `app.state.webhooks` the WebhookHub (sandbox.webhooks: subscriptions and the delivery worker; pass
    WebhookSettings for the secret, retry schedule and faults). Whoever serves the app closes the hub.

    Sandbox endpoints (not Shopify's; no token):
    - GET  /_sandbox/health     → {"status": "ok", "orders": n, "variants": n, "now": iso}
    - GET  /_sandbox/orders     → every order ever placed, as the world knows it (World.orders_truth)
    - POST /_sandbox/orders     {"count": n, "at": iso?} → places n random orders now, returns them (same shape);
                                {"lines": [{"sku": s, "quantity": n}], "at": iso?} → one order for those lines
                                (sold-out lines refused; [] when nothing could be sold)
    - POST /_sandbox/advance    {"to": iso?} → applies due payments/shipments/cancellations, returns changed orders
    - GET  /_sandbox/inventory  → the shop's displayed stock now (World.inventory_truth)
    - GET  /_sandbox/truth      → the physical truth (sandbox.truth.PhysicalTruth.report): every order per channel,
                                true on-hand, oversells and stock-out-while-available minutes per channel
    - GET  /_sandbox/webhooks   → {"subscriptions": [...], "deliveries": [{webhook_id, topic, resource, attempts,
                                status, ...}], "pending": n}
    """
    hub = webhooks if isinstance(webhooks, WebhookHub) else WebhookHub(world, webhooks)
    api = ShopifyAPI(world, access_token=access_token, schema_path=schema_path, restore_rate=restore_rate,
                     max_query_cost=max_query_cost, webhooks=hub, bulk_concurrency=bulk_concurrency,
                     bulk_processing_seconds=bulk_processing_seconds)
    log = TrafficLog(traffic_log) if traffic_log else None
    rest_api = RestAdmin(world, access_token, rest)

    async def graphql_endpoint(request: Request) -> Response:
        version = request.path_params["version"]
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        body: Any
        if content_type.startswith("application/graphql"):
            body = {"query": raw.decode("utf-8", "replace")}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        token = request.headers.get("x-shopify-access-token")
        api.bulk.base_url = api.staged.base_url = f"{request.url.scheme}://{request.url.netloc}"
        if version != API_VERSION:
            status, payload = 404, {"errors": f"Not Found: the sandbox serves API version {API_VERSION} only"}
        else:
            status, payload = await run_in_threadpool(api.handle, token, body)
        if log is not None:
            log.record(request.method, request.url.path, dict(request.query_params), body, status, payload)
        return JSONResponse(payload, status_code=status)

    def _at(value: Any) -> datetime | None:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "orders": len(world.orders), "variants": len(world.variants),
                             "now": world.clock().strftime("%Y-%m-%dT%H:%M:%SZ"), "api_version": API_VERSION})

    async def orders_truth(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(world.orders_truth))

    async def place(request: Request) -> Response:
        try:
            payload = await request.json() if await request.body() else {}
            count = int(payload.get("count", 1))
            at = _at(payload.get("at"))
            lines = [(str(li["sku"]), int(li.get("quantity", 1))) for li in payload["lines"]] \
                if payload.get("lines") is not None else None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            return JSONResponse({"error": "body must be {\"count\": n} or {\"lines\": [{\"sku\": …, \"quantity\": n}]}"
                                          f", optionally with \"at\": ISO time: {exc}"}, status_code=400)
        if not 0 <= count <= 10_000:
            return JSONResponse({"error": "count must be between 0 and 10000"}, status_code=400)

        def run():
            with world.lock:
                if lines is not None:
                    order = world.place_order(lines, at=at)
                    return [order.truth()] if order is not None else []
                return [o.truth() for o in world.place_orders(count, at=at)]

        try:
            return JSONResponse(await run_in_threadpool(run))
        except (KeyError, ValueError) as exc:
            return JSONResponse({"error": str(exc).strip("'\"")}, status_code=400)

    async def advance(request: Request) -> Response:
        try:
            payload = await request.json() if await request.body() else {}
            to = _at(payload.get("to"))
        except (ValueError, TypeError, AttributeError) as exc:
            return JSONResponse({"error": f"body must be {{\"to\": iso?}}: {exc}"}, status_code=400)

        def run():
            with world.lock:
                return [o.truth() for o in world.advance(to)]

        return JSONResponse(await run_in_threadpool(run))

    async def inventory(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(world.inventory_truth))

    async def physical_truth(request: Request) -> Response:
        def run():
            with world.lock:
                return world.truth.report()

        return JSONResponse(await run_in_threadpool(run))

    async def webhooks_endpoint(request: Request) -> Response:
        return JSONResponse(hub.summary())

    async def bulk_output(request: Request) -> Response:
        name = request.path_params["name"]
        body = api.bulk.output(name.removesuffix(".jsonl")) if name.endswith(".jsonl") else None
        if body is None:
            return Response("<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code>"
                            "<Message>The specified key does not exist.</Message></Error>",
                            status_code=404, media_type="application/xml")
        return Response(body, media_type="application/jsonl")

    async def staged_form(request: Request) -> Response:
        # Storage, not the Admin API: no token, not in the traffic log (like the bulk outputs).
        try:
            limit = max(1 << 20, api.staged.max_bytes + 1)  # a file sent as a plain field is checked by size below
            async with request.form(max_files=1, max_fields=50, max_part_size=limit) as form:
                fields = [(name, await value.read() if hasattr(value, "read") else value)
                          for name, value in form.multi_items()]
        except Exception as exc:  # noqa: BLE001 — a form storage cannot parse is the client's mistake
            return Response(storage_error("InvalidArgument", f"Invalid multipart form: {exc}"), status_code=400,
                            media_type="application/xml")
        status, body, media = await run_in_threadpool(api.staged.post_form, fields)
        return Response(body, status_code=status, media_type=media)

    async def staged_put(request: Request) -> Response:
        status, body, media = await run_in_threadpool(
            api.staged.put, request.path_params["key"], request.query_params.get("X-Goog-Signature", ""),
            request.query_params.get("X-Goog-Token", ""), await request.body())
        return Response(body, status_code=status, media_type=media)

    async def rest_endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        status, payload, headers = await run_in_threadpool(
            rest_api.handle, request.method, request.path_params["version"], request.path_params["resource"],
            request.headers.get("x-shopify-access-token"), dict(request.query_params), body,
            f"{request.url.scheme}://{request.url.netloc}{request.url.path}")
        if log is not None:
            log.record(request.method, request.url.path, dict(request.query_params), body, status, payload)
        return JSONResponse(payload, status_code=status, headers=headers)

    routes = [
        Route("/admin/api/{version}/graphql.json", graphql_endpoint, methods=["POST"]),
        Route("/admin/api/{version}/{resource:path}.json", rest_endpoint, methods=["GET", "POST"]),
        Route(OUTPUT_PATH + "/{name}", bulk_output, methods=["GET"]),
        Route(UPLOAD_PATH, staged_form, methods=["POST"]),
        Route(UPLOAD_PATH + "/{key:path}", staged_put, methods=["PUT"]),
        Route("/_sandbox/webhooks", webhooks_endpoint, methods=["GET"]),
        Route("/_sandbox/health", health, methods=["GET"]),
        Route("/_sandbox/orders", orders_truth, methods=["GET"]),
        Route("/_sandbox/orders", place, methods=["POST"]),
        Route("/_sandbox/advance", advance, methods=["POST"]),
        Route("/_sandbox/inventory", inventory, methods=["GET"]),
        Route("/_sandbox/truth", physical_truth, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.api = api
    app.state.world = world
    app.state.webhooks = hub
    app.state.rest = rest_api
    return app
