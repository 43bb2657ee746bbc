"""A readers–writer lock on the landing zone, across processes and threads (DECISIONS.md D160–D162).

Landed batches are immutable and appear by temp file + rename, so landing writers need no lock. The one thing
that removes landed files is compaction (D82): a reader that listed the batches before a removal and opens one
after it would fail with FileNotFoundError. So:

- readers (the dbt build, the fast path's read of landed orders, cursor reads, webhook de-dup, the reverse
  sync's reads of landed state) hold the lock **shared** from listing the files to the last read of them;
- compaction holds it **exclusive** only while it renames originals it has already merged into a new batch out
  of every reader's sight (a hidden name, unlinked after the release) — never while it reads or writes — so a
  reader waits at most one such rename pass (milliseconds).

The lock is `flock(2)` on `<root>/.landing.lock`, one open file per acquisition: the kernel releases it when
the holder's process exits or dies, so a crashed compaction never leaves the zone locked, and two threads of
one process exclude each other like two processes do. Both sides take it with LOCK_NB and poll with a short
back-off until a deadline: no holder waits forever, and no exclusive request queued in the kernel can hold up
new readers (Linux flock has no writer preference either). A compaction that cannot get the lock in time
skips the removal; the merged batch names the originals and the next run removes them (D82's recovery).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ingestion.errors import IngestionError

log = logging.getLogger(__name__)

LOCK_FILE = ".landing.lock"  # dbt's `<root>/<slug>/<entity>/**/*.parquet` and every listing here skip it
COMPACTION_LOCK_FILE = ".compaction.lock"  # one compaction at a time (two would merge the same originals)
READ_WAIT_SECONDS = 30.0  # a reader only ever waits for one removal (ms); 30 s means a holder is stuck
READER_POLL_MAX = 0.005  # readers re-try at most every 5 ms: their wait is one removal, keep it short
WRITER_POLL_MAX = 0.005  # compaction looks for a gap between readers as often
_POLL_FIRST = 0.0002
_SLOW_WAIT = 1.0  # a reader that waited longer than this is logged: removals should take milliseconds


class LandingLockTimeout(IngestionError):
    """The landing lock was not free within the wait; the message names the zone, who asked and who holds it."""


@dataclass
class LockHold:
    """One acquisition: what it was for, how long it waited for the lock and (after release) held it."""

    what: str
    mode: str  # "shared" | "exclusive"
    waited_seconds: float = 0.0
    held_seconds: float = 0.0


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o664)
    except PermissionError:  # a reader without write access to the zone still locks an existing lock file
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _take(fd: int, flags: int, wait_seconds: float, poll_max: float) -> float | None:
    """flock(fd, flags) within `wait_seconds`; the seconds waited, or None when the deadline passed."""
    started = time.monotonic()
    deadline = started + max(wait_seconds, 0.0)
    pause = _POLL_FIRST
    while True:
        try:
            fcntl.flock(fd, flags | fcntl.LOCK_NB)
            return time.monotonic() - started
        except BlockingIOError:
            pass
        now = time.monotonic()
        if now >= deadline:
            return None
        time.sleep(min(pause, deadline - now))
        pause = min(pause * 2, poll_max)


def _holder(fd: int) -> str:
    """What the exclusive holder wrote into the lock file (pid, purpose, since when), or a plain description."""
    try:
        note = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        note = ""
    return note or "held by readers or a compaction that wrote no note"


def lock_path(root: Path) -> Path:
    return Path(root) / LOCK_FILE


def read_lock(root: Path, what: str, *, wait_seconds: float = READ_WAIT_SECONDS) -> AbstractContextManager[LockHold]:
    """Hold the landing zone under `root` shared (list and read batches inside). Nests and overlaps freely with
    other readers in any process or thread. Raises LandingLockTimeout when a removal holds it past the wait."""
    return _hold(root, what, exclusive=False, wait_seconds=wait_seconds)


def removal_lock(root: Path, what: str, *, wait_seconds: float) -> AbstractContextManager[LockHold]:
    """Hold the landing zone under `root` exclusive, for taking landed files away only (keep it to milliseconds).
    Raises LandingLockTimeout when readers held it without a gap for `wait_seconds`: skip the removal then."""
    return _hold(root, what, exclusive=True, wait_seconds=wait_seconds)


@contextlib.contextmanager
def _hold(root: Path, what: str, *, exclusive: bool, wait_seconds: float) -> Iterator[LockHold]:
    path = lock_path(root)
    fd = _open(path)
    try:
        waited = _take(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, wait_seconds,
                       WRITER_POLL_MAX if exclusive else READER_POLL_MAX)
        if waited is None and exclusive:
            raise LandingLockTimeout(
                f"landing zone {root}: {what}: readers held {path} without a gap for {wait_seconds:g} s; "
                "the removal is left for the next run")
        if waited is None:
            raise LandingLockTimeout(
                f"landing zone {root}: {what} could not take the read lock {path} within {wait_seconds:g} s "
                f"(exclusive holder: {_holder(fd)}); nothing was read, try again")
        if waited > _SLOW_WAIT and not exclusive:
            log.warning("landing zone %s: %s waited %.2f s for the read lock", root, what, waited)
        hold = LockHold(what, "exclusive" if exclusive else "shared", waited)
        began = time.monotonic()
        if exclusive:  # a note for the error message of a reader that times out meanwhile
            note = f"pid {os.getpid()}: {what} since {datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}".encode()
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, note, 0)
        try:
            yield hold
        finally:
            if exclusive:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            hold.held_seconds = time.monotonic() - began
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def compaction_lock(root: Path) -> Iterator[bool]:
    """One compaction of the zone at a time, without waiting: yields False when another one is running (two at
    once would each merge the same originals into a batch of its own, and both batches would stay)."""
    fd = _open(Path(root) / COMPACTION_LOCK_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
