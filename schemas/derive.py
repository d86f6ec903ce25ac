"""Derive the Spark, Iceberg and CQL schemas (and a fast wire validator) from the pydantic models.

Nothing here is written by hand a second time: a column's name, type, nullability and
order come from the model's fields; its key layout from the model's ``cql_key``.
"""
from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime

import typing_extensions
from pydantic import Field, BaseModel, ConfigDict, with_config


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "string" | "double" | "long" | "timestamp" | "date" | "bool"
    is_list: bool
    nullable: bool

    @property
    def cql(self) -> str:
        """The column's CQL definition: ``name type``."""
        kind = _CQL[self.kind]
        return f"{self.name} {f'list<{kind}>' if self.is_list else kind}"


_KINDS = {str: "string", float: "double", int: "long", datetime: "timestamp", date: "date", bool: "bool"}


def columns(model: type[BaseModel]) -> list[Column]:
    return [_column(name, field.annotation) for name, field in model.model_fields.items()]


def _column(name: str, annotation: object) -> Column:
    nullable = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            raise TypeError(f"{name}: only Optional[X] unions are supported")
        annotation = args[0]
    is_list = typing.get_origin(annotation) is list
    if is_list:
        (annotation,) = typing.get_args(annotation)
    if annotation not in _KINDS:
        raise TypeError(f"{name}: no column type for {annotation!r}")
    return Column(name, _KINDS[annotation], is_list, nullable)


def spark_schema(model: type[BaseModel]):
    """The model as a pyspark ``StructType``."""
    from pyspark.sql import types as T

    scalar = {
        "string": T.StringType(), "double": T.DoubleType(), "long": T.LongType(),
        "timestamp": T.TimestampType(), "date": T.DateType(), "bool": T.BooleanType(),
    }
    fields = []
    for col in columns(model):
        data_type = T.ArrayType(scalar[col.kind], containsNull=False) if col.is_list else scalar[col.kind]
        fields.append(T.StructField(col.name, data_type, nullable=col.nullable))
    return T.StructType(fields)


def iceberg_schema(model: type[BaseModel]):
    """The model as a pyiceberg ``Schema`` with field ids in field order."""
    from pyiceberg import types as I
    from pyiceberg.schema import Schema

    scalar = {
        "string": I.StringType(), "double": I.DoubleType(), "long": I.LongType(),
        "timestamp": I.TimestamptzType(), "date": I.DateType(), "bool": I.BooleanType(),
    }
    cols = columns(model)
    next_id = len(cols) + 1
    fields = []
    for field_id, col in enumerate(cols, start=1):
        field_type = scalar[col.kind]
        if col.is_list:
            field_type = I.ListType(element_id=next_id, element_type=field_type, element_required=True)
            next_id += 1
        fields.append(I.NestedField(field_id, col.name, field_type, required=not col.nullable))
    return Schema(*fields)


_FLINK = {"string": "STRING", "double": "DOUBLE", "long": "BIGINT", "timestamp": "TIMESTAMP_LTZ(3)", "date": "DATE",
          "bool": "BOOLEAN"}


def flink_columns(model: type[BaseModel]) -> str:
    """The model as the column list of a Flink SQL ``CREATE TABLE``."""
    return ", ".join(
        f"`{c.name}` {f'ARRAY<{_FLINK[c.kind]}>' if c.is_list else _FLINK[c.kind]}" for c in columns(model)
    )


_CQL = {"string": "text", "double": "double", "long": "bigint", "timestamp": "timestamp", "date": "date", "bool": "boolean"}


def cql_create_table(model: type[BaseModel], keyspace: str, table: str, ttl_seconds: int) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the model, keyed by its ``cql_key``.

    Time-series tables use TimeWindowCompactionStrategy with one-day windows, so whole
    SSTables expire together with the TTL.
    """
    key = model.cql_key
    cols = ",\n  ".join(c.cql for c in columns(model))
    clustering_names = ", ".join(name for name, _ in key.clustering)
    order = ", ".join(f"{name} {direction}" for name, direction in key.clustering)
    primary = f"(({', '.join(key.partition)})" + (f", {clustering_names})" if key.clustering else ")")
    return (
        f"CREATE TABLE IF NOT EXISTS {keyspace}.{table} (\n  {cols},\n  PRIMARY KEY {primary}\n)"
        + (f" WITH CLUSTERING ORDER BY ({order}) AND" if key.clustering else " WITH")
        + f" default_time_to_live = {ttl_seconds}"
        " AND compaction = {'class': 'TimeWindowCompactionStrategy',"
        " 'compaction_window_unit': 'DAYS', 'compaction_window_size': 1}"
    )


def wire_dict(model: type[BaseModel]) -> type:
    """A TypedDict of ``model``'s fields (keys are the field names) validated from its wire form
    (the aliases), with the model's checks and defaults.

    Validating into plain dicts takes half the time of building a model instance per record,
    which matters on the producer's hot path; keyed by name, the dicts are the records it writes.
    """
    fields = {}
    for name, field in model.model_fields.items():
        wire = Field(validation_alias=field.alias or name,
                     **({} if field.is_required() else {"default": field.get_default()}))
        checked = typing.Annotated[(field.annotation, *field.metadata, wire)]
        fields[name] = checked if field.is_required() else typing.NotRequired[checked]
    return with_config(ConfigDict(extra="ignore"))(typing_extensions.TypedDict(f"{model.__name__}Wire", fields))
