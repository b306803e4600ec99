"""The Kafka key of a raw webhook record: every retry of one event lands in one partition.

Zoom retries a webhook with the same body but a fresh timestamp and signature, so the key is derived
from the body alone:

* For the known event types it is the id of the thing the event changes, prefixed by the id's field
  name, e.g. ``evaluation_id:0e73a69f...``. Events about one playlist (created, moment added
  or removed, deleted) share ``playlist_id:...``; events about one conversation (analysis
  completed, comment posted, CRM associations changed) share ``conversation_id:...``. So not only
  the retries of one event but all events about one object stay in order in one partition.

  - ``quality_management.interaction_analysis_completed``:
    ``interaction_id:`` + ``payload.object.interaction_info.interaction_id``
  - ``quality_management.evaluation_completed``:
    ``evaluation_id:`` + ``payload.object.evaluation_id``
  - ``revenue_accelerator.conversation_analysis_completed`` and ``post_comment_completed``:
    ``conversation_id:`` + ``payload.object.conversation_id``
  - ``revenue_accelerator.conversation_crm_associations_changed`` (``payload.object`` is an array):
    ``conversation_id:`` + the ``conversation_id`` that every item shares
  - ``revenue_accelerator.playlist_create``, ``playlist_delete``, ``playlist_add_moment``,
    ``playlist_remove_moment``: ``playlist_id:`` + ``payload.object.playlist_id``

* Otherwise (unknown event type, id missing, empty or not a string/integer, items naming different
  conversations) it is ``sha256:`` + the hex SHA-256 of the raw body, which is equally stable
  across retries.

The worker reuses :func:`raw_record_key` for the dead-letter topic ("key as on the raw topic").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Final

_QM: Final = "quality_management"
_RA: Final = "revenue_accelerator"

# event type -> path below payload.object to the id; the last element names the key's prefix.
_ID_PATHS: Final[Mapping[str, tuple[str, ...]]] = {
    f"{_QM}.interaction_analysis_completed": ("interaction_info", "interaction_id"),
    f"{_QM}.evaluation_completed": ("evaluation_id",),
    f"{_RA}.conversation_analysis_completed": ("conversation_id",),
    f"{_RA}.post_comment_completed": ("conversation_id",),
    f"{_RA}.playlist_create": ("playlist_id",),
    f"{_RA}.playlist_delete": ("playlist_id",),
    f"{_RA}.playlist_add_moment": ("playlist_id",),
    f"{_RA}.playlist_remove_moment": ("playlist_id",),
}
# payload.object is an array of changes here; the key is their common conversation_id.
_ID_OF_ITEMS: Final[Mapping[str, str]] = {
    f"{_RA}.conversation_crm_associations_changed": "conversation_id",
}


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
    obj = payload.get("object")

    path = _ID_PATHS.get(event_type)
    if path is not None:
        value: Any = obj
        for name in path:
            value = value.get(name) if isinstance(value, Mapping) else None
        text = _id_text(value)
        return None if text is None else f"{path[-1]}:{text}"

    field = _ID_OF_ITEMS.get(event_type)
    if field is not None and isinstance(obj, list) and obj:
        ids = {_id_text(item.get(field)) if isinstance(item, Mapping) else None for item in obj}
        if len(ids) == 1:
            (text,) = ids
            return None if text is None else f"{field}:{text}"
    return None


def _id_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
