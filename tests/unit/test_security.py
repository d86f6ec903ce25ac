"""The secure profile without services: settings and secrets, every client's options, the local
certificates, the brokers' and Cassandra's rendered configuration."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from ticklake import security
from ticklake.config import CASSANDRA_USERS, KAFKA_USERS, Settings
from ticklake.errors import ServiceError, UserError
from ticklake.services.cassandra import CassandraService
from ticklake.services.certs import ensure_certificates, ensure_local_passwords
from ticklake.services.kafka import BROKER_PASSWORD, kafka_services


@pytest.fixture
def secure(monkeypatch, tmp_path) -> Settings:
    monkeypatch.setenv("TICKLAKE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TICKLAKE_SECURITY__ENABLED", "true")
    return Settings()


def test_passwords_come_from_the_environment_or_files_and_are_never_printed(monkeypatch, tmp_path):
    secret_file = tmp_path / "stream.txt"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("TICKLAKE_SECURITY__KAFKA_PRODUCER__PASSWORD", "inline-pw-1")
    monkeypatch.setenv("TICKLAKE_SECURITY__KAFKA_STREAM__PASSWORD_FILE", str(secret_file))
    settings = Settings()
    assert settings.security.credential("kafka_producer") == "inline-pw-1"
    assert settings.security.credential("kafka_stream") == "from-a-file"
    assert "inline-pw-1" not in settings.model_dump_json() and "inline-pw-1" not in repr(settings)
    env = settings.as_environment()
    assert not any("inline-pw-1" in value for value in env.values())
    assert env["TICKLAKE_SECURITY__KAFKA_STREAM__PASSWORD_FILE"] == str(secret_file)


def test_the_security_settings_survive_the_trip_to_a_child_process(monkeypatch, secure):
    for key, value in secure.as_environment().items():
        monkeypatch.setenv(key, value)
    assert Settings().security == secure.security


def test_a_missing_password_names_the_settings_to_set(secure):
    with pytest.raises(UserError, match="TICKLAKE_SECURITY__CASSANDRA_APP__PASSWORD_FILE.*ticklake up"):
        secure.security.credential("cassandra_app")


def test_off_every_client_gets_only_the_addresses(settings):
    assert security.kafka_python(settings) == {"bootstrap_servers": settings.kafka.bootstrap_servers}
    assert security.librdkafka(settings, "producer") == {"bootstrap.servers": settings.kafka.bootstrap_servers}
    assert security.spark_kafka_options(settings) == {"kafka.bootstrap.servers": settings.kafka.bootstrap_servers}
    assert security.cassandra_driver(settings) == {}
    assert set(security.spark_conf(settings)) == {"spark.sql.redaction.options.regex"}


def test_on_every_kafka_client_uses_sasl_ssl_scram_with_its_own_user(secure):
    ensure_local_passwords(secure)
    ensure_certificates(secure)
    producer = security.librdkafka(secure, "producer")
    assert producer["security.protocol"] == "SASL_SSL" and producer["sasl.mechanism"] == "SCRAM-SHA-512"
    assert producer["sasl.username"] == "producer" and producer["sasl.password"] == secure.security.credential("kafka_producer")
    assert security.kafka_python(secure)["sasl_plain_username"] == "stream"
    spark = security.spark_kafka_options(secure)
    assert spark["kafka.sasl.jaas.config"].startswith(security.JAAS_MODULE + " required username=\"stream\"")
    assert spark["kafka.ssl.truststore.type"] == "PEM"
    flink = security.flink_kafka_properties(secure)
    assert flink["properties.sasl.jaas.config"].startswith(
        "org.apache.flink.kafka.shaded.org.apache.kafka.common.security.scram.ScramLoginModule required")
    assert 'username="flink"' in flink["properties.sasl.jaas.config"]


def test_jaas_values_are_quoted():
    assert security.jaas_config('a"b', "p\\q") == f'{security.JAAS_MODULE} required username="a\\"b" password="p\\\\q";'


def test_spark_hides_the_jaas_option_and_gets_cassandra_tls_with_current_suites(secure):
    ensure_local_passwords(secure)
    conf = security.spark_conf(secure)
    assert "jaas" in conf["spark.sql.redaction.options.regex"]
    assert conf["spark.cassandra.connection.ssl.enabled"] == "true"
    assert "CBC" not in conf["spark.cassandra.connection.ssl.enabledAlgorithms"]
    assert conf["spark.cassandra.auth.username"] == "ticklake"


def test_a_missing_ca_file_names_the_setting(secure):
    ensure_local_passwords(secure)
    with pytest.raises(UserError, match="security.ca_file.*TICKLAKE_SECURITY__CA_FILE"):
        security.cassandra_driver(secure)


def test_local_certificates_have_loopback_sans_pkcs8_keys_owner_only_and_are_reused(secure):
    created = ensure_certificates(secure)
    sec = secure.security
    assert set(created) == {sec.ca_file, sec.cert_file, sec.truststore_file}
    text = subprocess.run(["openssl", "x509", "-in", str(sec.cert_file), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text and "DNS:localhost" in text
    assert sec.key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(sec.ca_file), str(sec.cert_file)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    for path in sec.certs_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    before = sec.cert_file.read_bytes()
    assert ensure_certificates(secure) == [] and sec.cert_file.read_bytes() == before


def test_local_passwords_are_random_owner_only_and_kept(secure):
    assert set(ensure_local_passwords(secure)) == {*KAFKA_USERS, *CASSANDRA_USERS}
    values = {secure.security.credential(name) for name in KAFKA_USERS + CASSANDRA_USERS}
    assert len(values) == 6 and all(len(value) >= 24 for value in values)
    assert stat.S_IMODE(secure.security.kafka_admin.password_file.stat().st_mode) == 0o600
    assert ensure_local_passwords(secure) == []


def test_secure_broker_config_has_sasl_ssl_clients_a_plaintext_controller_and_no_password(secure):
    ensure_local_passwords(secure)
    ensure_certificates(secure)
    broker = kafka_services(secure)[0]
    config = broker.render_config()
    assert f"listeners=SASL_SSL://127.0.0.1:{secure.kafka.port},CONTROLLER://127.0.0.1:" in config
    assert "listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL" in config
    assert "StandardAuthorizer" in config and "allow.everyone.if.no.acl.found=false" in config
    assert f"${{env:{BROKER_PASSWORD}}}" in config
    assert secure.security.credential("kafka_admin") not in config
    assert broker.environment()[BROKER_PASSWORD] == secure.security.credential("kafka_admin")


def test_three_brokers_form_one_quorum_on_their_own_ports(monkeypatch, tmp_path):
    monkeypatch.setenv("TICKLAKE_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("TICKLAKE_KAFKA__BROKERS", "3")
    settings = Settings()
    assert settings.kafka.replication_factor == 3 and settings.kafka.min_insync_replicas == 2
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092,127.0.0.1:9102,127.0.0.1:9112"
    brokers = kafka_services(settings)
    assert [b.name for b in brokers] == ["kafka", "kafka-2", "kafka-3"]
    assert len({b.home for b in brokers}) == 3 and len({b.marker for b in brokers}) == 3
    configs = [b.render_config() for b in brokers]
    voters = "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9103,3@127.0.0.1:9113"
    assert all(voters in config for config in configs)
    assert "node.id=3" in configs[2] and "listeners=PLAINTEXT://127.0.0.1:9112," in configs[2]
    assert all("offsets.topic.replication.factor=3" in c and "transaction.state.log.min.isr=2" in c for c in configs)


def test_secure_cassandra_authenticates_authorizes_and_encrypts_with_the_pem_factory(secure):
    ensure_certificates(secure)
    config = CassandraService(secure).render_config()
    assert "authenticator: PasswordAuthenticator" in config and "authorizer: CassandraAuthorizer" in config
    assert "PEMBasedSslContextFactory" in config and "optional: false" in config
    assert "-Dcassandra.superuser_setup_delay_ms=500" in CassandraService(secure).service_jvm_args()


def test_the_default_profile_renders_plaintext_without_authentication(settings):
    assert "AllowAllAuthenticator" in CassandraService(settings).render_config()
    config = kafka_services(settings)[0].render_config()
    assert "SASL" not in config and "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" in config


def test_refusals_name_the_setting_to_fix(settings, secure):
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    ensure_local_passwords(secure)
    refused = NoHostAvailable("no", {"127.0.0.1:9042": AuthenticationFailed("Bad credentials")})
    assert "TICKLAKE_SECURITY__CASSANDRA_APP__PASSWORD_FILE" in str(security.cassandra_refused(secure, "app", refused))
    assert "TICKLAKE_SECURITY__ENABLED=true" in str(security.cassandra_refused(settings, "app", refused))
    untrusted = NoHostAvailable("no", {"127.0.0.1:9042": OSError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")})
    assert "security.ca_file" in str(security.cassandra_refused(secure, "app", untrusted))
    assert "TICKLAKE_SECURITY__ENABLED=true" in str(security.kafka_unreachable(settings, "admin"))
    assert "TICKLAKE_SECURITY__KAFKA_ADMIN__PASSWORD_FILE" in str(security.kafka_unreachable(secure, "admin"))


def expired_certificate(folder) -> Path:
    """A self-signed certificate valid for one day in 2020 (keytool sets the start date; openssl 3.0 cannot)."""
    store, path = folder / "old.p12", folder / "old.crt"
    for command in (["-genkeypair", "-alias", "old", "-keyalg", "RSA", "-keysize", "2048", "-dname", "CN=old",
                     "-startdate", "2020/01/01", "-validity", "1", "-ext", "bc:c"],
                    ["-exportcert", "-rfc", "-alias", "old", "-file", str(path)]):
        subprocess.run(["keytool", *command, "-keystore", str(store), "-storetype", "PKCS12", "-storepass", "changeit"],
                       check=True, capture_output=True)
    return path


def test_an_expired_ca_names_its_setting_before_any_connection(monkeypatch, tmp_path, secure):
    ensure_local_passwords(secure)
    old = expired_certificate(tmp_path)
    monkeypatch.setenv("TICKLAKE_SECURITY__CA_FILE", str(old))
    expired = Settings()
    for client in (security.cassandra_driver, security.kafka_python, security.librdkafka, security.spark_kafka_options):
        with pytest.raises(UserError, match="security.ca_file.*expired on Jan  2 .* 2020.*TICKLAKE_SECURITY__CA_FILE"):
            client(expired)
    ensure_certificates(secure)
    assert security.expired_on(secure.security.ca_file) is None and security.kafka_python(secure)["ssl_cafile"]


def test_up_refuses_an_expired_server_certificate_before_starting_anything(secure, tmp_path):
    from ticklake import services

    ensure_certificates(secure)
    expired_certificate(tmp_path)
    secure.security.cert_file.write_bytes((tmp_path / "old.crt").read_bytes())
    with pytest.raises(UserError, match="security.cert_file.*expired on .*2020.*TICKLAKE_SECURITY__CERT_FILE"):
        services.up(secure)
    assert not secure.services_dir.exists()  # nothing was launched


def test_up_names_a_missing_server_certificate_it_cannot_sign(secure):
    from ticklake import services

    ensure_certificates(secure)
    (secure.security.certs_dir / "ca.key").unlink()  # a CA whose key is elsewhere, as in production
    secure.security.cert_file.unlink()
    with pytest.raises(ServiceError, match="security.cert_file.*is missing.*TICKLAKE_SECURITY__CERT_FILE"):
        services.up(secure)
    assert not secure.services_dir.exists()  # nothing was launched


def test_a_node_with_an_expired_certificate_names_the_certificate_setting(secure):
    from cassandra.cluster import NoHostAvailable

    ensure_local_passwords(secure)
    refused = NoHostAvailable("no", {"127.0.0.1:9042": OSError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired (_ssl.c:1006)")})
    message = str(security.cassandra_refused(secure, "app", refused))
    assert "certificate has expired" in message and "TICKLAKE_SECURITY__CERT_FILE" in message


def test_the_cqlshrc_uses_tls_the_pipeline_role_and_a_credentials_file_of_the_owner(secure, settings, capsys):
    import configparser

    from ticklake.cli import main

    ensure_local_passwords(secure)
    ensure_certificates(secure)
    assert main(["cqlshrc"]) == 0
    text = capsys.readouterr().out
    rc = configparser.ConfigParser()
    rc.read_string(text)
    sec = secure.security
    assert rc["connection"]["ssl"] == "true" and rc["ssl"]["validate"] == "true"
    assert rc["ssl"]["certfile"] == str(sec.ca_file) and rc["authentication"]["username"] == "ticklake"
    assert sec.credential("cassandra_app") not in text and "password" not in text
    credentials = Path(rc["authentication"]["credentials"])
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert f"password = {sec.credential('cassandra_app')}" in credentials.read_text()
    plain = configparser.ConfigParser()
    plain.read_string(security.cqlshrc(settings))
    assert dict(plain["connection"]) == {"hostname": "127.0.0.1", "port": str(settings.cassandra.port)}
    assert plain.sections() == ["connection"]
