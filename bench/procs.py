"""Child processes of the bench: started pinned to a CPU, measured from ``/proc``, always stopped.

CPU time is ``utime + stime`` of ``/proc/<pid>/stat`` (all threads: librdkafka's included), peak
memory is ``VmHWM`` of ``/proc/<pid>/status`` (the process's peak resident set). Both are read by
the bench while the child runs, at the edges of each measured window.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from bench.http_stack.run import _pinned

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

SERVER_CPU = 0
"""The CPU the measured process (source, worker, ceiling) is pinned to."""
LOAD_CPU = 1
"""The CPU the load generators are pinned to."""


def pinned(cpu: int | None, argv: Sequence[str]) -> list[str]:
    """``argv`` under ``taskset -c cpu`` when there are 2+ CPUs and taskset exists; ``None``:
    every CPU (the bench itself runs on the load CPU, and children inherit that)."""
    if cpu is None:
        count = os.cpu_count() or 1
        return list(argv) if count < 2 else _pinned(f"0-{count - 1}", list(argv))
    return _pinned(cpu, list(argv))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (``None`` when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def memory_mib(pid: int) -> dict[str, float]:
    """``rss`` (now) and ``peak_rss`` (VmHWM) of ``pid`` in MiB; empty when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found["rss" if name == "VmRSS" else "peak_rss"] = int(value.split()[0]) / 1024
    return found


class Child:
    """One child process, its output in ``log_path``; a context manager that always stops it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cpu: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.process = subprocess.Popen(
            pinned(cpu, argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
        )
        self.pid = self.process.pid
        self.started = time.monotonic()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu(self) -> float | None:
        return cpu_seconds(self.pid)

    def memory(self) -> dict[str, float]:
        return memory_mib(self.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


def wait_http_ok(url: str, child: Child, timeout: float) -> None:
    """Poll ``url`` until it answers 200 (raises with the child's log when it does not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f} s:\n"
                       f"{child.log_tail()}")  # fmt: skip


def python() -> str:
    return sys.executable


def progress(message: str) -> None:
    """One progress line on stderr, with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
