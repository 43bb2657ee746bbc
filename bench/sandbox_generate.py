"""sandbox_generate_s: `World.generate(seed, skus=50_000, …)` sized to 1,000,000 historical orders (target < 60 s,
per the sandbox issue), counted over the whole world: the shop's orders and the three malls' (sandbox.malls;
their volumes are 1.3 + 1.0 + 0.6 × the shop's `orders_per_day`). Peer: none.

Each size runs in a fresh subprocess (clean memory, and a hard timeout bounds it). A calibration size runs
first; when its linear extrapolation says 1M would take longer than the budget, the 1M run is skipped and the
row reports the extrapolated figure, labelled as such in its unit. The sandbox code is measured as it is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from bench import Result, Scale

NAME = "sandbox_generate_s"
TARGET_ORDERS = 1_000_000
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# history_days × orders_per_day × ~1.06 (weekday and payday weights) × 3.9 (shop + malls) ≈ orders.
FULL = {"skus": 50_000, "customers": 100_000, "history_days": 365, "orders_per_day": 663}
CALIBRATION = {"skus": 50_000, "customers": 100_000, "history_days": 100, "orders_per_day": 487}
QUICK = {"skus": 2_000, "customers": 500, "history_days": 5, "orders_per_day": 100}
FULL_BUDGET_S = 180.0  # run 1M only when the calibration predicts it finishes within this
CHILD = textwrap.dedent("""
    import json, resource, sys, time
    from datetime import datetime, timezone
    from sandbox.world import World
    args = json.loads(sys.argv[1])
    now = datetime(2026, 11, 23, tzinfo=timezone.utc)
    start = time.perf_counter()
    world = World.generate(1, now=now, **args)
    elapsed = time.perf_counter() - start
    malls = {name: len(mall.orders) for name, mall in world.malls.items()}
    print(json.dumps({"seconds": elapsed, "orders": len(world.orders) + sum(malls.values()),
                      "shop_orders": len(world.orders), "mall_orders": malls,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))
""")


def measure(sizes: dict[str, int], timeout: float) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(sizes)], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=PROJECT_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"World.generate({sizes}) failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(scale: Scale) -> list[Result]:
    if scale == "quick":
        got = measure(QUICK, timeout=120)
        return [Result(NAME, got["seconds"], f"s (quick: {got['orders']:,} orders)", ("<", 60.0),
                       notes="quick size, not comparable with the target", details={"sizes": QUICK, **got})]

    calibration = measure(CALIBRATION, timeout=240)
    predicted = calibration["seconds"] * TARGET_ORDERS / calibration["orders"]
    details = {"calibration": {"sizes": CALIBRATION, **calibration}, "predicted_1m_s": predicted}
    if predicted <= FULL_BUDGET_S:
        try:
            got = measure(FULL, timeout=FULL_BUDGET_S * 1.5)
        except subprocess.TimeoutExpired:
            got = None
        if got is not None:
            details["full"] = {"sizes": FULL, **got}
            return [Result(NAME, got["seconds"], f"s ({got['orders']:,} orders)", ("<", 60.0),
                           notes=f"peak RSS {got['max_rss_mb']:,} MB", details=details)]
    thousands = round(calibration["orders"] / 1000)
    return [Result(NAME, predicted, f"s (extrapolated from {thousands}k orders)", ("<", 60.0),
                   notes=f"{calibration['orders']:,} orders took {calibration['seconds']:.1f} s; "
                         f"linear extrapolation to 1M", details=details)]
