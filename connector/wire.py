"""Wire facts shared by the source, the worker and the aggregates: record headers, and per event
type the paths of the ids that key and identify it.

Nothing here does I/O. The source keys raw records with :func:`raw_record_key`; the worker keys
typed records with the same id and identifies events with :attr:`EventPaths.identity`
(:mod:`connector.worker.identity`); the aggregates read the ids of the events they count. One
table, :data:`EVENT_PATHS`, so a new event type is added in one place.

Raw topic key (every retry of one event lands in one partition): the id of the thing the event
changes, prefixed by the id's field name, e.g. ``evaluation_id:0e73a69f...``. Events about one
playlist share ``playlist_id:...``; events about one conversation share ``conversation_id:...``.
``conversation_crm_associations_changed`` carries a list of changes in ``payload.object``: its key
is the ``conversation_id`` all items share. Otherwise (unknown event type, id missing, empty or not
a string/integer, items naming different conversations) the key is ``sha256:`` + the hex SHA-256
of the raw body, which a retry's identical body reproduces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# --- record headers -------------------------------------------------------------------------

Headers = list[tuple[str, bytes]]
"""A record's headers, name and bytes, in order (as the Kafka clients give and take them)."""

SIGNATURE_HEADER: Final = "x-zm-signature"
"""Zoom's request header (and raw record header): the webhook's HMAC signature."""
TIMESTAMP_HEADER: Final = "x-zm-request-timestamp"
"""Zoom's request header (and raw record header): when Zoom signed the request."""
TRACKING_ID_HEADER: Final = "x-zm-trackingid"
"""Zoom's request header (raw and typed record header): Zoom's id of one delivery."""
RECEIVED_AT_HEADER: Final = "zoom-connector-received-at"
"""Raw and typed record header: when the source received the request, epoch ms as ASCII digits."""
EVENT_ID_HEADER: Final = "zoom-event-id"
"""Typed and dead-letter record header: the event's identity (:mod:`connector.worker.identity`)."""
REPLAYED_FROM_HEADER: Final = "zoom-replayed-from"
"""Raw record header of a replayed copy: ``<topic>/<partition>/<offset>`` of the original."""

# --- ids per event type ---------------------------------------------------------------------

QM: Final = "quality_management"
RA: Final = "revenue_accelerator"

Path = tuple[str, ...]
"""Field names below ``payload.object``."""


@dataclass(frozen=True)
class EventPaths:
    """Where one event type's ids are.

    ``key``: the id that keys its raw and typed records (its last name is the raw key's prefix);
    ``identity``: the ids that, with ``event_ts``, make two deliveries one event (empty: the body's
    hash identifies it); ``key_of_items``: ``payload.object`` is a list and ``key`` is the id all
    its items share.
    """

    key: Path
    identity: tuple[Path, ...]
    key_of_items: bool = False


_EVALUATION_ID: Final = ("evaluation_id",)
_INTERACTION_ID: Final = ("interaction_info", "interaction_id")
_CONVERSATION_ID: Final = ("conversation_id",)
_PLAYLIST_ID: Final = ("playlist_id",)

EVENT_PATHS: Final[Mapping[str, EventPaths]] = {
    f"{QM}.evaluation_completed": EventPaths(_EVALUATION_ID, (_EVALUATION_ID,)),
    f"{QM}.interaction_analysis_completed": EventPaths(_INTERACTION_ID, (_INTERACTION_ID,)),
    f"{RA}.conversation_analysis_completed": EventPaths(_CONVERSATION_ID, (_CONVERSATION_ID,)),
    f"{RA}.post_comment_completed": EventPaths(
        _CONVERSATION_ID, (_CONVERSATION_ID, ("comment_id",))
    ),
    f"{RA}.conversation_crm_associations_changed": EventPaths(
        _CONVERSATION_ID, (), key_of_items=True
    ),
    f"{RA}.playlist_create": EventPaths(_PLAYLIST_ID, (_PLAYLIST_ID,)),
    f"{RA}.playlist_delete": EventPaths(_PLAYLIST_ID, (_PLAYLIST_ID,)),
    f"{RA}.playlist_add_moment": EventPaths(_PLAYLIST_ID, (_PLAYLIST_ID, ("moment_id",))),
    f"{RA}.playlist_remove_moment": EventPaths(_PLAYLIST_ID, (_PLAYLIST_ID, ("moment_id",))),
}
"""Event type -> where its ids are."""


def value_at(obj: Any, path: Path) -> Any:
    """The value at ``path`` below ``obj`` (``None`` where a step is missing or not an object)."""
    value = obj
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def id_text(value: Any) -> str | None:
    """An id as text: a non-empty string, or an integer; anything else is no id."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def raw_record_key(event: Mapping[str, Any], body: bytes) -> bytes:
    """The raw topic's key for a webhook whose parsed body is ``event`` and raw body ``body``."""
    object_id = _object_id(event)
    if object_id is not None:
        return object_id.encode("utf-8")
    return b"sha256:" + hashlib.sha256(body).hexdigest().encode("ascii")


def _object_id(event: Mapping[str, Any]) -> str | None:
    event_type = event.get("event")
    payload = event.get("payload")
    if not isinstance(event_type, str) or not isinstance(payload, Mapping):
        return None
    paths = EVENT_PATHS.get(event_type)
    if paths is None:
        return None
    obj = payload.get("object")
    prefix = paths.key[-1]
    if not paths.key_of_items:
        text = id_text(value_at(obj, paths.key))
        return None if text is None else f"{prefix}:{text}"
    if not isinstance(obj, list) or not obj:
        return None
    ids = {id_text(value_at(item, paths.key)) for item in obj}
    if len(ids) != 1:
        return None
    (text,) = ids
    return None if text is None else f"{prefix}:{text}"
