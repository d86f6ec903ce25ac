"""The secure profile on real services (run with TICKLAKE_SECURITY__ENABLED=true on a stack of its
own: `make test-secure`): nothing a run leaves behind holds a secret, and every refusal says
which setting to fix. Skipped under the default profile."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests import reference
from tests.integration.test_producer import start_feed_thread
from tests.stores import assert_stores_hold_exactly
from ticklake.tools.feed import FeedOptions
from ticklake.config import CASSANDRA_USERS, KAFKA_USERS, Credential, Settings
from ticklake.errors import UserError
from ticklake.cql import cassandra_session
from ticklake.topics import ensure_topics
from ticklake.submit import spark_submit_command

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Settings().security.enabled, reason="the secure profile is off")]

TOKEN = "tok-SECRET-8812"


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


def test_a_secure_run_leaves_no_password_or_token_in_logs_state_checkpoints_or_ps(pipeline_settings, tmp_path):
    settings = pipeline_settings
    url, stop_feed = start_feed_thread(settings, FeedOptions(rate=2000, seed=3, max_trades=2000))
    env = {**os.environ, **settings.as_environment(), "TICKLAKE_PRODUCER__URL": url, "FINNHUB_TOKEN": TOKEN}
    logs = tmp_path / "logs"
    logs.mkdir()
    with ProcessList() as ps:
        try:
            with open(logs / "producer.log", "w") as out:
                produced = subprocess.run([sys.executable, "-m", "ticklake.cli", "produce", "--max-trades", "2000",
                                           "--idle-timeout", "20"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                          timeout=180)
        finally:
            stop_feed()
        command, job_env = spark_submit_command(settings, "jobs/ohlcv_stream.py", "--available-now")
        with open(logs / "stream.log", "w") as out:
            streamed = subprocess.run(command, env=job_env | {"FINNHUB_TOKEN": TOKEN}, stdout=out,
                                      stderr=subprocess.STDOUT, timeout=600)
    assert produced.returncode == 0, (logs / "producer.log").read_text()[-3000:]
    assert streamed.returncode == 0, (logs / "stream.log").read_text()[-3000:]
    trades, _ = reference.read_topic(settings, settings.kafka.trades_topic)
    assert len(trades) == 2000
    assert_stores_hold_exactly(settings, trades)

    secrets = {name: settings.security.credential(name) for name in (*KAFKA_USERS, *CASSANDRA_USERS)}
    secrets["finnhub_token"] = TOKEN
    # The password files are where the secrets belong; everything else a run leaves is searched.
    searched = files_under(settings.state_dir, settings.spark.checkpoint_root, logs,
                           leave_out=(settings.security.secrets_dir,))
    assert any(path.name == "kafka.out" for path in searched) and any("offsets" in path.parts for path in searched)
    for name, secret in secrets.items():
        needle = secret.encode()
        holders = [path for path in searched if needle in path.read_bytes()]
        assert holders == [], f"{name} found in {holders}"
        assert not any(secret in sample for sample in ps.seen), f"{name} in the process list"


def test_a_wrong_cassandra_password_names_its_setting(services):
    bad = with_security(services, cassandra_app=wrong(services.security.cassandra_app))
    with pytest.raises(UserError, match="refused the role 'ticklake'.*TICKLAKE_SECURITY__CASSANDRA_APP__PASSWORD"):
        cassandra_session(bad)


def test_a_wrong_kafka_password_names_its_setting(services):
    bad = with_security(services, kafka_admin=wrong(services.security.kafka_admin))
    started = time.monotonic()
    with pytest.raises(UserError, match="accepted the user 'admin'.*TICKLAKE_SECURITY__KAFKA_ADMIN__PASSWORD"):
        ensure_topics(bad)
    assert time.monotonic() - started < 120  # an error, not a hang


def test_plaintext_clients_against_tls_listeners_are_told_to_switch_the_profile_on(services):
    plain = with_security(services, enabled=False)
    with pytest.raises(UserError, match="TICKLAKE_SECURITY__ENABLED=true"):
        cassandra_session(plain)
    with pytest.raises(UserError, match="TICKLAKE_SECURITY__ENABLED=true"):
        ensure_topics(plain)


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
