"""Fixtures for the sandbox's own tests: small worlds, a shop served on a random port, a GraphQL client."""

from __future__ import annotations

import uuid

import pytest
from sandbox_testkit import NOW, PG_ADMIN, PG_HOW_TO_START, TOKEN, Shop, small_world

from sandbox.server import serve_shopify
from sandbox.shopify_schema import load_schema
from sandbox.world import World


@pytest.fixture(scope="session", autouse=True)
def _schema_loaded_once():
    """Load Shopify's schema once, up front, so each server starts in milliseconds."""
    load_schema()


@pytest.fixture(scope="session")
def world_42() -> World:
    """The default-sized world, read-only (tests that mutate make their own)."""
    return World.generate(seed=42, now=NOW)


@pytest.fixture
def shop():
    """A fresh small world served on a random port (restore rate high enough never to throttle a test)."""
    world = small_world()
    handle = serve_shopify(world, port=0, access_token=TOKEN, restore_rate=1000.0)
    s = Shop(handle, world)
    yield s
    s.close()


@pytest.fixture
def serve():
    """Start shops with custom arguments; all are stopped after the test."""
    started: list[Shop] = []

    def start(world: World | None = None, **kw) -> Shop:
        world = world or small_world()
        kw.setdefault("access_token", TOKEN)
        s = Shop(serve_shopify(world, port=0, **kw), world)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


@pytest.fixture
def pg_dsn():
    """A uniquely named PostgreSQL database for one test, dropped afterwards. Fails (never skips) without a
    server, saying how to start it."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"{PG_HOW_TO_START}\n({exc})")
    name = f"sandbox_erp_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
