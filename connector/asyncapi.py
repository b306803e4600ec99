"""``zoom-connector asyncapi generate|check``: the connector's topics as an AsyncAPI 3.0 document.

Downstream teams discover the data from ``asyncapi/zoom-connector.asyncapi.json``: one channel
per topic (raw, one typed topic per event type, dead letters, ``agent_scores``), each message with
its Kafka key, its record headers and its value, the typed ones with their Avro schema embedded
(``schemaFormat: application/vnd.apache.avro+json;version=1.9.0``, the committed ``.avsc``
byte-for-byte equivalent), and Kafka bindings (binding version 0.5.0) with the topic settings
``zoom-connector topics create`` uses by default.

Stages, as for the Avro schemas: the event types come from ``specs/`` (the catalog), the value
schemas from the committed ``schemas/avro/`` files (what the worker writes with), the topic settings
from :func:`connector.kafka.admin.topic_specs` with the default settings (never the environment,
so every machine generates the same bytes); :func:`build_document` assembles a plain dict and
:func:`render` writes JSON with a fixed indent, in insertion order, with a trailing newline.
``check`` exits 1 naming the stale file, like ``schemas check``.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from connector.avro.generator import GENERATED_SUFFIX
from connector.errors import ConnectorError
from connector.kafka.admin import TopicSpec, topic_specs
from connector.paths import REPO_DIR, avro_schemas_dir
from connector.settings import Settings
from connector.spec import WebhookCatalog, load_catalog
from connector.topics import TopicNames
from connector.wire import (
    EVENT_ID_HEADER,
    EVENT_PATHS,
    RECEIVED_AT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TRACKING_ID_HEADER,
)
from connector.worker import dead_letters

ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
AVRO_SCHEMA_FORMAT: Final = "application/vnd.apache.avro+json;version=1.9.0"
AVRO_CONTENT_TYPE: Final = "application/vnd.apache.avro"
DOCUMENT_NAME: Final = "zoom-connector.asyncapi.json"
DISTRIBUTION: Final = "zoom-kafka-connector"

RAW_CHANNEL: Final = "webhooks.raw"
DLQ_CHANNEL: Final = "webhooks.dlq"
AGENT_SCORES_CHANNEL: Final = "agent_scores"


class AsyncApiError(ConnectorError):
    """The document cannot be built (a schema file is missing or unreadable)."""


def document_path() -> Path:
    """Where the committed document lives: ``asyncapi/`` of the source checkout."""
    return REPO_DIR / "asyncapi" / DOCUMENT_NAME


# --- the pieces --------------------------------------------------------------------------------


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _headers(fields: Mapping[str, str], required: Sequence[str] = ()) -> dict[str, Any]:
    """Record headers as an AsyncAPI schema: every value is UTF-8 text."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": "Kafka record headers; every value is UTF-8 text.",
        "properties": {name: _string(text) for name, text in fields.items()},
    }
    if required:
        schema["required"] = list(required)
    return schema


RAW_HEADERS: Final = {
    TIMESTAMP_HEADER: "Zoom's request timestamp (epoch milliseconds), as received.",
    SIGNATURE_HEADER: "Zoom's signature of the request (v0=<hex HMAC-SHA256>), as received.",
    TRACKING_ID_HEADER: "Zoom's tracking id of the delivery, when Zoom sent one.",
    RECEIVED_AT_HEADER: "When the source received the webhook (epoch milliseconds).",
}
TYPED_HEADERS: Final = {
    EVENT_ID_HEADER: (
        "The event's identity: equal on every delivery of one event (Zoom's retries, a record"
        " written again after a worker crash). Consumers that must never see a repeat drop"
        " records whose zoom-event-id they have seen."
    ),
    TRACKING_ID_HEADER: "Zoom's tracking id of the delivery, copied from the raw record.",
    RECEIVED_AT_HEADER: "When the source received the webhook (epoch milliseconds).",
}
DLQ_HEADERS: Final = {
    **RAW_HEADERS,
    dead_letters.REASON_HEADER: (
        "Why the record was refused, machine-readable: a codec reason (invalid_json,"
        " not_an_object, missing_event, unknown_event_type, missing_required_field, wrong_type,"
        " unknown_enum_symbol, unexpected_field, out_of_range, invalid_string), internal_error or"
        " produce_failed."
    ),
    dead_letters.PATH_HEADER: "JSON path of the offending value, e.g. $.payload.object.score.",
    dead_letters.MESSAGE_HEADER: "A human-readable message (at most 1000 characters).",
    dead_letters.EVENT_TYPE_HEADER: "The body's event field, when it has one.",
    dead_letters.SOURCE_TOPIC_HEADER: "The topic the raw record was read from.",
    dead_letters.SOURCE_PARTITION_HEADER: "Its partition (decimal).",
    dead_letters.SOURCE_OFFSET_HEADER: "Its offset (decimal).",
    dead_letters.FAILED_AT_HEADER: "When the worker refused it (epoch milliseconds).",
    EVENT_ID_HEADER: "The event's identity, as on the typed topics.",
}
_DLQ_REQUIRED: Final = (
    dead_letters.REASON_HEADER,
    dead_letters.PATH_HEADER,
    dead_letters.SOURCE_TOPIC_HEADER,
    dead_letters.SOURCE_PARTITION_HEADER,
    dead_letters.SOURCE_OFFSET_HEADER,
    dead_letters.FAILED_AT_HEADER,
    EVENT_ID_HEADER,
)

RAW_KEY: Final = _string(
    "The id of the object the event is about, prefixed with the id's field name"
    " (evaluation_id:..., interaction_id:..., conversation_id:..., playlist_id:...), or"
    " sha256:<hex SHA-256 of the body> when there is none: every retry of an event, and every"
    " event about one object, lands in one partition, in order."
)


def typed_key_description(event_type: str) -> str:
    """What a typed topic's key is, from the source's key rules (:mod:`connector.wire`)."""
    paths = EVENT_PATHS.get(event_type)
    if paths is not None and not paths.key_of_items:
        what = f"payload.object.{'.'.join(paths.key)}"
    elif paths is not None:
        what = f"the {'.'.join(paths.key)} that every item of payload.object shares"
    else:
        what = "the sha256: hash of the body"
    return f"UTF-8 string: {what}; sha256:<hex SHA-256 of the body> when that is missing or empty."


def identity_description(event_type: str) -> str:
    known = EVENT_PATHS.get(event_type)
    fields = known.identity if known is not None else ()
    if not fields:
        return "the SHA-256 of the body's canonical JSON"
    named = [f"payload.object.{'.'.join(path)}" for path in fields]
    return " + ".join([*named, "event_ts"])


def _topic_binding(spec: TopicSpec) -> dict[str, Any]:
    configuration: dict[str, Any] = {}
    for name, value in spec.config.items():
        if name == "cleanup.policy":
            configuration[name] = value.split(",")
        elif name in ("retention.ms", "max.message.bytes", "retention.bytes"):
            configuration[name] = int(value)
        else:
            configuration[name] = value
    configuration.setdefault("cleanup.policy", ["delete"])
    return {
        "kafka": {
            "partitions": spec.partitions,
            "topicConfiguration": dict(sorted(configuration.items())),
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _key_binding(key: Mapping[str, Any]) -> dict[str, Any]:
    return {"kafka": {"key": dict(key), "bindingVersion": KAFKA_BINDING_VERSION}}


def _avro_payload(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"schemaFormat": AVRO_SCHEMA_FORMAT, "schema": dict(schema)}


_FRAMING: Final = (
    "Value: the Avro record, framed. Without a schema registry, Avro single-object encoding"
    " (C3 01, the schema's 8-byte CRC-64-AVRO fingerprint, the body); with SCHEMA_REGISTRY_URL,"
    " the Confluent wire format (00, the 4-byte schema id, the body), the schema registered"
    " under the subject <topic>-value."
)


# --- the document ------------------------------------------------------------------------------


def load_value_schemas(event_types: Sequence[str], folder: Path) -> dict[str, dict[str, Any]]:
    """The committed ``.avsc`` of each event type, and of ``agent_scores`` (key ``""``)."""
    paths = {t: folder / f"{t}{GENERATED_SUFFIX}" for t in event_types}
    paths[""] = folder / "aggregates" / f"agent_scores{GENERATED_SUFFIX}"
    schemas: dict[str, dict[str, Any]] = {}
    for name, path in paths.items():
        try:
            schemas[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AsyncApiError(f"cannot read the Avro schema {path}: {exc}") from exc
    return schemas


def _package_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def build_document(
    catalog: WebhookCatalog,
    schemas: Mapping[str, Mapping[str, Any]],
    *,
    version: str,
) -> dict[str, Any]:
    """The AsyncAPI document (a plain dict, in the order it is written)."""
    defaults = Settings.model_construct()  # the defaults, never the environment
    names = TopicNames(defaults.topic_prefix)
    specs = {spec.name: spec for spec in topic_specs(defaults, catalog.event_types)}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def add(
        channel_id: str,
        topic: str,
        message_id: str,
        message: dict[str, Any],
        *,
        description: str,
        operation: tuple[str, str, str],
    ) -> None:
        messages[message_id] = message
        channels[channel_id] = {
            "address": topic,
            "title": message["title"],
            "description": description,
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
            "bindings": _topic_binding(specs[topic]),
        }
        operation_id, action, summary = operation
        operations[operation_id] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message_id}"}],
        }

    add(
        RAW_CHANNEL,
        names.raw,
        "RawWebhook",
        {
            "name": "RawWebhook",
            "title": "Raw Zoom webhook",
            "summary": "A signed webhook request body, byte for byte, as Zoom sent it.",
            "contentType": "application/json",
            "headers": _headers(RAW_HEADERS, (TIMESTAMP_HEADER, SIGNATURE_HEADER)),
            "payload": {
                "type": "object",
                "description": (
                    "Zoom's JSON body, unchanged (known and unknown event types alike). Replay"
                    " source for every other topic."
                ),
                "required": ["event"],
                "properties": {
                    "event": _string("The event type, e.g. " + catalog.event_types[0] + "."),
                    "event_ts": {"type": "integer", "description": "Epoch milliseconds."},
                    "payload": {"type": "object"},
                },
            },
            "bindings": _key_binding(RAW_KEY),
        },
        description=(
            "Every signed webhook the source accepted, stored before the source answered 200."
            " The worker reads it (consumer group WORKER_ID) and writes the typed topics and"
            " the dead letters."
        ),
        operation=("storeRawWebhook", "send", "The source stores each accepted webhook."),
    )
    operations["readRawWebhooks"] = {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{RAW_CHANNEL}"},
        "summary": "The worker validates each raw webhook against its event type's schema.",
        "messages": [{"$ref": f"#/channels/{RAW_CHANNEL}/messages/RawWebhook"}],
        "bindings": {
            "kafka": {
                "groupId": {
                    "type": "string",
                    "default": defaults.worker_id,
                    "description": "WORKER_ID",
                },
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }

    for event_type in catalog.event_types:
        event = catalog.event(event_type)
        schema = schemas[event_type]
        record_name = str(schema["name"])
        add(
            event_type,
            names.typed(event_type),
            event_type,
            {
                "name": record_name,
                "title": event_type,
                "summary": event.summary,
                "description": (
                    f"One record per {event_type} event (Zoom's retries removed). Key: the"
                    f" object id (see the key binding). Identity (zoom-event-id):"
                    f" {identity_description(event_type)}. {_FRAMING}"
                ),
                "contentType": AVRO_CONTENT_TYPE,
                "correlationId": {
                    "description": "The event's identity.",
                    "location": f"$message.header#/{EVENT_ID_HEADER}",
                },
                "headers": _headers(TYPED_HEADERS, (EVENT_ID_HEADER,)),
                "payload": _avro_payload(schema),
                "bindings": _key_binding(_string(typed_key_description(event_type))),
                "tags": [{"name": event.product}],
            },
            description=(
                f"Typed, validated {event_type} events from Zoom's {event.spec_file} spec,"
                f" Avro record {schema.get('namespace', '')}.{record_name}."
            ),
            operation=(
                f"publish.{event_type}",
                "send",
                f"The worker writes each valid {event_type} event.",
            ),
        )

    add(
        DLQ_CHANNEL,
        names.dlq,
        "DeadLetter",
        {
            "name": "DeadLetter",
            "title": "Dead letter",
            "summary": "A raw record the worker could not turn into a typed record, and why.",
            "description": (
                "The raw record as it arrived (key, value byte for byte, Zoom's headers), plus"
                " headers saying why and where from. Replayable: copy it back to the raw topic"
                " once the cause is fixed (docs/operations.md)."
            ),
            "contentType": "application/octet-stream",
            "headers": _headers(DLQ_HEADERS, _DLQ_REQUIRED),
            "payload": {"description": "The raw record's value, byte for byte."},
            "bindings": _key_binding(_string("The raw record's key, unchanged.")),
        },
        description=(
            "Whatever failed validation (or could not be written), never dropped silently."
            " Not de-duplicated: each of Zoom's retries of an invalid event is here."
        ),
        operation=("deadLetter", "send", "The worker writes each record it refuses."),
    )

    scores = schemas[""]
    add(
        AGENT_SCORES_CHANNEL,
        names.agent_scores,
        "AgentScores",
        {
            "name": str(scores["name"]),
            "title": "Agent scores",
            "summary": "The current score aggregates of one agent (lifetime, rolling windows).",
            "description": (
                f"Compacted: the latest record per key is the agent's current figures. {_FRAMING}"
            ),
            "contentType": AVRO_CONTENT_TYPE,
            "payload": _avro_payload(scores),
            "bindings": _key_binding(_string("The agent id (the record's agent_id), UTF-8.")),
        },
        description=(
            "Per-agent aggregates of the Quality Management scores, written by the worker"
            " after each batch that changed an agent."
        ),
        operation=("publishAgentScores", "send", "The worker writes an agent's figures."),
    )

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:zoom-kafka-connector",
        "info": {
            "title": "Zoom contact-center webhooks in Kafka",
            "version": version,
            "description": (
                "The Kafka topics of zoom-kafka-connector: Zoom Quality Management and Revenue"
                " Accelerator webhooks, raw, typed (Avro, one topic per event type), dead"
                " letters, and per-agent score aggregates. Generated by `zoom-connector asyncapi"
                " generate` from specs/ and schemas/avro/; do not edit. Topic names are shown"
                f" with the default TOPIC_PREFIX ({defaults.topic_prefix}); partitions and topic"
                " configurations are what `zoom-connector topics create` sets by default"
                " (TOPIC_PARTITIONS, *_RETENTION_MS), a deployment may differ."
            ),
            "license": {"name": "Apache-2.0"},
            "tags": [{"name": product} for product in _products(catalog)],
        },
        "defaultContentType": AVRO_CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "The deployment's cluster (KAFKA_BOOTSTRAP_SERVERS).",
                "variables": {
                    "bootstrap": {
                        "default": defaults.bootstrap_servers,
                        "description": "KAFKA_BOOTSTRAP_SERVERS",
                    }
                },
                "security": [
                    {"$ref": f"#/components/securitySchemes/{name}"} for name in _SECURITY
                ],
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": dict(_SECURITY),
        },
    }


_SECURITY: Final = {
    "saslScramSha512": {
        "type": "scramSha512",
        "description": "KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SASL_MECHANISM=SCRAM-SHA-512.",
    },
    "saslScramSha256": {
        "type": "scramSha256",
        "description": "KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SASL_MECHANISM=SCRAM-SHA-256.",
    },
    "saslPlain": {
        "type": "plain",
        "description": "KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_SASL_MECHANISM=PLAIN.",
    },
    "mutualTls": {
        "type": "X509",
        "description": (
            "KAFKA_SECURITY_PROTOCOL=SSL with KAFKA_SSL_CERTIFICATE_LOCATION and"
            " KAFKA_SSL_KEY_LOCATION."
        ),
    },
}


def _products(catalog: WebhookCatalog) -> list[str]:
    return sorted({catalog.event(t).product for t in catalog.event_types})


def render(document: Mapping[str, Any]) -> bytes:
    """The document as the bytes of its file: JSON, two-space indent, trailing newline."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def generated(catalog: WebhookCatalog | None = None, schemas_dir: Path | None = None) -> bytes:
    """The document's bytes, from the specs and the committed schemas."""
    catalog = catalog or load_catalog()
    schemas = load_value_schemas(catalog.event_types, schemas_dir or avro_schemas_dir())
    return render(build_document(catalog, schemas, version=_package_version()))


def stale(path: Path, content: bytes) -> str | None:
    """A line naming ``path`` when it is missing or differs from ``content``, else ``None``."""
    if not path.exists():
        return f"missing: {path}"
    if path.read_bytes() != content:
        return f"stale: {path}"
    return None


def generate_command(path: Path | None = None) -> int:
    path = path or document_path()
    content = generated()
    if stale(path, content) is None:
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    print(f"wrote {path}")
    return 0


def check_command(path: Path | None = None) -> int:
    path = path or document_path()
    problem = stale(path, generated())
    if problem is not None:
        print(problem, file=sys.stderr)
        print("run `zoom-connector asyncapi generate` and commit the result", file=sys.stderr)
        return 1
    print(f"{path} is up to date")
    return 0
