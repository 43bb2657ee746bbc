"""The data dictionary for the SQL page: every dbt model and column with its description.

Read from dbt's `manifest.json` — the product build's (`dbt_project/target/ichigen/manifest.json`), else a hand
run's (`dbt_project/target/manifest.json`), or `$ICHIGEN_DBT_MANIFEST`. Column types come from the serving
copy itself (`information_schema.columns`), which is also the whole dictionary when no manifest is found.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV_MANIFEST = "ICHIGEN_DBT_MANIFEST"
MANIFEST_CANDIDATES = (
    ROOT / "dbt_project" / "target" / "ichigen" / "manifest.json",
    ROOT / "dbt_project" / "target" / "manifest.json",
)
LAYERS = ("marts", "intermediate", "staging", "other")  # display order

COLUMNS_SQL = """
select table_schema, table_name, column_name, data_type
from information_schema.columns
where table_catalog = current_database()
order by table_schema, table_name, ordinal_position
"""


@dataclass
class Column:
    name: str
    type: str = ""
    description: str = ""


@dataclass
class Model:
    layer: str
    schema: str
    name: str
    description: str = ""
    columns: list[Column] = field(default_factory=list)

    @property
    def relation(self) -> str:
        """How to name it in SQL on the serving copy (marts live in `main`, the default schema)."""
        return self.name if self.schema == "main" else f"{self.schema}.{self.name}"


def manifest_path() -> Path | None:
    override = os.environ.get(ENV_MANIFEST)
    if override:
        path = Path(override)
        return path if path.is_file() else None
    return next((p for p in MANIFEST_CANDIDATES if p.is_file()), None)


def layer_of(fqn: list[str]) -> str:
    return fqn[1] if len(fqn) > 2 and fqn[1] in LAYERS else "other"


def from_manifest(text: str, types: dict[tuple[str, str], dict[str, str]]) -> list[Model]:
    """Models from a manifest's JSON text; `types` maps (schema, table) to {column: type} from the copy."""
    manifest = json.loads(text)
    models: list[Model] = []
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model":
            continue
        schema, name = node.get("schema") or "main", node.get("alias") or node["name"]
        known = types.get((schema, name), {})
        documented = node.get("columns") or {}
        columns = [
            Column(
                c["name"],
                known.get(c["name"], c.get("data_type") or ""),
                (c.get("description") or "").strip(),
            )
            for c in documented.values()
        ]
        # columns the copy has that the docs do not describe still belong in a dictionary
        columns += [Column(col, typ) for col, typ in known.items() if col not in documented]
        models.append(
            Model(
                layer_of(node.get("fqn", [])), schema, name, (node.get("description") or "").strip(), columns
            )
        )
    return sort(models)


def from_schema(types: dict[tuple[str, str], dict[str, str]]) -> list[Model]:
    models = []
    for (schema, name), cols in types.items():
        layer = "marts" if schema == "main" else schema if schema in LAYERS else "other"
        models.append(Model(layer, schema, name, "", [Column(c, t) for c, t in cols.items()]))
    return sort(models)


def sort(models: list[Model]) -> list[Model]:
    return sorted(models, key=lambda m: (LAYERS.index(m.layer), m.name))


def types_by_table(rows: list[tuple[str, str, str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    out: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, typ in rows:
        out.setdefault((schema, table), {})[column] = typ
    return out
