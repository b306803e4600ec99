"""Rolling per-agent score aggregates: Faust tables fed by the typed Quality Management topics.

The modules, from the typed record to the answer:

* :mod:`~connector.worker.aggregates.events` - a decoded typed record as a score event
  (:class:`~connector.worker.aggregates.events.Evaluation` or
  :class:`~connector.worker.aggregates.events.InteractionAnalysis`) with the agent it counts for;
  the wire format of the internal re-keying topic.
* :mod:`~connector.worker.aggregates.windows` - event-time days and the rolling windows.
* :mod:`~connector.worker.aggregates.state` - one agent's state (pure, JSON-serialisable) and the
  idempotent update that keeps it exact under re-delivery, re-scores and replays.
* :mod:`~connector.worker.aggregates.figures` - the figures (lifetime, last 7 / 30 days) read
  from a state, as the query API and the ``agent_scores`` topic show them.
* :mod:`~connector.worker.aggregates.record` - the ``agent_scores`` Avro record and its framing.
* :mod:`~connector.worker.aggregates.leaderboard` - the leaderboard query: parameters, ranking.
* :mod:`~connector.worker.aggregates.install` - the Faust wiring: topics, table, agents, views.
"""
