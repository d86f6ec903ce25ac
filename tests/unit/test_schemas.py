"""The Spark, Iceberg and CQL schemas derived from the pydantic models agree with each other."""
from __future__ import annotations

import re

import pytest

from schemas import derive
from schemas.models import (BacktestRun, BacktestTrade, Bar, EquityPoint, FinnhubTrade, QuarantinedRecord, Trade,
                            TradeRow)

STORED = [TradeRow, Bar]
LAKE_ONLY = [BacktestRun, BacktestTrade, EquityPoint]
# One logical type, as each system spells it.
SPARK = {"string": "string", "double": "double", "long": "bigint", "timestamp": "timestamp", "date": "date",
         "bool": "boolean"}
ICEBERG = {"string": "string", "double": "double", "long": "long", "timestamp": "timestamptz", "date": "date",
           "bool": "boolean"}
CQL = {"string": "text", "double": "double", "long": "bigint", "timestamp": "timestamp", "date": "date"}


def cql_columns(ddl: str) -> dict[str, str]:
    body = ddl.split("(", 1)[1].rsplit("PRIMARY KEY", 1)[0]
    pairs = [line.strip().rstrip(",").split(" ", 1) for line in body.strip().splitlines()]
    return {name: kind for name, kind in pairs}


@pytest.mark.parametrize("model", STORED + LAKE_ONLY + [Trade, QuarantinedRecord])
def test_spark_and_iceberg_agree_on_names_types_and_nullability(model):
    spark = derive.spark_schema(model)
    iceberg = derive.iceberg_schema(model)
    assert spark.fieldNames() == [f.name for f in iceberg.fields] == list(model.model_fields)
    for s_field, i_field in zip(spark.fields, iceberg.fields):
        assert s_field.nullable == (not i_field.required), s_field.name
        s_type, i_type = s_field.dataType.simpleString(), str(i_field.field_type)
        if s_type.startswith("array<"):
            assert i_type.startswith("list<"), s_field.name
            s_type, i_type = s_type[6:-1], i_type[5:-1]
        logical = {v: k for k, v in SPARK.items()}[s_type]
        assert ICEBERG[logical] == i_type, s_field.name


@pytest.mark.parametrize("model", STORED)
def test_cql_table_has_every_model_column_with_matching_type(model):
    ddl = derive.cql_create_table(model, "ks", "tbl", ttl_seconds=60)
    cql = cql_columns(ddl)
    assert list(cql) == list(model.model_fields)
    for field in derive.spark_schema(model).fields:
        s_type = field.dataType.simpleString()
        if s_type.startswith("array<"):
            assert cql[field.name] == f"list<{CQL[{v: k for k, v in SPARK.items()}[s_type[6:-1]]]}>"
        else:
            assert cql[field.name] == CQL[{v: k for k, v in SPARK.items()}[s_type]], field.name


@pytest.mark.parametrize("model", STORED)
def test_cql_key_columns_exist_and_are_required(model):
    required = {c.name for c in derive.columns(model) if not c.nullable}
    assert set(model.cql_key.columns) <= required
    ddl = derive.cql_create_table(model, "ks", "tbl", ttl_seconds=60)
    assert f"PRIMARY KEY (({', '.join(model.cql_key.partition)})" in ddl
    assert re.search(r"default_time_to_live = 60", ddl) and "TimeWindowCompactionStrategy" in ddl


def test_trade_rows_are_unique_per_kafka_record_not_per_millisecond():
    assert {"kafka_partition", "kafka_offset"} <= set(TradeRow.cql_key.columns)


def test_wire_model_accepts_finnhub_frame_element():
    trade = FinnhubTrade.model_validate({"s": "AAPL", "p": 129.58, "t": 1672348887666, "v": 0, "c": ["1", "12"]})
    assert (trade.symbol, trade.price, trade.trade_time_ms, trade.volume) == ("AAPL", 129.58, 1672348887666, 0)


def test_flink_columns_follow_the_trade_model():
    columns = derive.flink_columns(Trade)
    names = re.findall(r"`(\w+)`", columns)
    assert names == list(Trade.model_fields)
    assert "`conditions` ARRAY<STRING>" in columns and "`trade_time_ms` BIGINT" in columns
