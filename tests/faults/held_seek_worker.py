"""``zoom-connector worker`` whose recovery seeks slowly while its raw stream waits.

When a recovery ends, faust-streaming resumes the stream partitions, seeks them to the committed
offsets and then resumes its flow control. This worker's raw stream takes nothing from its queue
from the first raw record on until Faust has resumed the flow, and its first such seek returns
only once ``HOLD_UNTIL`` raw records wait in that queue (or after ``HOLD_SECONDS``): the records
sit in the queue at that resume, the window :mod:`connector.worker.patches.flow` is for, made
certain instead of left to timing. It logs ``seek held: <n> queued`` and, once Faust resumed the
flow, ``flow resumed: <m> queued``. With ``FLOW_PATCH=off`` the flow control is Faust's own (the
control), which empties the queues on that resume.

    python -m tests.faults.held_seek_worker   (the worker's usual environment, plus HOLD_UNTIL
                                               and optionally HOLD_SECONDS, FLOW_PATCH)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from mode.utils.queues import FlowControlEvent

from connector.cli import main
from connector.worker import app as worker_app
from connector.worker.patches.flow import SteadyFlowControl

log = logging.getLogger(__name__)


def install_fault(app: Any, context: worker_app.WorkerContext) -> None:
    until = int(os.environ["HOLD_UNTIL"])
    seconds = float(os.environ.get("HOLD_SECONDS", "30"))
    raw = context.topics.raw
    consumer = app.consumer
    deliver = consumer.callback
    perform_seek = consumer.perform_seek
    flow_control = app.flow_control
    resume = flow_control.resume
    gated: list[Any] = []  # the raw stream's queues, closed until the flow is resumed
    gate = asyncio.Event()
    enough = asyncio.Event()
    state = {"held": False}

    def queued() -> int:
        return sum(queue.qsize() for queue in gated)

    def close_gate(message: Any) -> None:
        handler = app.topics._tp_to_callback.get(message.tp)
        for channel in getattr(handler, "channels", ()):
            queue = channel.queue
            if queue in gated:
                continue
            gated.append(queue)
            get = queue.get

            async def gated_get(get: Any = get) -> Any:
                await gate.wait()
                return await get()

            queue.get = gated_get

    async def counting_callback(message: Any) -> None:
        if message.topic == raw and not state["held"]:
            close_gate(message)
        await deliver(message)
        if message.topic == raw and queued() >= until:
            enough.set()

    async def held_seek() -> None:
        await perform_seek()
        if state["held"]:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(enough.wait(), seconds)
        state["held"] = True
        log.warning("seek held: %d queued", queued())

    def resume_then_open() -> None:
        resume()
        if state["held"] and not gate.is_set():
            log.warning("flow resumed: %d queued", queued())
            gate.set()

    consumer.callback = counting_callback
    consumer.perform_seek = held_seek
    flow_control.resume = resume_then_open


if __name__ == "__main__":
    if os.environ.get("FLOW_PATCH") == "off":
        SteadyFlowControl.resume = FlowControlEvent.resume  # type: ignore[method-assign]
    worker_app.INSTALLERS.append(install_fault)
    raise SystemExit(main(["worker"]))
