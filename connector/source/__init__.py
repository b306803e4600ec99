"""The HTTP source: receives Zoom's webhooks and stores each, byte for byte, on the raw topic.

Modules: :mod:`~connector.source.signature` (Zoom's signature and URL validation),
:mod:`~connector.source.producer`
(a durable asyncio Kafka producer), the opt-in disk spool for Kafka outages
(:mod:`~connector.source.spool` the files, :mod:`~connector.source.drainer` the drain loop,
:mod:`~connector.source.spooling` Kafka or the spool), :mod:`~connector.source.metrics`,
:mod:`~connector.source.app`
(the aiohttp application), :mod:`~connector.source.server` (``zoom-connector source``) and
:mod:`~connector.source.sender` (``zoom-connector send``).
"""

WEBHOOK_PATH = "/zoom/webhooks"
"""Where Zoom posts its webhooks (the app's Event notification endpoint URL path)."""
