"""Lake table names come from one place (ticklake.lake.identifier), whichever setting names the table."""
from __future__ import annotations

from ticklake import lake
from ticklake.config import Settings


def test_every_lake_table_is_named_namespace_dot_table():
    settings = Settings()
    ice = settings.iceberg
    assert lake.identifier(settings, "t") == f"{ice.namespace}.t"
    assert lake.rollup_identifier(settings, "5m") == f"{ice.namespace}.{ice.rollup_tables['5m']}"
    names = [*lake.table_specs(settings), *lake.backtest_table_specs(settings)]
    assert all(name.split(".", 1) == [ice.namespace, name.split(".", 1)[1]] for name in names)
    assert lake.identifier(settings, ice.bars_table) in names and lake.identifier(settings, ice.trades_table) in names
