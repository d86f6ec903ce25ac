"""Lake tables follow the models in schemas/: a new optional field becomes a new column,
without rewriting data, and old snapshots still read with their own schema."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from schemas.derive import iceberg_schema
from schemas.models import Bar
from ticklake import lake
from tests.lake_rows import append, bar, trade
from ticklake.errors import UserError

pytestmark = pytest.mark.integration

T = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


class BarWithVenue(Bar):
    """Bar as it would be after someone adds an optional field to the model."""

    venue: str | None = None


class BarWithRequiredVenue(Bar):
    venue: str


def data_files(table) -> set[str]:
    return {task.file.file_path for task in table.scan().plan_files()}


def test_a_new_optional_model_field_becomes_a_column_without_rewriting_data(lake_settings):
    cat = lake.catalog(lake_settings)
    cat.create_namespace_if_not_exists(lake_settings.iceberg.namespace)
    identifier = f"{lake_settings.iceberg.namespace}.evolving_bars"
    spec = lake.table_specs(lake_settings)[f"{lake_settings.iceberg.namespace}.{lake_settings.iceberg.bars_table}"][1]

    table = lake.ensure_table(cat, identifier, iceberg_schema(Bar), spec)
    append(table, [bar("AAPL", T), bar("MSFT", T)])
    before = table.current_snapshot().snapshot_id
    files_before = data_files(table)

    table = lake.ensure_table(cat, identifier, iceberg_schema(BarWithVenue), spec)
    assert table.schema().find_field("venue").required is False
    assert table.current_snapshot().snapshot_id == before, "a schema change commits no data"
    assert data_files(table) == files_before

    append(table, [bar("AMZN", T, venue="XNAS")])
    old = table.scan(snapshot_id=before).to_arrow()
    assert old.column_names == list(Bar.model_fields) and old.num_rows == 2
    rows = {r["symbol"]: r for r in table.scan().to_arrow().to_pylist()}
    assert {s: r["venue"] for s, r in rows.items()} == {"AAPL": None, "MSFT": None, "AMZN": "XNAS"}
    assert files_before < data_files(table), "the old files are still the ones read"

    metadata = cat.load_table(identifier).metadata_location
    lake.ensure_table(cat, identifier, iceberg_schema(BarWithVenue), spec)
    assert cat.load_table(identifier).metadata_location == metadata, "an unchanged model changes nothing"


def test_a_required_new_field_is_refused_with_what_to_do(lake_settings):
    cat = lake.catalog(lake_settings)
    cat.create_namespace_if_not_exists(lake_settings.iceberg.namespace)
    identifier = f"{lake_settings.iceberg.namespace}.strict_bars"
    spec = lake.table_specs(lake_settings)[f"{lake_settings.iceberg.namespace}.{lake_settings.iceberg.bars_table}"][1]
    lake.ensure_table(cat, identifier, iceberg_schema(Bar), spec)
    with pytest.raises(UserError, match="must be optional"):
        lake.ensure_table(cat, identifier, iceberg_schema(BarWithRequiredVenue), spec)
    assert "venue" not in {f.name for f in cat.load_table(identifier).schema().fields}


def test_every_lake_table_is_created_once(lake_settings):
    tables = lake.ensure_tables(lake_settings)
    assert len(tables) == 3 + len(lake_settings.iceberg.rollup_tables)
    again = lake.ensure_tables(lake_settings)
    assert [t.metadata_location for t in again] == [t.metadata_location for t in tables]
    daily = lake.catalog(lake_settings).load_table(lake.rollup_identifier(lake_settings, "1d"))
    assert [f.name for f in daily.spec().fields] == ["window_start_year"]


def test_old_metadata_files_are_deleted_at_commit_also_on_tables_made_before(lake_settings):
    cat = lake.catalog(lake_settings)
    cat.create_namespace_if_not_exists(lake_settings.iceberg.namespace)
    identifier, (schema, spec) = next(iter(lake.table_specs(lake_settings).items()))
    cat.create_table(identifier, schema=schema, partition_spec=spec)  # as 'ticklake up' made it before
    settings = lake_settings.model_copy(update={"maintenance": lake_settings.maintenance.model_copy(
        update={"metadata_versions_kept": 2})})
    (table, *_) = lake.ensure_tables(settings)
    assert table.properties["write.metadata.delete-after-commit.enabled"] == "true"
    for second in range(8):
        append(table, [trade("AAPL", T.replace(second=second), second)])
    metadata = list(Path(table.metadata_location.removeprefix("file:")).parent.glob("*.metadata.json"))
    assert len(metadata) <= 2 + 2, "10 versions written: the current one, the 2 kept (and the one before)"
