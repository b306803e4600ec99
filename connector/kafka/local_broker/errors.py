"""The errors of the local broker launcher, one class per thing the user can fix.

All of them are :class:`~connector.errors.ConnectorError`, so ``zoom-connector kafka ...`` prints
their message and exits non-zero; the messages say what to do next.
"""

from __future__ import annotations

from connector.errors import ConnectorError


class LocalBrokerError(ConnectorError):
    """Something stopped the local Kafka broker from starting or stopping."""


class JavaNotFoundError(LocalBrokerError):
    """No Java runtime, or one older than Kafka needs."""


class KafkaDistributionError(LocalBrokerError):
    """No Kafka jars could be found or fetched."""


class PortInUseError(LocalBrokerError):
    """A broker port is taken by something that is not a Kafka broker."""


class BrokerStartError(LocalBrokerError):
    """The broker JVM exited or did not answer in time; the message carries its log's tail."""
