"""The Iceberg catalog shared by Spark (JDBC catalog) and Python (pyiceberg SqlCatalog)."""
from __future__ import annotations

from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform, MonthTransform, Transform, YearTransform

from schemas.derive import iceberg_schema
from schemas.models import BacktestRun, BacktestTrade, Bar, EquityPoint, MinuteBar, QuarantinedRecord, TradeRow
from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.timeframes import DAY_SECONDS, rollup_seconds


def catalog(settings: Settings) -> SqlCatalog:
    ice = settings.iceberg
    ice.catalog_db.parent.mkdir(parents=True, exist_ok=True)
    ice.warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(ice.catalog_name, uri=ice.sqlalchemy_uri, warehouse=ice.warehouse_uri)


def time_partitioning(schema, time_column: str, transform: Transform = DayTransform()) -> PartitionSpec:
    field = schema.find_field(time_column)
    unit = type(transform).__name__.removesuffix("Transform").lower()
    return PartitionSpec(
        PartitionField(source_id=field.field_id, field_id=1000, transform=transform, name=f"{time_column}_{unit}")
    )


def _rollup_transform(timeframe: str) -> Transform:
    """About a file's worth of bars per partition: days of 5-minute bars, months of hourly, years of daily."""
    length = rollup_seconds(timeframe)
    return DayTransform() if length < 3600 else MonthTransform() if length < DAY_SECONDS else YearTransform()


def identifier(settings: Settings, table: str) -> str:
    """The lake's name of ``table``: ``namespace.table`` (Spark prefixes its catalog, jobs.session.iceberg_table)."""
    return f"{settings.iceberg.namespace}.{table}"


def rollup_identifier(settings: Settings, timeframe: str) -> str:
    return identifier(settings, settings.iceberg.rollup_tables[timeframe])


def table_specs(settings: Settings) -> dict[str, tuple]:
    """Identifier -> (schema, partition spec) of every lake table."""
    ice = settings.iceberg
    trades, minute_bars, bars = iceberg_schema(TradeRow), iceberg_schema(MinuteBar), iceberg_schema(Bar)
    quarantine = iceberg_schema(QuarantinedRecord)
    specs = {
        identifier(settings, ice.trades_table): (trades, time_partitioning(trades, "trade_ts")),
        identifier(settings, ice.bars_table): (minute_bars, time_partitioning(minute_bars, "window_start")),
        identifier(settings, ice.quarantine_table): (quarantine, time_partitioning(quarantine, "quarantined_at")),
    }
    for timeframe in ice.rollup_tables:
        specs[rollup_identifier(settings, timeframe)] = (bars, time_partitioning(bars, "window_start",
                                                                          _rollup_transform(timeframe)))
    return specs


def table_properties(settings: Settings) -> dict[str, str]:
    """Properties of every lake table: each commit writes a new metadata file; keep only the
    newest few (a streaming job commits every few seconds)."""
    return {
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": str(settings.maintenance.metadata_versions_kept),
    }


def ensure_table(cat: Catalog, identifier: str, schema: Schema, spec: PartitionSpec,
                 properties: dict[str, str] | None = None) -> Table:
    """Create the table, or evolve an existing one to ``schema`` and ``properties``.

    Evolution is by name and only ever widens: a field of ``schema`` the table lacks becomes
    a new optional column (a metadata change: no data file is rewritten, old snapshots keep
    reading with the schema they were written with, old rows read the new column as null);
    a column the schema no longer has stays in the table.
    """
    properties = properties or {}
    table = cat.create_table_if_not_exists(identifier, schema=schema, partition_spec=spec, properties=properties)
    if any(table.properties.get(key) != value for key, value in properties.items()):
        with table.transaction() as transaction:
            transaction.set_properties(properties)
    if _shape(schema) <= _shape(table.schema()):
        return table
    try:
        with table.update_schema() as update:
            update.union_by_name(schema)
    except ValueError as error:
        raise UserError(
            f"cannot evolve the lake table {identifier}: {error}. A field added to a model in schemas/ "
            "must be optional (`name: type | None = None`), and a type can only widen (int to long, "
            "float to double)"
        ) from None
    return table


def _shape(schema: Schema) -> set[tuple[str, str, bool]]:
    return {(field.name, str(field.field_type), field.required) for field in schema.fields}


def ensure_tables(settings: Settings) -> list[Table]:
    cat = catalog(settings)
    cat.create_namespace_if_not_exists(settings.iceberg.namespace)
    properties = table_properties(settings)
    return [ensure_table(cat, identifier, schema, spec, properties)
            for identifier, (schema, spec) in table_specs(settings).items()]


def backtest_table_specs(settings: Settings) -> dict[str, tuple]:
    """Identifier -> (schema, partition spec) of the backtest result tables (unpartitioned: small,
    read by run id)."""
    bt = settings.backtest
    return {
        identifier(settings, table): (iceberg_schema(model), PartitionSpec())
        for table, model in ((bt.runs_table, BacktestRun), (bt.trades_table, BacktestTrade),
                             (bt.equity_table, EquityPoint))
    }


def ensure_backtest_tables(settings: Settings) -> None:
    cat = catalog(settings)
    cat.create_namespace_if_not_exists(settings.iceberg.namespace)
    properties = table_properties(settings)
    for identifier, (schema, spec) in backtest_table_specs(settings).items():
        ensure_table(cat, identifier, schema, spec, properties)
