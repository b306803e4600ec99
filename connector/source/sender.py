"""``zoom-connector send``: sign a webhook body as Zoom does and POST it to a running source.

The body is a JSON file (``-`` for stdin), sent byte for byte, or with ``--example EVENT`` the
spec's example for that event type. It is signed with a fresh timestamp (epoch seconds) and the
*first* secret of ``ZOOM_WEBHOOK_SECRET_TOKEN``. ``--url`` is the source's base URL (default
``http://localhost:SOURCE_PORT``); when it has no path, ``/zoom/webhooks`` is appended. The
command prints the answer's status line and body, and exits 0 on a 2xx answer, 1 otherwise;
httpx's own log line for the request is left out (the command prints the answer itself).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from connector.errors import ConfigurationError, ConnectorError
from connector.settings import Settings
from connector.source import WEBHOOK_PATH
from connector.source.signature import signed_headers

_TIMEOUT_SECONDS = 10.0


class SendError(ConnectorError):
    """The body could not be read or the source could not be reached."""


def webhook_url(settings: Settings, url: str | None) -> str:
    """The URL to POST to: ``url`` (its path defaulting to the webhook path) or the local source."""
    if url is None:
        return f"http://localhost:{settings.source_port}{WEBHOOK_PATH}"
    if urlsplit(url).path in ("", "/"):
        return url.rstrip("/") + WEBHOOK_PATH
    return url


def read_body(file: str | None, example: str | None) -> bytes:
    """The bytes to send: the file's (``-`` is stdin) or the spec example of ``example``."""
    if example is not None:
        from connector.spec import load_catalog

        return load_catalog().example_bytes(example)
    if file is None or file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise SendError(f"cannot read {file}: {exc.strerror or exc}") from exc


def send_command(
    settings: Settings, *, file: str | None, example: str | None, url: str | None
) -> int:
    """Sign and POST one body; print the answer; 0 on 2xx."""
    secrets = settings.secret_tokens()
    if not secrets:
        raise ConfigurationError(
            "ZOOM_WEBHOOK_SECRET_TOKEN is not set: send signs the body with its first secret"
        )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    body = read_body(file, example)
    target = webhook_url(settings, url)
    headers = {"content-type": "application/json", **signed_headers(secrets[0], body, time.time())}
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise SendError(f"cannot POST to {target}: {exc}") from exc
    print(f"{response.status_code} {response.reason_phrase}")
    if response.content:
        print(response.text)
    return 0 if response.is_success else 1
