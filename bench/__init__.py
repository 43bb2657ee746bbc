"""Benchmarks (`make bench` → `python -m bench`). Performance targets live here, never as timed test asserts.

Each benchmark is a module with `run(scale) -> list[Result]`; `scale` is "full" or "quick" (small sizes for a
smoke run). `python -m bench` prints one table and writes `bench/results.json`.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any, Literal

Scale = Literal["full", "quick"]


@dataclass
class Result:
    """One row of the table. `target` is a comparison plus a number ("<", 60) or None; `peer_value` is the
    peer's figure in the same unit as `value` (or the unit the note says) — None when there is no peer."""

    benchmark: str
    value: float
    unit: str
    target: tuple[str, float] | None = None
    peer: str | None = None
    peer_value: float | None = None
    notes: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # Further conditions the target includes, each (text, held?), e.g. ("≤ 1 × 429", True): met needs all of them.
    also: tuple[tuple[str, bool], ...] = ()

    @property
    def target_text(self) -> str:
        if self.target is None:
            return ""
        op, number = self.target
        return " and ".join([f"{op} {_num(number)}", *(text for text, _ in self.also)])

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, number = self.target
        value_met = {"<": self.value < number, "<=": self.value <= number, "≤": self.value <= number,
                     ">": self.value > number, ">=": self.value >= number, "≥": self.value >= number}[op]
        return value_met and all(held for _, held in self.also)

    @property
    def ratio(self) -> float | None:
        """value vs peer value, where a peer exists (and its value is in the same unit)."""
        if self.peer_value in (None, 0) or self.unit in ("×",):
            return None
        return self.value / self.peer_value

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "value": self.value,
            "unit": self.unit,
            "target": self.target_text or None,
            "peer": self.peer,
            "peer_value": self.peer_value,
            "ratio": self.ratio,
            "met": self.met,
            "notes": self.notes,
            "details": self.details,
        }


def _num(x: float) -> str:
    if x is None:
        return ""
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


fmt_num = _num


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """`with timed() as elapsed: ...; elapsed()` → seconds (wall clock, perf_counter)."""
    start = time.perf_counter()
    end: list[float] = []
    try:
        yield lambda: (end[0] if end else time.perf_counter()) - start
    finally:
        end.append(time.perf_counter())


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram_gib = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    ram_gib = int(line.split()[1]) / 1024 / 1024
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(ram_gib, 1) if ram_gib else None,
        "cpu": model,
        "python": platform.python_version(),
        "duckdb": _version("duckdb"),
        "polars": _version("polars"),
        "dlt": _version("dlt"),
        "loadavg": [round(x, 2) for x in load] if load else None,
    }


def machine_line(info: dict[str, Any]) -> str:
    load = info.get("loadavg")
    return (f"{info['cores']} cores, {info['ram_gib']} GiB RAM, {info['cpu']}; Python {info['python']}, "
            f"duckdb {info['duckdb']}, polars {info['polars']}, dlt {info['dlt']}"
            + (f"; load average at start {load[0]:.2f}" if load else ""))


def merge_rows(previous: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """results.json rows after a run: the fresh rows replace those of the same benchmark, the others are kept
    (so `--only` one benchmark does not wipe the rest of the file)."""
    names = {row["benchmark"] for row in fresh}
    return [row for row in previous if row.get("benchmark") not in names] + fresh


__all__ = ["Result", "Scale", "asdict", "fmt_num", "machine", "machine_line", "merge_rows", "timed"]
