"""Operating the real-time job: start in the background (idempotent), metrics, stop with a
savepoint, restart resuming from it; kill -9 of its JVM and a broker restart (slow), after which
a read_committed reader sees every bar at its exact value and every alert once."""
from __future__ import annotations

import json
import os
import random
import signal
import time
import urllib.request
from collections import Counter

import pytest

from jobs import flink_live
from tests import reference
from tests.integration.test_flink_realtime import MINUTE, _trade, crafted_trades
from tests.integration.test_stream_exactness import load_topic
from ticklake import live
from ticklake.config import Settings
from ticklake.security import kafka_python
from ticklake.topics import read_topic

pytestmark = pytest.mark.integration


def wait_for(predicate, timeout: float, interval: float = 1.0):
    """Call ``predicate`` until it returns something truthy or ``timeout`` passes; its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def bars_match_reference(settings: Settings) -> bool:
    trades, _ = reference.read_topic(settings, settings.kafka.trades_topic)
    expected = reference.bars(trades)
    got = {(s, int(t.timestamp() * 1000)): bar for (s, t), bar in live.live_bars(settings).items()}
    return set(got) == set(expected) and all(
        (got[k]["open"], got[k]["high"], got[k]["low"], got[k]["close"], got[k]["trade_count"])
        == (b["open"], b["high"], b["low"], b["close"], b["trade_count"])
        and got[k]["volume"] == pytest.approx(b["volume"], rel=1e-12) for k, b in expected.items())


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on ``port`` (from /proc/net/tcp*)."""
    import ipaddress

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                local, _, state = line.split()[1:4]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # LISTEN
                    raw = bytes.fromhex(address)
                    # the kernel writes each 32-bit word in host (little-endian) order
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                    ip = ipaddress.ip_address(words)
                    found.add(str(getattr(ip, "ipv4_mapped", None) or ip))
    return found


def alert_ids(settings: Settings) -> list[str]:
    """The alert id of every committed record of the alerts topic, tombstones (a retracted alert) too."""
    return [json.loads(r.key)["alert_id"] for r in read_topic(settings, settings.flink.alerts_topic)]


@pytest.fixture
def job_settings(pipeline_settings):
    yield pipeline_settings
    flink_live.stop(pipeline_settings, timeout=30)


def test_start_is_idempotent_stop_takes_a_savepoint_and_a_restart_resumes(job_settings, tmp_path):
    settings = job_settings
    load_topic(settings, tmp_path, trades=1500, seed=21)
    first = flink_live.start(settings)
    assert first.running and flink_live.start(settings).pid == first.pid  # already running: nothing new
    assert wait_for(lambda: bars_match_reference(settings), timeout=120), "live bars never matched the reference"

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{settings.flink.metrics_port}/metrics", timeout=10).read().decode()
    for name in ("flink_taskmanager_job_task_operator_numRecordsIn", "flink_jobmanager_job_numberOfCompletedCheckpoints",
                 "flink_jobmanager_job_lastCheckpointDuration", "flink_jobmanager_job_numRestarts",
                 "flink_taskmanager_job_task_operator_currentOutputWatermark"):
        assert name in metrics, name
    assert listening_addresses(settings.flink.metrics_port) == {"127.0.0.1"}  # the reporter binds loopback only
    # The REST API caches checkpoint statistics for a few seconds (rest.cache.checkpoint-statistics.timeout),
    # so the first completed checkpoint may show a little after the bars it committed.
    status = wait_for(lambda: (st := flink_live.status(settings)).checkpoint and st, timeout=30)
    assert status and status.job["state"] == "RUNNING", "no completed checkpoint in the job's status"

    assert flink_live.stop(settings) == "stopped with a savepoint"
    savepoint = flink_live.newest_snapshot(settings)
    assert savepoint is not None and savepoint.name.startswith("savepoint-")
    assert not flink_live.status(settings).running

    load_topic(settings, tmp_path, trades=1500, seed=22, poison=False)
    flink_live.start(settings)
    options = json.loads(flink_live.paths(settings)["options"].read_text())
    assert options["restore_path"] == str(savepoint)
    assert wait_for(lambda: bars_match_reference(settings), timeout=120), "the restarted job's bars are not exact"
    ids = alert_ids(settings)
    assert len(ids) == len(set(ids))


def in_order_trades(t0: int, minutes: int, seed: int) -> list[dict]:
    """Trades of six symbols, a few a second each, sent in time order but for up to 1 s of
    jitter (inside the 2 s watermark, so no trade is late and no alert depends on how the
    partitions interleave), with price jumps and volume bursts now and then."""
    rng = random.Random(seed)
    trades = []
    for symbol in ["AAPL", "MSFT", "AMZN", "NVDA", "BINANCE:BTCUSDT", "BINANCE:ETHUSDT"]:
        price, clock = 100.0, t0
        while clock < t0 + minutes * MINUTE:
            clock += rng.randint(100, 600)
            price *= 1 + rng.gauss(0, 0.0005) + (rng.choice([-0.03, 0.03]) if rng.random() < 0.002 else 0)
            volume = rng.choice([0, 1, 2, 5]) * (20 if rng.random() < 0.003 else 1)
            trades.append((clock, _trade(symbol, clock - rng.randint(0, 1000), round(price, 4), volume)))
    return [trade for _, trade in sorted(trades, key=lambda pair: pair[0])]


def end_of_input(settings: Settings, time_ms: int) -> None:
    """A trade in every partition far after the rest: the watermark passes every window."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**kafka_python(settings, "producer"))
    for p in range(settings.kafka.partitions):
        producer.send(settings.kafka.trades_topic, partition=p, key=f"END{p}".encode(),
                      value=json.dumps(_trade(f"END{p}", time_ms, 1.0)).encode())
    producer.flush()
    producer.close()


def load_in_order(settings: Settings, minutes: int = 20) -> None:
    from tests.integration.test_flink_realtime import _send

    t0 = (int(time.time() * 1000) // MINUTE - 3 * minutes) * MINUTE
    _send(settings, in_order_trades(t0, minutes, seed=5) + crafted_trades(settings, t0 + (minutes + 1) * MINUTE))
    end_of_input(settings, t0 + (2 * minutes + 10) * MINUTE)


def load_with_expected_alerts(settings: Settings, tmp_path) -> dict[str, tuple]:
    """Load the trades topic (``load_in_order``) and return the alerts of one bounded run
    without interruptions over it, into topics of its own."""
    from ticklake.topics import ensure_topics

    load_in_order(settings)

    f = settings.flink
    other = settings.model_copy(update={"flink": f.model_copy(update={
        "bars_topic": f.bars_topic + ".calm", "alerts_topic": f.alerts_topic + ".calm",
        "rejects_topic": f.rejects_topic + ".calm", "state_dir": tmp_path / "calm"})})
    ensure_topics(other)
    flink_live.run_bounded(other)
    expected = {a.alert_id: (a.rule, a.symbol, a.event_time, a.values) for a in live.alerts(other)}
    assert {rule for rule, *_ in expected.values()} == {"price_jump", "volume_spike", "failed_rally"}
    return expected


def assert_exactly_once(settings: Settings, expected: dict[str, tuple], what: str) -> None:
    """Every bar at its exact value and the alerts of the uninterrupted run, each once.

    First the market goes on: one more trade in every partition, later than the rest. A job
    restored from a checkpoint taken after it read the end-of-input trades but before their
    watermark closed every window has nothing more to read, and Flink keeps no watermark in
    a checkpoint; its open windows (and their alerts) wait for new trades. Without them they
    wait forever: the partitions it read nothing from go idle in the same instant as the rest,
    and a source all of whose partitions are idle emits no watermark."""
    end_of_input(settings, int(time.time() * 1000))
    assert wait_for(lambda: bars_match_reference(settings), timeout=300), f"bars are not exact after {what}"
    wait_for(lambda: len(alert_ids(settings)) >= len(expected), timeout=120)
    ids = alert_ids(settings)
    assert len(ids) == len(set(ids)), f"an alert was committed twice after {what}"
    got = {a.alert_id: (a.rule, a.symbol, a.event_time, a.values) for a in live.alerts(settings)}
    by_rule = lambda alerts: sorted(Counter(rule for rule, *_ in alerts.values()).items())  # noqa: E731
    assert got == expected, f"after {what}: alerts by rule {by_rule(got)}, expected {by_rule(expected)}"


@pytest.fixture
def steady_settings(job_settings):
    """``job_settings`` with an idle timeout longer than any pause of a partition here: a
    partition slower than the idle timeout (at a restart, say) sees trades the others' watermark
    has passed treated as late (no alert), which would make a run's alerts depend on timing."""
    return job_settings.model_copy(update={"flink": job_settings.flink.model_copy(update={"idle_timeout_ms": 60_000})})


def _kill_jvm(settings: Settings) -> None:
    pid = wait_for(lambda: flink_live.gateway_pid(settings), timeout=30)
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not flink_live.status(settings).running, timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_kill_9_of_the_flink_jvm_repeatedly_loses_and_doubles_nothing(steady_settings, tmp_path):
    settings = steady_settings
    expected = load_with_expected_alerts(settings, tmp_path)
    rng = random.Random(8)
    flink_live.start(settings)
    for _ in range(3):
        time.sleep(rng.uniform(2, 15))  # at a random point of the backlog: mid-transaction, mid-checkpoint
        _kill_jvm(settings)
        flink_live.start(settings)
    assert_exactly_once(settings, expected, "the kills")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_broker_restart_mid_run_loses_and_doubles_nothing(steady_settings, tmp_path):
    """Restarts the shared Kafka broker: run it only when nothing else uses Kafka."""
    from ticklake import services as svc
    from ticklake.services.kafka import KafkaService

    settings = steady_settings
    expected = load_with_expected_alerts(settings, tmp_path)
    flink_live.start(settings)
    time.sleep(5)
    try:
        KafkaService(settings).stop(lambda message: None)
        time.sleep(10)
    finally:
        svc.up(settings)
    assert_exactly_once(settings, expected, "the broker restart")
