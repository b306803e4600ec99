"""Zoom's webhook specs: the OpenAPI documents in ``specs/`` as a catalog of event types."""

from connector.spec.catalog import (
    SpecError,
    UnknownEventTypeError,
    WebhookCatalog,
    WebhookEvent,
    load_catalog,
    load_catalog_from,
)

__all__ = [
    "SpecError",
    "UnknownEventTypeError",
    "WebhookCatalog",
    "WebhookEvent",
    "load_catalog",
    "load_catalog_from",
]
