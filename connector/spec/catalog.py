"""Zoom's webhook specs (OpenAPI 3.1, ``specs/*.json``) loaded as a catalog of event types.

The spec files are the one source of truth for event fields: the Avro generator, the codec's
examples and ``zoom-connector send --example`` all read them through :func:`load_catalog`.

Each spec file holds a ``webhooks`` section; every webhook operation is one event type, named by
its key (``quality_management.evaluation_completed``). Its request body's JSON Schema describes
the event, and its ``json-example`` is Zoom's published example body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from connector.errors import ConnectorError
from connector.paths import specs_dir

EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class SpecError(ConnectorError):
    """A spec file is missing, unreadable or not shaped as a Zoom webhook document."""


class UnknownEventTypeError(ConnectorError):
    """An event type that no spec defines."""

    def __init__(self, event_type: str, known: list[str]) -> None:
        super().__init__(f"unknown event type {event_type!r}; known: {', '.join(known)}")
        self.event_type = event_type


@dataclass(frozen=True)
class WebhookEvent:
    """One Zoom webhook event type as its spec describes it."""

    event_type: str
    """The full name, ``<product>.<event>``, as Zoom puts it in the body's ``event`` field."""
    summary: str
    """One sentence saying when Zoom sends it (from the request body's description)."""
    schema: Mapping[str, Any]
    """The JSON Schema of the request body."""
    published_example: str | None
    """Zoom's example body, exactly as published (quirks included)."""
    spec_file: str

    @property
    def product(self) -> str:
        return self.event_type.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.event_type.split(".", 1)[1]


class WebhookCatalog:
    """Every event type of every spec file, by name."""

    def __init__(self, events: Mapping[str, WebhookEvent]) -> None:
        self._events = dict(sorted(events.items()))

    @property
    def event_types(self) -> list[str]:
        """All event types, sorted."""
        return list(self._events)

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._events

    def event(self, event_type: str) -> WebhookEvent:
        try:
            return self._events[event_type]
        except KeyError:
            raise UnknownEventTypeError(event_type, self.event_types) from None

    def example(self, event_type: str) -> dict[str, Any]:
        """Zoom's example body with its ``event`` field set to the event's real name.

        The published examples carry two kinds of wrong name: Revenue Accelerator's placeholders
        (``"event": ""``) and Quality Management's copy-paste slip (the ``evaluation_completed``
        example says ``interaction_analysis_completed``). Everything else is as published; use
        :attr:`WebhookEvent.published_example` for the body exactly as Zoom wrote it.
        """
        published = self.event(event_type).published_example
        if published is None:
            raise SpecError(f"the spec gives no example for {event_type}")
        body: dict[str, Any] = json.loads(published)
        body["event"] = event_type
        return body

    def example_bytes(self, event_type: str) -> bytes:
        """:meth:`example` as compact JSON bytes, ready to send."""
        return json.dumps(self.example(event_type), separators=(",", ":")).encode()


def _summary(description: str) -> str:
    """The first plain paragraph of an operation's markdown description."""
    for paragraph in description.split("\n\n"):
        if paragraph.lstrip().startswith("**Event type**"):
            continue
        lines = [line for line in paragraph.splitlines() if not line.startswith("#")]
        text = " ".join(line.strip() for line in lines).strip()
        if text:
            return text
    return ""


def _events_of(document: Mapping[str, Any], spec_file: str) -> dict[str, WebhookEvent]:
    webhooks = document.get("webhooks")
    if not isinstance(webhooks, Mapping) or not webhooks:
        raise SpecError(f"{spec_file}: no 'webhooks' section")
    events: dict[str, WebhookEvent] = {}
    for event_type, operation in webhooks.items():
        if not EVENT_TYPE_PATTERN.match(event_type):
            raise SpecError(f"{spec_file}: {event_type!r} is not a '<product>.<event>' name")
        try:
            body = operation["post"]["requestBody"]
            content = body["content"]["application/json"]
            schema = content["schema"]
        except (KeyError, TypeError) as exc:
            raise SpecError(f"{spec_file}: {event_type} has no JSON request body schema") from exc
        example = content.get("examples", {}).get("json-example", {}).get("value")
        events[event_type] = WebhookEvent(
            event_type=event_type,
            summary=_summary(body.get("description", "")),
            schema=schema,
            published_example=example if isinstance(example, str) else None,
            spec_file=spec_file,
        )
    return events


def load_catalog_from(folder: Path) -> WebhookCatalog:
    """Read every ``*.json`` spec in ``folder``."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise SpecError(f"no webhook specs (*.json) in {folder}")
    events: dict[str, WebhookEvent] = {}
    for path in files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot read spec {path}: {exc}") from exc
        for event_type, event in _events_of(document, path.name).items():
            if event_type in events:
                raise SpecError(f"{event_type} is defined twice ({path.name} and earlier)")
            events[event_type] = event
    return WebhookCatalog(events)


@cache
def load_catalog() -> WebhookCatalog:
    """The catalog of the project's own ``specs/`` folder, read once per process."""
    return load_catalog_from(specs_dir())
