"""The production Dagster instance (orchestration/instance/dagster.prod.yaml) runs on PostgreSQL.

GIVEN a fresh PostgreSQL database and the production dagster.yaml WHEN an ingest asset is materialised
THEN the run and its materialisation are stored in PostgreSQL.
"""

import shutil
from urllib.parse import urlparse

import dagster as dg
import psycopg

from ichigen.cycle import INSTANCE_TEMPLATE
from orchestration.assets import build_landing_asset
from sandbox.erp import write_sqlite
from sandbox.world import World

PROD_YAML = INSTANCE_TEMPLATE.with_name("dagster.prod.yaml")


def test_an_asset_materialises_with_the_instance_on_postgres(tmp_path, tmp_config, pg_database, monkeypatch):
    dsn = urlparse(pg_database)
    for var, value in {"DAGSTER_PG_HOST": dsn.hostname, "DAGSTER_PG_PORT": str(dsn.port),
                       "DAGSTER_PG_USER": dsn.username, "DAGSTER_PG_PASSWORD": "",
                       "DAGSTER_PG_DB": dsn.path.lstrip("/")}.items():
        monkeypatch.setenv(var, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROD_YAML, home / "dagster.yaml")

    world = World.generate(seed=3, skus=10, customers=10, history_days=2, orders_per_day=5)
    write_sqlite(world, tmp_config.erp_sqlite_path)
    landing = build_landing_asset(tmp_config)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize([landing], instance=instance, selection=[dg.AssetKey(["erp", "warehouses"])])
        assert result.success
        run_id = result.run_id

    with psycopg.connect(pg_database) as con:
        assert con.execute("select count(*) from runs where run_id = %s", [run_id]).fetchone()[0] == 1
        stored = con.execute(
            "select count(*) from event_logs where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
            [run_id],
        ).fetchone()[0]
        assert stored == 1
