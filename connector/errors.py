"""The connector's one exception root.

Every error the connector raises on purpose is a :class:`ConnectorError`. Foreign errors
(fastavro, confluent-kafka, OS errors) are re-raised at the module boundary as one of these,
``from`` the original, so callers handle one family and the dead-letter topic can say why.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Root of every error the connector raises deliberately."""


class ConfigurationError(ConnectorError):
    """The settings are incomplete or contradictory."""
