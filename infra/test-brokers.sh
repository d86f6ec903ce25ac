#!/usr/bin/env bash
# The replicated-Kafka tests (tests/integration/test_replicated_kafka.py, slow) on a stack of
# their own: a three-broker KRaft cluster and Cassandra under a private state folder and ports,
# stopped afterwards.
#   infra/test-brokers.sh [pytest arguments]      (make test-brokers)
set -euo pipefail
cd "$(dirname "$0")/.."
export TICKLAKE_CONFIG=${TICKLAKE_CONFIG:-conf/test.toml}
export TICKLAKE_KAFKA__BROKERS=3
export TICKLAKE_STATE_DIR=${TICKLAKE_BROKERS_STATE_DIR:-/tmp/ticklake-brokers-state}
# Brokers on 21192, 21202, 21212 (kafka.port_step 10), their controllers on 21193, 21203, 21213.
export TICKLAKE_KAFKA__PORT=21192 TICKLAKE_KAFKA__CONTROLLER_PORT=21193 TICKLAKE_KAFKA__METRICS_PORT=0
export TICKLAKE_CASSANDRA__PORT=21142 TICKLAKE_CASSANDRA__STORAGE_PORT=21100 TICKLAKE_CASSANDRA__METRICS_PORT=0
export TICKLAKE_MONITORING__ENABLED=false TICKLAKE_SPARK__METRICS_PORT=0 TICKLAKE_SPARK__STORES_METRICS_PORT=0
trap '.venv/bin/ticklake down >/dev/null 2>&1 || true' EXIT
.venv/bin/python -m pytest -q tests/integration/test_replicated_kafka.py "$@"
