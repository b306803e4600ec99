"""What every librdkafka producer of the connector needs: a thread serving its callbacks, and its
client errors said once (the source's durable producer, the worker's batch writer).

librdkafka runs delivery reports and error callbacks only inside ``poll()``/``flush()``:
:class:`PolledClient` polls on a thread of its own. :class:`ClientErrors` is the client's
``error_cb``: a fatal error is noted for the owner to replace the client, a refusal (credentials,
TLS) and an unreachable cluster are logged once per window (:mod:`.coalescing_log`) with the
settings to check and what happens meanwhile, anything else is debug (librdkafka retries it).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka import KafkaError

from connector.kafka.coalescing_log import CoalescingLog
from connector.kafka.refusals import refusal, settings_to_check

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 0.1


class PolledClient:
    """One librdkafka client and the thread named ``name`` that serves its callbacks."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.client.poll(POLL_SECONDS)

    def close(self, timeout: float) -> int:
        """Stop polling, then deliver what is pending within ``timeout``; blocking."""
        self._stop.set()
        self._thread.join()
        # flush() serves the remaining delivery callbacks itself.
        return int(self.client.flush(timeout))


class ClientErrors:
    """A client's ``error_cb`` (runs on its poll thread); :attr:`fatal` says why it is unusable."""

    def __init__(self, config: Mapping[str, Any], said: CoalescingLog, meanwhile: str) -> None:
        """``said``: where refusals and an unreachable cluster are logged; ``meanwhile``: what
        those lines say happens until Kafka answers."""
        self._config = config
        self._said = said
        self._meanwhile = meanwhile
        self.fatal: str | None = None

    def __call__(self, error: KafkaError) -> None:
        if error.fatal():
            log.error("kafka client fatal error code=%s %s", error.name(), error.str())
            self.fatal = f"{error.name()}: {error.str()}"
        elif (reason := refusal(error)) is not None:  # credentials or TLS: nothing gets through
            self._said.error(
                "kafka refused the connection code=%s %s: %s; %s",
                error.name(),
                reason,
                self._meanwhile,
                settings_to_check(self._config, reason),
            )
        elif error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._said.warning(
                "cannot reach Kafka at %s: %s until it answers;"
                " check KAFKA_BOOTSTRAP_SERVERS and that the broker is running and reachable",
                self._config.get("bootstrap.servers"),
                self._meanwhile,
            )
        else:
            log.debug("kafka client error code=%s %s", error.name(), error.str())
