"""The sandbox: a simulated world (ERP + Shopify shop) the product is tested against.

It imports nothing from the product. Entry points: `sandbox.world.World`, `sandbox.erp.write_sqlite` /
`write_postgres`, `sandbox.server.serve_shopify`, `sandbox.start_world`, and `python -m sandbox`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.runner import RunningWorld, start_world

__all__ = ["RunningWorld", "start_world"]


def __getattr__(name: str) -> Any:  # lazy, so `import sandbox.world` does not start loading the web stack
    if name in __all__:
        from sandbox import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
