"""The one configuration model of ticklake.

Precedence, highest first: environment variables (``TICKLAKE_`` prefix, ``__`` between
nested names, e.g. ``TICKLAKE_KAFKA__TRADES_TOPIC``), the TOML file named by
``TICKLAKE_CONFIG`` (default ``conf/ticklake.toml``), then the defaults below, which
describe the local single-machine stack.  Paths left empty are derived from
``state_dir`` so that one setting moves a whole environment.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = Path("conf") / "ticklake.toml"
DAY_MS = 24 * 3600 * 1000


def config_file() -> Path:
    """The TOML file in force. A relative ``TICKLAKE_CONFIG`` is looked up in the working
    directory, then in the project (code shipped to Spark in a zip has no project around it)."""
    path = Path(os.environ.get("TICKLAKE_CONFIG", DEFAULT_CONFIG_FILE))
    if path.is_absolute():
        return path
    for base in (Path.cwd(), PROJECT_ROOT):
        if (base / path).is_file():
            return base / path
    return PROJECT_ROOT / path


class KafkaSettings(BaseModel):
    # Empty: the local broker, 127.0.0.1:<port>.
    bootstrap_servers: str = ""
    port: int = 9092
    controller_port: int = 9093
    # Brokers of the local KRaft cluster ('ticklake up --brokers 3'). Broker n (from 0) listens on
    # port + n * port_step, its controller on controller_port + n * port_step, its exporter on
    # metrics_port + n * port_step.
    brokers: int = Field(default=1, ge=1, le=9)
    port_step: int = Field(default=10, ge=2)
    # Of the topics 'ticklake up' creates. Empty: min(brokers, 3) replicas, and 2 in sync with 3 replicas, else 1.
    replication_factor: int | None = Field(default=None, ge=1)
    min_insync_replicas: int | None = Field(default=None, ge=1)
    trades_topic: str = "trades"
    dead_letter_topic: str = "trades.dead-letter"
    partitions: int = 6
    retention_ms: int = 7 * DAY_MS
    compression: str = "lz4"
    # Producer client library: "kafka-python" or "confluent-kafka" (see docs/BENCHMARKS.md).
    client: Literal["kafka-python", "confluent-kafka"] = "confluent-kafka"
    heap: str = "512m"
    metrics_port: int = 9468  # the JMX exporter agent in the local broker (loopback); 0: none


class CassandraSettings(BaseModel):
    contact_points: list[str] = ["127.0.0.1"]
    port: int = 9042
    storage_port: int = 7000
    local_dc: str = "datacenter1"
    keyspace: str = "ticklake"
    trades_table: str = "trades_v2"
    bars_table: str = "trade_aggregates"
    replication_factor: int = 1
    trades_ttl_seconds: int = 30 * 24 * 3600
    bars_ttl_seconds: int = 90 * 24 * 3600
    heap: str = "1G"
    metrics_port: int = 9469  # the JMX exporter agent in the local node (loopback); 0: none

    def qualified(self, table: str) -> str:
        """``keyspace.table``: statements name their keyspace, sessions use none (no ``USE``)."""
        return f"{self.keyspace}.{table}"


class IcebergSettings(BaseModel):
    catalog_name: str = "ticklake"
    # SQLite file shared by Spark's JDBC catalog and pyiceberg's SqlCatalog.
    catalog_db: Path | None = None
    warehouse: Path | None = None
    namespace: str = "market"
    trades_table: str = "trades"
    bars_table: str = "bars_1m"
    quarantine_table: str = "quarantine"
    # Rolled-up bars: timeframe -> table (jobs/rollup_bars.py). A timeframe is minutes,
    # hours or days ("5m", "1h", "1d") and must divide a UTC day.
    rollup_tables: dict[str, str] = {"5m": "bars_5m", "1h": "bars_1h", "1d": "bars_1d"}

    @model_validator(mode="after")
    def _check_timeframes(self) -> IcebergSettings:
        from ticklake.timeframes import rollup_seconds

        for timeframe in self.rollup_tables:
            rollup_seconds(timeframe)
        return self

    @property
    def jdbc_uri(self) -> str:
        return f"jdbc:sqlite:{self.catalog_db}"

    @property
    def sqlalchemy_uri(self) -> str:
        return f"sqlite:///{self.catalog_db}"

    @property
    def warehouse_uri(self) -> str:
        return Path(self.warehouse).as_uri()


class SparkSettings(BaseModel):
    master: str = "local[*]"
    checkpoint_root: Path | None = None
    bars_trigger_seconds: float = 1.0  # bars in Cassandra: how fresh the bars people watch are
    trigger_seconds: float = 5.0  # raw trades in Cassandra
    lake_trigger_seconds: float = 60.0  # Iceberg queries: one commit per table this often
    watermark_seconds: int = 30
    # How long the Kafka source's consumer lets the broker hold a fetch that finds no new record.
    # A task's consumer fetches ahead of its offset range, and the next batch's read waits for that
    # fetch: at Kafka's default (500 ms) that wait was most of a one-second bar batch
    # (docs/BENCHMARKS.md).
    kafka_fetch_max_wait_ms: int = Field(default=10, ge=0)
    # A failed query restarts all queries from their checkpoints after a doubling backoff;
    # the count of failures in a row resets after a run that lasted healthy_run_seconds.
    max_restarts: int = 20
    restart_backoff_seconds: float = 5.0
    max_restart_backoff_seconds: float = 60.0
    healthy_run_seconds: float = 600.0
    # The local standalone cluster of 'ticklake cluster up' (one master, one worker).
    master_port: int = 7077
    master_ui_port: int = 8090
    worker_port: int = 7078
    worker_ui_port: int = 8091
    worker_cores: int = 2
    worker_memory: str = "3g"

    @property
    def standalone_master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"
    shuffle_partitions: int = 4
    driver_memory: str = "2g"
    metrics_host: str = "127.0.0.1"  # the address the driver's metrics endpoint binds
    metrics_port: int = 9465  # 0: no metrics endpoint
    # ticklake stream runs the bars in one application and the stores (raw trades, lake) in a
    # second, at this niceness, so that the operating system gives the bars the cores first.
    stores_niceness: int = 10
    stores_metrics_port: int = 9470  # the stores application's metrics endpoint; 0: none
    # A file to which the streaming job appends each micro-batch phase's duration as a JSON
    # line (ticklake bench stream reads it); empty: none.
    phase_journal: Path | None = None


class ProducerSettings(BaseModel):
    url: str = "wss://ws.finnhub.io"
    symbols: list[str] = ["AAPL", "MSFT", "AMZN", "BINANCE:BTCUSDT", "BINANCE:ETHUSDT"]
    default_exchange: str = "US"
    metrics_host: str = "127.0.0.1"  # the address the metrics endpoint binds
    metrics_port: int = 9464  # 0: no metrics endpoint
    # Accepted distance of a live trade's time from now, either way.
    max_clock_skew_seconds: int = 24 * 3600
    # Offer permessage-deflate to the feed. Off by default: inflating frames cost the producer
    # 1.5 us of CPU per trade (a fifth of its budget at 100k trades/s) to save bandwidth that a
    # feed's trade rate hardly needs (docs/PRODUCER.md).
    websocket_compression: bool = False
    # Records the Kafka client (confluent-kafka) may hold unacknowledged; when it is full the
    # producer waits (backpressure, ticklake_producer_backpressure_seconds_total) and stops reading.
    buffer_records: int = Field(default=500_000, ge=1)


class FeedSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8765
    trades_per_second: float = 200.0
    seed: int = 7


class MaintenanceSettings(BaseModel):
    """Retention and compaction of the lake (jobs/maintain_lake.py, docs/LAKE.md)."""

    target_file_size_mb: int = Field(default=128, gt=0)
    # A partition is compacted when it has at least this many small files.
    min_input_files: int = Field(default=5, ge=2)
    # Snapshots older than this are expired (time travel reaches back this far) ...
    snapshot_max_age_hours: float = Field(default=48, ge=0)
    # ... except the newest ones, which are always kept.
    retain_last_snapshots: int = Field(default=20, ge=1)
    # Files no snapshot refers to are deleted once they are this old. Keep it longer than
    # any write can take: a running write's new files are not referenced yet.
    orphan_min_age_hours: float = Field(default=72, gt=0)
    # Metadata files (one per commit) kept besides the current one; older ones are deleted
    # at each commit (table properties, set by 'ticklake up').
    metadata_versions_kept: int = Field(default=50, ge=1)


class ScheduledJob(BaseModel):
    """One entry of ``[[schedule.jobs]]``: a command run when its cron expression is due."""

    # A DNS label short enough to name a Kubernetes CronJob ("ticklake-<name>", 52 at most).
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,41}[a-z0-9])?$")
    cron: str  # five fields: minute hour day-of-month month day-of-week
    command: str  # run from the project directory; "./spark-submit.sh jobs/..." for Spark jobs
    timeout_minutes: float = Field(default=120, gt=0)

    @model_validator(mode="after")
    def _check_cron(self) -> ScheduledJob:
        from ticklake.cron import validate

        validate(self.cron, self.name)
        return self


class KubernetesSettings(BaseModel):
    """What ``ticklake schedule k8s`` puts into the CronJob manifests."""

    namespace: str = "ticklake"
    image: str = "ticklake:0.1.0"
    service_account: str = "ticklake-spark"
    spark_master: str = "k8s://https://kubernetes.default.svc:443"
    config_map: str = "ticklake-conf"  # holds ticklake.toml, mounted at /app/conf
    workdir: str = "/app"


class ScheduleSettings(BaseModel):
    timezone: str = "UTC"  # of the cron expressions
    metrics_host: str = "127.0.0.1"  # the address the metrics endpoint binds
    metrics_port: int = 9466  # 0: no metrics endpoint
    max_parallel: int = Field(default=1, ge=1)  # due jobs beyond this wait their turn
    log_dir: Path | None = None  # default <state_dir>/schedule
    jobs: list[ScheduledJob] = []
    kubernetes: KubernetesSettings = KubernetesSettings()

    @model_validator(mode="after")
    def _check(self) -> ScheduleSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"schedule.timezone: unknown time zone {self.timezone!r} (e.g. UTC, Europe/London)") from None
        names = [job.name for job in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule.jobs: job names must be unique, got {names}")
        return self
class PriceJumpRule(BaseModel):
    """The price moves by more than ``percent`` % within ``seconds`` seconds of event time,
    measured between buckets of ``bucket_ms`` (jobs/flink_sql.py, docs/FLINK.md)."""

    enabled: bool = True
    percent: float = Field(default=2.0, gt=0)
    seconds: int = Field(default=60, gt=0)
    bucket_ms: int = Field(default=1000, gt=0)

    @model_validator(mode="after")
    def _whole_buckets(self) -> PriceJumpRule:
        if (self.seconds * 1000) % self.bucket_ms:
            raise ValueError(f"flink.price_jump: seconds ({self.seconds}) must be a whole number of "
                             f"buckets of bucket_ms ({self.bucket_ms})")
        return self


class VolumeSpikeRule(BaseModel):
    """A minute's volume exceeds ``factor`` times the mean of the ``minutes`` minutes before it."""

    enabled: bool = True
    factor: float = Field(default=5.0, gt=1)
    minutes: int = Field(default=5, ge=1)


class FailedRallyRule(BaseModel):
    """``rising_bars`` rising 1-minute bars, then a close below the first one's open (MATCH_RECOGNIZE)."""

    enabled: bool = True
    rising_bars: int = Field(default=3, ge=2)


class FlinkSettings(BaseModel):
    """The real-time job (jobs/flink_realtime.py; docs/FLINK.md)."""

    bars_topic: str = "bars.live"  # upsert stream keyed by (symbol, window_start)
    alerts_topic: str = "alerts"  # one record per alert, keyed by its id
    rejects_topic: str = "flink.rejected"  # records of the trades topic that are not trades, counted by reason
    watermark_ms: int = Field(default=2000, ge=0)  # bounded out-of-orderness of trade times
    idle_timeout_ms: int = Field(default=5000, gt=0)  # a partition without records this long holds no watermark back
    checkpoint_interval_ms: int = Field(default=500, gt=0)  # exactly once: outputs are readable after each
    # Checkpoint barriers overtake the rows in flight instead of waiting for them (still exactly once).
    unaligned_checkpoints: bool = True
    delivery_guarantee: Literal["exactly-once", "at-least-once"] = "exactly-once"
    # Kafka transactions of the exactly-once sinks; at most the broker's transaction.max.timeout.ms (15 min).
    transaction_timeout_ms: int = Field(default=600_000, gt=0, le=900_000)
    # Operator state (live bars, deduplication) is dropped this long after its last change.
    state_ttl_hours: float = Field(default=24.0, gt=0)
    mini_batch_ms: int = Field(default=50, ge=0)  # 0: every trade updates its bar alone
    # How often the source emits a watermark (Flink's default: 200 ms); the live bars' mini-batches end on one.
    watermark_interval_ms: int = Field(default=50, gt=0)
    parallelism: int = Field(default=2, ge=1)  # task slots and source tasks
    # A task sends a network buffer on once it is full or this old (Flink's default: 100 ms).
    buffer_timeout_ms: int = Field(default=10, gt=0)
    startup_mode: Literal["earliest-offset", "latest-offset", "group-offsets"] = "earliest-offset"
    metrics_port: int = 9250  # Flink's Prometheus reporter (0: none)
    metrics_host: str = "127.0.0.1"  # the address the reporter binds
    rest_port: int = 9251  # the mini-cluster's REST API on loopback (stop with savepoint, status)
    heap: str = "1g"
    state_dir: Path | None = None  # default <state_dir>/flink: checkpoints, savepoints, pid, logs
    price_jump: PriceJumpRule = PriceJumpRule()
    volume_spike: VolumeSpikeRule = VolumeSpikeRule()
    failed_rally: FailedRallyRule = FailedRallyRule()

    def rules(self) -> dict[str, BaseModel]:
        """The alert rules above, by name (jobs/flink_sql.py's RULES)."""
        return {"price_jump": self.price_jump, "volume_spike": self.volume_spike, "failed_rally": self.failed_rally}


class MonitoringSettings(BaseModel):
    """The local Prometheus, Alertmanager and alert receiver of ``ticklake up`` (docs/OPERATIONS.md)."""

    enabled: bool = True  # false (or 'ticklake up --no-monitoring'): up starts Kafka and Cassandra only
    prometheus_port: int = 9090
    alertmanager_port: int = 9094  # not Alertmanager's default 9093: that is Kafka's controller port
    receiver_port: int = 9467  # the webhook receiver Alertmanager notifies
    scrape_interval_seconds: float = Field(default=15, gt=0)
    evaluation_interval_seconds: float = Field(default=15, gt=0)
    retention: str = "15d"  # Prometheus' --storage.tsdb.retention.time
    # Alertmanager's grouping: first notification of a group after group_wait, changes to it
    # every group_interval, the same alerts again every repeat_interval.
    group_wait_seconds: float = Field(default=30, gt=0)
    group_interval_seconds: float = Field(default=300, gt=0)
    repeat_interval_seconds: float = Field(default=4 * 3600, gt=0)
    # Alert name -> a 'for' duration replacing the one in infra/prometheus/rules (e.g. "10s").
    alert_for: dict[str, str] = {}
    # Scrape job -> host:port targets beyond ticklake's own (e.g. a Flink reporter: {"flink": ["127.0.0.1:9250"]}).
    extra_targets: dict[str, list[str]] = {}


class BacktestSettings(BaseModel):
    runs_table: str = "backtest_runs"
    trades_table: str = "backtest_trades"
    equity_table: str = "backtest_equity"
    # Empty: <state_dir>/reports; one folder per sweep, one HTML file per detailed run.
    reports_dir: Path | None = None
    cash: float = 10_000.0
    commission: float = 0.0  # fraction of traded value per fill
    slippage: float = 0.0  # fraction of the price per fill, against the trader
    rank_by: str = "sharpe"
    detail_runs: int = 5  # best runs of a sweep whose trades, equity curve and report are kept
    trading_days: int = 252  # annualisation of assets with an exchange calendar
    # Symbols with these prefixes trade every day: annualised with 365 days.
    every_day_prefixes: list[str] = ["BINANCE:", "COINBASE:", "KRAKEN:", "BITFINEX:", "OANDA:", "FXCM:", "FOREX:"]
    bench_bars_table: str = "bench_bars_1m"


class Credential(BaseModel):
    """A user name and its password: inline (an environment variable, never a file in the
    repository) or in ``password_file``. Without either, the file defaults to
    ``<security.secrets_dir>/<name>``, which ``ticklake up`` fills with a random password."""

    username: str = ""  # empty: the default of its setting (USERNAMES)
    password: SecretStr | None = None
    password_file: Path | None = None

    def secret(self, setting: str) -> str:
        """The password; a UserError naming the settings to fix when there is none."""
        from ticklake.errors import UserError

        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None and self.password_file.is_file():
            return self.password_file.read_text().strip()
        name = f"TICKLAKE_SECURITY__{setting.upper()}"
        raise UserError(f"security.{setting}: no password for {self.username!r}: the file {self.password_file} is "
                        f"missing. Set {name}__PASSWORD or {name}__PASSWORD_FILE, or run 'ticklake up', "
                        "which creates local ones")


# setting -> default user name. Kafka: the admin is the brokers' own user and a super user
# (provisioning, tooling); the others get ACLs for their topics only. Cassandra: the superuser
# (schema, roles) and the role the pipeline reads and writes with.
USERNAMES = {"kafka_admin": "admin", "kafka_producer": "producer", "kafka_stream": "stream",  # stream: Spark, the CLI
             "kafka_flink": "flink", "cassandra_superuser": "cassandra", "cassandra_app": "ticklake"}
KAFKA_USERS = tuple(name for name in USERNAMES if name.startswith("kafka_"))
CASSANDRA_USERS = tuple(name for name in USERNAMES if name.startswith("cassandra_"))


class SecuritySettings(BaseModel):
    """The secure profile (conf/secure.toml; docs/SECURITY.md): TLS on every client link, SCRAM
    for Kafka, password authentication and grants in Cassandra. Off: plaintext, no authentication."""

    enabled: bool = False
    # Empty: <state_dir>/certs, where 'ticklake up' creates a local CA and a server certificate.
    certs_dir: Path | None = None
    ca_file: Path | None = None  # PEM; default <certs_dir>/ca.crt
    cert_file: Path | None = None  # the servers' certificate chain, PEM; default <certs_dir>/server.crt
    key_file: Path | None = None  # its unencrypted PKCS#8 key, PEM; default <certs_dir>/server.key
    # The CA as a PKCS12 truststore for the Spark Cassandra connector (default <certs_dir>/truststore.p12).
    # Its password only guards the file's integrity: it protects no secret.
    truststore_file: Path | None = None
    truststore_password: str = "ticklake-truststore"
    secrets_dir: Path | None = None  # default <state_dir>/secrets: the generated local passwords
    # The users (USERNAMES): Kafka over SASL_SSL with SCRAM-SHA-512, Cassandra with passwords.
    kafka_admin: Credential = Credential()
    kafka_producer: Credential = Credential()
    kafka_stream: Credential = Credential()
    kafka_flink: Credential = Credential()
    cassandra_superuser: Credential = Credential()
    cassandra_app: Credential = Credential()
    superuser_setup_delay_ms: int = Field(default=500, ge=0)  # Cassandra's default: 10 s

    def credential(self, name: str) -> str:
        return getattr(self, name).secret(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TICKLAKE_", env_nested_delimiter="__", extra="ignore"
    )

    state_dir: Path = Path.home() / ".ticklake" / "state"
    cache_dir: Path = Path.home() / ".ticklake" / "cache"
    finnhub_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("FINNHUB_TOKEN", "finnhub_token")
    )
    kafka: KafkaSettings = KafkaSettings()
    cassandra: CassandraSettings = CassandraSettings()
    iceberg: IcebergSettings = IcebergSettings()
    spark: SparkSettings = SparkSettings()
    producer: ProducerSettings = ProducerSettings()
    feed: FeedSettings = FeedSettings()
    maintenance: MaintenanceSettings = MaintenanceSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    backtest: BacktestSettings = BacktestSettings()
    flink: FlinkSettings = FlinkSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    security: SecuritySettings = SecuritySettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file())
        return (init_settings, env_settings, toml)

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        k = self.kafka
        if not k.bootstrap_servers:
            k.bootstrap_servers = ",".join(f"127.0.0.1:{k.port + n * k.port_step}" for n in range(k.brokers))
        k.replication_factor = k.replication_factor or min(k.brokers, 3)
        k.min_insync_replicas = k.min_insync_replicas or (2 if k.replication_factor >= 3 else 1)
        self.state_dir = self.state_dir.expanduser().resolve()
        self.cache_dir = self.cache_dir.expanduser().resolve()
        lake = self.state_dir / "lake"
        self.iceberg.catalog_db = Path(self.iceberg.catalog_db or lake / "catalog.db")
        self.iceberg.warehouse = Path(self.iceberg.warehouse or lake / "warehouse")
        self.spark.checkpoint_root = Path(
            self.spark.checkpoint_root or self.state_dir / "checkpoints"
        )
        self.schedule.log_dir = Path(self.schedule.log_dir or self.state_dir / "schedule")
        self.backtest.reports_dir = Path(self.backtest.reports_dir or self.state_dir / "reports")
        self.flink.state_dir = Path(self.flink.state_dir or self.state_dir / "flink")
        sec = self.security
        sec.certs_dir = Path(sec.certs_dir or self.state_dir / "certs")
        sec.ca_file = Path(sec.ca_file or sec.certs_dir / "ca.crt")
        sec.cert_file = Path(sec.cert_file or sec.certs_dir / "server.crt")
        sec.key_file = Path(sec.key_file or sec.certs_dir / "server.key")
        sec.truststore_file = Path(sec.truststore_file or sec.certs_dir / "truststore.p12")
        sec.secrets_dir = Path(sec.secrets_dir or self.state_dir / "secrets")
        for name, username in USERNAMES.items():
            credential = getattr(sec, name)
            credential.username = credential.username or username
            if credential.password is None and credential.password_file is None:
                credential.password_file = sec.secrets_dir / name
        return self

    @property
    def services_dir(self) -> Path:
        return self.state_dir / "services"

    @property
    def jars_dir(self) -> Path:
        return self.cache_dir / "jars"

    def as_environment(self) -> dict[str, str]:
        """These settings as ``TICKLAKE_*`` variables, to hand them to a child process
        (spark-submit, the feed). Secrets are left out: the Finnhub token and inline passwords
        reach children through the environment they inherit, password files by their paths."""
        env = {"TICKLAKE_STATE_DIR": str(self.state_dir), "TICKLAKE_CACHE_DIR": str(self.cache_dir)}
        sections = ("kafka", "cassandra", "iceberg", "spark", "producer", "feed", "maintenance", "backtest", "flink",
                    "security")
        for section in sections:
            for name, value in getattr(self, section).model_dump(mode="json").items():
                prefix = f"TICKLAKE_{section.upper()}__{name.upper()}"
                if section == "security" and isinstance(value, dict):  # a Credential, one variable per field
                    env |= {f"{prefix}__{field.upper()}": str(text) for field, text in value.items()
                            if field != "password" and text is not None}
                elif value is not None:  # absent: the child takes the default
                    env[prefix] = value if isinstance(value, str) else json.dumps(value)
        return env

    def producer_url(self) -> str:
        """The feed URL with the token appended; never log the result."""
        if self.finnhub_token is None:
            return self.producer.url
        sep = "&" if "?" in self.producer.url else "?"
        return f"{self.producer.url}{sep}token={self.finnhub_token.get_secret_value()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
