"""The Iceberg catalog shared by Spark (JDBC catalog) and Python (pyiceberg SqlCatalog)."""
from __future__ import annotations

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform

from schemas.derive import iceberg_schema
from schemas.models import BacktestRun, BacktestTrade, Bar, EquityPoint, QuarantinedRecord, TradeRow
from ticklake.config import Settings


def catalog(settings: Settings) -> SqlCatalog:
    ice = settings.iceberg
    ice.catalog_db.parent.mkdir(parents=True, exist_ok=True)
    ice.warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(ice.catalog_name, uri=ice.sqlalchemy_uri, warehouse=ice.warehouse_uri)


def _day_spec(schema, time_column: str) -> PartitionSpec:
    field = schema.find_field(time_column)
    return PartitionSpec(
        PartitionField(source_id=field.field_id, field_id=1000, transform=DayTransform(), name=f"{time_column}_day")
    )


def table_specs(settings: Settings) -> dict[str, tuple]:
    """Identifier -> (schema, partition spec) of every lake table."""
    ice = settings.iceberg
    trades, bars = iceberg_schema(TradeRow), iceberg_schema(Bar)
    quarantine = iceberg_schema(QuarantinedRecord)
    return {
        f"{ice.namespace}.{ice.trades_table}": (trades, _day_spec(trades, "trade_ts")),
        f"{ice.namespace}.{ice.bars_table}": (bars, _day_spec(bars, "window_start")),
        f"{ice.namespace}.{ice.quarantine_table}": (quarantine, _day_spec(quarantine, "quarantined_at")),
    }


def ensure_tables(settings: Settings) -> list[Table]:
    cat = catalog(settings)
    cat.create_namespace_if_not_exists(settings.iceberg.namespace)
    return [
        cat.create_table_if_not_exists(identifier, schema=schema, partition_spec=spec)
        for identifier, (schema, spec) in table_specs(settings).items()
    ]


def backtest_table_specs(settings: Settings) -> dict[str, tuple]:
    """Identifier -> (schema, partition spec) of the backtest result tables (unpartitioned: small,
    read by run id)."""
    ice, bt = settings.iceberg, settings.backtest
    return {
        f"{ice.namespace}.{table}": (iceberg_schema(model), PartitionSpec())
        for table, model in ((bt.runs_table, BacktestRun), (bt.trades_table, BacktestTrade),
                             (bt.equity_table, EquityPoint))
    }


def ensure_backtest_tables(settings: Settings) -> None:
    cat = catalog(settings)
    cat.create_namespace_if_not_exists(settings.iceberg.namespace)
    for identifier, (schema, spec) in backtest_table_specs(settings).items():
        cat.create_table_if_not_exists(identifier, schema=schema, partition_spec=spec)


def recreate_bars_table(settings: Settings, table: str) -> Table:
    """An empty bars table ``table`` (the bars table's schema and partitioning) in the lake's
    namespace, dropped first if it exists: for benchmarks and tests that bring their own bars."""
    cat = catalog(settings)
    cat.create_namespace_if_not_exists(settings.iceberg.namespace)
    schema, spec = table_specs(settings)[f"{settings.iceberg.namespace}.{settings.iceberg.bars_table}"]
    identifier = f"{settings.iceberg.namespace}.{table}"
    if cat.table_exists(identifier):
        cat.purge_table(identifier)
    return cat.create_table(identifier, schema=schema, partition_spec=spec)
