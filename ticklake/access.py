"""The secure profile's users and grants on the running services (docs/SECURITY.md), set on each
``ticklake up``: every step is idempotent, and changed passwords take effect.

Kafka: the SCRAM credentials of the producer, stream and Flink users (the brokers' own admin user
gets its credential when the storage is formatted) and their ACLs. Cassandra: the default
superuser's password is changed to the configured one, and the pipeline's role gets SELECT and
MODIFY on its keyspace, nothing more.
"""
from __future__ import annotations

import time

from ticklake.config import Settings
from ticklake.errors import UserError
from ticklake.logs import librdkafka_logging, silenced
from ticklake.security import SCRAM, cassandra_refused, librdkafka

SCRAM_ITERATIONS = 8192
DEFAULT_SUPERUSER = ("cassandra", "cassandra")  # what a new Cassandra node creates
SUPERUSER_WAIT_SECONDS = 60.0


def _wait_all(futures: dict, what: str) -> None:
    for key, future in futures.items():
        try:
            future.result(timeout=30)
        except Exception as error:  # noqa: BLE001 - KafkaException and timeouts alike
            raise UserError(f"{what} failed for {key}: {error}") from None


def kafka_acls(settings: Settings) -> list:
    """Each user's ACLs. Patterns are prefixes of the configured names, so the topics of an
    isolated run (``<name>.<tag>``) are covered too."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    k, f, sec = settings.kafka, settings.flink, settings.security
    inputs = [k.trades_topic, k.dead_letter_topic]
    outputs = [f.bars_topic, f.alerts_topic, f.rejects_topic]
    topic, group, txn, cluster = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID, ResourceType.BROKER
    grants = {  # user -> [(resource type, name, operations)]
        sec.kafka_producer.username: [*((topic, name, ("WRITE", "DESCRIBE")) for name in inputs),
                                      (cluster, "kafka-cluster", ("IDEMPOTENT_WRITE",))],
        sec.kafka_stream.username: [*((topic, name, ("READ", "DESCRIBE")) for name in inputs + outputs),
                                    (group, "spark-kafka-source-", ("READ",)), (group, "ticklake-", ("READ",))],
        sec.kafka_flink.username: [(topic, k.trades_topic, ("READ", "DESCRIBE")),
                                   *((topic, name, ("WRITE", "DESCRIBE")) for name in outputs),
                                   (group, "ticklake-flink-", ("READ",)),
                                   (txn, "ticklake-flink-", ("WRITE", "DESCRIBE")),
                                   (cluster, "kafka-cluster", ("IDEMPOTENT_WRITE",))],
    }
    bindings = []
    for user, entries in grants.items():
        for kind, name, operations in entries:
            pattern = ResourcePatternType.LITERAL if kind == cluster else ResourcePatternType.PREFIXED
            bindings += [AclBinding(kind, name, pattern, f"User:{user}", "*", getattr(AclOperation, operation),
                                    AclPermissionType.ALLOW) for operation in operations]
    return bindings


def ensure_kafka_users(settings: Settings) -> None:
    """Upsert the SCRAM credentials of the client users and their ACLs, as the admin user."""
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin = AdminClient({**librdkafka(settings, "admin"), **librdkafka_logging()})
    sec = settings.security
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts = [UserScramCredentialUpsertion(getattr(sec, name).username, info, sec.credential(name).encode())
               for name in ("kafka_producer", "kafka_stream", "kafka_flink")]
    _wait_all(admin.alter_user_scram_credentials(upserts), f"setting the {SCRAM} credentials")
    _wait_all(admin.create_acls(kafka_acls(settings)), "creating Kafka ACLs")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def superuser_session(settings: Settings):
    """A session as the configured superuser. On a new node the default superuser still has
    its default password (and appears only after cassandra.superuser_setup_delay_ms): then log
    in with that and change it to the configured one."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import NoHostAvailable

    from ticklake.cql import cassandra_cluster

    sec = settings.security
    user, password = sec.cassandra_superuser.username, sec.credential("cassandra_superuser")
    deadline = time.monotonic() + SUPERUSER_WAIT_SECONDS
    while True:
        try:
            with silenced("cassandra"):
                return cassandra_cluster(settings, user="superuser").connect()
        except NoHostAvailable as error:
            if "AuthenticationFailed" not in str(error):
                raise cassandra_refused(settings, "superuser", error) from None
        if user == DEFAULT_SUPERUSER[0]:
            cluster = cassandra_cluster(settings, user=None, auth_provider=PlainTextAuthProvider(*DEFAULT_SUPERUSER))
            try:
                with silenced("cassandra"):
                    session = cluster.connect()
            except NoHostAvailable:
                cluster.shutdown()
            else:
                session.execute(f"ALTER ROLE {user} WITH PASSWORD = {_quoted(password)}", timeout=30)
                cluster.shutdown()
                continue
        if time.monotonic() > deadline:
            raise UserError(f"Cassandra refused the superuser {user!r}: set the password it has in "
                            "TICKLAKE_SECURITY__CASSANDRA_SUPERUSER__PASSWORD(_FILE)")
        time.sleep(0.5)


def ensure_cassandra_roles(settings: Settings) -> None:
    """The superuser's password, and the pipeline's role with its current password."""
    sec = settings.security
    session = superuser_session(settings)
    try:
        app, password = sec.cassandra_app.username, _quoted(sec.credential("cassandra_app"))
        session.execute(f"CREATE ROLE IF NOT EXISTS {app} WITH PASSWORD = {password} AND LOGIN = true", timeout=30)
        session.execute(f"ALTER ROLE {app} WITH PASSWORD = {password}", timeout=30)
    finally:
        session.cluster.shutdown()


def ensure_grants(settings: Settings) -> None:
    """The pipeline's role reads and writes its keyspace's tables; schema changes stay with the superuser."""
    keyspace, role = settings.cassandra.keyspace, settings.security.cassandra_app.username
    session = superuser_session(settings)
    try:
        rows = session.execute("SELECT permissions FROM system_auth.role_permissions WHERE role = %s AND resource = %s",
                               (role, f"data/{keyspace}"))
        granted = {permission for row in rows for permission in row.permissions or ()}
        for permission in ("SELECT", "MODIFY"):
            if permission not in granted:
                session.execute(f"GRANT {permission} ON KEYSPACE {keyspace} TO {role}", timeout=30)
    finally:
        session.cluster.shutdown()
