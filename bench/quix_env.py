"""The Quix Streams peer's own virtualenv, ``bench/.venv-quix``, made by the bench when needed.

quixstreams 3.28 pins confluent-kafka < 2.13 and an older pydantic than the project's: installed
in the project's virtualenv it would downgrade them. So the peer (:mod:`bench.quix_peer`) runs on
a virtualenv of its own holding quixstreams and the two libraries the connector's pure modules
need (fastavro, orjson, in the project's ranges), with the project's tree on ``PYTHONPATH``
instead of an install. It is made once (about a minute, from PyPI) and remade when
:data:`REQUIREMENTS` change; git ignores it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Final

from bench.procs import progress

ROOT: Final = Path(__file__).resolve().parent.parent
VENV: Final = ROOT / "bench" / ".venv-quix"
REQUIREMENTS: Final = ("quixstreams==3.28.1", "fastavro>=1.9,<2", "orjson>=3.10,<4")
_STAMP: Final = VENV / "bench-requirements.txt"


def python() -> Path:
    """The peer's interpreter, making the virtualenv first when it is missing or stale."""
    wanted = "\n".join(REQUIREMENTS) + "\n"
    interpreter = VENV / "bin" / "python"
    if interpreter.exists() and _STAMP.exists() and _STAMP.read_text() == wanted:
        return interpreter
    progress(f"quix peer: making {VENV.relative_to(ROOT)} ({', '.join(REQUIREMENTS)})")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    pip = [str(interpreter), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *REQUIREMENTS], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not install the peer's libraries:\n{done.stderr[-2000:]}")
    _STAMP.write_text(wanted)
    return interpreter


def env() -> dict[str, str]:
    """What the peer's process adds to its environment: the project's tree on its path."""
    return {"PYTHONPATH": str(ROOT)}
