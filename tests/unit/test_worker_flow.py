"""Resuming the worker's flow keeps what a running flow queued (``worker.patches.flow``)."""

from __future__ import annotations

from pathlib import Path

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from connector.settings import Settings
from connector.worker.app import create_app
from connector.worker.patches.flow import SteadyFlowControl


def _queue_with_one_record(flow_control: FlowControlEvent) -> FlowControlQueue[str]:
    queue: FlowControlQueue[str] = FlowControlQueue(flow_control=flow_control, clear_on_resume=True)
    queue.put_nowait("record")
    return queue


def test_faust_empties_the_queues_when_it_resumes_a_running_flow() -> None:
    """What the patch is for: mode's event, as faust-streaming uses it, drops queued records on
    every resume; the recovery resumes a flow that runs already."""
    flow_control = FlowControlEvent()
    flow_control.resume()
    queue = _queue_with_one_record(flow_control)
    flow_control.resume()
    assert queue.empty()


def test_resuming_a_running_flow_keeps_the_queued_records() -> None:
    flow_control = SteadyFlowControl()
    flow_control.resume()
    queue = _queue_with_one_record(flow_control)
    flow_control.resume()
    assert flow_control.is_active()
    assert queue.get_nowait() == "record"


def test_resuming_a_suspended_flow_still_empties_the_queues() -> None:
    """What was queued before a suspension belongs to an assignment that has changed since."""
    flow_control = SteadyFlowControl()
    flow_control.resume()
    queue = _queue_with_one_record(flow_control)
    flow_control.suspend()
    assert not flow_control.is_active()
    flow_control.resume()
    assert flow_control.is_active()
    assert queue.empty()


def test_the_worker_app_controls_its_flow_with_it(tmp_path: Path) -> None:
    app = create_app(Settings(worker_data_dir=str(tmp_path)), installers=[])
    assert isinstance(app.flow_control, SteadyFlowControl)
    assert app.flow_control is app.flow_control
