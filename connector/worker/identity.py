"""The identity of one Zoom event: what makes two webhook deliveries "the same event".

Zoom delivers at least once. A retry carries the same body with a new signature and timestamp
(request headers, not part of the body), up to ~90 minutes after the first attempt. The worker
writes one typed record per event identity and carries the identity on every typed and dead-letter
record as the ``zoom-event-id`` header, so consumers can also drop the rare duplicate that
at-least-once processing lets through (a record written again after a worker crash).

The identity is derived from the body only:

* For the event types whose identity paths :data:`connector.wire.EVENT_PATHS` lists it is the
  event type, the ids of the thing the event is about, and
  ``event_ts`` (when Zoom says the event happened)::

      quality_management.evaluation_completed/evaluation_id=0e73.../event_ts=1626230691572

  - ``quality_management.evaluation_completed``: ``payload.object.evaluation_id`` + ``event_ts``.
    A re-scored evaluation keeps its ``evaluation_id`` but comes with a new ``event_ts`` (and
    score), so it is a new event, not a retry: the score aggregates need every re-score.
  - ``quality_management.interaction_analysis_completed``:
    ``payload.object.interaction_info.interaction_id`` + ``event_ts``.
  - ``revenue_accelerator.conversation_analysis_completed``: ``payload.object.conversation_id``
    + ``event_ts``.
  - ``revenue_accelerator.post_comment_completed``: ``conversation_id`` + ``comment_id`` +
    ``event_ts`` (several comments on one conversation within a millisecond stay distinct).
  - ``revenue_accelerator.playlist_create``, ``playlist_delete``: ``playlist_id`` + ``event_ts``.
  - ``revenue_accelerator.playlist_add_moment``, ``playlist_remove_moment``: ``playlist_id`` +
    ``moment_id`` + ``event_ts`` (several moments added at once stay distinct).

* ``revenue_accelerator.conversation_crm_associations_changed`` has no id of the change itself
  (``payload.object`` is a list of old/new associations), and every other case (an unknown event
  type, a missing or empty id, a missing ``event_ts``) falls back to the SHA-256 of the body's
  canonical JSON (keys sorted, no whitespace), which a retry's identical body reproduces::

      revenue_accelerator.conversation_crm_associations_changed/sha256=9f2c...

* A body that is not a JSON object is identified by the SHA-256 of its bytes: ``raw/sha256=...``.

Values are percent-encoded, so ``/`` and ``=`` inside an id cannot make two identities collide.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from connector.wire import EVENT_PATHS, id_text, value_at


def event_identity(event: Mapping[str, Any] | None, body: bytes) -> str:
    """The identity of the event whose raw body is ``body`` (``event``: the body parsed, if it is
    a JSON object; ``None`` otherwise)."""
    if event is None:
        return f"raw/sha256={hashlib.sha256(body).hexdigest()}"
    event_type = event.get("event")
    label = quote(event_type, safe="") if isinstance(event_type, str) and event_type else "-"
    parts = _identifying_parts(event)
    if parts is not None:
        return "/".join([label, *parts])
    return f"{label}/sha256={canonical_json_sha256(event)}"


def canonical_json_sha256(event: Mapping[str, Any]) -> str:
    """The hex SHA-256 of ``event`` as canonical JSON: sorted keys, no whitespace, UTF-8."""
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", errors="surrogatepass")).hexdigest()


def _identifying_parts(event: Mapping[str, Any]) -> list[str] | None:
    event_type = event.get("event")
    known = EVENT_PATHS.get(event_type) if isinstance(event_type, str) else None
    event_ts = event.get("event_ts")
    payload = event.get("payload")
    if known is None or not known.identity or not _is_integer(event_ts):
        return None
    if not isinstance(payload, Mapping):
        return None
    obj = payload.get("object")
    parts = []
    for path in known.identity:
        text = id_text(value_at(obj, path))
        if text is None:
            return None
        parts.append(f"{path[-1]}={quote(text, safe='')}")
    parts.append(f"event_ts={event_ts}")
    return parts


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
