"""The Iceberg catalog shared by Spark (JDBC catalog) and Python (pyiceberg SqlCatalog)."""
from __future__ import annotations

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.table import Table
from pyiceberg.transforms import DayTransform

from schemas.derive import iceberg_schema
from schemas.models import Bar, QuarantinedRecord, TradeRow
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
