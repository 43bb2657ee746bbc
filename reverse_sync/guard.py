"""Guard rails: a plan that breaks one is refused whole and pushes nothing.

Every refusal names what was refused and why, so the dashboards and Dagster can show it to a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ichigen.config import GuardRailsConfig
from ichigen.publish import BuildReport
from reverse_sync.plan import Plan
from reverse_sync.push_log import PushRecord


@dataclass(frozen=True)
class GuardVerdict:
    allowed: bool
    reasons: tuple[str, ...] = field(default_factory=tuple)


def freshness_reasons(
    where: str,
    published_at: datetime | None,
    rails: GuardRailsConfig,
    last_build: BuildReport | None,
    now: datetime,
) -> list[str]:
    """Why the published serving copy cannot be trusted right now (a failed last build, missing, stale)."""
    reasons: list[str] = []
    if last_build is not None and not last_build.success:
        reasons.append(
            f"{where}: the last dbt build failed ({last_build.tests_failed} failed tests, "
            f"{last_build.errors} errors) — targets cannot be trusted until a build passes"
        )
    if published_at is None:
        reasons.append(f"{where}: no published targets")
    else:
        age_min = (now - published_at).total_seconds() / 60
        if age_min > rails.max_target_age_minutes:
            reasons.append(
                f"{where}: targets are stale ({age_min:.0f} min old, limit "
                f"guard_rails.max_target_age_minutes = {rails.max_target_age_minutes})"
            )
    return reasons


def check_plan(
    plan: Plan,
    rails: GuardRailsConfig,
    last_build: BuildReport | None,
    now: datetime | None = None,
) -> GuardVerdict:
    now = now or datetime.now(UTC)
    reasons: list[str] = []
    where = f"{plan.channel} {plan.field} plan {plan.run_id}"

    reasons += freshness_reasons(where, plan.targets_published_at, rails, last_build, now)

    negatives = [c for c in plan.changes if c.new_value < 0]
    if negatives:
        shown = ", ".join(f"{c.sku}={c.new_value}" for c in negatives[:5])
        reasons.append(f"{where}: {len(negatives)} negative quantities ({shown})")
    if plan.field == "price":
        free = [c for c in plan.changes if c.new_value == 0]
        if free:
            shown = ", ".join(c.sku for c in free[:5])
            reasons.append(f"{where}: {len(free)} prices would become 0 JPY ({shown})")
        absurd = [c for c in plan.changes if c.new_value > rails.max_price_jpy]
        limit = f"guard_rails.max_price_jpy = {rails.max_price_jpy:,}"
    else:
        absurd = [c for c in plan.changes if c.new_value > rails.max_quantity]
        limit = f"guard_rails.max_quantity = {rails.max_quantity}"
    if absurd:
        shown = ", ".join(f"{c.sku}={c.new_value}" for c in absurd[:5])
        reasons.append(f"{where}: {len(absurd)} {plan.field} values above {limit} ({shown})")

    if plan.field == "stock" and plan.listed:
        zeroed = [c for c in plan.changes if c.new_value == 0 and c.old_value > 0]
        fraction = len(zeroed) / plan.listed
        if fraction > rails.max_zeroed_fraction:
            reasons.append(
                f"{where}: would zero {len(zeroed)} of {plan.listed} listed SKUs ({fraction:.0%}), more than "
                f"guard_rails.max_zeroed_fraction = {rails.max_zeroed_fraction:.0%}"
            )

    if plan.field == "price":
        moved = [
            c
            for c in plan.changes
            if c.old_value > 0 and abs(c.new_value - c.old_value) / c.old_value > rails.max_price_change_fraction
        ]
        if moved:
            shown = ", ".join(f"{c.sku} {c.old_value}→{c.new_value}" for c in moved[:5])
            reasons.append(
                f"{where}: {len(moved)} prices move by more than guard_rails.max_price_change_fraction = "
                f"{rails.max_price_change_fraction:.0%} ({shown})"
            )

    return GuardVerdict(allowed=not reasons, reasons=tuple(reasons))


def unpushed_records(plan: Plan, verdict: GuardVerdict) -> list[PushRecord]:
    """The push-log rows of a plan that is not pushed: `dry_run` rows (which the planner ignores, so a dry run
    advances no state) or, when the guard refused the plan, `refused` rows carrying every reason."""
    status = "dry_run" if verdict.allowed else "refused"
    error = None if verdict.allowed else " | ".join(verdict.reasons)
    return [
        PushRecord(plan.run_id, c.channel, c.field, c.sku, c.target_ref, c.old_value, c.new_value,
                   status, error, plan.planned_at, None, 0)
        for c in plan.changes
    ]
