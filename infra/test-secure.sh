#!/usr/bin/env bash
# The secure profile's subset of the suite (README, "Tests"), on a stack of its own: TLS, SCRAM
# and Cassandra authentication under a private state folder and ports, stopped afterwards.
#   infra/test-secure.sh [pytest arguments]      (make test-secure)
set -euo pipefail
cd "$(dirname "$0")/.."
export TICKLAKE_CONFIG=${TICKLAKE_CONFIG:-conf/test.toml}
export TICKLAKE_SECURITY__ENABLED=true
export TICKLAKE_STATE_DIR=${TICKLAKE_SECURE_STATE_DIR:-/tmp/ticklake-secure-state}
export TICKLAKE_KAFKA__PORT=21092 TICKLAKE_KAFKA__CONTROLLER_PORT=21093 TICKLAKE_KAFKA__METRICS_PORT=0
export TICKLAKE_CASSANDRA__PORT=21042 TICKLAKE_CASSANDRA__STORAGE_PORT=21000 TICKLAKE_CASSANDRA__METRICS_PORT=0
export TICKLAKE_MONITORING__ENABLED=false TICKLAKE_SPARK__METRICS_PORT=0 TICKLAKE_SPARK__STORES_METRICS_PORT=0
trap '.venv/bin/ticklake down >/dev/null 2>&1 || true' EXIT
# The producer's exactly-once test, and the secure profile's own tests: one secure run carries
# trades from the feed through 'ticklake produce', Kafka and the streaming job into Cassandra and
# Iceberg, answers 'ticklake query' and runs the real-time Flink job (test_end_to_end's path and
# more, so that test is not run again here), then the refusals.
subset=(
  "tests/integration/test_producer.py::test_every_trade_sent_through_drops_stalls_and_bad_frames_is_in_kafka_once_in_order"
  tests/integration/test_secure_profile.py
)
.venv/bin/python -m pytest -q "${subset[@]}" "$@"
