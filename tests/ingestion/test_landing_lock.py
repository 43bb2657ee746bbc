"""The landing zone's readers–writer lock and compaction under it (DECISIONS.md D160–D162), with real processes:
readers in other processes hold the shared lock while compaction merges and removes; nothing a reader listed
disappears under it, and a crash between write and removal heals."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion.landing import LandingZone, compact_landing
from ingestion.landing_lock import LandingLockTimeout, compaction_lock, read_lock, removal_lock
from ingestion.schemas import ERP_STOCK

T0 = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # batches span midnight: two date folders
SKUS = 40
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALL = ["sku", "warehouse_code", "on_hand", "updated_at", "_batch_id", "_fetched_at"]


def land_small_batches(zone: LandingZone, count: int, *, start: int = 0) -> list[Path]:
    """`count` batches of 1–3 stock rows, one a minute from T0 + `start` minutes; every (sku, updated_at) unique."""
    paths = []
    for b in range(start, start + count):
        rows = [{"sku": f"SKU-{(b * 7 + j) % SKUS}", "warehouse_code": "TKY", "on_hand": b * 10 + j,
                 "updated_at": T0 + timedelta(minutes=b, seconds=j), "_raw": json.dumps({"b": b, "j": j})}
                for j in range(1 + b % 3)]
        paths.append(zone.write_batch("erp", "stock", rows, schema=ERP_STOCK.columns, cursor_field="updated_at",
                                      fetched_at=T0 + timedelta(minutes=b)).path)
    return paths


def rows_of(zone: LandingZone) -> list[tuple]:
    with zone.reading("test"):
        return sorted(zone.landed("erp", "stock").select(ALL).collect().iter_rows())


def latest_per_key(root: Path) -> list[tuple]:
    """What a dbt staging model keeps: the newest version per key, over `read_parquet` of the glob."""
    with read_lock(root, "test"):
        return duckdb.sql(f"""select sku, warehouse_code, arg_max(on_hand, updated_at), max(updated_at)
            from read_parquet('{root}/erp/stock/**/*.parquet', union_by_name=true) group by all order by all""").fetchall()


def start_python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=30)


def wait_for(predicate, what: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: the child exited early: {proc.communicate()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# A reader in its own process: takes the shared lock, lists the batches, says so, waits for `go`, then reads every
# listed file and reports how many rows it read (or the error).
HOLDING_READER = """
    import sys, time, pathlib, json
    import pyarrow.parquet as pq
    from ingestion.landing_lock import read_lock
    root, ready, go, out = map(pathlib.Path, sys.argv[1:5])
    with read_lock(root, "holding reader") as hold:
        files = sorted(p for p in (root / "erp" / "stock").glob("date=*/*.parquet") if not p.name.startswith("."))
        ready.write_text(str(len(files)))
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            rows = sum(pq.read_table(p).num_rows for p in files)
            out.write_text(json.dumps({"files": len(files), "rows": rows}))
        except Exception as exc:
            out.write_text(json.dumps({"error": repr(exc)}))
"""


@contextlib.contextmanager
def holding_reader(root: Path):
    """A HOLDING_READER process that has listed the batches; `release()` lets it read them and returns its report."""
    ready, go, out = root / "ready", root / "go", root / "out.json"
    reader = start_python(HOLDING_READER, str(root), str(ready), str(go), str(out))

    def release() -> dict:
        go.touch()
        reader.communicate(timeout=60)
        return json.loads(out.read_text())

    try:
        wait_for(ready.exists, "the reader to list the batches", proc=reader)
        yield release
    finally:
        go.touch()
        stop(reader)


def compaction_in_thread(zone: LandingZone, result: dict) -> threading.Thread:
    """compact_landing of erp/stock on its own thread, waiting up to 60 s for the lock; the run in `result`."""
    worker = threading.Thread(target=lambda: result.update(run=compact_landing(
        zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=1), lock_wait_seconds=60)))
    worker.start()
    return worker


def test_a_reader_holding_the_lock_keeps_its_files_and_the_removal_is_left_for_the_next_run(tmp_path: Path):
    zone = LandingZone(tmp_path)
    originals = land_small_batches(zone, 30, start=75)  # 23:45–00:14: two date folders
    before = rows_of(zone)
    with holding_reader(tmp_path) as release:
        run = compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=2),
                              lock_wait_seconds=0.5)
        # merged, but nothing removed: the reader still holds the files it listed
        assert run.batches_merged == 30 and len(run.merged) == 2, "one merged batch per date folder"
        assert run.removed == 0 and run.pending == 30 and "readers held" in run.skipped
        assert all(p.exists() for p in originals)
        got = release()
    assert got == {"files": 30, "rows": len(before)}, "every listed file was still there and whole"

    again = compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=2))
    assert again.merged == [] and again.leftovers_removed == 30 and again.pending == 0
    assert not any(p.exists() for p in originals)
    assert rows_of(zone) == before, "every row, batch id and fetch time as before"


def test_compaction_waits_for_the_reader_and_removes_when_it_is_done(tmp_path: Path):
    zone = LandingZone(tmp_path)
    originals = land_small_batches(zone, 12)
    before = rows_of(zone)
    result: dict = {}
    with holding_reader(tmp_path) as release:
        worker = compaction_in_thread(zone, result)
        # the merged batch is written without the lock; the removal waits for the reader
        wait_for(lambda: len(zone.batch_files("erp", "stock")) == 12 + 1, "the merged batch")
        assert worker.is_alive() and all(p.exists() for p in originals)
        got = release()
        worker.join(60)
    assert got == {"files": 12, "rows": len(before)}
    run = result["run"]
    assert run.pending == 0 and run.removed == 12 and run.skipped is None
    assert not any(p.exists() for p in originals) and rows_of(zone) == before


def test_new_readers_are_not_held_up_while_a_compaction_waits(tmp_path: Path):
    """No writer preference: while a long reader holds the lock and a compaction waits for it, another process
    still gets the read lock at once (a waiting compaction must not stall the fast path for a whole dbt build)."""
    zone = LandingZone(tmp_path)
    land_small_batches(zone, 6)
    result: dict = {}
    with holding_reader(tmp_path) as release:
        worker = compaction_in_thread(zone, result)
        wait_for(lambda: len(zone.batch_files("erp", "stock")) == 7, "the compaction to wait for the lock")
        second = start_python("""
            import sys, pathlib
            from ingestion.landing_lock import read_lock
            with read_lock(pathlib.Path(sys.argv[1]), "second reader", wait_seconds=20) as hold:
                print(hold.waited_seconds)
        """, str(tmp_path))
        _, stderr = second.communicate(timeout=60)
        assert second.returncode == 0, stderr
        assert worker.is_alive(), "the compaction is still waiting for the long reader"
        release()
        worker.join(60)
    assert result["run"].removed == 6


def test_a_reader_that_cannot_get_the_lock_says_who_holds_it(tmp_path: Path):
    with removal_lock(tmp_path, "compaction removing 3 merged batches", wait_seconds=1):
        with pytest.raises(LandingLockTimeout) as caught:
            with read_lock(tmp_path, "dbt build", wait_seconds=0.2):
                pass
    message = str(caught.value)
    assert "dbt build" in message and ".landing.lock" in message and f"pid {os.getpid()}" in message
    assert "compaction removing 3 merged batches" in message
    with read_lock(tmp_path, "dbt build", wait_seconds=0.2) as hold:  # free again once the removal ended
        assert hold.mode == "shared"


def test_only_one_compaction_runs_at_a_time(tmp_path: Path):
    zone = LandingZone(tmp_path)
    land_small_batches(zone, 5)
    with compaction_lock(tmp_path) as ours:
        assert ours
        run = compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=1))
    assert run.merged == [] and "another compaction is running" in run.skipped
    assert len(zone.batch_files("erp", "stock")) == 5, "nothing written"


COMPACTING_CHILD = """
    import sys, pathlib
    from datetime import datetime, timedelta
    from ingestion.landing import LandingZone, compact_landing
    compact_landing(LandingZone(pathlib.Path(sys.argv[1])), [("erp", "stock")], older_than=timedelta(0),
                    now=datetime.fromisoformat(sys.argv[2]), lock_wait_seconds=120)
"""


def test_a_compaction_killed_between_write_and_removal_heals_on_the_next_run(tmp_path: Path):
    zone = LandingZone(tmp_path)
    originals = land_small_batches(zone, 20, start=80)  # two date folders: two merged batches
    before, latest = rows_of(zone), latest_per_key(tmp_path)
    with read_lock(tmp_path, "a reader the compaction waits for"):
        child = start_python(COMPACTING_CHILD, str(tmp_path), (T0 + timedelta(hours=2)).isoformat())
        wait_for(lambda: len(zone.batch_files("erp", "stock")) == 22, "the merged batches", proc=child)
        child.send_signal(signal.SIGKILL)  # a crash after the merged batches' rename, before any removal
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert all(p.exists() for p in originals), "the originals and their merged copies are both landed"
    assert latest_per_key(tmp_path) == latest, "duplicates are identical rows: the newest per key is the same"

    # a crash one step later (originals renamed out of sight, not yet unlinked) leaves hidden files only
    hidden = originals[0].with_name(f".{originals[0].name}.removed")
    hidden.write_bytes(originals[0].read_bytes())
    assert latest_per_key(tmp_path) == latest, "no reader lists a hidden file"

    healed = compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=2))
    assert not hidden.exists(), "swept"
    assert healed.skipped is None, "the dead child's compaction lock was released by the kernel"
    assert healed.leftovers_removed == 20 and healed.merged == []
    assert not any(p.exists() for p in originals)
    assert rows_of(zone) == before and latest_per_key(tmp_path) == latest


def test_removals_skipped_twice_in_a_row_are_all_healed_without_duplicates(tmp_path: Path):
    """The second run merges the first run's merged batch again: the originals it named are carried into the
    new batch's `compacted_from`, so they are removed once a run gets the lock, and no row is landed twice."""
    zone = LandingZone(tmp_path)
    first = land_small_batches(zone, 8)
    with read_lock(tmp_path, "a long reader"):
        run1 = compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=1),
                               lock_wait_seconds=0.1)
        second = land_small_batches(zone, 4, start=8)
        run2 = compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=1),
                               lock_wait_seconds=0.1)
    assert run1.pending == 8 and run2.pending == 8 + 1 + 4
    assert run2.batches_merged == 1 + 4, "the first merged batch and the new ones; never the leftovers"
    run3 = compact_landing(zone, [("erp", "stock")], older_than=timedelta(0), now=T0 + timedelta(hours=1))
    assert run3.removed == 8 + 1 + 4 and run3.pending == 0
    assert not any(p.exists() for p in first + second)
    rows = rows_of(zone)
    keys = [(r[0], r[3]) for r in rows]
    assert len(keys) == len(set(keys)) == sum(1 + b % 3 for b in range(12)), "every version exactly once"


# A dbt-like reader in its own process: DuckDB read_parquet over the entity's glob, under the shared lock (as the
# warehouse asset holds it for a build), in a bounded loop until told to stop. Counts errors and any difference
# from the expected newest version per key and the expected set of versions.
DBT_LIKE_READER = """
    import sys, json, os, time, pathlib, duckdb
    from ingestion.landing_lock import read_lock
    root, expected_file, stop, progress, out = map(pathlib.Path, sys.argv[1:6])
    expected = json.loads(expected_file.read_text())
    con = duckdb.connect()
    glob = f"{root}/erp/stock/**/*.parquet"
    reads, errors, wrong = 0, [], []
    deadline = time.monotonic() + 120
    while not stop.exists() and reads < 20000 and time.monotonic() < deadline:
        try:
            with read_lock(root, "dbt-like reader"):
                latest = con.execute(f"select sku, arg_max(on_hand, updated_at), max(updated_at)::varchar "
                                     f"from read_parquet('{glob}', union_by_name=true) group by 1 order by 1").fetchall()
                versions = con.execute(f"select count(*) from (select distinct sku, updated_at, on_hand "
                                       f"from read_parquet('{glob}', union_by_name=true))").fetchone()[0]
            if [list(r) for r in latest] != expected["latest"] or versions != expected["versions"]:
                wrong.append(reads)
        except Exception as exc:
            errors.append(repr(exc)[:300])
        reads += 1
        progress.write_text(str(reads))
        time.sleep(0.002)  # a real reader does other work between reads
    out.write_text(json.dumps({"reads": reads, "errors": errors[:5], "error_count": len(errors),
                               "wrong": wrong[:5], "wrong_count": len(wrong)}))
"""


def test_a_dbt_like_reader_never_fails_and_always_sees_the_same_versions_while_compaction_runs(tmp_path: Path):
    zone = LandingZone(tmp_path)
    land_small_batches(zone, 120)
    latest = latest_per_key(tmp_path)
    with read_lock(tmp_path, "expected"):
        con = duckdb.connect()
        glob = f"{tmp_path}/erp/stock/**/*.parquet"
        expected = {
            "latest": [list(r) for r in con.execute(
                f"select sku, arg_max(on_hand, updated_at), max(updated_at)::varchar from read_parquet('{glob}', "
                "union_by_name=true) group by 1 order by 1").fetchall()],
            "versions": con.execute(f"select count(*) from (select distinct sku, updated_at, on_hand "
                                    f"from read_parquet('{glob}', union_by_name=true))").fetchone()[0],
        }
    assert len(expected["latest"]) == SKUS
    files = {name: tmp_path / name for name in ("expected.json", "stop", "progress", "out.json")}
    files["expected.json"].write_text(json.dumps(expected))
    reader = start_python(DBT_LIKE_READER, *(str(tmp_path), *map(str, files.values())))
    progress = files["progress"]
    read_count = lambda: int(progress.read_text() or 0) if progress.exists() else 0  # noqa: E731
    runs = []
    try:
        wait_for(lambda: read_count() > 0, "the reader's first read", proc=reader)
        for round_ in range(1, 13):  # each round merges the last round's batch with ten more minutes of batches
            seen = read_count()
            # re-landed copies of versions already there (a look-back poll does this): new files appear meanwhile
            zone.write_batch("erp", "stock", [{"sku": "SKU-0", "warehouse_code": "TKY", "on_hand": 0,
                                               "updated_at": T0, "_raw": "{}"}],
                             schema=ERP_STOCK.columns, cursor_field="updated_at",
                             fetched_at=T0 + timedelta(minutes=10 * round_ - 5))
            runs.append(compact_landing(zone, [("erp", "stock")], older_than=timedelta(0),
                                        now=T0 + timedelta(minutes=10 * round_), lock_wait_seconds=30))
            wait_for(lambda seen=seen: read_count() > seen + 2, "the reader to read across the compaction",
                     proc=reader)
    finally:
        files["stop"].touch()
        try:
            reader.communicate(timeout=60)
        finally:
            stop(reader)
    got = json.loads(files["out.json"].read_text())
    assert got["error_count"] == 0, got["errors"]
    assert got["wrong_count"] == 0, f"reads {got['wrong']} saw other versions"
    assert got["reads"] > 24
    assert all(r.pending == 0 and r.skipped is None for r in runs), [r.skipped for r in runs]
    assert sum(r.removed for r in runs) >= 120, "every small batch was merged and removed along the way"
    assert len(zone.batch_files("erp", "stock")) <= 3, "what is left: a merged batch per date folder (+ the newest)"
    assert latest_per_key(tmp_path) == latest
