"""Cassandra driver clusters and sessions, logged in as the configured role."""
from __future__ import annotations

from ticklake.config import Settings
from ticklake.security import cassandra_driver, cassandra_refused


def cassandra_cluster(settings: Settings, consistency_level: int | None = None, request_timeout: float = 10.0,
                      user: str | None = "app", **options):
    """A driver Cluster; with the secure profile it logs in as the ``cassandra_<user>`` role."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

    c = settings.cassandra
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=c.local_dc)),
                               consistency_level=ConsistencyLevel.LOCAL_ONE if consistency_level is None
                               else consistency_level, request_timeout=request_timeout)
    return Cluster(c.contact_points, port=c.port, protocol_version=5,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile}, **cassandra_driver(settings, user), **options)


def cassandra_session(settings: Settings, user: str = "app"):
    """A session in no keyspace (statements name theirs: ``CassandraSettings.qualified``); a
    UserError saying what to fix when no node takes it."""
    from cassandra.cluster import NoHostAvailable

    cluster = cassandra_cluster(settings, user=user)
    try:
        return cluster.connect()
    except NoHostAvailable as error:
        cluster.shutdown()
        raise cassandra_refused(settings, user, error) from None
