"""``zoom-connector kafka start|stop|status``: the command-line face of :class:`LocalBroker`.

Exit codes: ``start`` 0 once a broker answers (started now, already running, or a broker not
launched by us on the port); ``stop`` 0, whether or not a broker was running; ``status`` 0 when
a Kafka broker answers at the bootstrap address, 1 when none does. Errors (no Java, no jars, the
JVM died) raise :class:`~connector.errors.ConnectorError`: the CLI prints them and exits 2.
"""

from __future__ import annotations

from connector.kafka.local_broker.broker import LocalBroker


def main(action: str) -> int:
    """Run one ``kafka`` subcommand for the default local broker."""
    broker = LocalBroker()
    if action == "start":
        result = broker.start()
        if result.outcome == "foreign":
            print(
                f"A Kafka broker not launched by zoom-connector already answers at "
                f"{result.bootstrap}; using it."
            )
        elif result.outcome == "already-running":
            print(f"The local Kafka broker is already running (pid {result.pid}).")
        else:
            print(f"Started the local Kafka broker (pid {result.pid}) in {result.seconds:.1f} s.")
        print(f"bootstrap servers: {result.bootstrap}")
        return 0
    if action == "stop":
        if broker.stop():
            print("Stopped the local Kafka broker.")
        else:
            print("The local Kafka broker is not running.")
        return 0
    if action == "status":
        status = broker.status()
        if status.running:
            state = f"running (pid {status.pid})"
        elif status.answers:
            state = "not launched by zoom-connector, but a Kafka broker answers"
        else:
            state = "not running"
        print(f"local Kafka broker: {state}")
        print(f"bootstrap servers:  {status.bootstrap}")
        print(f"Kafka version:      {status.version}")
        print(f"data directory:     {status.data_dir}")
        print(f"broker log:         {status.server_log}")
        return 0 if status.answers else 1
    raise ValueError(f"unknown action {action!r}: expected start, stop or status")
