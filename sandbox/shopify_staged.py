"""Staged uploads for bulk mutations: `stagedUploadsCreate` and the upload target it points at.

Shopify's flow (bulk import guide, 2026-10): `stagedUploadsCreate(input: [{resource: BULK_MUTATION_VARIABLES,
filename, mimeType: "text/jsonl", httpMethod: POST}])` answers a `StagedMediaUploadTarget` per input — `url`
(Shopify's storage bucket), `resourceUrl` null, and `parameters` (`key`, `Content-Type`, `success_action_status`,
`acl`, `policy`, `x-goog-credential`, `x-goog-algorithm`, `x-goog-date`, `x-goog-signature`). The client POSTs
a multipart form to `url` with every parameter as a field and the file as the last field, `file`; storage answers
201 with a `<PostResponse>` XML (Location, Bucket, Key, ETag). The `key` value is the `stagedUploadPath` that
`bulkOperationRunMutation` then reads.

Here the bucket is a loopback route of the sandbox shop itself, `<shop>/shopify-staged-uploads`:
- the form must carry the parameters exactly as given, `file` last, before the policy expires (`ttl_seconds`,
  one hour by default) and within `max_bytes` (100 MB, the 2026 limit for bulk mutation files). Otherwise it
  answers as storage does: 403 `AccessDenied` (a field missing or changed, a bad signature, an expired policy),
  400 `InvalidArgument` (no `file`, or `file` not last), 400 `EntityTooLarge` — XML `<Error>` bodies.
- `httpMethod: PUT` (the schema's default) gets a signed URL for a raw PUT of the file instead (200, empty).
- Uploads are not Admin API exchanges: the traffic log does not record them.
- Other resources (images, videos, files) are not modelled: a userError says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

BUCKET = "shopify-staged-uploads"
UPLOAD_PATH = f"/{BUCKET}"
MAX_BYTES = 100 * 1024 * 1024  # bulk mutation files: up to 100 MB since the 2026 bulk operations update
SIGNED_FIELDS = ("key", "Content-Type", "success_action_status", "acl", "x-goog-credential", "x-goog-algorithm",
                 "x-goog-date")


@dataclass
class StagedTarget:
    key: str
    method: str  # POST | PUT
    mime_type: str
    expires: float  # monotonic
    parameters: dict[str, str] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(18))


def storage_error(code: str, message: str) -> str:
    return (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{escape(code)}</Code>"
            f"<Message>{escape(message)}</Message></Error>")


class StagedUploads:
    """Upload targets and the files uploaded to them (kept in memory: bulk files of tests and demos are small)."""

    def __init__(self, shop_id: int = 68_000_000_000, *, max_bytes: int = MAX_BYTES, ttl_seconds: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.shop_id = shop_id
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._targets: dict[str, StagedTarget] = {}
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.base_url = "http://127.0.0.1"  # the served address; the app sets it from each request
        self.uploads = 0  # files received (for tests)

    # ------------------------------------------------------------------------------------------ GraphQL
    def graphql_roots(self) -> dict[str, Any]:
        return {"stagedUploadsCreate": self.create}

    def create(self, info, input: list[dict[str, Any]]):
        targets: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for i, item in enumerate(input):
            if item.get("resource") != "BULK_MUTATION_VARIABLES":
                errors.append({"field": ["input", str(i), "resource"],
                               "message": "The ichigen sandbox stages BULK_MUTATION_VARIABLES files only."})
                continue
            if not (item.get("filename") or "").strip():
                errors.append({"field": ["input", str(i), "filename"], "message": "Filename can't be blank"})
                continue
            targets.append(self._target(item["filename"].strip(), item.get("mimeType") or "text/jsonl",
                                        item.get("httpMethod") or "PUT"))
        if errors:
            return {"stagedTargets": None, "userErrors": errors}
        return {"stagedTargets": targets, "userErrors": []}

    def _target(self, filename: str, mime_type: str, method: str) -> dict[str, Any]:
        key = f"tmp/{self.shop_id}/bulk/{uuid.uuid4()}/{filename}"
        now = datetime.now(UTC)
        target = StagedTarget(key, method, mime_type, self._clock() + self.ttl_seconds)
        if method == "POST":
            params = {
                "key": key,
                "Content-Type": mime_type,
                "success_action_status": "201",
                "acl": "private",
                "x-goog-credential": f"sandbox-staged-uploads/{now:%Y%m%d}/auto/storage/goog4_request",
                "x-goog-algorithm": "GOOG4-HMAC-SHA256",
                "x-goog-date": f"{now:%Y%m%dT%H%M%SZ}",
            }
            policy = base64.b64encode(json.dumps({
                "conditions": [{name: value} for name, value in params.items()] + [["content-length-range", 0,
                                                                                    self.max_bytes]],
                "expiration": (now + timedelta(seconds=self.ttl_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }, separators=(",", ":")).encode()).decode()
            params["policy"] = policy
            params["x-goog-signature"] = self._sign(policy)
            target.parameters = params
            url = f"{self.base_url}{UPLOAD_PATH}"
        else:
            target.parameters = {"content_type": mime_type, "acl": "private"}
            url = f"{self.base_url}{UPLOAD_PATH}/{key}?X-Goog-Signature={self._sign(key)}&X-Goog-Token={target.token}"
        with self._lock:
            self._targets[key] = target
        return {"__typename": "StagedMediaUploadTarget", "url": url, "resourceUrl": None,
                "parameters": [{"name": n, "value": v} for n, v in target.parameters.items()]}

    def _sign(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------------------------------ storage
    def read(self, key: str) -> bytes | None:
        """The file uploaded under a staged path (`stagedUploadPath`), or None."""
        with self._lock:
            return self._files.get(key)

    def _store(self, key: str, body: bytes) -> None:
        with self._lock:
            self._files[key] = body
            self.uploads += 1

    def post_form(self, fields: list[tuple[str, str | bytes]]) -> tuple[int, str, str]:
        """A multipart form POSTed to the bucket (field order kept) → (HTTP status, body, media type)."""
        xml = "application/xml"
        values = dict(fields)
        key = values.get("key")
        with self._lock:
            target = self._targets.get(key) if isinstance(key, str) else None
        if target is None or target.method != "POST":
            return 403, storage_error("AccessDenied", "Invalid argument: no upload target for this key."), xml
        for name in (*SIGNED_FIELDS, "policy"):
            if values.get(name) != target.parameters[name]:
                return 403, storage_error("AccessDenied", f"Invalid policy: field {name} does not match."), xml
        if not hmac.compare_digest(str(values.get("x-goog-signature", "")), target.parameters["x-goog-signature"]):
            return 403, storage_error("AccessDenied", "The request signature we calculated does not match the "
                                                      "signature you provided."), xml
        if self._clock() > target.expires:
            return 403, storage_error("AccessDenied", "Invalid policy: policy expired."), xml
        if "file" not in values:
            return 400, storage_error("InvalidArgument", "Invalid argument: the form has no file field."), xml
        if fields[-1][0] != "file":
            return 400, storage_error("InvalidArgument", "Invalid argument: file must be the last field of the "
                                                         "form."), xml
        body = values["file"]
        body = body.encode() if isinstance(body, str) else body
        if len(body) > self.max_bytes:
            return 400, storage_error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"), xml
        self._store(target.key, body)
        status = target.parameters["success_action_status"]
        if status == "201":
            etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
            return 201, ("<?xml version='1.0' encoding='UTF-8'?><PostResponse>"
                         f"<Location>{escape(self.base_url + UPLOAD_PATH + '/' + target.key)}</Location>"
                         f"<Bucket>{BUCKET}</Bucket><Key>{escape(target.key)}</Key>"
                         f"<ETag>\"{etag}\"</ETag></PostResponse>"), xml
        return (200 if status == "200" else 204), "", xml

    def put(self, key: str, signature: str, token: str, body: bytes) -> tuple[int, str, str]:
        """A raw PUT to a signed URL (httpMethod PUT) → (HTTP status, body, media type)."""
        xml = "application/xml"
        with self._lock:
            target = self._targets.get(key)
        if target is None or target.method != "PUT" or not hmac.compare_digest(signature, self._sign(key)) \
                or not hmac.compare_digest(token, target.token):
            return 403, storage_error("SignatureDoesNotMatch", "The request signature we calculated does not match "
                                                               "the signature you provided."), xml
        if self._clock() > target.expires:
            return 400, storage_error("ExpiredToken", "The provided token has expired."), xml
        if len(body) > self.max_bytes:
            return 400, storage_error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"), xml
        self._store(key, body)
        return 200, "", xml
