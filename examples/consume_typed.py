"""A downstream consumer of one typed topic, using no code of the connector.

Prints each record of ``<prefix>.<event type>`` as one JSON line: key, ``zoom-event-id`` header and
the event. It reads either encoding the worker writes:

* no schema registry (the default): Avro single-object encoding. The schema is the committed
  ``schemas/avro/<event type>.avsc``, read with fastavro; the record's ``C3 01`` header carries the
  schema's CRC-64-AVRO fingerprint, checked against the file's::

      python examples/consume_typed.py quality_management.evaluation_completed --from-beginning

* with a schema registry (``SCHEMA_REGISTRY_URL`` set, as for the worker): the Confluent wire
  format, read by confluent-kafka's own ``AvroDeserializer``, which fetches the writer's schema
  from the registry by the id in the record::

      SCHEMA_REGISTRY_URL=http://localhost:8081 \\
          python examples/consume_typed.py quality_management.evaluation_completed

Environment: ``KAFKA_BOOTSTRAP_SERVERS`` [localhost:9092], ``TOPIC_PREFIX`` [zoom],
``SCHEMA_REGISTRY_URL``, ``SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO`` (``user:password``).
Needs ``confluent-kafka`` and ``fastavro``. The worker writes a record again, with the same
``zoom-event-id``, only after a crash; drop repeats by that header if they matter to you.
Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer, KafkaError

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "avro"


class SingleObjectReader:
    """Avro single-object encoding with the committed ``.avsc``: ``C3 01``, fingerprint, body."""

    def __init__(self, event_type: str) -> None:
        self.schema = fastavro.schema.load_schema(str(SCHEMAS / f"{event_type}.avsc"))
        canonical = fastavro.schema.to_parsing_canonical_form(self.schema)
        fingerprint = fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")
        self.header = b"\xc3\x01" + bytes.fromhex(fingerprint)

    def __call__(self, value: bytes, topic: str) -> Any:
        if value[:10] != self.header:
            raise ValueError("not written with this .avsc (header or fingerprint differs)")
        return fastavro.schemaless_reader(io.BytesIO(value[10:]), self.schema, None)


class RegistryReader:
    """The Confluent wire format, through confluent-kafka's ``AvroDeserializer``."""

    def __init__(self, url: str, user_info: str | None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient
        from confluent_kafka.schema_registry.avro import AvroDeserializer

        config = {"url": url}
        if user_info:
            config["basic.auth.user.info"] = user_info
        self._deserialize = AvroDeserializer(SchemaRegistryClient(config))

    def __call__(self, value: bytes, topic: str) -> Any:
        from confluent_kafka.serialization import MessageField, SerializationContext

        return self._deserialize(value, SerializationContext(topic, MessageField.VALUE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("event_type", help="e.g. quality_management.evaluation_completed")
    parser.add_argument("--from-beginning", action="store_true", help="read from offset 0")
    parser.add_argument("--group", default=None, help="consumer group [a new one each run]")
    parser.add_argument("--max", type=int, default=None, help="stop after this many records")
    args = parser.parse_args()

    topic = f"{os.environ.get('TOPIC_PREFIX', 'zoom')}.{args.event_type}"
    registry_url = os.environ.get("SCHEMA_REGISTRY_URL")
    read = (
        RegistryReader(registry_url, os.environ.get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"))
        if registry_url
        else SingleObjectReader(args.event_type)
    )
    consumer = Consumer(
        {
            "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
            "group.id": args.group or f"consume-typed-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if args.from_beginning else "latest",
        }
    )
    consumer.subscribe([topic])
    count = 0
    try:
        while args.max is None or count < args.max:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                    continue
                print(f"consumer error: {message.error()}", file=sys.stderr)
                return 1
            headers = dict(message.headers() or [])
            event_id = headers.get("zoom-event-id", b"").decode()
            value = message.value()
            if value is None:
                continue
            event = read(value, topic)
            key = (message.key() or b"").decode(errors="replace")
            print(json.dumps({"key": key, "event_id": event_id, "event": event}, default=str))
            count += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
