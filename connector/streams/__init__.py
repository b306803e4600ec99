"""The Faust worker (``zoom-connector worker``): raw webhooks to typed Avro topics and dead letters.

Modules, from the outside in:

- :mod:`~connector.streams.worker`: the command: checks topics, registers schemas, runs Faust;
- :mod:`~connector.streams.app`: :func:`~connector.streams.app.create_app`, the Faust app factory,
  and the installers that add agents, tables, timers and web views to it;
- :mod:`~connector.streams.agent`: one batch of raw records: route, drop retries, write, await
  delivery, then acknowledge (the at-least-once guarantee);
- :mod:`~connector.streams.batches`: taking those batches from the stream as soon as the agent is
  free (no fixed batching delay);
- :mod:`~connector.streams.pipeline`: routing one raw record to a typed record or a dead letter
  (pure, unit-tested without Kafka), and the typed topics' keys;
- :mod:`~connector.streams.identity`: what makes two deliveries one event (``zoom-event-id``);
- :mod:`~connector.streams.dedup`: the deduplication table and its retention;
- :mod:`~connector.streams.dead_letters`: the dead-letter headers (reason, path, origin);
- :mod:`~connector.streams.metrics`: ``GET /metrics``;
- :mod:`~connector.streams.credentials`: the cluster's URLs and credentials for Faust.
"""
