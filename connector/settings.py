"""Configuration, read once from the environment into one :class:`Settings` object.

The CLI builds a ``Settings`` at start-up and passes it down; no module reads the environment at
import time. Secrets are ``SecretStr`` so they never appear in ``repr``, logs or error messages.
Variable names are the ones fixed in the project's interface (``KAFKA_BOOTSTRAP_SERVERS``,
``ZOOM_WEBHOOK_SECRET_TOKEN``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connector.errors import ConfigurationError

DEFAULT_BOOTSTRAP = "localhost:9092"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SASL_PROTOCOLS: Final = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
TLS_PROTOCOLS: Final = frozenset({"SSL", "SASL_SSL"})
DEFAULT_SASL_MECHANISM: Final = "PLAIN"


class Settings(BaseSettings):
    """Everything the connector can be told, with the interface's defaults."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Kafka cluster. ``None`` means "not set": ``run`` then starts the local broker; other
    # commands use ``localhost:9092`` (see :attr:`bootstrap_servers`).
    kafka_bootstrap_servers: str | None = None
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    # The password of an encrypted KAFKA_SSL_KEY_LOCATION.
    kafka_ssl_key_password: SecretStr | None = None
    # How long a command waits at start-up for the cluster to answer before it gives up, saying
    # what to check (`topics create`, the worker; the source keeps serving, answering 503).
    kafka_connect_timeout_seconds: float = Field(default=6.0, gt=0)

    # Optional Confluent-compatible schema registry. Its TLS files are its own (a registry
    # often has a public certificate while the brokers have a private CA): unset, an https://
    # registry is verified against the system's CAs, and no client certificate is sent.
    schema_registry_url: str | None = None
    schema_registry_basic_auth_user_info: SecretStr | None = None
    schema_registry_ssl_ca_location: str | None = None
    schema_registry_ssl_certificate_location: str | None = None
    schema_registry_ssl_key_location: str | None = None
    # How long one registry request may take before the client gives up on it and retries it
    # (up to 3 times): a registry that stops answering fails the worker's start-up with an
    # error naming the subject, instead of hanging it.
    schema_registry_timeout_seconds: float = Field(default=10.0, gt=0)

    # Zoom app secret token(s): a comma-separated list is accepted (rotation, several apps).
    zoom_webhook_secret_token: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    topic_prefix: str = "zoom"

    # HTTP source.
    source_host: str = "0.0.0.0"
    source_port: int = 8080
    source_replay_window_seconds: int = 300
    # 512 KiB: Zoom bodies are a few KB, and body + record headers must stay under the broker's
    # default max.message.bytes (1 MiB); `topics create` sizes the raw topic to fit either way.
    source_max_body_bytes: int = 524_288
    source_produce_timeout_seconds: float = 2.5
    source_max_in_flight: int = 1000
    source_access_log: bool = False
    # Opt-in disk spool (connector.source.spool): when Kafka does not acknowledge a webhook within
    # the produce timeout, it is fsynced here and answered 200; a drainer sends it on later.
    source_spool_dir: Path | None = None
    source_spool_max_bytes: int = Field(default=1024**3, ge=1)
    source_spool_segment_bytes: int = Field(default=8 * 1024**2, ge=1)

    # Faust worker.
    worker_web_port: int = 6066
    worker_id: str = "zoom-connector"
    worker_data_dir: str | None = None
    # Table store: "memory://" (rebuilt from the changelog at start-up) or "rocksdb://" (on disk
    # under worker_data_dir; needs the rocksdict package).
    worker_store: str = "memory://"
    # Batches taken from the raw topic: at most this many records, waiting at most this long.
    worker_batch_size: int = Field(default=500, ge=1)
    worker_batch_seconds: float = Field(default=0.2, gt=0)
    # What the broker waits for before answering the worker's fetch (streams.fetching): this many
    # bytes, or this many milliseconds. Faust's own: 1 byte, 1500 ms (a fetch per record or two).
    worker_fetch_min_bytes: int = Field(default=65536, ge=1)
    worker_fetch_max_wait_ms: int = Field(default=20, ge=0)
    # How long a retry of an event is recognised (in raw record time); Zoom retries for ~90 min.
    worker_dedup_retention_seconds: int = Field(default=2 * 3600, ge=1)
    worker_dedup_purge_interval_seconds: float = Field(default=60.0, gt=0)
    # Standby replicas of every table (Faust's table_standby_replicas): other workers keep a copy
    # up to date, so a partition moving to them does not wait for a rebuild from the changelog.
    worker_standby_replicas: int = Field(default=1, ge=0)
    # How long the worker's producers (Faust's producer_linger for the tables, the librdkafka topic
    # writer's linger.ms) wait to fill a request. Fewer, larger requests cost less CPU (5 ms: no
    # measurable change in an A/B of the whole drain, docs/benchmarks.md), but a
    # write held back is one a worker frozen right then sends after it thaws, past the freeze fence
    # (worker.patches.fence; restores skip the stale state by its stamp, but agent_scores holds
    # it until the owner repairs it): so 0 unless you accept that.
    worker_producer_linger_ms: float = Field(default=0.0, ge=0, le=1000)
    # A partition of an input topic whose position stands still this long while records wait,
    # the worker settled and its agents idle, is fetched again (connector.worker.stalls); 0: off.
    worker_stall_seconds: float = Field(default=30.0, ge=0)
    # Agent score aggregates: a score event stays replaceable (by a re-score or re-analysis) for
    # this many days of the agent's event time, plus WORKER_DEDUP_RETENTION_SECONDS of lateness,
    # and at most this many per agent and kind; then it is folded into the agent's totals.
    worker_scores_rescore_days: int = Field(default=31, ge=1)
    worker_scores_max_replaceable: int = Field(default=3000, ge=1)
    # About how much memory (MiB) the agent states kept decoded between batches may take
    # (connector.worker.aggregates.decoded); 0 decodes every state at every batch.
    worker_scores_cache_mb: int = Field(default=64, ge=0)

    # Topic creation.
    topic_partitions: int = 6
    topic_replication_factor: int = 1
    raw_retention_ms: int = 7 * 24 * 3600 * 1000
    typed_retention_ms: int = 7 * 24 * 3600 * 1000
    dlq_retention_ms: int = 30 * 24 * 3600 * 1000

    log_level: str = "INFO"

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("source_spool_dir", mode="before")
    @classmethod
    def _unset_if_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("zoom_webhook_secret_token", mode="before")
    @classmethod
    def _split_secrets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def bootstrap_servers(self) -> str:
        """The cluster to talk to: the configured one, else the local default."""
        return self.kafka_bootstrap_servers or DEFAULT_BOOTSTRAP

    def secret_tokens(self) -> list[bytes]:
        """The Zoom secret tokens as bytes, ready for HMAC."""
        return [s.get_secret_value().encode() for s in self.zoom_webhook_secret_token]

    def check_kafka_security(self) -> None:
        """Refuse contradictory or incomplete ``KAFKA_SECURITY_PROTOCOL`` / SASL / SSL settings.

        Every Kafka client (librdkafka's and Faust's) is configured after this check, so a
        mistake is one clear :class:`~connector.errors.ConfigurationError` at start-up rather
        than a client silently ignoring a setting, or a handshake failing later.
        """
        protocol = self.kafka_security_protocol
        sasl = {
            "KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        tls = {
            "KAFKA_SSL_CA_LOCATION": self.kafka_ssl_ca_location,
            "KAFKA_SSL_CERTIFICATE_LOCATION": self.kafka_ssl_certificate_location,
            "KAFKA_SSL_KEY_LOCATION": self.kafka_ssl_key_location,
            "KAFKA_SSL_KEY_PASSWORD": self.kafka_ssl_key_password,
        }
        if protocol in SASL_PROTOCOLS:
            missing = [
                name
                for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
                if sasl[name] is None
            ]
            if missing:
                raise ConfigurationError(
                    f"KAFKA_SECURITY_PROTOCOL={protocol} needs {' and '.join(missing)}"
                )
        else:
            _refuse_unused(sasl, protocol, "SASL_PLAINTEXT or SASL_SSL")
        if protocol in TLS_PROTOCOLS:
            cert, key = self.kafka_ssl_certificate_location, self.kafka_ssl_key_location
            if bool(cert) != bool(key):
                raise ConfigurationError(
                    "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together"
                    " (a client certificate and its private key, for mutual TLS)"
                )
            if self.kafka_ssl_key_password is not None and not key:
                raise ConfigurationError("KAFKA_SSL_KEY_PASSWORD needs KAFKA_SSL_KEY_LOCATION")
            for name in ("KAFKA_SSL_CA_LOCATION", *_CLIENT_CERT_FILES):
                _require_file(name, tls[name])
            if key and self.kafka_ssl_key_password is None and _encrypted_key(key):
                raise ConfigurationError(
                    f"KAFKA_SSL_KEY_LOCATION={key} is encrypted: set KAFKA_SSL_KEY_PASSWORD"
                )
        else:
            _refuse_unused(tls, protocol, "SSL or SASL_SSL")

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) settings for the cluster, security included.

        The SASL mechanism defaults to ``PLAIN`` (as for Faust's clients; librdkafka's own
        default would be GSSAPI). Raises :class:`~connector.errors.ConfigurationError` as
        :meth:`check_kafka_security` does.
        """
        self.check_kafka_security()
        protocol = self.kafka_security_protocol
        config: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": protocol.lower(),
        }
        if protocol in SASL_PROTOCOLS:
            assert self.kafka_sasl_username is not None and self.kafka_sasl_password is not None
            config["sasl.mechanism"] = self.kafka_sasl_mechanism or DEFAULT_SASL_MECHANISM
            config["sasl.username"] = self.kafka_sasl_username
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if protocol in TLS_PROTOCOLS:
            if self.kafka_ssl_ca_location:
                config["ssl.ca.location"] = self.kafka_ssl_ca_location
            if self.kafka_ssl_certificate_location:
                config["ssl.certificate.location"] = self.kafka_ssl_certificate_location
            if self.kafka_ssl_key_location:
                config["ssl.key.location"] = self.kafka_ssl_key_location
            if self.kafka_ssl_key_password is not None:
                config["ssl.key.password"] = self.kafka_ssl_key_password.get_secret_value()
        return config


_CLIENT_CERT_FILES: Final = ("KAFKA_SSL_CERTIFICATE_LOCATION", "KAFKA_SSL_KEY_LOCATION")


def _refuse_unused(values: Mapping[str, object], protocol: str, wanted: str) -> None:
    unused = [name for name, value in values.items() if value not in (None, "")]
    if unused:
        raise ConfigurationError(
            f"{', '.join(unused)} set, but KAFKA_SECURITY_PROTOCOL={protocol} would ignore"
            f" {'it' if len(unused) == 1 else 'them'}: set KAFKA_SECURITY_PROTOCOL to {wanted}"
        )


def _require_file(name: str, value: object) -> None:
    if isinstance(value, str) and value and not Path(value).is_file():
        raise ConfigurationError(f"{name}={value}: no such file")


def _encrypted_key(path: str) -> bool:
    """Whether a PEM private key is encrypted (PKCS#8, or OpenSSL's traditional format)."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return "BEGIN ENCRYPTED PRIVATE KEY" in text or "Proc-Type: 4,ENCRYPTED" in text
