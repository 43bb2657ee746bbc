"""The inbox sensor: waiting files → a run request for exactly their file source; after the ingest asset has
run (in-process, for real) the inbox is empty and the sensor skips."""

from __future__ import annotations

import dagster as dg

from orchestration.assets import LANDING_STEP, build_landing_asset
from orchestration.inbox_sensor import build_inbox_sensor, file_asset_keys

CARRIER_CSV = "お客様管理番号,送り状番号,出荷日,配達予定日\r\nSHOP-1001,123456789013,2026/11/22,2026/11/24\r\n"


def test_sensor_requests_the_asset_of_the_waiting_files_then_skips(tmp_config):
    config = tmp_config.with_overrides(**{"paths.inbox": "inbox", "files.settle_seconds": 0})
    sensor = build_inbox_sensor(config)
    with dg.instance_for_test() as instance:
        empty = sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(empty, dg.SkipReason)

        folder = config.inbox_dir / "carrier" / "trackings"
        folder.mkdir(parents=True)
        (folder / "B2_20261122.csv").write_bytes(CARRIER_CSV.encode("cp932"))
        result = sensor(dg.build_sensor_context(instance=instance))
        assert [r.asset_selection for r in result.run_requests] == [[dg.AssetKey(["carrier", "trackings"])]]
        again = sensor(dg.build_sensor_context(instance=instance))
        assert again.run_requests[0].run_key == result.run_requests[0].run_key  # same files, same key

        landing = build_landing_asset(config)
        assert set(file_asset_keys()) <= landing.keys
        run = dg.materialize([landing], instance=instance, selection=result.run_requests[0].asset_selection)
        assert run.success
        (materialization,) = run.asset_materializations_for_node(LANDING_STEP)
        assert materialization.asset_key == dg.AssetKey(["carrier", "trackings"])
        assert materialization.metadata["rows_landed"].value == 1
        assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
