"""PyFlink smoke job: read the trades topic through Flink's Kafka connector, bounded (from
the earliest offset to the latest offset at start), and print one JSON line per symbol:
``{"symbol", "trades", "low", "high"}``.

Runs in PyFlink's own environment (.venv-flink), which holds apache-flink and nothing of
ticklake: no pydantic, no settings. Everything comes from the command line. The launcher
(jobs/flink_runner.py) passes the column list derived from ``schemas.models.Trade``;
``TRADE_COLUMNS`` below is the fallback for a run by hand, and a test keeps it equal to
the derived list.

    .venv-flink/bin/python jobs/flink_smoke.py --bootstrap-servers 127.0.0.1:9092 \
        --topic trades --jar ~/.ticklake/cache/jars/flink/flink-sql-connector-kafka-4.0.1-2.0.jar
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # jobs.flink_sql without ticklake's venv

from jobs.flink_sql import LOOPBACK, with_clause  # noqa: E402

# Flink SQL columns of a Kafka record of the trades topic (schemas.models.Trade).
TRADE_COLUMNS = (
    "`symbol` STRING, `price` DOUBLE, `volume` DOUBLE, `trade_time_ms` BIGINT, "
    "`conditions` ARRAY<STRING>, `exchange` STRING, `received_time_ms` BIGINT"
)

# A one-slot local mini-cluster with small memory pools: it starts faster and leaves the
# machine to Kafka, Cassandra and Spark.
LOCAL_CLUSTER = {
    "parallelism.default": "1",
    "taskmanager.numberOfTaskSlots": "1",
    "taskmanager.memory.managed.size": "64m",
    "taskmanager.memory.network.min": "16m",
    "taskmanager.memory.network.max": "16m",
    **LOOPBACK,
}


def trades_ddl(columns: str, topic: str, bootstrap_servers: str, group_id: str) -> str:
    options = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": bootstrap_servers,
        "properties.group.id": group_id,
        # Bounded: the job ends once it has read up to the offsets that were the latest
        # when it started.
        "scan.startup.mode": "earliest-offset",
        "scan.bounded.mode": "latest-offset",
        "format": "json",
        # A value that is not a trade is skipped (the Spark job quarantines those).
        "json.ignore-parse-errors": "true",
    }
    return f"CREATE TEMPORARY TABLE trades ({columns}) {with_clause(options)}"


SUMMARY_SQL = """
    SELECT symbol, COUNT(*) AS trades, MIN(price) AS low, MAX(price) AS high
    FROM trades WHERE symbol IS NOT NULL GROUP BY symbol
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--jar", required=True, help="the flink-sql-connector-kafka jar")
    parser.add_argument("--columns", default=TRADE_COLUMNS, help="Flink SQL column list of a trade record")
    parser.add_argument("--group-id", help="Kafka consumer group (default: a fresh one; nothing is committed)")
    parser.add_argument("--out", help="also write the JSON lines to this file")
    args = parser.parse_args(argv)
    started = time.monotonic()

    def stage(name: str) -> None:
        print(f"flink-smoke: {name} at {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)

    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    config = Configuration()
    for key, value in {**LOCAL_CLUSTER, "pipeline.jars": f"file://{args.jar}"}.items():
        config.set_string(key, value)
    env = TableEnvironment.create(EnvironmentSettings.new_instance().in_batch_mode().with_configuration(config).build())
    stage("JVM and table environment up")
    group_id = args.group_id or f"ticklake-flink-smoke-{uuid.uuid4().hex[:8]}"
    env.execute_sql(trades_ddl(args.columns, args.topic, args.bootstrap_servers, group_id))
    lines = []
    with env.execute_sql(SUMMARY_SQL).collect() as rows:
        for symbol, trades, low, high in rows:
            lines.append(json.dumps({"symbol": symbol, "trades": trades, "low": low, "high": high}))
    stage(f"job done, {len(lines)} symbols")
    if args.out:
        with open(args.out, "w") as out:
            out.write("".join(line + "\n" for line in lines))
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
