"""The Faust worker (``zoom-connector worker``): raw webhooks to typed Avro topics and dead letters.

Modules, from the outside in:

- :mod:`~connector.worker.command`: the command: checks topics, registers schemas, runs Faust;
- :mod:`~connector.worker.app`: :func:`~connector.worker.app.create_app`, the Faust app factory,
  and the installers that add agents, tables, timers and web views to it;
- :mod:`~connector.worker.agent`: one batch of raw records: route, drop retries, write, await
  delivery, then acknowledge (the at-least-once guarantee);
- :mod:`~connector.worker.patches.batching`: taking those batches from the stream as soon as the agent is
  free (no fixed batching delay);
- :mod:`~connector.worker.routing`: routing one raw record to a typed record or a dead letter
  (pure, unit-tested without Kafka), and the typed topics' keys;
- :mod:`~connector.worker.identity`: what makes two deliveries one event (``zoom-event-id``);
- :mod:`~connector.worker.dedup`: the deduplication table and its retention;
- :mod:`~connector.worker.dead_letters`: the dead-letter headers (reason, path, origin);
- :mod:`~connector.worker.metrics`: ``GET /metrics``;
- :mod:`~connector.worker.credentials`: the cluster's URLs and credentials for Faust.
"""
