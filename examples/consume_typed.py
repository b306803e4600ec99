"""A downstream consumer of one typed topic, using no code of the connector.

Prints each record of ``<prefix>.<event type>`` as one JSON line: key, ``zoom-event-id`` header and
the event. It reads either encoding the worker writes:

* no schema registry (the default): Avro single-object encoding. The record's ``C3 01`` header
  carries the CRC-64-AVRO fingerprint of the schema that wrote it; every schema ever released is
  kept as ``schemas/avro/history/<event type>/<fingerprint>.avsc``. fastavro reads the record with
  that writer schema and resolves it to the reader schema, by default the current
  ``schemas/avro/<event type>.avsc`` (``--reader-schema`` pins another, e.g. the copy your code was
  written against). Records written before and after a schema change read alike: a field the
  writer did not have gets its default, an enum symbol the reader does not know reads as
  ``UNKNOWN``. Keep the history folder current (it only grows); keep your reader schema as long as
  you like::

      KAFKA_BOOTSTRAP_SERVERS=localhost:9092 \\
          python examples/consume_typed.py quality_management.evaluation_completed --from-beginning

* with a schema registry (``SCHEMA_REGISTRY_URL`` set, as for the worker): the Confluent wire
  format, read by confluent-kafka's own ``AvroDeserializer``, which fetches the writer's schema
  from the registry by the id in the record::

      KAFKA_BOOTSTRAP_SERVERS=localhost:9092 SCHEMA_REGISTRY_URL=http://localhost:8081 \\
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
    """Avro single-object encoding (``C3 01``, writer's fingerprint, body), read as ``reader``.

    The writer's schema is ``<history>/<event type>/<fingerprint>.avsc``; fastavro resolves it to
    the reader schema.
    """

    def __init__(self, event_type: str, reader: Path, history: Path) -> None:
        self.reader = fastavro.schema.load_schema(str(reader))
        self.history = history / event_type
        self.writers: dict[bytes, Any] = {}

    def __call__(self, value: bytes, topic: str) -> Any:
        if len(value) < 10 or value[:2] != b"\xc3\x01":
            raise ValueError("not Avro single-object encoding (no C3 01)")
        fingerprint = value[2:10]
        writer = self.writers.get(fingerprint)
        if writer is None:
            path = self.history / f"{fingerprint.hex()}.avsc"
            if not path.is_file():
                raise ValueError(
                    f"written with the schema of fingerprint {fingerprint.hex()}, which is not in"
                    f" {self.history}: update your copy of the connector's schemas/avro/history"
                )
            writer = self.writers[fingerprint] = fastavro.schema.load_schema(str(path))
        return fastavro.schemaless_reader(io.BytesIO(value[10:]), writer, self.reader)


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
    parser.add_argument(
        "--schemas", type=Path, default=SCHEMAS, help=f"the connector's schemas/avro [{SCHEMAS}]"
    )
    parser.add_argument(
        "--reader-schema",
        type=Path,
        default=None,
        help="read records as this .avsc [the current <schemas>/<event type>.avsc]",
    )
    args = parser.parse_args()

    topic = f"{os.environ.get('TOPIC_PREFIX', 'zoom')}.{args.event_type}"
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    registry_url = os.environ.get("SCHEMA_REGISTRY_URL")
    read = (
        RegistryReader(registry_url, os.environ.get("SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"))
        if registry_url
        else SingleObjectReader(
            args.event_type,
            args.reader_schema or args.schemas / f"{args.event_type}.avsc",
            args.schemas / "history",
        )
    )
    print(
        f"reading {topic} from KAFKA_BOOTSTRAP_SERVERS={bootstrap}"
        f" ({'from the beginning' if args.from_beginning else 'new records only'})",
        file=sys.stderr,
    )
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
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
