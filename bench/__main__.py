"""`python -m bench [--only NAME] [--quick] [--order-lines N]`: run the benchmarks, print one table, write
bench/results.json."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path

from bench import Result, fmt_num, machine, machine_line, merge_rows

# benchmark name → module in bench/ (a module may report several rows)
BENCHMARKS: dict[str, str] = {
    "sandbox_generate_s": "bench.sandbox_generate",
    "ingest_rows_per_s": "bench.ingest",
    "ingest_ratio_vs_dlt": "bench.ingest",
    "incremental_cycle_s": "bench.incremental_cycle",
    "incremental_cycle_with_pushes_s": "bench.incremental_cycle",
    "full_cycle_first_s": "bench.incremental_cycle",
    **{f"resync_fraction_of_ceiling_{c}": "bench.resync" for c in ("shopify", "rakuten", "yahoo", "amazon")},
    "stock_lag_p95_s": "bench.stock_lag", "oversells": "bench.stock_lag",
    **{f"landed_lag_p95_s_{c}": "bench.landed_lag" for c in ("shopify", "rakuten", "amazon", "yahoo")},
    # at N order lines (--order-lines; 10M in full scale): rows are named by the scale measured (D70)
    "dbt_full_build_10m_s": "bench.full_build", "dbt_full_build_10m_rss_mb": "bench.full_build",
    "publish_reader_query_max_10m_ms": "bench.full_build",
    "dashboard_query_p50_ms": "bench.dashboards", "dashboard_rerun_p95_ms": "bench.dashboards",
    "landing_lock_reader_wait_max_ms": "bench.compaction_lock", "compaction_reader_errors": "bench.compaction_lock",
}
RESULTS = Path(__file__).resolve().parent / "results.json"


def table(results: list[Result]) -> str:
    header = ["benchmark", "value", "unit", "target", "met", "peer", "peer value", "ratio"]
    rows = [[r.benchmark, fmt_num(r.value), r.unit, r.target_text,
             {True: "yes", False: "NO", None: ""}[r.met], r.peer or "",
             fmt_num(r.peer_value) if r.peer_value is not None else "",
             f"{r.ratio:.2f}×" if r.ratio is not None else ""] for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    notes = [f"  {r.benchmark}: {r.notes}" for r in results if r.notes]
    return "\n".join(out + (["", "notes:", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a measurement")
    parser.add_argument("--order-lines", type=int, metavar="N",
                        help="order lines in the landing of the warehouse and dashboard benchmarks "
                             "(default 10,000,000; 100,000 with --quick); rows are named by this scale")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    scale = "quick" if args.quick else "full"
    if args.order_lines:
        from bench.full_build import ORDER_LINES_ENV

        os.environ[ORDER_LINES_ENV] = str(args.order_lines)

    modules: list[str] = []
    for name in args.only or BENCHMARKS:
        if BENCHMARKS[name] not in modules:
            modules.append(BENCHMARKS[name])

    info = machine()
    print(f"machine: {machine_line(info)}", flush=True)
    results: list[Result] = []
    failures: list[str] = []
    for module_name in modules:
        started = time.perf_counter()
        print(f"running {module_name} ({scale}) …", flush=True)
        try:
            module = importlib.import_module(module_name)
            # A module reporting several rows may run only the ones asked for (e.g. one channel's resync).
            wanted = {"only": set(args.only)} if args.only and "only" in inspect.signature(module.run).parameters \
                else {}
            got = module.run(scale, **wanted)
        except Exception:  # report the others, fail at the end
            traceback.print_exc()
            failures.append(module_name)
            continue
        results.extend(got)
        print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)

    previous = json.loads(args.output.read_text(encoding="utf-8")) if args.only and args.output.exists() else []
    rows = merge_rows(previous, [r.to_json() for r in results])
    args.output.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print()
    print(f"machine: {machine_line(info)}; at end {machine()['loadavg'][0]:.2f} (other jobs skew timings)")
    print(table(results))
    print(f"\nwritten: {args.output}")
    if failures:
        print(f"FAILED: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
