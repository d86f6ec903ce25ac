"""Every client's connection options, from the one settings model: the one place that knows
how a Kafka or Cassandra client authenticates and encrypts (docs/SECURITY.md).

With ``security.enabled`` off, each function returns only the addresses (plaintext, no
authentication), so the default profile's clients are configured exactly as before.

Kafka users (the ``user`` arguments) are the names of ``KAFKA_USERS`` without the prefix:
"admin" (provisioning, tooling), "producer", "stream" (Spark, the CLI's readers), "flink".
"""
from __future__ import annotations

import subprocess
from functools import lru_cache

from ticklake.config import Settings
from ticklake.errors import UserError

SCRAM = "SCRAM-SHA-512"
JAAS_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
# The Flink SQL Kafka jar relocates the Kafka client, its login modules with it.
FLINK_JAAS_MODULE = f"org.apache.flink.kafka.shaded.{JAAS_MODULE}"
FLINK_PASSWORD = "TICKLAKE_FLINK_KAFKA_PASSWORD"  # the Flink job's environment variable
# Keys of options and properties whose values Spark hides in its UI, event log and plans
# (spark.sql.redaction.options.regex; spark.redaction.regex covers the Spark properties).
REDACTED_OPTIONS = "(?i)url|jaas|password|secret|token"
# TLS 1.3 and 1.2 GCM suites: the Spark Cassandra connector's default list holds CBC suites
# that current JDKs disable, and with them the handshake fails.
CASSANDRA_CIPHER_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                           "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")


def enabled(settings: Settings) -> bool:
    return settings.security.enabled


def kafka_password(settings: Settings, user: str) -> tuple[str, str]:
    """(user name, password) of a Kafka user."""
    name = f"kafka_{user}"
    return getattr(settings.security, name).username, settings.security.credential(name)


def jaas_config(username: str, password: str, module: str = JAAS_MODULE) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    return f"{module} required username={quoted(username)} password={quoted(password)};"


# --- Kafka ------------------------------------------------------------------------------
def kafka_python(settings: Settings, user: str = "stream") -> dict:
    """Keyword arguments of kafka-python's clients (KafkaConsumer, KafkaProducer, KafkaAdminClient)."""
    options: dict = {"bootstrap_servers": settings.kafka.bootstrap_servers}
    if enabled(settings):
        username, password = kafka_password(settings, user)
        options |= {"security_protocol": "SASL_SSL", "sasl_mechanism": SCRAM, "sasl_plain_username": username,
                    "sasl_plain_password": password, "ssl_cafile": str(ca_file(settings)),
                    "ssl_check_hostname": True}
    return options


def librdkafka(settings: Settings, user: str = "stream") -> dict:
    """Configuration of confluent-kafka's clients (librdkafka)."""
    options: dict = {"bootstrap.servers": settings.kafka.bootstrap_servers}
    if enabled(settings):
        username, password = kafka_password(settings, user)
        options |= {"security.protocol": "SASL_SSL", "sasl.mechanism": SCRAM, "sasl.username": username,
                    "sasl.password": password, "ssl.ca.location": str(ca_file(settings)),
                    "ssl.endpoint.identification.algorithm": "https"}
    return options


def kafka_java(settings: Settings, user: str, module: str = JAAS_MODULE, password: str | None = None) -> dict[str, str]:
    """Properties of the Java Kafka client (Spark's Kafka source, Flink's connector); ``password``
    in place of the user's own (a reference the client's process resolves)."""
    options = {"bootstrap.servers": settings.kafka.bootstrap_servers}
    if enabled(settings):
        username, own = kafka_password(settings, user)
        password = own if password is None else password
        options |= {"security.protocol": "SASL_SSL", "sasl.mechanism": SCRAM,
                    "sasl.jaas.config": jaas_config(username, password, module),
                    "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca_file(settings))}
    return options


def spark_kafka_options(settings: Settings, user: str = "stream") -> dict[str, str]:
    """Options of Spark's Kafka source: set on the reader in the job's code, never on the
    command line; their values are hidden by ``spark_conf``'s redaction."""
    return {f"kafka.{key}": value for key, value in kafka_java(settings, user).items()}


def flink_kafka_properties(settings: Settings) -> dict[str, str]:
    """``properties.*`` options of Flink SQL's Kafka connector (the shaded login module). The
    password is the reference ``${FLINK_PASSWORD}``, which the job expands from the environment
    ``flink_environment`` gives it: the job's options file holds no secret."""
    properties = kafka_java(settings, "flink", FLINK_JAAS_MODULE, password=f"${{{FLINK_PASSWORD}}}")
    return {f"properties.{key}": value for key, value in properties.items()}


def flink_environment(settings: Settings) -> dict[str, str]:
    return {FLINK_PASSWORD: kafka_password(settings, "flink")[1]} if enabled(settings) else {}


# --- Cassandra --------------------------------------------------------------------------
def cassandra_driver(settings: Settings, user: str | None = "app") -> dict:
    """Keyword arguments of the cassandra-driver's Cluster: TLS verified against the CA and
    password authentication as the ``cassandra_<user>`` role ("app" or "superuser"; None: none)."""
    if not enabled(settings):
        return {}
    import ssl

    context = ssl.create_default_context(cafile=str(ca_file(settings)))
    options = {"ssl_context": context, "ssl_options": {"server_hostname": settings.cassandra.contact_points[0]}}
    if user is not None:
        from cassandra.auth import PlainTextAuthProvider

        name = f"cassandra_{user}"
        credential = getattr(settings.security, name)
        options["auth_provider"] = PlainTextAuthProvider(credential.username, settings.security.credential(name))
    return options


def ca_file(settings: Settings):
    """The CA file; a UserError naming the setting when it is missing or has expired."""
    path = settings.security.ca_file
    if not path.is_file():
        raise UserError(f"security.ca_file: the CA certificate {path} is missing: run 'ticklake up' (it creates "
                        "a local CA) or point TICKLAKE_SECURITY__CA_FILE at your CA's PEM file")
    when = expired_on(path)
    if when:
        raise UserError(f"security.ca_file: the CA certificate {path} expired on {when}: point "
                        "TICKLAKE_SECURITY__CA_FILE at a current one (for the local CA: delete the files of "
                        f"{settings.security.certs_dir} and run 'ticklake up', which makes new ones)")
    return path


def check_certificates(settings: Settings) -> None:
    """Before the servers start: the CA and the servers' certificate exist and are current."""
    ca_file(settings)
    sec = settings.security
    when = expired_on(sec.cert_file)
    if when:
        raise UserError(f"security.cert_file: the servers' certificate {sec.cert_file} expired on {when}: point "
                        "TICKLAKE_SECURITY__CERT_FILE and TICKLAKE_SECURITY__KEY_FILE at a current certificate "
                        "and key (for the local CA: delete both files and run 'ticklake up', which signs new ones)")


def expired_on(path) -> str | None:
    """When the PEM certificate at ``path`` expired (as openssl prints it), None while it is valid."""
    stat = path.stat()
    return _expired_on(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _expired_on(path: str, mtime_ns: int, size: int) -> str | None:
    try:
        result = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-enddate", "-checkend", "0"],
                                capture_output=True, text=True)
    except FileNotFoundError:
        return None  # no openssl here: the TLS handshake still refuses an expired certificate
    if result.returncode == 0 or not result.stdout.startswith("notAfter="):
        return None  # valid (or not a certificate openssl reads: the TLS handshake says what is wrong)
    return result.stdout.splitlines()[0].removeprefix("notAfter=")


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark properties: redaction always; with security, the Cassandra connector's
    authentication and TLS (its password is redacted by spark.redaction.regex)."""
    conf = {"spark.sql.redaction.options.regex": REDACTED_OPTIONS}
    if not enabled(settings):
        return conf
    sec = settings.security
    prefix = "spark.cassandra.connection.ssl"
    return conf | {
        "spark.cassandra.auth.username": sec.cassandra_app.username,
        "spark.cassandra.auth.password": sec.credential("cassandra_app"),
        f"{prefix}.enabled": "true",
        f"{prefix}.trustStore.path": str(sec.truststore_file),
        f"{prefix}.trustStore.type": "PKCS12",
        f"{prefix}.trustStore.password": sec.truststore_password,
        f"{prefix}.enabledAlgorithms": ",".join(CASSANDRA_CIPHER_SUITES),
    }


# --- cqlsh -------------------------------------------------------------------------------
def cqlshrc(settings: Settings) -> str:
    """A cqlshrc for the first contact point: with the secure profile TLS verified against the CA
    and the pipeline's role, whose password cqlsh reads from ``cqlsh_credentials``' file (cqlsh
    warns about passwords in the cqlshrc itself)."""
    c = settings.cassandra
    lines = ["; written by 'ticklake cqlshrc'", "[connection]", f"hostname = {c.contact_points[0]}", f"port = {c.port}"]
    if enabled(settings):
        sec = settings.security
        lines[1:1] = ["[authentication]", f"username = {sec.cassandra_app.username}",
                      f"credentials = {cqlsh_credentials_file(settings)}"]
        lines += ["ssl = true", "[ssl]", f"certfile = {ca_file(settings)}", "validate = true"]
    return "\n".join(lines) + "\n"


def cqlsh_credentials_file(settings: Settings):
    return settings.security.secrets_dir / "cqlsh.credentials"


def write_cqlsh_credentials(settings: Settings):
    """The pipeline role's current password as a cqlsh credentials file (mode 600) in security.secrets_dir."""
    import os

    sec = settings.security
    path = cqlsh_credentials_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(f"[PlainTextAuthProvider]\nusername = {sec.cassandra_app.username}\n"
                  f"password = {sec.credential('cassandra_app')}\n")
    path.chmod(0o600)
    return path


# --- what a refused connection means --------------------------------------------------
def kafka_unreachable(settings: Settings, user: str) -> UserError:
    """The error for clients that found no broker to talk to, naming the settings to check."""
    servers = settings.kafka.bootstrap_servers
    if not enabled(settings):
        return UserError(f"no Kafka broker answers at {servers}: start one with 'ticklake up' or set "
                         "TICKLAKE_KAFKA__BOOTSTRAP_SERVERS; if the brokers run the secure profile (TLS), set "
                         "TICKLAKE_SECURITY__ENABLED=true")
    name = f"TICKLAKE_SECURITY__KAFKA_{user.upper()}"
    return UserError(f"no Kafka broker at {servers} accepted the user {kafka_password(settings, user)[0]!r} over "
                     f"SASL_SSL: check that they run ('ticklake status'), the password ({name}__PASSWORD or "
                     f"{name}__PASSWORD_FILE) and the CA (security.ca_file, {settings.security.ca_file})")


def cassandra_refused(settings: Settings, user: str | None, error: Exception) -> UserError:
    """The error for a driver's NoHostAvailable: what each node said, read as the setting to fix."""
    reasons = " ".join(f"{type(cause).__name__}: {cause}" for cause in getattr(error, "errors", {}).values())
    where = f"Cassandra at {','.join(settings.cassandra.contact_points)}:{settings.cassandra.port}"
    if "AuthenticationFailed" in reasons and user is not None:
        name = f"cassandra_{user}"
        variable = f"TICKLAKE_SECURITY__{name.upper()}"
        if not enabled(settings):
            return UserError(f"{where} requires a login: it runs the secure profile; set TICKLAKE_SECURITY__ENABLED=true")
        return UserError(f"{where} refused the role {getattr(settings.security, name).username!r}: set its password "
                         f"in {variable}__PASSWORD or {variable}__PASSWORD_FILE")
    if "certificate has expired" in reasons:
        return UserError(f"TLS with {where} failed: a certificate has expired ({reasons}): renew the node's "
                         f"certificate (security.cert_file, {settings.security.cert_file}, "
                         "TICKLAKE_SECURITY__CERT_FILE) and restart it, or the CA (security.ca_file)")
    if "CERTIFICATE_VERIFY_FAILED" in reasons or "SSL" in reasons:
        return UserError(f"TLS with {where} failed ({reasons}): security.ca_file ({settings.security.ca_file}) must "
                         "hold the CA that signed the node's certificate")
    if not enabled(settings) and ("ConnectionShutdown" in reasons or "reset" in reasons or "closed" in reasons):
        return UserError(f"{where} closed a plaintext connection: if it runs the secure profile (TLS), set "
                         "TICKLAKE_SECURITY__ENABLED=true")
    return UserError(f"{where} does not answer ({reasons or error}): start it with 'ticklake up' or set "
                     "TICKLAKE_CASSANDRA__CONTACT_POINTS and TICKLAKE_CASSANDRA__PORT")
