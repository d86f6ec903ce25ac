"""The real-time job: a streaming PyFlink job over the trades topic writing live 1-minute bars,
market alerts and counts of rejected records to Kafka, exactly once by default.

Runs in PyFlink's own environment (.venv-flink), which holds apache-flink and nothing of
ticklake; jobs/flink_runner.py writes its options (from the settings) to a JSON file:

    .venv-flink/bin/python jobs/flink_realtime.py --options <state_dir>/flink/options.json

The SQL is in jobs/flink_sql.py. The job runs on a local mini-cluster in the gateway JVM that
PyFlink starts; checkpoints go to ``checkpoint_dir``, and ``restore_path`` (a checkpoint or
savepoint) resumes a previous run. ``bounded`` stops at the offsets that were the latest at
the start (tests). ``--explain`` prints Flink's plan of the statements instead (no Kafka needed).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # jobs.flink_sql without ticklake's venv

from jobs.flink_sql import LOOPBACK, PLANNER_OPTIONS, statements  # noqa: E402


def cluster_config(opts: dict) -> dict[str, str]:
    """The mini-cluster's and the job's configuration."""
    config = {
        "pipeline.name": opts["job_name"],
        "pipeline.jars": opts["connector_jar_url"],
        "parallelism.default": str(opts["parallelism"]),
        "taskmanager.numberOfTaskSlots": str(opts["parallelism"]),
        "taskmanager.memory.managed.size": "64m",
        "taskmanager.memory.network.min": "32m",
        "taskmanager.memory.network.max": "32m",
        **LOOPBACK,
        "rest.port": str(opts["rest_port"]),
        "table.local-time-zone": "UTC",
        "table.exec.source.idle-timeout": f"{opts['idle_timeout_ms']} ms",
        "pipeline.auto-watermark-interval": f"{opts['watermark_interval_ms']} ms",
        # Chained operators hand each other the row instead of a deep copy (Flink SQL's operators
        # allow it; no user functions here): +17 % of backlog throughput (docs/BENCHMARKS.md).
        "pipeline.object-reuse": "true",
        "execution.buffer-timeout.interval": f"{opts['buffer_timeout_ms']} ms",
        "table.exec.state.ttl": f"{opts['state_ttl_ms']} ms",
        "state.backend.type": "hashmap",
        "execution.checkpointing.interval": f"{opts['checkpoint_interval_ms']} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        # Aligned barriers held the live bars back for most of each 500 ms (docs/FLINK.md).
        "execution.checkpointing.unaligned.enabled": str(opts["unaligned_checkpoints"]).lower(),
        "execution.checkpointing.dir": opts["checkpoint_dir_url"],
        "execution.checkpointing.savepoint-dir": opts["savepoint_dir_url"],
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "execution.checkpointing.timeout": "2 min",
        # A failure (a broker away, say) restarts the job from its last checkpoint, again and again.
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1 s",
        "restart-strategy.exponential-delay.max-backoff": "30 s",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": "1000000",
        **PLANNER_OPTIONS,
    }
    if opts["mini_batch_ms"] > 0:
        config |= {
            "table.exec.mini-batch.enabled": "true",
            "table.exec.mini-batch.allow-latency": f"{opts['mini_batch_ms']} ms",
            "table.exec.mini-batch.size": "5000",
        }
    if opts["metrics_port"]:
        config |= {
            # Flink's own PrometheusReporterFactory binds every address; this one (infra/flink-reporter) the host.
            "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.LoopbackPrometheusReporterFactory",
            "metrics.reporter.prom.host": opts["metrics_host"],
            "metrics.reporter.prom.port": str(opts["metrics_port"]),
        }
    if opts.get("restore_path"):
        config["execution.state-recovery.path"] = opts["restore_path"]
    return config


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--options", required=True, type=Path, help="the job's options (JSON)")
    parser.add_argument("--explain", action="store_true", help="print the execution plan instead of running the job")
    args = parser.parse_args(argv)
    opts = json.loads(args.options.read_text())
    started = time.monotonic()

    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    config = Configuration()
    for key, value in cluster_config(opts).items():
        config.set_string(key, value)
    env = TableEnvironment.create(EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build())
    *ddl, = statements(opts)
    job = env.create_statement_set()
    for statement in ddl:
        if statement.startswith("INSERT"):
            job.add_insert_sql(statement)
        else:
            env.execute_sql(statement)
    if args.explain:
        print(job.explain(), flush=True)
        return 0
    result = job.execute()
    job_id = result.get_job_client().get_job_id()
    print(json.dumps({"job_id": str(job_id), "started_after_s": round(time.monotonic() - started, 1)}), flush=True)
    result.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
