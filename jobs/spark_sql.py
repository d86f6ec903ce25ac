"""Spark SQL text made from Python values: literals, and the MERGE statement of the lake's upserts.

Pure string building (no Spark), so a unit test pins each statement to the letter.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone


def string_literal(text: str) -> str:
    """A Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def timestamp_literal(value: datetime) -> str:
    """A Spark SQL timestamp literal of an aware ``value``, written in UTC."""
    return f"TIMESTAMP'{value.astimezone(timezone.utc).isoformat()}'"


def merge(table: str, source: str, key: Sequence[str], *, update: Sequence[str] | None = None,
          when_changed: Sequence[str] = (), delete_when: str | None = None) -> str:
    """``MERGE INTO table t USING source s`` on equal ``key`` columns: a source row that matches
    updates the target row (the columns ``update``, or every column); with ``when_changed`` only
    where one of those columns differs (null-safe), so an unchanged row is not rewritten. A source
    row that matches none is inserted. With ``delete_when`` (a condition on ``t``), a target row
    that no source row matches and that meets it is deleted."""
    on = " AND ".join(f"t.{c} = s.{c}" for c in key)
    matched = "WHEN MATCHED"
    if when_changed:
        matched += f" AND ({' OR '.join(f'NOT (t.{c} <=> s.{c})' for c in when_changed)})"
    setting = "UPDATE SET *" if update is None else f"UPDATE SET {', '.join(f't.{c} = s.{c}' for c in update)}"
    statement = f"MERGE INTO {table} t USING {source} s ON {on} {matched} THEN {setting} WHEN NOT MATCHED THEN INSERT *"
    if delete_when is not None:
        statement += f" WHEN NOT MATCHED BY SOURCE AND {delete_when} THEN DELETE"
    return statement
