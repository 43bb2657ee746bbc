"""Thin Dagster assets over the plain libraries: ingest → dbt build → publish → reverse sync.

Asset keys follow the one-slug rule: `<slug>/<entity>` for landed data (the same keys dagster-dbt gives the
dbt sources, so lineage from landing into staging is automatic), dbt models by model name, `serving_copy`
for the published warehouse, `<slug>/stock_push` for a channel's reverse sync.
"""


import os
import shutil
import uuid
from collections.abc import Iterator
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

import ingestion
from ichigen.config import Config
from ichigen.publish import BuildReport, PublishRefused, last_build, publish, record_build
from ichigen.warehouse import DBT_PROJECT_DIR, DBT_TARGET_PATH, export_dbt_env
from ingestion.landing import LandingZone
from orchestration.fast_path_events import push_metadata
from reverse_sync.erp_intake import sync_intake
from reverse_sync.prices import PRICE_STATE_ENTITY, sync_prices
from reverse_sync.stock import STOCK_STATE_ENTITY, sync_stock

SERVING_COPY = dg.AssetKey("serving_copy")
PARTIAL_PARSE = "partial_parse.msgpack"  # dbt's parse state, reused by the next invocation when unchanged


def build_ingest_assets(config: Config) -> list[dg.AssetsDefinition]:
    """One asset per source/entity the ingestion library knows (`ingestion.ENTITIES`)."""
    assets = []
    for source, entities in ingestion.ENTITIES.items():
        for entity in entities:
            assets.append(_ingest_asset(config, source, entity))
    return assets


QUARANTINE_CHECK = "no_records_quarantined"


def _ingest_asset(config: Config, source: str, entity: str) -> dg.AssetsDefinition:
    key = dg.AssetKey([source, entity])

    @dg.asset(
        key=key,
        group_name=f"land_{source}",
        kinds={"python", "parquet"},
        description=f"{source} {entity}, landed as immutable Parquet batches (incremental, cursor from landed data).",
        pool=f"channel_{source}",  # one budget per channel: runs queue instead of exceeding it
        check_specs=[dg.AssetCheckSpec(
            QUARANTINE_CHECK, asset=key,
            description="Every record of the batch landed; a WARN lists how many went to quarantine and why "
                        "(they are kept with their raw text and reason: mart_ingest_quarantine).",
        )],
    )
    def _ingest(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        result = ingestion.ingest(config, source, entity)
        context.log.info(
            f"{source}/{entity}: landed {result.rows_landed} rows, quarantined {result.rows_quarantined}"
        )
        return dg.MaterializeResult(
            metadata={
                "rows_landed": result.rows_landed,
                "rows_quarantined": result.rows_quarantined,
                "batch_id": result.batch_id or "",
                "cursor_to": str(result.cursor_to or ""),
            },
            check_results=[quarantine_check(result)],
        )

    return _ingest


def quarantine_check(result: ingestion.IngestResult) -> dg.AssetCheckResult:
    """Passed when nothing was quarantined; otherwise a warning (the batch still landed) with the reasons."""
    reasons: dict[str, int] = {}
    if result.quarantine_path is not None and result.quarantine_path.exists():
        for reason in pl.read_parquet(result.quarantine_path, columns=["reason"])["reason"].to_list():
            reasons[reason] = reasons.get(reason, 0) + 1
    top = dict(sorted(reasons.items(), key=lambda kv: -kv[1])[:10])
    return dg.AssetCheckResult(
        check_name=QUARANTINE_CHECK,
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


def build_dbt_assets(config: Config, project: DbtProject) -> dg.AssetsDefinition:
    translator = IchigenDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    @dbt_assets(manifest=project.manifest_path, project=project, dagster_dbt_translator=translator)
    def warehouse(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        export_dbt_env(config)
        target = build_target_path(context.run.run_id)
        reuse_parse(target)
        # The whole build reads the landing zone's `**/*.parquet` globs: it holds the landing read lock throughout,
        # so a compaction removes no batch a model has listed (it waits for the build, or leaves it, D160–D161).
        with LandingZone(config.landing_dir).reading("dbt build") as hold:
            if hold.waited_seconds > 0.5:
                context.log.info(f"waited {hold.waited_seconds:.2f} s for the landing read lock")
            # Unit tests check logic, not data: they run in CI (tests/dbt), not in every production cycle.
            invocation = dbt.cli(["build", "--exclude-resource-type", "unit_test"], context=context,
                                 target_path=target, raise_on_error=False)
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


def build_stock_push_asset(config: Config, channel: str) -> dg.AssetsDefinition:
    """Stock targets to a channel; reads the channel's landed stock levels."""
    return _push_asset(config, channel, "stock", sync_stock, STOCK_STATE_ENTITY[channel])


def build_price_push_asset(config: Config, channel: str) -> dg.AssetsDefinition:
    """Price targets to a channel; reads the channel's landed listings (their current price)."""
    return _push_asset(config, channel, "price", sync_prices, PRICE_STATE_ENTITY[channel])


def _push_asset(config: Config, channel: str, field: str, sync: Any, state_entity: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey([channel, f"{field}_push"]),
        deps=[SERVING_COPY, dg.AssetKey([channel, state_entity])],
        group_name=f"sync_{channel}",
        kinds={"python"},
        description=f"Reverse sync of {field} targets to {channel}: plan → guard rails → push → push log.",
        pool=f"channel_{channel}",
    )
    def push(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        result = sync(config, channel)
        if not result.verdict.allowed:
            for reason in result.verdict.reasons:
                context.log.warning(reason)
        return dg.MaterializeResult(metadata=push_metadata(result))

    return push


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
