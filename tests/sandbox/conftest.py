"""Fixtures for the sandbox's own tests: small worlds, a shop served on a random port, a GraphQL client."""

from __future__ import annotations

import pytest
from sandbox_testkit import NOW, TOKEN, Shop, small_world

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
def pg_dsn(pg_database: str) -> str:
    """A fresh PostgreSQL database for one test (the suite-wide fixture in tests/conftest.py)."""
    return pg_database
