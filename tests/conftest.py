"""Fixtures shared across the suite: a per-test configuration in tmp, and real PostgreSQL databases."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from ichigen.config import Config, load_config

# The shared checker of recorded channel traffic against the channels' own published definitions.
CONFORMANCE_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "conformance"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_HOW_TO_START = (
    "PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres, trust auth). Start it with:\n"
    "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)


@pytest.fixture
def tmp_config(tmp_path: Path) -> Config:
    """The project's configuration with every data path moved into this test's tmp folder."""
    return load_config().with_overrides(
        **{
            "base_dir": str(tmp_path),
            "paths.landing": "landing",
            "paths.warehouse": "warehouse/warehouse.duckdb",
            "paths.serving": "serving/ichigen.duckdb",
            "paths.push_log": "push_log",
            "paths.dagster_home": "dagster",
            "paths.sandbox": "sandbox",
            "erp.sqlite_path": "sandbox/erp.sqlite",
        }
    )


@pytest.fixture
def conformance() -> Callable[..., str]:
    """`conformance(log, ...)` runs ../shared/tools/conformance over recorded traffic logs, asserts it found 0
    problems and returns its report. Where ../shared is not beside the checkout, the test ends there as skipped
    (everything it asserted before has run)."""

    def check(*logs: Path, timeout: float = 300) -> str:
        if not CONFORMANCE_TOOL.exists():
            pytest.skip(f"the shared conformance tool is absent ({CONFORMANCE_TOOL})")
        result = subprocess.run([str(CONFORMANCE_TOOL), *map(str, logs)], capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, result.stdout + result.stderr
        assert " 0 with problems" in result.stdout, result.stdout
        return result.stdout

    return check


@pytest.fixture
def pg_database():
    """A fresh PostgreSQL database for one test, dropped afterwards. Fails (never skips) without a server."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"{PG_HOW_TO_START}\n({exc})")
    name = f"ichigen_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def sqs_server():
    """An SQS server (moto, server mode) on a free 127.0.0.1 port: where Amazon's ORDER_CHANGE notifications go."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def queue(sqs_server):
    """(sqs client, queue URL, queue ARN) of a new queue on `sqs_server`."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=sqs_server, region_name="us-west-2", aws_access_key_id="sandbox",
                       aws_secret_access_key="sandbox")
    # moto keeps one in-process backend for every server it runs: a queue name of its own per test, so messages
    # another test (the stock-lag bench's) left in its queue are never counted here.
    url = sqs.create_queue(QueueName=f"ichigen-amazon-orders-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return sqs, url, arn
