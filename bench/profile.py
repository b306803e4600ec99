"""Sampling profiles of the measured processes, with py-spy (``pip install -e '.[bench]'``).

``python -m bench --profile`` attaches ``py-spy record`` to the source during its saturation run
and to the worker during its pipeline drain and its end-to-end runs, for exactly the measured
window, and keeps the collapsed stacks (``<name>.folded``, for flamegraph tools and speedscope),
a flame graph of them (``<name>.svg``, bench.flamegraph) plus a summary of where the time went
(``<name>.txt``): the functions with the most samples on top of the stack (self) and anywhere on
it (inclusive), and which of the connector's own functions cost most inclusive.
Sampling slows the target (py-spy stops it briefly to read its stacks, 100 times a second; only
the thread holding the GIL is sampled, so the profile shows where Python spends CPU):
figures of a profiled run are not the ones to quote.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from bench.flamegraph import render_svg
from bench.stacks import is_connector, stacks

RATE = 100
"""Samples per second."""


def available() -> bool:
    return shutil.which("py-spy") is not None or (Path(_venv_bin()) / "py-spy").exists()


def _venv_bin() -> str:
    import sys

    return str(Path(sys.executable).parent)


class Profile:
    """``py-spy record`` attached to ``pid`` until :meth:`stop`."""

    def __init__(self, pid: int, folder: Path, name: str) -> None:
        self.name = name
        self.folded = folder / f"{name}.folded"
        self.summary_path = folder / f"{name}.txt"
        self.svg = folder / f"{name}.svg"
        exe = shutil.which("py-spy") or str(Path(_venv_bin()) / "py-spy")
        argv = [exe, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw",
                "--output", str(self.folded), "--gil"]  # fmt: skip
        self._process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> dict[str, Any]:
        """Stop sampling, write the summary and the flame graph, return the summary ({} if none)."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if not self.folded.exists():
            return {}
        folded = self.folded.read_text(errors="replace")
        found = summarize(folded)
        self.summary_path.write_text(render(found))
        self.svg.write_text(render_svg(folded, f"py-spy: {self.name}"), encoding="utf-8")
        return found


def summarize(folded: str, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample counts by function, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in stacks(folded):
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    connector = Counter({f: n for f, n in inclusive.items() if is_connector(f)})
    return {
        "samples": total,
        "self": [(f, n / total) for f, n in own.most_common(top)] if total else [],
        "inclusive": [(f, n / total) for f, n in inclusive.most_common(top)] if total else [],
        "connector_inclusive": [(f, n / total) for f, n in connector.most_common(top)]
        if total
        else [],
    }


def render(found: dict[str, Any]) -> str:
    lines = [f"{found['samples']} samples"]
    for title, key in (
        ("self (on top of the stack)", "self"),
        ("inclusive (anywhere on the stack)", "inclusive"),
        ("the connector's functions, inclusive", "connector_inclusive"),
    ):
        lines += ["", title]
        lines += [f"  {share * 100:5.1f} %  {name}" for name, share in found[key]]
    return "\n".join(lines) + "\n"
