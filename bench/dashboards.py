"""dashboard_query_p50_ms (target < 100 ms) and dashboard_rerun_p95_ms (target < 1 s), per page and overall,
on the serving copy published from a landing zone of N order lines (bench.full_build; 10M at full scale).

Each page of `dashboards/views/__init__.py` runs through the router (`dashboards/app.py`) under Streamlit's
AppTest, in this process, with `ICHIGEN_SERVING_PATH` on the benchmark's serving copy and the default filters.
- Queries: every query the page sends (`dashboards.data.read`, wrapped with a timer) — one read-only cursor,
  execute, fetch to a Polars frame, as the page gets it.
- Reruns: wall time of `AppTest.run()` for the page. Before each timed rerun the query cache is cleared
  (`st.cache_data.clear()`): the cost of a rerun after a new publish or a filter change, when nothing is
  cached. The connection (`st.cache_resource`) is kept, as in a running app. Warm reruns (every query
  cached) are reported in the details.
The SQL page is measured as it opens (its data-dictionary queries), not running an analyst's query.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from bench import Result, Scale
from bench.big_landing import label
from bench.full_build import build_and_publish, order_lines, paths

RERUNS = {"full": 8, "quick": 3}
QUERY_TARGET_MS = 100.0
RERUN_TARGET_MS = 1000.0
APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))]


def serving_copy(lines: int, log=print) -> tuple[Path, dict]:
    """The benchmark's serving copy for `lines` (built and published by bench.full_build when missing)."""
    p = paths(lines)
    if p["built"].exists() and p["serving"].exists():
        return p["serving"], json.loads(p["built"].read_text(encoding="utf-8"))
    log("  no serving copy at this scale yet: building it (bench.full_build)")
    built = build_and_publish(lines, log=log)
    return p["serving"], built


def measure(serving: Path, reruns: int) -> dict[str, dict]:
    """Per page: query seconds (every query of the cold reruns), cold and warm rerun seconds."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboards import data
    from dashboards.views import PAGES

    os.environ[data.ENV_SERVING_PATH] = str(serving)
    timings: list[float] = []
    original = data.read

    def timed_read(con, sql, params=None):
        started = time.perf_counter()
        try:
            return original(con, sql, params)
        finally:
            timings.append(time.perf_counter() - started)

    data.read = timed_read
    pages: dict[str, dict] = {}
    try:
        at = AppTest.from_file(str(APP), default_timeout=600)
        at.run()
        for spec in PAGES:
            at.switch_page(f"views/{spec.file}").run()  # first visit: imports, connection
            _check(at, spec.url_path)
            queries: list[float] = []
            cold: list[float] = []
            for _ in range(reruns):
                st.cache_data.clear()
                timings.clear()
                started = time.perf_counter()
                at.run()
                cold.append(time.perf_counter() - started)
                _check(at, spec.url_path)
                queries.extend(timings)
            warm: list[float] = []
            for _ in range(reruns):
                started = time.perf_counter()
                at.run()
                warm.append(time.perf_counter() - started)
            pages[spec.url_path] = {"queries_s": queries, "queries_per_rerun": len(queries) / reruns,
                                    "cold_rerun_s": cold, "warm_rerun_s": warm}
    finally:
        data.read = original
    return pages


def _check(at, page: str) -> None:
    if at.exception:
        raise RuntimeError(f"page {page} raised: {[e.value for e in at.exception][:3]}")
    if at.error:
        raise RuntimeError(f"page {page} shows an error: {[e.value for e in at.error][:3]}")


def run(scale: Scale) -> list[Result]:
    lines = order_lines(scale)
    name = label(lines)
    suffix = "" if lines == 10_000_000 else f"_{name}"  # only a 10M run writes the figures
    serving, built = serving_copy(lines)
    load_before = os.getloadavg()[0]
    pages = measure(serving, RERUNS[scale])
    load = f"load {load_before:.1f}→{os.getloadavg()[0]:.1f}"
    scope = f"{built['order_lines']:,} order lines; {load}"

    all_queries = [q for page in pages.values() for q in page["queries_s"]]
    all_reruns = [r for page in pages.values() for r in page["cold_rerun_s"]]
    per_page_q = {p: statistics.median(v["queries_s"]) * 1000 if v["queries_s"] else 0.0 for p, v in pages.items()}
    per_page_r = {p: p95(v["cold_rerun_s"]) * 1000 for p, v in pages.items()}
    details = {p: {"query_p50_ms": round(per_page_q[p], 1),
                   "query_max_ms": round(max(v["queries_s"], default=0.0) * 1000, 1),
                   "queries_per_rerun": v["queries_per_rerun"],
                   "cold_rerun_p95_ms": round(per_page_r[p], 1),
                   "warm_rerun_p50_ms": round(statistics.median(v["warm_rerun_s"]) * 1000, 1)}
               for p, v in pages.items()}
    results = [
        Result(f"dashboard_query_p50_ms{suffix}", statistics.median(all_queries) * 1000, "ms",
               ("<", QUERY_TARGET_MS),
               notes=f"{len(all_queries)} queries over {len(pages)} pages; per page p50: "
                     + ", ".join(f"{p} {v:.0f}" for p, v in per_page_q.items()) + f" ms; {scope}",
               details={"pages": details}),
        Result(f"dashboard_rerun_p95_ms{suffix}", p95(all_reruns) * 1000, "ms", ("<", RERUN_TARGET_MS),
               notes=f"{len(all_reruns)} cold reruns (query cache cleared); per page p95: "
                     + ", ".join(f"{p} {v:.0f}" for p, v in per_page_r.items()) + f" ms; {scope}",
               details={"pages": details}),
    ]
    for page in pages:
        results.append(Result(f"dashboard_query_p50_ms_{page}{suffix}", per_page_q[page], "ms",
                              ("<", QUERY_TARGET_MS), details=details[page]))
        results.append(Result(f"dashboard_rerun_p95_ms_{page}{suffix}", per_page_r[page], "ms",
                              ("<", RERUN_TARGET_MS), details=details[page]))
    return results
