"""Operator commands over the raw and dead-letter topics: ``replay dlq|raw`` and ``dlq show``.

- :mod:`~connector.replay.records`: what a raw record or a dead letter says about itself (reason,
  event type, time, origin), read from its headers and body;
- :mod:`~connector.replay.selection`: the filters both commands take (``--reason``, ``--event``,
  ``--since``/``--until``, ``--partition``) and the parsing of their values;
- :mod:`~connector.replay.reading`: reading a topic from given offsets up to the end offsets taken
  when the command started (or on, with ``--follow``);
- :mod:`~connector.replay.copying`: ``replay``: copying the selected records to a topic, resumable
  through a consumer group of its own;
- :mod:`~connector.replay.show`: ``dlq show``: printing dead letters, as text or JSON lines;
- :mod:`~connector.replay.arguments`: the command-line arguments of both, for :mod:`connector.cli`.
"""
