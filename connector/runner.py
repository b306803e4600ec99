"""``zoom-connector run``: the source and the worker together, for one machine.

0. Check the whole configuration of both components (:mod:`connector.preflight`): a mistake is
   reported before a broker is started or a topic created.
1. When ``KAFKA_BOOTSTRAP_SERVERS`` is unset, start the local broker
   (:mod:`connector.kafka.local_broker`, as ``zoom-connector kafka start`` does; it is left running
   afterwards, as with that command) and use it.
2. Create the topics (``zoom-connector topics create``; existing ones are left alone).
3. Run ``python -m connector source`` and ``python -m connector worker`` as child processes with
   this process's environment (plus ``KAFKA_BOOTSTRAP_SERVERS``), each in its own process group so
   a terminal's Ctrl-C reaches them once, through this process.
4. Forward SIGINT and SIGTERM to both; when either child exits, stop the other (SIGTERM, then
   SIGKILL after a grace period) and exit with the first child's status (non-zero when it failed).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from types import FrameType
from typing import Final

from connector.settings import Settings

log = logging.getLogger(__name__)

COMPONENTS: Final = ("source", "worker")
STOP_GRACE_SECONDS: Final = 30.0
_POLL_SECONDS: Final = 0.2


def _start_local_broker() -> str:
    from connector.kafka.local_broker import LocalBroker

    bootstrap: str = LocalBroker().ensure_started()
    return bootstrap


def run_all(settings: Settings) -> int:
    """Run source and worker until a signal or until one of them exits; returns the exit code."""
    from connector.preflight import check_configuration

    check_configuration(settings, COMPONENTS)
    env = dict(os.environ)
    if settings.kafka_bootstrap_servers is None:
        bootstrap = _start_local_broker()
        log.info("using the local broker bootstrap=%s", bootstrap)
        settings = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap

    from connector.kafka.admin import create_topics_command

    create_topics_command(settings)
    return supervise({name: [sys.executable, "-m", "connector", name] for name in COMPONENTS}, env)


def supervise(commands: Mapping[str, list[str]], env: Mapping[str, str]) -> int:
    """Run ``commands`` as children until a signal or until one exits; its status is returned."""
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, command in commands.items():
            children[name] = subprocess.Popen(command, env=dict(env), start_new_session=True)
            log.info("started %s pid=%d", name, children[name].pid)
        first_exit: tuple[str, int] | None = None
        forwarded = 0
        while first_exit is None:
            for sig in stopping[forwarded:]:
                log.info("forwarding %s to %s", signal.Signals(sig).name, ", ".join(children))
                _signal_all(children, sig)
            forwarded = len(stopping)
            for name, child in children.items():
                code = child.poll()
                if code is not None:
                    first_exit = (name, code)
                    break
            else:
                time.sleep(_POLL_SECONDS)
        name, code = first_exit
        expected = bool(stopping)
        log.log(
            logging.INFO if expected else logging.ERROR,
            "%s exited code=%d%s; stopping the others",
            name,
            code,
            "" if expected else " unexpectedly",
        )
        _stop_all(children)
        if code < 0:  # killed by a signal, as a shell would report it
            return 0 if expected and -code in (signal.SIGINT, signal.SIGTERM) else 128 - code
        return code if code or expected else 1
    finally:
        _stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal_all(children: Mapping[str, subprocess.Popen[bytes]], sig: int) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(sig)


def _stop_all(children: Mapping[str, subprocess.Popen[bytes]]) -> None:
    _signal_all(children, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s; killing it", name, STOP_GRACE_SECONDS)
            child.kill()
            child.wait()
