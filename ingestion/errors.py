"""The exceptions ingestion raises. Every message names the source, the operation and (for HTTP) the status.

    IngestionError
    ├── ChannelError                 an HTTP channel (Shopify, Rakuten, Amazon, Yahoo) failed
    │   ├── ChannelUnreachable       connection refused, DNS failure, connect timeout
    │   ├── ChannelAuthError         401 / 403 (never retried)
    │   ├── ChannelRateLimited       429 / throttle signals still there after the bounded retries
    │   ├── ChannelServerError       5xx / 408 / read timeouts still there after the bounded retries
    │   └── ChannelResponseError     a body we cannot use: not JSON, GraphQL errors, other 4xx
    ├── SourceUnreachable            a database source (the ERP) cannot be opened
    └── PageLimitReached             a page loop hit its bound where stopping early would lose data
"""

from __future__ import annotations


class IngestionError(RuntimeError):
    """Base of everything ingestion raises on purpose."""


class ChannelError(IngestionError):
    """An HTTP channel call failed. Attributes say where, so callers can log and alert without parsing text."""

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        operation: str | None = None,
        status: int | None = None,
        url: str | None = None,
        retries: int = 0,
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.operation = operation
        self.status = status
        self.url = url
        self.retries = retries


class ChannelUnreachable(ChannelError):
    """Nothing answered: connection refused, name not resolved, connect timeout."""


class ChannelAuthError(ChannelError):
    """The channel refused our credentials (401) or their scope (403)."""


class ChannelRateLimited(ChannelError):
    """Still throttled (429, THROTTLED, client-side budget) after the bounded retries."""


class ChannelServerError(ChannelError):
    """The channel kept failing on its side (5xx, 408, read timeouts) after the bounded retries."""


class ChannelResponseError(ChannelError):
    """The channel answered, but not with something we can use (bad body, GraphQL errors, other 4xx)."""


class SourceUnreachable(IngestionError):
    """A database source cannot be opened or queried (the message names kind and masked location)."""


class PageLimitReached(IngestionError):
    """A page loop reached its bound while the source still had pages, and stopping would skip data."""


def require_enabled(source: str, enabled: bool) -> None:
    """A connector called directly for a channel switched off in the configuration refuses by name; the registry
    (ingestion.ingest) checks first and lands nothing instead, so a switched-off channel never fails a cycle."""
    if not enabled:
        raise IngestionError(f"{source} is disabled in the configuration (channels.{source}.enabled = false)")
