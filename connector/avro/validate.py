"""``zoom-connector validate [FILE|-] [--event TYPE]``: check one webhook body.

Prints the typed topic the event would go to and exits 0, or prints the JSON path, the reason and
a short message and exits 1. ``--event TYPE`` checks the body against TYPE's schema whatever its
``event`` field says (useful for Zoom's published examples, whose names are placeholders or wrong);
a differing name is reported on stderr as a warning, since the worker routes by the body's name.
"""

from __future__ import annotations

import sys
from pathlib import Path

from connector.avro.codec import EventCodec, parse_event
from connector.avro.errors import EventValidationError
from connector.errors import ConnectorError
from connector.settings import Settings
from connector.topics import TopicNames


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise ConnectorError(f"cannot read {file}: {exc.strerror}") from exc


def validate_command(file: str, event_type: str | None, settings: Settings) -> int:
    body = _read(file)
    codec = EventCodec()
    try:
        event = parse_event(body)
        if event_type is not None and event.get("event") != event_type:
            print(
                f"warning: the body says event {event.get('event')!r}; checked as {event_type}",
                file=sys.stderr,
            )
        chosen, datum = codec.to_datum(event, event_type)
        codec.encode_datum(chosen, datum)
    except EventValidationError as exc:
        print(f"invalid: {exc.path}: {exc.detail} (reason: {exc.reason})")
        return 1
    print(TopicNames(settings.topic_prefix).typed(chosen))
    return 0
