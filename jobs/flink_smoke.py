"""PyFlink smoke job: read the trades topic through Flink's Kafka connector, bounded, and
print per-symbol trade counts and price ranges as JSON lines.

Runs in PyFlink's own environment (.venv-flink), so it imports nothing from ticklake; the
launcher (jobs/flink_runner.py) passes the topic, the connector jar and the column list
derived from schemas/.
"""
from __future__ import annotations

import argparse
import json
import sys

from pyflink.table import EnvironmentSettings, TableEnvironment


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--jar", required=True, help="flink-sql-connector-kafka jar")
    parser.add_argument("--columns", required=True, help="Flink SQL column list of a trade record")
    parser.add_argument("--group-id", default="ticklake-flink-smoke")
    parser.add_argument("--out", help="also write the JSON lines to this file")
    args = parser.parse_args(argv)

    env = TableEnvironment.create(EnvironmentSettings.in_batch_mode())
    config = env.get_config()
    config.set("pipeline.jars", f"file://{args.jar}")
    config.set("parallelism.default", "1")
    config.set("taskmanager.memory.managed.size", "64m")
    env.execute_sql(f"""
        CREATE TABLE trades ({args.columns}) WITH (
          'connector' = 'kafka',
          'topic' = '{args.topic}',
          'properties.bootstrap.servers' = '{args.bootstrap_servers}',
          'properties.group.id' = '{args.group_id}',
          'scan.startup.mode' = 'earliest-offset',
          'scan.bounded.mode' = 'latest-offset',
          'format' = 'json',
          'json.ignore-parse-errors' = 'true'
        )""")
    result = env.execute_sql("""
        SELECT symbol, COUNT(*) AS trades, MIN(price) AS low, MAX(price) AS high
        FROM trades WHERE symbol IS NOT NULL GROUP BY symbol""")
    lines = []
    with result.collect() as rows:
        for row in rows:
            lines.append(json.dumps({"symbol": row[0], "trades": row[1], "low": row[2], "high": row[3]}))
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as out:
            out.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
