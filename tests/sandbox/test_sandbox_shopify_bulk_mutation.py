"""The sandbox shop's bulk mutations behave like Shopify's 2026-10 ones.

GIVEN a served shop WHEN a client stages a JSONL variables file (stagedUploadsCreate → multipart POST to the
upload target) and runs bulkOperationRunMutation THEN the operation goes CREATED → RUNNING → COMPLETED, its result
file has one line per input line (the mutation's payload with its userErrors, or the errors of a line whose
variables do not fit, and `__lineNumber`), only the lines the shop accepts change the stock; the upload target
refuses a tampered or oversized form as storage does; invalid mutations and files are refused before anything
runs; at most five bulk mutations run at once (beside the bulk queries); a failed operation ran only what its
partial data shows; bulkOperations / currentBulkOperation(type: MUTATION) find them; the GraphQL exchanges pass
the shared conformance tool while uploads and downloads stay out of the traffic log. The lines run in the
operation's worker after the run has answered: a cancel or the shop's shutdown before they run stops them.
"""

import json

import httpx
import pytest
from sandbox_testkit import Gate, poll_until_done

STAGE = """
mutation Stage($input: [StagedUploadInput!]!) {
  stagedUploadsCreate(input: $input) {
    stagedTargets { url resourceUrl parameters { name value } }
    userErrors { field message }
  }
}
"""
RUN = """
mutation RunBulk($mutation: String!, $path: String!, $client: String) {
  bulkOperationRunMutation(mutation: $mutation, stagedUploadPath: $path, clientIdentifier: $client) {
    bulkOperation { id status type objectCount url query }
    userErrors { code field message }
  }
}
"""
POLL = """
query Poll($id: ID!) {
  bulkOperation(id: $id) {
    id status type errorCode objectCount rootObjectCount fileSize url partialDataUrl completedAt
  }
}
"""
SET_ONE = """
mutation call($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { createdAt }
    userErrors { code field message }
  }
}
"""
RUN_QUERY = """
mutation Q($query: String!) {
  bulkOperationRunQuery(query: $query, groupObjects: false) { bulkOperation { id } userErrors { code message } }
}
"""


def stage(shop, body: bytes, method: str = "POST") -> tuple[str, dict]:
    """Stage `body` as a bulk variables file; returns the staged path and the target."""
    payload = shop.data(STAGE, {"input": [{"resource": "BULK_MUTATION_VARIABLES", "filename": "bulk_op_vars",
                                           "mimeType": "text/jsonl", "httpMethod": method}]})["stagedUploadsCreate"]
    assert payload["userErrors"] == []
    target = payload["stagedTargets"][0]
    params = {p["name"]: p["value"] for p in target["parameters"]}
    if method == "POST":
        answer = httpx.post(target["url"], data=params, files={"file": ("bulk_op_vars", body, "text/jsonl")},
                            timeout=10)
        assert answer.status_code == 201, answer.text
        assert f"<Key>{params['key']}</Key>" in answer.text and "<ETag>" in answer.text
        return params["key"], target
    answer = httpx.put(target["url"], content=body, headers={"Content-Type": params["content_type"]}, timeout=10)
    assert answer.status_code == 200, answer.text
    return target["url"].split("/shopify-staged-uploads/", 1)[1].split("?", 1)[0], target


def levels(shop, n: int) -> list:
    with shop.world.lock:
        return sorted(shop.world.levels.values(), key=lambda lv: (lv.inventory_item_id, lv.location_id))[:n]


def line(level, quantity: int, believed: int | None, key: str) -> dict:
    return {"input": {"name": "available", "reason": "correction", "referenceDocumentUri": "ichigen://test/bulk",
                      "quantities": [{"inventoryItemId": f"gid://shopify/InventoryItem/{level.inventory_item_id}",
                                      "locationId": f"gid://shopify/Location/{level.location_id}",
                                      "quantity": quantity, "changeFromQuantity": believed}]},
            "key": key}


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def run(shop, path: str, mutation: str = SET_ONE, client: str | None = None) -> dict:
    return shop.data(RUN, {"mutation": mutation, "path": path, "client": client})["bulkOperationRunMutation"]


def test_a_bulk_mutation_runs_each_line_and_reports_each_line(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.5)
    a, b, c = levels(shop, 3)
    before = {lv.inventory_item_id: lv.available for lv in (a, b, c)}
    rows = [line(a, before[a.inventory_item_id] + 4, before[a.inventory_item_id], "k-0"),
            line(b, before[b.inventory_item_id] + 4, before[b.inventory_item_id] + 1, "k-1"),  # a stale compare
            {"input": {"name": "available", "reason": "correction"}, "key": "k-2"},  # no quantities: wrong shape
            line(c, 0, before[c.inventory_item_id], "k-3")]
    path, target = stage(shop, jsonl(rows))
    assert target["resourceUrl"] is None

    started = run(shop, path, client="ichigen-test-run")
    assert started["userErrors"] == []
    op = started["bulkOperation"]
    assert (op["status"], op["type"], op["url"], op["query"]) == ("CREATED", "MUTATION", None, SET_ONE)

    seen = poll_until_done(shop, POLL, op["id"])
    assert "RUNNING" in [s["status"] for s in seen] and seen[-1]["status"] == "COMPLETED"
    done = seen[-1]
    assert done["url"] and done["completedAt"] and done["objectCount"] == done["rootObjectCount"] == "4"
    body = httpx.get(done["url"], timeout=10)
    assert body.status_code == 200 and int(done["fileSize"]) == len(body.content)
    results = [json.loads(x) for x in body.text.splitlines()]
    assert [r["__lineNumber"] for r in results] == [0, 1, 2, 3]
    payloads = [r.get("data", {}).get("inventorySetQuantities") for r in results]
    assert payloads[0]["userErrors"] == [] and payloads[0]["inventoryAdjustmentGroup"]["createdAt"]
    assert [e["code"] for e in payloads[1]["userErrors"]] == ["CHANGE_FROM_QUANTITY_STALE"]
    assert payloads[1]["userErrors"][0]["field"] == ["input", "quantities", "0", "changeFromQuantity"]
    assert "data" not in results[2] and {e["extensions"]["code"] for e in results[2]["errors"]} == {"INVALID_VARIABLE"}
    assert payloads[3]["userErrors"] == []
    after = {lv.inventory_item_id: lv.available for lv in (a, b, c)}
    assert after == {a.inventory_item_id: before[a.inventory_item_id] + 4,
                     b.inventory_item_id: before[b.inventory_item_id],  # the stale line changed nothing
                     c.inventory_item_id: 0}

    current = shop.data("{ currentBulkOperation(type: MUTATION) { id type } }")["currentBulkOperation"]
    assert current == {"id": op["id"], "type": "MUTATION"}
    assert shop.data("{ currentBulkOperation { id } }")["currentBulkOperation"] is None  # no bulk query yet


def test_the_same_file_run_twice_applies_once(serve):
    """Each line carries its own @idempotent key, so an operation started twice (a retried run whose answer was
    lost) replays the recorded answers instead of applying again."""
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.05)
    (a,) = levels(shop, 1)
    start = a.available
    path, _ = stage(shop, jsonl([line(a, start + 2, None, "once-0")]))  # null: no compare-and-swap
    for _ in range(2):
        poll_until_done(shop, POLL, run(shop, path)["bulkOperation"]["id"])
    assert a.available == start + 2


def test_a_put_target_takes_the_raw_file(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.05)
    (a,) = levels(shop, 1)
    path, target = stage(shop, jsonl([line(a, 7, a.available, "put-0")]), method="PUT")
    assert path.startswith("tmp/") and path.endswith("/bulk_op_vars")
    done = poll_until_done(shop, POLL, run(shop, path)["bulkOperation"]["id"])[-1]
    assert done["status"] == "COMPLETED" and a.available == 7
    assert httpx.put(target["url"].replace("X-Goog-Token=", "X-Goog-Token=x"), content=b"{}", timeout=10
                     ).status_code == 403


def test_the_upload_target_refuses_what_storage_refuses(serve):
    shop = serve(restore_rate=1000.0)
    payload = shop.data(STAGE, {"input": [{"resource": "BULK_MUTATION_VARIABLES", "filename": "vars.jsonl",
                                           "mimeType": "text/jsonl", "httpMethod": "POST"}]})
    target = payload["stagedUploadsCreate"]["stagedTargets"][0]
    params = {p["name"]: p["value"] for p in target["parameters"]}
    assert {"key", "Content-Type", "success_action_status", "acl", "policy", "x-goog-signature"} <= set(params)
    file = {"file": ("vars.jsonl", b'{"a": 1}\n', "text/jsonl")}

    forged = httpx.post(target["url"], data={**params, "x-goog-signature": "0" * 64}, files=file, timeout=10)
    assert forged.status_code == 403 and "<Code>AccessDenied</Code>" in forged.text
    moved = httpx.post(target["url"], data={**params, "key": params["key"] + "-other"}, files=file, timeout=10)
    assert moved.status_code == 403
    no_file = httpx.post(target["url"], data=params, timeout=10)
    assert no_file.status_code == 400 and "<Code>InvalidArgument</Code>" in no_file.text
    shop.handle.api.staged.max_bytes = 4
    too_big = httpx.post(target["url"], data=params, files=file, timeout=10)
    assert too_big.status_code == 400 and "<Code>EntityTooLarge</Code>" in too_big.text
    assert shop.handle.api.staged.uploads == 0 and shop.handle.api.staged.read(params["key"]) is None

    other = shop.data(STAGE, {"input": [{"resource": "IMAGE", "filename": "a.png", "mimeType": "image/png"}]})
    assert other["stagedUploadsCreate"]["stagedTargets"] is None
    assert other["stagedUploadsCreate"]["userErrors"][0]["field"] == ["input", "0", "resource"]


@pytest.mark.parametrize(("mutation", "says"), [
    ("mutation { nope", "Invalid mutation"),
    ("query { shop { id } }", "one mutation operation"),
    ("mutation m($id: ID!) { bulkOperationCancel(id: $id) { userErrors { message } } }", "not bulkOperationCancel"),
    ("""mutation two($input: InventorySetQuantitiesInput!, $key: String!) {
          a: inventorySetQuantities(input: $input) @idempotent(key: $key) { userErrors { code } }
          b: inventorySetQuantities(input: $input) @idempotent(key: $key) { userErrors { code } } }""",
     "exactly one mutation field"),
])
def test_invalid_mutations_are_refused_before_anything_runs(serve, mutation, says):
    shop = serve(restore_rate=1000.0)
    (a,) = levels(shop, 1)
    path, _ = stage(shop, jsonl([line(a, 3, None, "x")]))
    refused = run(shop, path, mutation)
    assert refused["bulkOperation"] is None
    assert refused["userErrors"][0]["code"] == "INVALID_MUTATION" and says in refused["userErrors"][0]["message"]
    assert refused["userErrors"][0]["field"] == ["mutation"] and shop.handle.api.bulk.started == 0


def test_missing_and_invalid_files_are_refused(serve):
    shop = serve(restore_rate=1000.0)
    missing = run(shop, "tmp/1/bulk/none/bulk_op_vars")
    assert missing["bulkOperation"] is None and missing["userErrors"][0]["code"] == "NO_SUCH_FILE"
    path, _ = stage(shop, b'{"input": {}, "key": "a"}\n[1, 2]\n')
    invalid = run(shop, path)
    assert invalid["userErrors"][0]["code"] == "INVALID_STAGED_UPLOAD_FILE"
    assert "Line 1" in invalid["userErrors"][0]["message"]
    assert shop.handle.api.bulk.started == 0


def test_five_bulk_mutations_at_once_beside_the_bulk_queries(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=30.0)
    (a,) = levels(shop, 1)
    path, _ = stage(shop, jsonl([line(a, a.available, None, "same")]))
    for _ in range(5):
        assert run(shop, path)["userErrors"] == []
    sixth = run(shop, path)
    assert sixth["bulkOperation"] is None and sixth["userErrors"][0]["code"] == "LIMIT_REACHED"
    query = shop.data(RUN_QUERY, {"query": "{ productVariants { edges { node { id } } } }"})
    assert query["bulkOperationRunQuery"]["userErrors"] == []  # queries have their own five slots

    listed = shop.data('{ bulkOperations(first: 10, query: "operation_type:mutation status:running") '
                       '{ nodes { id type status } } }')["bulkOperations"]["nodes"]
    assert len(listed) == 5 and {n["type"] for n in listed} == {"MUTATION"}
    assert [n["id"] for n in listed] == sorted((n["id"] for n in listed), reverse=True)  # newest first


def test_one_bulk_mutation_at_a_time_when_the_shop_allows_one(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=30.0, bulk_concurrency=1)
    (a,) = levels(shop, 1)
    path, _ = stage(shop, jsonl([line(a, a.available, None, "one")]))
    first = run(shop, path)["bulkOperation"]["id"]
    second = run(shop, path)
    assert second["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS" and first in second["userErrors"][0]["message"]


def test_a_failed_bulk_mutation_ran_only_its_partial_data(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.05)
    rows = levels(shop, 4)
    before = [lv.available for lv in rows]
    path, _ = stage(shop, jsonl([line(lv, lv.available + 1, lv.available, f"f-{i}") for i, lv in enumerate(rows)]))
    shop.handle.api.bulk.fail_next("INTERNAL_SERVER_ERROR")
    done = poll_until_done(shop, POLL, run(shop, path)["bulkOperation"]["id"])[-1]
    assert (done["status"], done["errorCode"], done["url"]) == ("FAILED", "INTERNAL_SERVER_ERROR", None)
    partial = [json.loads(x) for x in httpx.get(done["partialDataUrl"], timeout=10).text.splitlines()]
    assert [r["__lineNumber"] for r in partial] == [0, 1] and done["objectCount"] == "2"
    assert [lv.available for lv in rows] == [before[0] + 1, before[1] + 1, before[2], before[3]]


CANCEL = "mutation C($id: ID!) { bulkOperationCancel(id: $id) { bulkOperation { status } userErrors { message } } }"


def test_a_bulk_mutation_canceled_before_its_lines_run_changes_nothing(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.0)
    rows = levels(shop, 3)
    before = [lv.available for lv in rows]
    path, _ = stage(shop, jsonl([line(lv, lv.available + 3, lv.available, f"x-{i}") for i, lv in enumerate(rows)]))
    gate = shop.handle.api.bulk.execution_gate = Gate()
    op = run(shop, path)["bulkOperation"]
    assert op["status"] == "CREATED" and gate.entered.wait(10)  # answered; no line has run
    assert shop.data(POLL, {"id": op["id"]})["bulkOperation"]["status"] == "RUNNING"
    assert shop.data(CANCEL, {"id": op["id"]})["bulkOperationCancel"]["userErrors"] == []
    gate.open()
    assert shop.handle.api.bulk.join(10)
    after = shop.data(POLL, {"id": op["id"]})["bulkOperation"]
    assert (after["status"], after["objectCount"], after["url"], after["partialDataUrl"]) == ("CANCELED", "0", None, None)
    assert [lv.available for lv in rows] == before


def test_a_shop_going_away_stops_its_bulk_workers_without_waiting_for_them(serve):
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.0)
    rows = levels(shop, 2)
    before = [lv.available for lv in rows]
    path, _ = stage(shop, jsonl([line(lv, lv.available + 3, lv.available, f"s-{i}") for i, lv in enumerate(rows)]))
    bulk = shop.handle.api.bulk
    gate = bulk.execution_gate = Gate()
    run(shop, path)
    assert gate.entered.wait(10)
    assert bulk.close(timeout=0.0) is False  # the wait is bounded: the held worker is not waited for
    gate.open()
    assert bulk.join(10)  # the worker saw the stop and ended …
    assert [lv.available for lv in rows] == before  # … without running a line


def test_bulk_mutation_traffic_passes_conformance_and_leaves_files_out(serve, tmp_path, conformance):
    log = tmp_path / "traffic.jsonl"
    shop = serve(restore_rate=1000.0, bulk_processing_seconds=0.05, traffic_log=log)
    (a,) = levels(shop, 1)
    path, _ = stage(shop, jsonl([line(a, 5, a.available, "c-0")]))
    op = run(shop, path)["bulkOperation"]["id"]
    done = poll_until_done(shop, POLL, op)[-1]
    assert httpx.get(done["url"], timeout=10).status_code == 200
    shop.data('{ bulkOperations(first: 5, sortKey: COMPLETED_AT, reverse: true) { nodes { id status } } }')
    assert shop.post(STAGE, {"input": []}, token=None).status_code == 401  # staging is an Admin call
    paths = {json.loads(x)["path"] for x in log.read_text().splitlines()}
    assert paths == {"/admin/api/2026-10/graphql.json"}  # the upload and the download are storage, not Admin
    conformance(log)

