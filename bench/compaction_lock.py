"""landing_lock_reader_wait_max_ms, compaction_reader_errors: compaction under load, with and without the landing
zone's readers–writer lock (DECISIONS.md D160–D162).

One landing zone in tmp; for `seconds`:
- a lander process lands a small erp/stock batch every `land_every` s (as pushes do: one event a file);
- two dbt-like reader processes read `read_parquet('<root>/erp/stock/**/*.parquet')` back to back (5 ms apart),
  and one tick-like reader process reads the landed rows with polars every 200 ms (the fast path's cadence is 1 s);
- the compactor merges everything landed (older_than 0) every 0.5 s and removes the originals.

Arm "lock": readers hold the shared lock for each read, compaction takes it exclusive for removals. Arm "no lock"
(the peer): the same without any lock. Reported: the longest and p99 wait of a reader for the
read lock (what compaction costs a reader), the longest exclusive hold, the compactor's wait for a gap, and the
readers' failed reads in each arm (target 0 with the lock).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import Result, Scale
from bench.stock_lag import percentile

SIZES: dict[str, dict[str, float]] = {
    "full": {"seconds": 60.0, "land_every": 0.02, "compact_every": 0.5},
    "quick": {"seconds": 6.0, "land_every": 0.05, "compact_every": 0.5},
}
READER = Path(__file__).resolve()
PROJECT_ROOT = READER.parents[1]


def _reader(kind: str, root: Path, stop: Path, out: Path, locked: bool) -> None:
    """One reader process: reads until `stop` exists (at most 10 minutes), then writes its waits and errors."""
    import contextlib

    import duckdb

    from ingestion.landing import LandingZone
    from ingestion.landing_lock import read_lock

    zone = LandingZone(root)
    con = duckdb.connect()
    glob = f"{root}/erp/stock/**/*.parquet"
    out.with_suffix(".ready").touch()  # imports done
    waits: list[float] = []
    errors: list[str] = []
    reads = 0
    deadline = time.monotonic() + 600
    while not stop.exists() and time.monotonic() < deadline:
        try:
            with read_lock(root, f"bench {kind} reader") if locked else contextlib.nullcontext() as hold:
                if kind == "dbt":
                    con.execute(f"select sku, arg_max(on_hand, updated_at), count(*) "
                                f"from read_parquet('{glob}', union_by_name=true) group by 1").fetchall()
                else:
                    zone.landed("erp", "stock").select("sku", "on_hand", "_fetched_at").collect()
            waits.append(hold.waited_seconds if hold is not None else 0.0)
        except Exception as exc:  # noqa: BLE001 - counted: a failed read is what the lock prevents
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        reads += 1
        time.sleep(0.005 if kind == "dbt" else 0.2)
    out.write_text(json.dumps({"kind": kind, "reads": reads, "waits": waits, "errors": errors}))


def _land(root: Path, first: int, count: int, stop: Path | None = None, every: float = 0.0,
          out: Path | None = None) -> None:
    """Land `count` small erp/stock batches (2 rows each), `every` s apart, until `stop` exists."""
    from ingestion.common import utcnow
    from ingestion.landing import LandingZone
    from ingestion.schemas import ERP_STOCK

    zone = LandingZone(root)
    if out is not None:
        out.with_suffix(".ready").touch()
    n = first
    deadline = time.monotonic() + 600
    while n < first + count and not (stop is not None and stop.exists()) and time.monotonic() < deadline:
        now = utcnow()
        rows = [{"sku": f"SKU-{(n + j) % 50}", "warehouse_code": "TKY", "on_hand": n, "updated_at": now,
                 "_raw": "{}"} for j in range(2)]
        zone.write_batch("erp", "stock", rows, schema=ERP_STOCK.columns, cursor_field="updated_at", fetched_at=now)
        n += 1
        time.sleep(every)
    if out is not None:
        out.write_text(json.dumps({"landed": n - first}))


def _start(call: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(PROJECT_ROOT)!r}); "
                             "from pathlib import Path; from bench.compaction_lock import _land, _reader; " + call],
                            cwd=PROJECT_ROOT)


def _arm(root: Path, locked: bool, size: dict[str, float]) -> dict[str, Any]:
    from ingestion.landing import LandingZone, compact_landing

    shutil.rmtree(root, ignore_errors=True)
    zone = LandingZone(root)
    stop = root.parent / f"stop-{locked}"
    stop.unlink(missing_ok=True)
    outs = [root.parent / f"reader-{locked}-{i}.json" for i in range(3)]
    lander_out = root.parent / f"lander-{locked}.json"
    _land(root, 0, 1)  # one batch before the readers start, so the glob matches something
    procs = [_start(f"_land(Path({str(root)!r}), 1, 1_000_000, Path({str(stop)!r}), {size['land_every']}, "
                    f"Path({str(lander_out)!r}))")]
    procs += [_start(f"_reader({kind!r}, Path({str(root)!r}), Path({str(stop)!r}), Path({str(out)!r}), {locked})")
              for kind, out in zip(("dbt", "dbt", "tick"), outs, strict=True)]
    runs = []
    round_seconds = []
    try:
        ready = [path.with_suffix(".ready") for path in (*outs, lander_out)]
        wait_until = time.monotonic() + 120
        while not all(path.exists() for path in ready):  # their imports take seconds on a loaded machine
            if time.monotonic() > wait_until or any(proc.poll() is not None for proc in procs):
                raise RuntimeError("a bench reader or the lander did not start")
            time.sleep(0.05)
        deadline = time.monotonic() + size["seconds"]
        while time.monotonic() < deadline:
            began = time.monotonic()
            if locked:
                runs.append(compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), lock_wait_seconds=30))
            else:  # the same compaction with the removal lock made a no-op
                runs.append(_compact_without_lock(zone))
            round_seconds.append(time.monotonic() - began)
            time.sleep(size["compact_every"])
    finally:
        stop.touch()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
    got = [json.loads(out.read_text()) for out in outs if out.exists()]
    waits = [w for g in got for w in g["waits"]]
    return {
        "landed_batches": 1 + json.loads(lander_out.read_text())["landed"] if lander_out.exists() else None,
        "compactions": len(runs),
        "batches_merged": sum(r.batches_merged for r in runs),
        "removed": sum(r.removed for r in runs),
        "removals_skipped": sum(1 for r in runs if r.pending),
        "reads": sum(g["reads"] for g in got),
        "reader_errors": sum(len(g["errors"]) for g in got),
        "error_examples": [e for g in got for e in g["errors"]][:3],
        "reader_wait_max_ms": 1000 * max(waits, default=0.0),
        "reader_wait_p99_ms": 1000 * percentile(waits, 99),
        "reader_waits_over_10ms": sum(1 for w in waits if w > 0.010),
        "hold_max_ms": 1000 * max((h for r in runs for h in r.lock_holds), default=0.0),
        "hold_p50_ms": 1000 * percentile([h for r in runs for h in r.lock_holds], 50),
        "compactor_wait_p95_ms": 1000 * percentile([w for r in runs for w in r.lock_waits], 95),
        "compactor_wait_max_ms": 1000 * max((w for r in runs for w in r.lock_waits), default=0.0),
        "round_p50_s": percentile(round_seconds, 50),
    }


def _compact_without_lock(zone):
    """compact_landing with the exclusive lock replaced by nothing (the peer arm)."""
    import contextlib

    from ingestion import landing as landing_module
    from ingestion.landing_lock import LockHold, removal_lock

    @contextlib.contextmanager
    def no_lock(root, what, *, wait_seconds):
        yield LockHold(what, "none")

    landing_module.removal_lock = no_lock
    try:
        return landing_module.compact_landing(zone, [("erp", "stock")], older_than=timedelta(0))
    finally:
        landing_module.removal_lock = removal_lock


def run(scale: Scale) -> list[Result]:
    size = SIZES[scale]
    base = Path(tempfile.mkdtemp(prefix="ichigen-bench-compaction-"))
    try:
        locked = _arm(base / "locked", True, size)
        unlocked = _arm(base / "unlocked", False, size)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    details = {"lock": locked, "no_lock": unlocked, "size": size}
    context = (f"{locked['reads']} reads by 3 reader processes, {locked['compactions']} compactions merging "
               f"{locked['batches_merged']} batches in {size['seconds']:g} s, {locked['landed_batches']} landed")
    return [
        Result("landing_lock_reader_wait_max_ms", round(locked["reader_wait_max_ms"], 2), "ms", ("<", 250.0),
               notes=f"p99 {locked['reader_wait_p99_ms']:.2f} ms, {locked['reader_waits_over_10ms']} waits > 10 ms; "
                     f"exclusive hold p50 {locked['hold_p50_ms']:.2f} / max {locked['hold_max_ms']:.2f} ms; "
                     f"compactor's wait for a gap p95 {locked['compactor_wait_p95_ms']:.1f} / max "
                     f"{locked['compactor_wait_max_ms']:.1f} ms, {locked['removals_skipped']} removals skipped; "
                     + context, details=details),
        Result("compaction_reader_errors", float(locked["reader_errors"]), "failed reads", ("<=", 0.0),
               peer="the same without the lock", peer_value=float(unlocked["reader_errors"]),
               notes=f"without the lock: {unlocked['reader_errors']} of {unlocked['reads']} reads failed, e.g. "
                     f"{(unlocked['error_examples'] or ['-'])[0][:120]}", details=details),
    ]
