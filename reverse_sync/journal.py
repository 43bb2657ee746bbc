"""The idempotency journal of the delta channels (Rakuten RELATIVE, Yahoo +n/−n; DECISIONS.md D32, D100).

A delta applied twice is an error nothing downstream can tell from a sale, so every delta call is written down
before it goes out: `<push_log>/_journal/<channel>/<run_id>-<chunk>.json` (temp + rename, fsynced) with the
codes, the deltas and the quantities the call assumes. A code is *in doubt* while

- its entry has not been `logged` yet (the run's push log, which the next plan reads as the channel's state,
  was not written: a crash between the send and the log leaves the entry open), or
- its outcome is `unresolved` (the answer was lost and a re-read could not confirm it).

A code in doubt is never pushed again as a delta until a stock read landed after the send shows the truth (the
next cycle's ingest): the plan's `old_value` then comes from that read and includes whatever the call did.
Every other code has a plan whose `old_value` is either a landed read newer than any send or our own logged,
applied push, so a delta computed from it composes with any sale since and cannot repeat an earlier delta.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

JOURNAL_DIR = "_journal"


@dataclass
class JournalEntry:
    """One delta call: what was sent and, per code, whether its outcome is known."""

    run_id: str
    chunk: int
    sent_at: str  # ISO UTC, written before the call
    deltas: dict[str, int]
    before: dict[str, int]  # the quantity each delta was computed from (the baseline a re-read compares with)
    unresolved: list[str]  # codes whose outcome is not known yet
    logged: bool = False  # the run's push log (holding this call's rows) has been written
    attempt: int = 1

    def in_doubt(self) -> list[str]:
        return list(self.unresolved) if self.logged else list(self.deltas)


class Journal:
    """One folder per channel; entries are rewritten atomically and removed once nothing in them is in doubt."""

    def __init__(self, push_log_dir: Path, channel: str):
        self.folder = Path(push_log_dir) / JOURNAL_DIR / channel

    def _path(self, entry: JournalEntry) -> Path:
        suffix = f"-{entry.attempt}" if entry.attempt > 1 else ""
        return self.folder / f"{entry.run_id}-{entry.chunk}{suffix}.json"

    def write(self, entry: JournalEntry) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(entry)
        if entry.logged and not entry.unresolved:
            path.unlink(missing_ok=True)  # settled: nothing left to protect
            return
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(asdict(entry), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def entries(self) -> list[JournalEntry]:
        if not self.folder.is_dir():
            return []
        return [JournalEntry(**json.loads(p.read_text(encoding="utf-8"))) for p in sorted(self.folder.glob("*.json"))]

    def blocked(self, seen_at: dict[str, datetime]) -> dict[str, str]:
        """Codes in doubt with no landed stock read since their send (code → when it was sent). Codes read since
        are settled (the read shows the truth) and their entries closed."""
        blocked: dict[str, str] = {}
        for entry in self.entries():
            sent = datetime.fromisoformat(entry.sent_at)
            doubt = entry.in_doubt()
            still = [c for c in doubt if c not in seen_at or seen_at[c] <= sent]
            if still != doubt:
                entry.unresolved, entry.logged = still, True  # what is left in doubt, now as unresolved codes
                self.write(entry)
            blocked.update({c: entry.sent_at for c in still})
        return blocked

    def mark_logged(self, run_id: str) -> None:
        """The push log of `run_id` is written: its answered calls are settled, unresolved codes stay in doubt."""
        for entry in self.entries():
            if entry.run_id == run_id and not entry.logged:
                entry.logged = True
                self.write(entry)
