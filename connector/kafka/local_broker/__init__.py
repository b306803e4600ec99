"""A local single-node Apache Kafka broker (KRaft), for development and integration tests.

``zoom-connector kafka start|stop|status`` and the tests' ``kafka_bootstrap`` fixture use it when
no cluster is configured. The modules, in the order a start goes through them:

- :mod:`.config`: the instance (ports, data directory) and the files rendered for it;
- :mod:`.java`: finding Java 17+;
- :mod:`.distribution`: the Kafka jars (``KAFKA_HOME``, Maven Central, or the Apache archive),
  and :data:`KAFKA_VERSION`, the one pinned version;
- :mod:`.certs`: the CA, certificates and PKCS12 stores of the optional TLS listeners;
- :mod:`.broker`: :class:`LocalBroker`, which launches, waits for, and stops the JVM;
- :mod:`.command`: the ``kafka`` subcommand.

Typical use from Python::

    bootstrap = LocalBroker().ensure_started()          # localhost:9092
    other = LocalBroker(BrokerConfig.ephemeral(tmp))    # a second broker on free ports
"""

from __future__ import annotations

from connector.kafka.local_broker.broker import (
    BrokerStatus,
    LocalBroker,
    StartResult,
    broker_answers,
)
from connector.kafka.local_broker.command import main
from connector.kafka.local_broker.config import BrokerConfig, ScramUser
from connector.kafka.local_broker.distribution import KAFKA_VERSION
from connector.kafka.local_broker.errors import (
    BrokerStartError,
    JavaNotFoundError,
    KafkaDistributionError,
    LocalBrokerError,
    PortInUseError,
)

__all__ = [
    "KAFKA_VERSION",
    "BrokerConfig",
    "BrokerStartError",
    "BrokerStatus",
    "JavaNotFoundError",
    "KafkaDistributionError",
    "LocalBroker",
    "LocalBrokerError",
    "PortInUseError",
    "ScramUser",
    "StartResult",
    "broker_answers",
    "main",
]
