"""Thin Dagster assets over the plain libraries: ingest → dbt build → publish → reverse sync.

Asset keys follow the one-slug rule: `<slug>/<entity>` for landed data (the same keys dagster-dbt gives the
dbt sources, so lineage from landing into staging is automatic), dbt models by model name, `serving_copy`
for the published warehouse, `<slug>/stock_push` for a channel's reverse sync.
"""


import importlib.metadata
import os
import queue
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from packaging.version import Version

import ingestion
from ichigen.config import Config
from ichigen.publish import BuildReport, PublishRefused, last_build, publish, record_build
from ichigen.warehouse import DBT_PROJECT_DIR, DBT_TARGET_PATH, PRODUCTION_BUILD_ARGS, export_dbt_env
from ingestion.landing import LandingZone
from orchestration import warm_dbt
from orchestration.fast_path_events import push_metadata
from reverse_sync.erp_intake import sync_intake
from reverse_sync.prices import PRICE_STATE_ENTITY, sync_prices
from reverse_sync.stock import STOCK_STATE_ENTITY, sync_stock

SERVING_COPY = dg.AssetKey("serving_copy")
WAREHOUSE_STEP = "warehouse"  # the dbt build's step
Item = tuple[str, str]  # (source or channel, entity or pushed field)
PARTIAL_PARSE = "partial_parse.msgpack"  # dbt's parse state, reused by the next invocation when unchanged


LANDING_STEP = "land"
QUARANTINE_CHECK = "no_records_quarantined"


def ingest_asset_keys() -> list[dg.AssetKey]:
    """`<slug>/<entity>` for every entity the ingestion library knows (`ingestion.ENTITIES`)."""
    return [dg.AssetKey([source, entity]) for source, entities in ingestion.ENTITIES.items() for entity in entities]


def build_landing_asset(config: Config) -> dg.AssetsDefinition:
    """Every landed entity as one step (`land`) whose asset keys stay `<slug>/<entity>`: the sources land side by
    side, one thread per request budget (a source's entities one after another, Rakuten's per RMS API), D171. Any subset can be materialised (the schedules, the inbox sensor, the UI), and each entity reports its
    own materialisation and quarantine check as it lands."""
    specs = [
        dg.AssetSpec(
            key=key,
            group_name=f"land_{key.path[0]}",
            kinds={"python", "parquet"},
            description=f"{key.path[0]} {key.path[1]}, landed as immutable Parquet batches "
                        "(incremental, cursor from landed data).",
            skippable=True,
        )
        for key in ingest_asset_keys()
    ]
    check_specs = [
        dg.AssetCheckSpec(
            QUARANTINE_CHECK, asset=spec.key,
            description="Every record of the batch landed; a WARN lists how many went to quarantine and why "
                        "(they are kept with their raw text and reason: mart_ingest_quarantine).",
        )
        for spec in specs
    ]

    @dg.multi_asset(
        name=LANDING_STEP,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        # Runs that land at the same time queue here: two landing steps at once at most (the instance's pool
        # limit), so overlapping runs cannot multiply a channel's request rate beyond that.
        pool="landing",
    )
    def land(context: dg.AssetExecutionContext) -> Iterator[Any]:
        if run_builds_warehouse(context):
            warm_dbt.start(context.run.run_id, DBT_PROJECT_DIR)  # dbt imports while the sources land (D173)
        wanted = [tuple(key.path) for key in ingest_asset_keys() if key in context.selected_asset_keys]
        landed = run_side_by_side(wanted, budget=lambda item: ingestion.budget(*item),
                                  work=lambda item: ingestion.ingest(config, *item))
        # What lands is recorded as it lands; if any entity failed, the step fails after the others so nothing
        # downstream builds on a partial landing (and the warm dbt process waiting for that build ends).
        for (source, entity), outcome, seconds in succeeded(
                context, landed, name=lambda item: "/".join(item), failed="of the selected entities did not land",
                before_failing=lambda: warm_dbt.stop(context.run.run_id)):
            key = dg.AssetKey([source, entity])
            context.log.info(f"{source}/{entity}: landed {outcome.rows_landed} rows, "
                             f"quarantined {outcome.rows_quarantined}")
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "rows_landed": outcome.rows_landed,
                    "rows_quarantined": outcome.rows_quarantined,
                    "batch_id": outcome.batch_id or "",
                    "cursor_to": str(outcome.cursor_to or ""),
                    "seconds": round(seconds, 3),
                },
                check_results=[quarantine_check(outcome, key)],
            )

    return land


def run_builds_warehouse(context: dg.AssetExecutionContext) -> bool:
    """Whether the dbt build (the `warehouse` step) is part of this run: a run of a subset of assets executes a
    job holding only the steps of that subset."""
    return context.job_def.has_node_named(WAREHOUSE_STEP)


def run_side_by_side(wanted: list[Item], budget: Callable[[Item], str], work: Callable[[Item], Any]
                     ) -> Iterator[tuple[Item, Any, float]]:
    """Run `work(item)` for every wanted item: one thread per request budget (`budget(item)`: a source, a channel,
    or one of Rakuten's APIs), the items of one budget one after another in the given order, so side by side
    they exceed no budget. Yields (item, result or the exception it raised, seconds it took) as each finishes; an
    item that fails does not stop the others."""
    groups: dict[str, list[Item]] = {}
    for item in wanted:
        groups.setdefault(budget(item), []).append(item)
    finished: queue.Queue = queue.Queue()

    def run_group(items: list[Item]) -> None:
        for item in items:
            started = time.perf_counter()
            try:
                outcome = work(item)
            except Exception as exc:  # noqa: BLE001 - reported per item by the caller
                outcome = exc
            finished.put((item, outcome, time.perf_counter() - started))

    with ThreadPoolExecutor(max_workers=max(1, len(groups)), thread_name_prefix="side-by-side") as pool:
        for items in groups.values():
            pool.submit(run_group, items)
        for _ in range(len(wanted)):
            yield finished.get()


def succeeded(context: dg.AssetExecutionContext, outcomes: Iterator[tuple[Item, Any, float]],
              name: Callable[[Item], str], failed: str,
              before_failing: Callable[[], None] | None = None) -> Iterator[tuple[Item, Any, float]]:
    """The items of run_side_by_side that succeeded, as they finish. Each failure is logged; once every item has
    finished, the step fails with all of them (`<n> <failed>: …`), after `before_failing`."""
    failures: list[str] = []
    for item, outcome, seconds in outcomes:
        if isinstance(outcome, Exception):
            context.log.error(f"{name(item)}: {type(outcome).__name__}: {outcome}")
            failures.append(f"{name(item)}: {outcome}")
            continue
        yield item, outcome, seconds
    if failures:
        if before_failing is not None:
            before_failing()
        raise dg.Failure(description=f"{len(failures)} {failed}: " + "; ".join(failures))


def quarantine_check(result: ingestion.IngestResult, key: dg.AssetKey) -> dg.AssetCheckResult:
    """Passed when nothing was quarantined; otherwise a warning (the batch still landed) with the reasons."""
    reasons: dict[str, int] = {}
    if result.quarantine_path is not None and result.quarantine_path.exists():
        for reason in pl.read_parquet(result.quarantine_path, columns=["reason"])["reason"].to_list():
            reasons[reason] = reasons.get(reason, 0) + 1
    top = dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:10])
    return dg.AssetCheckResult(
        check_name=QUARANTINE_CHECK,
        asset_key=key,
        passed=result.rows_quarantined == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows_quarantined": result.rows_quarantined,
            "rows_landed": result.rows_landed,
            "quarantine_file": str(result.quarantine_path or ""),
            "reasons": dg.MetadataValue.json(top),
        },
    )


class IchigenDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: dict[str, Any]) -> dg.AssetKey:
        # Models and seeds by their own (unique) name; sources keep `<slug>/<entity>`, the landing assets' keys.
        if dbt_resource_props.get("resource_type") in ("model", "seed", "snapshot"):
            return dg.AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: dict[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "seed":
            return "dbt_seeds"
        fqn = dbt_resource_props.get("fqn", [])
        layer = fqn[1] if len(fqn) > 2 else "warehouse"
        return f"dbt_{layer}"


class IchigenDbtCli(DbtCliResource):
    """dagster-dbt's CLI resource without its in-process dbt adapter. dagster-dbt builds that adapter (importing
    dbt and loading the profile in the orchestrating process: measured ≈ 4.5 CPU s per run) only to serve
    `fetch_row_counts` / `fetch_column_metadata`, which the warehouse asset does not use; the build itself runs
    in dbt's own subprocess either way."""

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ANN202 - dagster-dbt's private hook
        return None

    @cached_property
    def _cli_version(self) -> Version:
        """dbt-core's installed version, read from the package metadata. dagster-dbt runs `dbt --version` (a whole
        dbt start-up: measured 3.8 s wall, 2.3 CPU s) once per resource, i.e. once per run, to learn it (D170)."""
        return Version(importlib.metadata.version("dbt-core"))


def build_dbt_assets(config: Config, project: DbtProject) -> dg.AssetsDefinition:
    translator = IchigenDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    @dbt_assets(name=WAREHOUSE_STEP, manifest=project.manifest_path, project=project,
                dagster_dbt_translator=translator)
    def warehouse(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        export_dbt_env(config)
        target = build_target_path(context.run.run_id)
        reuse_parse(target)
        # The whole build reads the landing zone's `**/*.parquet` globs: it holds the landing read lock throughout,
        # so a compaction removes no batch a model has listed (it waits for the build, or leaves it, D160–D161).
        with LandingZone(config.landing_dir).reading("dbt build") as hold, warm_dbt.offered(context.run.run_id):
            if hold.waited_seconds > 0.5:
                context.log.info(f"waited {hold.waited_seconds:.2f} s for the landing read lock")
            # (no unit tests, no debug log file: PRODUCTION_BUILD_ARGS says why)
            invocation = dbt.cli(list(PRODUCTION_BUILD_ARGS), context=context, target_path=target,
                                 raise_on_error=False)
            yield from invocation.stream()
        keep_parse(target)
        report = BuildReport.from_run_results(invocation.get_artifact("run_results.json"))
        record_build(config.warehouse_path, report)
        if not report.success:
            raise dg.Failure(
                description=f"dbt build failed: {report.tests_failed} tests failed, {report.errors} errors; "
                "the serving copy was not replaced",
                metadata={"failures": dg.MetadataValue.json(list(report.failures))},
            )

    return warehouse


def build_target_path(run_id: str) -> Path:
    """This build's own dbt target folder (dagster-dbt's naming: `<op>-<run id[:7]>-<unique>`), absolute."""
    return DBT_PROJECT_DIR / "target" / f"warehouse-{run_id[:7]}-{uuid.uuid4().hex[:7]}"


def reuse_parse(target: Path) -> None:
    """Start the build from the last parse of this project (dbt's partial parsing): a fresh target folder has
    no `partial_parse.msgpack`, so every build re-parsed the whole project (measured ≈ 5 of 13 CPU seconds of
    a build's start-up). dbt itself re-parses whatever changed since — files, env vars, profile."""
    kept = DBT_PROJECT_DIR / DBT_TARGET_PATH / PARTIAL_PARSE
    if kept.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, target / PARTIAL_PARSE)


def keep_parse(target: Path) -> None:
    """Keep this build's parse for the next build (atomically: builds in other processes may read it)."""
    fresh = target / PARTIAL_PARSE
    if not fresh.exists():
        return
    kept = DBT_PROJECT_DIR / DBT_TARGET_PATH / PARTIAL_PARSE
    kept.parent.mkdir(parents=True, exist_ok=True)
    tmp = kept.with_name(f".{PARTIAL_PARSE}.{uuid.uuid4().hex[:8]}.tmp")
    shutil.copyfile(fresh, tmp)
    os.replace(tmp, kept)


def build_publish_asset(config: Config, dbt_asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=SERVING_COPY,
        deps=list(dbt_asset.keys),
        group_name="publish",
        kinds={"duckdb"},
        description="Read-only serving copy of the warehouse, swapped in only after a build whose tests passed.",
    )
    def serving_copy(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        report = last_build(config.warehouse_path)
        if report is None:
            raise dg.Failure("no dbt build has been recorded yet; nothing to publish")
        try:
            manifest = publish(config.warehouse_path, config.serving_path, report)
        except PublishRefused as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(f"published version {manifest['version']}")
        return dg.MaterializeResult(
            metadata={
                "version": manifest["version"],
                "models_built": report.models_built,
                "tests_passed": report.tests_passed,
                "tests_failed": report.tests_failed,
                "path": str(config.serving_path),
            }
        )

    return serving_copy


SYNC_STEP = "reverse_sync"
PUSHES = {"stock": (sync_stock, STOCK_STATE_ENTITY), "price": (sync_prices, PRICE_STATE_ENTITY)}


def build_sync_asset(config: Config, channels: list[str]) -> dg.AssetsDefinition:
    """Stock and price targets to every channel as one step (`reverse_sync`) whose asset keys stay
    `<channel>/stock_push` and `<channel>/price_push`: plan → guard rails → push → push log. Channels push side by
    side, one thread per request budget; a channel's stock goes before its prices where they share one, D174."""
    specs = [
        dg.AssetSpec(
            key=dg.AssetKey([channel, f"{field}_push"]),
            deps=[SERVING_COPY, dg.AssetKey([channel, state_entity[channel]])],
            group_name=f"sync_{channel}",
            kinds={"python"},
            description=f"Reverse sync of {field} targets to {channel}: plan → guard rails → push → push log.",
            skippable=True,
        )
        for channel in channels
        for field, (_, state_entity) in PUSHES.items()
    ]

    @dg.multi_asset(name=SYNC_STEP, specs=specs, can_subset=True, pool="reverse_sync")
    def reverse_sync(context: dg.AssetExecutionContext) -> Iterator[Any]:
        wanted = [(spec.key.path[0], spec.key.path[1].removesuffix("_push"))
                  for spec in specs if spec.key in context.selected_asset_keys]
        # A push draws on the budget of the channel state it reads (Rakuten: stock → inventory API, prices →
        # items API, side by side; elsewhere the channel's, stock before prices).
        pushed = run_side_by_side(
            wanted, budget=lambda item: ingestion.budget(item[0], PUSHES[item[1]][1][item[0]]),
            work=lambda item: PUSHES[item[1]][0](config, item[0]))
        for (channel, field), outcome, seconds in succeeded(
                context, pushed, name=lambda item: f"{item[0]} {item[1]} push", failed="of the selected pushes failed"):
            for reason in outcome.verdict.reasons if not outcome.verdict.allowed else ():
                context.log.warning(reason)
            yield dg.MaterializeResult(asset_key=dg.AssetKey([channel, f"{field}_push"]),
                                       metadata={**push_metadata(outcome), "seconds": round(seconds, 3)})

    return reverse_sync


def build_erp_intake_asset(config: Config) -> dg.AssetsDefinition:
    """`erp/intake_post`: not `erp/order_intake`, which is the landed intake markers (ingestion) that the next
    build reads; depending on it would close a cycle, as for the push log (DECISIONS.md D40)."""

    @dg.asset(
        key=dg.AssetKey(["erp", "intake_post"]),
        deps=[SERVING_COPY],
        group_name="sync_erp",
        kinds={"python"},
        description="ERP order intake (受注連携): new channel orders and customers posted once per version.",
        pool="channel_erp",
    )
    def intake_post(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        result = sync_intake(config)
        for reason in result.verdict.reasons:
            context.log.warning(reason)
        return dg.MaterializeResult(
            metadata={
                "run_id": result.run_id,
                "planned": len(result.plan.orders),
                "posted": len(result.posted),
                "held": len(result.plan.held),
                "failed": len(result.failed),
                "guard_rails": dg.MetadataValue.json(list(result.verdict.reasons)),
            }
        )

    return intake_post
