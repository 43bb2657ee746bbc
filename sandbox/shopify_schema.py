"""Shopify's published Admin GraphQL schema (2026-10), loaded once per process.

Where it is read from, first found wins:
1. the `path` argument,
2. the env var `ICHIGEN_SHOPIFY_SCHEMA`,
3. `<repo>/../shared/reference/shopify/admin_2026-10.json.gz` (the shared reference folder beside the clone),
4. `<repo>/var/reference/shopify/admin_2026-10.json.gz` (what `make` fetches from the npm package).
"""

from __future__ import annotations

import gzip
import json
import os
import threading
from pathlib import Path

from graphql import GraphQLSchema, build_client_schema

API_VERSION = "2026-10"
SCHEMA_FILE = f"admin_{API_VERSION}.json.gz"
REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "ICHIGEN_SHOPIFY_SCHEMA"

_cache: dict[Path, GraphQLSchema] = {}
_lock = threading.Lock()


class SchemaNotFound(FileNotFoundError):
    pass


def candidate_paths() -> list[Path]:
    paths = []
    if os.environ.get(ENV_VAR):
        paths.append(Path(os.environ[ENV_VAR]))
    paths.append(REPO_ROOT.parent / "shared" / "reference" / "shopify" / SCHEMA_FILE)
    paths.append(REPO_ROOT / "var" / "reference" / "shopify" / SCHEMA_FILE)
    return paths


def schema_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The schema file to use, or SchemaNotFound naming every place looked at."""
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise SchemaNotFound(f"Shopify Admin schema not found at {found}")
        return found.resolve()
    env = os.environ.get(ENV_VAR)
    if env and not Path(env).is_file():
        raise SchemaNotFound(f"{ENV_VAR} points at {env}, which is not a file (Shopify's Admin schema, {SCHEMA_FILE})")
    tried = candidate_paths()
    for candidate in tried:
        if candidate.is_file():
            return candidate.resolve()
    raise SchemaNotFound(
        "Shopify's published Admin GraphQL schema (" + SCHEMA_FILE + ") was not found. Looked at: "
        + ", ".join(str(p) for p in tried)
        + f". Set {ENV_VAR} to the file, or run `make install`, which fetches it into var/reference/shopify/."
    )


def load_schema(path: str | os.PathLike[str] | None = None) -> GraphQLSchema:
    """The schema as a graphql-core client schema (cached per file for the life of the process)."""
    resolved = schema_path(path)
    with _lock:
        schema = _cache.get(resolved)
        if schema is None:
            with gzip.open(resolved) as fh:
                data = json.load(fh)["data"]
            # Shopify's schema breaks a few of GraphQL's own schema rules (deprecated interface fields); it is
            # still what Shopify serves, so skip that check. Query validation and execution work.
            schema = _cache[resolved] = build_client_schema(data, assume_valid=True)
        return schema
