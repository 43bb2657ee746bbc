from __future__ import annotations

import pytest

from ingestion.ratelimit import reset_channel_limiters
from ingestion.throttle import reset_shared_throttles


@pytest.fixture(autouse=True)
def _fresh_channel_budgets():
    """Each test starts with empty process-wide limiter and throttle registries."""
    reset_channel_limiters()
    reset_shared_throttles()
    yield
    reset_channel_limiters()
    reset_shared_throttles()
