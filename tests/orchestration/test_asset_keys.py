"""A rename of any asset or check is a visible diff: the sorted keys are snapshotted in asset_keys.txt.

Regenerate after a deliberate change with: UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/orchestration/test_asset_keys.py
"""

import os
from pathlib import Path

from orchestration.definitions import build_definitions

SNAPSHOT = Path(__file__).with_name("asset_keys.txt")


def current_keys(config) -> list[str]:
    defs = build_definitions(config)
    graph = defs.resolve_asset_graph()
    keys = [f"asset {k.to_user_string()}" for k in graph.get_all_asset_keys()]
    keys += [f"check {c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys]
    keys += [f"job {j.name}" for j in defs.resolve_all_job_defs() if not j.name.startswith("__")]
    keys += [f"schedule {s.name}" for s in defs.schedules or []]
    return sorted(keys)


def test_asset_keys_match_the_snapshot(tmp_config):
    keys = current_keys(tmp_config)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text("\n".join(keys) + "\n")
    expected = SNAPSHOT.read_text().splitlines()
    added, removed = sorted(set(keys) - set(expected)), sorted(set(expected) - set(keys))
    assert not added and not removed, f"asset keys changed:\n+ {added}\n- {removed}"


def test_every_source_asset_key_uses_its_slug(tmp_config):
    from ichigen.config import SLUGS

    keys = [k for k in current_keys(tmp_config) if k.startswith("asset ") and "/" in k]
    for key in keys:
        slug = key.split(" ", 1)[1].split("/")[0]
        assert slug in SLUGS, f"{key}: first part must be a source slug"
