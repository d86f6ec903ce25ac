"""The secure profile on real services (run with TICKLAKE_SECURITY__ENABLED=true on a stack of its
own: `infra/test-secure.sh`, which `make test` runs after the suite): one secure run from the
feed to both stores, the CLI's queries and the real-time Flink job, exact, with nothing it leaves
behind holding a secret; and every refusal says which setting to fix. Skipped under the default
profile."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from jobs import flink_live
from tests import reference
from tests.integration.test_flink_realtime import flink_bars
from tests.integration.test_producer import start_feed_thread
from tests.stores import assert_bars_equal, assert_stores_hold_exactly, epoch_ms, time_range
from ticklake.tools.feed import FeedOptions
from ticklake.config import CASSANDRA_USERS, KAFKA_USERS, Credential, Settings
from ticklake.errors import UserError
from ticklake.cql import cassandra_session
from ticklake.topics import ensure_topics
from ticklake.submit import spark_submit_command

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Settings().security.enabled, reason="the secure profile is off")]

TOKEN = "tok-SECRET-8812"
TRADES = 2000


def with_security(settings: Settings, **changes) -> Settings:
    return settings.model_copy(update={"security": settings.security.model_copy(update=changes)})


def wrong(credential: Credential) -> Credential:
    return Credential(username=credential.username, password=SecretStr("not-the-password"))


class ProcessList:
    """``ps`` output sampled every half second while it runs."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.seen.append(subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout)
            self._stop.wait(0.5)

    def __enter__(self) -> ProcessList:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def files_under(*roots, leave_out=()) -> list:
    return [path for root in roots for path in root.rglob("*")
            if path.is_file() and not any(path.is_relative_to(out) for out in leave_out)]


@dataclass
class SecureRun:
    settings: Settings
    trades: list  # what the trades topic holds afterwards
    logs: Path  # the output of every process the run started
    process_list: list[str]  # ``ps`` samples taken while it ran
    queried_bars: dict  # (symbol, window start ms) -> the row 'ticklake query bars --format json' printed
    queried_trades: list[str]  # the CSV lines of 'ticklake query trades'


def run_logged(logs: Path, name: str, command: list[str], env: dict, timeout: float) -> str:
    """Run ``command`` to the end, its output in ``logs/<name>.out`` and ``.err``; the output."""
    out, err = logs / f"{name}.out", logs / f"{name}.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        done = subprocess.run(command, env=env, stdout=stdout, stderr=stderr, timeout=timeout)
    assert done.returncode == 0, f"{name} failed: {out.read_text()[-1500:]}{err.read_text()[-1500:]}"
    return out.read_text()


@pytest.fixture(scope="module")
def secure_run(services, tmp_path_factory):
    """One secure run of what a user starts, each a process of its own with its output kept,
    while ``ps`` is sampled: the feed and ``ticklake produce`` (the Finnhub token in its
    environment), the streaming job, ``ticklake query bars`` and ``query trades`` (Cassandra
    over TLS as the pipeline's role), and the real-time Flink job over SASL_SSL (bounded)."""
    from tests.conftest import isolated_settings
    from ticklake.provision import provision
    from ticklake.sandbox import drop_named

    tmp_path = tmp_path_factory.mktemp("secure-run")
    settings = isolated_settings(services, tmp_path)
    provision(settings)
    logs = tmp_path / "logs"
    logs.mkdir()
    url, stop_feed = start_feed_thread(settings, FeedOptions(rate=2000, seed=3, max_trades=TRADES))
    cli = [sys.executable, "-m", "ticklake.cli"]
    env = {**os.environ, **settings.as_environment(), "TICKLAKE_PRODUCER__URL": url, "FINNHUB_TOKEN": TOKEN}
    with ProcessList() as ps:
        try:
            run_logged(logs, "producer", [*cli, "produce", "--max-trades", str(TRADES), "--idle-timeout", "20"],
                       env, timeout=180)
        finally:
            stop_feed()
        command, job_env = spark_submit_command(settings, "jobs/ohlcv_stream.py", "--available-now")
        run_logged(logs, "stream", command, job_env | {"FINNHUB_TOKEN": TOKEN}, timeout=600)
        trades, _ = reference.read_topic(settings, settings.kafka.trades_topic)
        start, end = (t.isoformat() for t in time_range(trades))
        queried_bars = {}
        for symbol in sorted({t.symbol for t in trades}):
            output = run_logged(logs, f"query-bars-{symbol}", [*cli, "query", "bars", symbol, "--start", start,
                                                               "--end", end, "--format", "json"], env, timeout=120)
            rows = [json.loads(line) for line in output.splitlines()]
            queried_bars |= {(row["symbol"], epoch_ms(datetime.fromisoformat(row["window_start"]))): row
                             for row in rows}
        symbol = trades[0].symbol
        queried_trades = run_logged(logs, "query-trades", [*cli, "query", "trades", symbol, "--start", start, "--end",
                                                           end, "--format", "csv", "--limit", "50"],
                                    env, timeout=120).splitlines()
        flink_live.run_bounded(settings)
    yield SecureRun(settings, trades, logs, ps.seen, queried_bars, queried_trades)
    drop_named(settings)


def test_a_secure_run_stores_every_trade_once_with_exact_bars(secure_run):
    assert len(secure_run.trades) == TRADES
    assert_stores_hold_exactly(secure_run.settings, secure_run.trades)


def test_the_cli_queries_answer_over_tls_with_the_exact_bars(secure_run):
    assert_bars_equal(reference.bars(secure_run.trades), secure_run.queried_bars, "ticklake query bars")
    symbol = secure_run.trades[0].symbol
    header, *rows = secure_run.queried_trades
    expected = sum(t.symbol == symbol for t in secure_run.trades)
    assert header.startswith("symbol,") and len(rows) == min(50, expected)


def test_the_real_time_jobs_live_bars_are_exact_over_sasl_ssl(secure_run):
    assert_bars_equal(reference.bars(secure_run.trades), flink_bars(secure_run.settings), "flink")


def test_a_secure_run_leaves_no_password_or_token_in_logs_state_checkpoints_or_ps(secure_run):
    settings = secure_run.settings
    secrets = {name: settings.security.credential(name) for name in (*KAFKA_USERS, *CASSANDRA_USERS)}
    secrets["finnhub_token"] = TOKEN
    # The password files are where the secrets belong; everything else a run leaves is searched:
    # the services' state and logs, the Spark and Flink checkpoints and logs, each process's output.
    searched = files_under(settings.state_dir, settings.spark.checkpoint_root, secure_run.logs,
                           leave_out=(settings.security.secrets_dir,))
    names = {path.name for path in searched}
    assert {"kafka.out", "realtime-driver.log", "realtime-options.json", "stream.err", "query-trades.out"} <= names
    assert any("offsets" in path.parts for path in searched)  # the streaming job's checkpoint
    assert len(secure_run.process_list) > 10
    found = {}  # each file read once: the run leaves thousands
    for path in searched:
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # only a topic's log the broker deletes meanwhile may vanish
            assert any(part.endswith("-delete") for part in path.parts), path
            continue
        for name in (name for name, secret in secrets.items() if secret.encode() in content):
            found.setdefault(name, []).append(path)
    assert found == {}
    for name, secret in secrets.items():
        assert not any(secret in sample for sample in secure_run.process_list), f"{name} in the process list"


def test_a_wrong_cassandra_password_names_its_setting(services):
    bad = with_security(services, cassandra_app=wrong(services.security.cassandra_app))
    with pytest.raises(UserError, match="refused the role 'ticklake'.*TICKLAKE_SECURITY__CASSANDRA_APP__PASSWORD"):
        cassandra_session(bad)


@pytest.fixture
def quick_kafka_refusal(monkeypatch):
    """A broker that closes the connection (a refused SCRAM login, a plaintext client on its TLS
    listener) sends kafka-python no reason: its admin client tries again for bootstrap_timeout_ms
    (30 s) before it gives up. A few tries within 4 s are as clear and keep the suite quick."""
    from kafka import KafkaAdminClient

    monkeypatch.setitem(KafkaAdminClient.DEFAULT_CONFIG, "bootstrap_timeout_ms", 4000)


def test_a_wrong_kafka_password_names_its_setting(services, quick_kafka_refusal):
    bad = with_security(services, kafka_admin=wrong(services.security.kafka_admin))
    started = time.monotonic()
    with pytest.raises(UserError, match="accepted the user 'admin'.*TICKLAKE_SECURITY__KAFKA_ADMIN__PASSWORD"):
        ensure_topics(bad)
    assert time.monotonic() - started < 15  # an error, not a hang


def test_plaintext_clients_against_tls_listeners_are_told_to_switch_the_profile_on(services, quick_kafka_refusal):
    plain = with_security(services, enabled=False)
    with pytest.raises(UserError, match="TICKLAKE_SECURITY__ENABLED=true"):
        cassandra_session(plain)
    started = time.monotonic()
    with pytest.raises(UserError, match="TICKLAKE_SECURITY__ENABLED=true"):
        ensure_topics(plain)
    assert time.monotonic() - started < 15


def test_a_missing_ca_certificate_names_its_setting(services, tmp_path):
    missing = with_security(services, ca_file=tmp_path / "nowhere.crt")
    with pytest.raises(UserError, match="security.ca_file.*TICKLAKE_SECURITY__CA_FILE"):
        cassandra_session(missing)
    with pytest.raises(UserError, match="security.ca_file"):
        ensure_topics(missing)


def test_an_untrusted_server_certificate_names_the_ca_setting(services, tmp_path):
    other_ca = tmp_path / "other-ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(other_ca), "-days", "1", "-subj", "/CN=someone else"], check=True, capture_output=True)
    with pytest.raises(UserError, match="security.ca_file"):
        cassandra_session(with_security(services, ca_file=other_ca))


def test_an_expired_ca_certificate_names_its_setting(services, tmp_path):
    from tests.unit.test_security import expired_certificate

    expired = with_security(services, ca_file=expired_certificate(tmp_path))
    with pytest.raises(UserError, match="security.ca_file.*expired on .*2020.*TICKLAKE_SECURITY__CA_FILE"):
        cassandra_session(expired)
    with pytest.raises(UserError, match="security.ca_file.*expired"):
        ensure_topics(expired)


def test_cqlsh_with_the_printed_cqlshrc_logs_in_over_tls(services, tmp_path):
    rc = tmp_path / "cqlshrc"
    env = {**os.environ, "HOME": str(tmp_path)}  # no ~/.cassandra of the user's
    rc.write_text(subprocess.run([sys.executable, "-m", "ticklake.cli", "cqlshrc"], env=env, capture_output=True,
                                 text=True, check=True).stdout)
    cqlsh = [str(Path(sys.executable).parent / "cqlsh"), "--cqlshrc", str(rc), "-e",
             "SELECT keyspace_name FROM system_schema.keyspaces"]
    done = subprocess.run(cqlsh, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and services.cassandra.keyspace in done.stdout, done.stderr
    plain = tmp_path / "plain"
    plain.write_text(rc.read_text().replace("ssl = true", "ssl = false"))
    refused = subprocess.run([*cqlsh[:2], str(plain), *cqlsh[3:]], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
