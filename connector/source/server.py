"""``zoom-connector source``: serve the source app until SIGINT or SIGTERM, then shut down cleanly.

On a signal the server stops accepting connections, lets the requests in flight finish (each is
bounded by ``SOURCE_PRODUCE_TIMEOUT_SECONDS``), then the app's clean-up flushes the producer, so
nothing acknowledged is lost and nothing pending is silently dropped.

Replay window: Zoom's ``x-zm-request-timestamp`` must lie within ``SOURCE_REPLAY_WINDOW_SECONDS``
(default 300) of this host's clock. Whether Zoom re-signs its retries with a fresh timestamp is not
documented. Watch ``zoom_source_accepted_timestamp_age_seconds`` and
``zoom_source_signature_failures_total{reason="stale_timestamp"}`` on ``/metrics``: the latter only
counts requests correctly signed with our secret but too old, so if it grows while the age histogram
fills its upper buckets, Zoom's retries carry their first timestamp. Zoom retries a failed delivery
5, 25 and 85 minutes after the first attempt (Zoom developer support, "Webhook delays"), so in that
case the default window turns every retry away: widen it to cover the last retry, e.g.
``SOURCE_REPLAY_WINDOW_SECONDS=5400`` or, with margin, ``7200``. A wider window only lets a captured
request be replayed for longer; replays of one event carry the same body and key and the pipeline
deduplicates them. Keep the host clock NTP-synchronised either way.
"""

from __future__ import annotations

import logging

from aiohttp import web

from connector.settings import Settings
from connector.source import WEBHOOK_PATH
from connector.source.app import create_app

log = logging.getLogger(__name__)

# Time for in-flight requests to finish on shutdown, on top of their Kafka deadline.
_SHUTDOWN_GRACE_SECONDS = 2.0


def serve(settings: Settings) -> int:
    """Run the source on ``SOURCE_HOST:SOURCE_PORT``; returns the process exit code."""
    app = create_app(settings)
    log.info(
        "source listening host=%s port=%d path=%s raw_topic_prefix=%s",
        settings.source_host,
        settings.source_port,
        WEBHOOK_PATH,
        settings.topic_prefix,
    )
    try:
        web.run_app(
            app,
            host=settings.source_host,
            port=settings.source_port,
            shutdown_timeout=settings.source_produce_timeout_seconds + _SHUTDOWN_GRACE_SECONDS,
            access_log=logging.getLogger("connector.source.access")
            if settings.source_access_log
            else None,
            print=None,
            handle_signals=True,
        )
    except OSError as exc:
        log.error(
            "source cannot listen host=%s port=%d error=%s",
            settings.source_host,
            settings.source_port,
            exc,
        )
        return 1
    log.info("source stopped")
    return 0
