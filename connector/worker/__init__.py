"""The Faust worker (``zoom-connector worker``): raw webhooks to typed Avro topics, dead letters
and per-agent score aggregates.

From the outside in:

- :mod:`.command`: the command: checks topics, registers schemas, runs Faust;
- :mod:`.app`: the Faust app factory and the installers that add agents, tables, timers, views;
- :mod:`.delivery`: the one at-least-once engine every agent runs on (handlers return writes);
- :mod:`.fanout`: the raw topic's handler: typed records, dead letters, one record per event;
- :mod:`.routing`: one raw record to a typed record or a dead letter (pure);
- :mod:`.identity`, :mod:`.dedup`, :mod:`.dead_letters`: what makes deliveries one event, the
  deduplication table, the dead-letter headers;
- :mod:`.aggregates`: re-keying, aggregation, repairs and the query API of the agent scores;
- :mod:`.sink`, :mod:`.lag`, :mod:`.stalls`, :mod:`.metrics`, :mod:`.credentials`: Faust's
  producer behind the core, the lag metric, the stall watch, ``/metrics``, broker credentials;
- :mod:`.patches`: every workaround for faust-streaming and aiokafka, behind one facade.
"""
