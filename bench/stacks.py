"""py-spy's collapsed stacks (``--format raw``), read once for the summary and the flame graph.

A line is one distinct stack, root first, frames separated by ``;``, each frame
``name (path/to/file.py:123)``, then a space and its sample count. Frames are named by function
and file without the line, so samples anywhere in one function add up.
"""

from __future__ import annotations

from collections.abc import Iterator


def function(frame: str) -> str:
    """``name (path/to/module.py:123)`` -> ``name (module.py)``.

    Libraries keep their path below ``site-packages``, the project its path from ``connector/``.
    """
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = path.split("/")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "connector" in parts:
        parts = parts[parts.index("connector") :]
    else:
        parts = parts[-2:]
    return f"{name} ({'/'.join(parts)})"


def is_connector(function_name: str) -> bool:
    """Whether a :func:`function` name is the project's own code rather than a library's."""
    return "(connector/" in function_name


def stacks(folded: str) -> Iterator[tuple[list[str], int]]:
    """``(functions root first, samples)`` per line; lines that are not stacks are skipped."""
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [function(f) for f in stack.split(";") if " (" in f]
        if frames:
            yield frames, int(count_text)
