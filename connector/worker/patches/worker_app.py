"""The worker's ``faust.App``: Faust's app with the app-level patches in place.

- its aiokafka transport builds the consumer with the worker's fetch settings and hands records
  over without a task each (:mod:`.fetching`, :mod:`.handover`);
- its flow control keeps the records queued while the flow ran when a recovery resumes it
  (:mod:`.flow`).

Patch: where :mod:`.fetching`, :mod:`.handover` and :mod:`.flow` (their upstream issues there)
enter Faust. Private names: ``App._new_transport``, ``App.flow_control`` (both overridden here).
Pinned by ``tests/unit/test_worker_fetching.py`` and ``tests/unit/test_worker_flow.py``.
Remove with the last of those patches.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport import by_url
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.utils.objects import cached_property
from mode.utils.queues import FlowControlEvent

from connector.worker.patches.fetching import Fetching, FetchingTransport
from connector.worker.patches.flow import SteadyFlowControl


class WorkerApp(faust.App):
    """The worker's ``faust.App`` (module docstring)."""

    def __init__(self, id: str, *, fetching: Fetching, **options: Any) -> None:
        super().__init__(id, **options)
        self.fetching = fetching

    def _new_transport(self) -> Any:
        urls = self.conf.broker_consumer
        if by_url(urls[0]) is not faust_aiokafka.Transport:
            return super()._new_transport()  # another driver: Faust's own settings
        transport = FetchingTransport(urls, self, loop=self.loop)
        transport.fetching = self.fetching
        return transport

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return SteadyFlowControl(loop=self.loop)
