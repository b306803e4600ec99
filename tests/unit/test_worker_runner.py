"""``zoom-connector run``: signals forwarded, the survivor stopped, the first status kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from connector.runner import supervise

# A child that records the signal it got in a file, then exits as told.
CHILD = textwrap.dedent(
    """
    import signal, sys, time
    out, code = sys.argv[1], int(sys.argv[2])
    def stop(signum, frame):
        open(out, "w").write(signal.Signals(signum).name)
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    open(out + ".ready", "w").close()
    if code >= 0:
        time.sleep(0.5)
        sys.exit(code)
    while True:
        time.sleep(0.05)
    """
)


def _child(tmp_path: Path, name: str, code: int) -> list[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return [sys.executable, str(script), str(tmp_path / name), str(code)]


def test_when_one_child_dies_the_other_is_stopped_and_its_status_returned(
    tmp_path: Path,
) -> None:
    code = supervise(
        {"source": _child(tmp_path, "source", 3), "worker": _child(tmp_path, "worker", -1)},
        os.environ,
    )
    assert code == 3
    assert (tmp_path / "worker").read_text() == "SIGTERM"


def test_a_child_exiting_cleanly_on_its_own_is_still_a_failure(tmp_path: Path) -> None:
    code = supervise(
        {"source": _child(tmp_path, "source", 0), "worker": _child(tmp_path, "worker", -1)},
        os.environ,
    )
    assert code == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_forwarded_and_a_clean_stop_exits_zero(
    tmp_path: Path, sig: signal.Signals
) -> None:
    runner = tmp_path / "runner.py"
    runner.write_text(
        "import os, sys\n"
        "from connector.runner import supervise\n"
        f"cmds = {{'source': {_child(tmp_path, 'source', -1)!r},"
        f" 'worker': {_child(tmp_path, 'worker', -1)!r}}}\n"
        "sys.exit(supervise(cmds, os.environ))\n"
    )
    process = subprocess.Popen([sys.executable, str(runner)])
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"{n}.ready").exists() for n in ("source", "worker")):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(sig)
    assert process.wait(timeout=30) == 0
    assert (tmp_path / "source").read_text() == sig.name
    assert (tmp_path / "worker").read_text() == sig.name
