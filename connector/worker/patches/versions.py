"""The faust-streaming and aiokafka versions the patches are tested against, checked at start-up.

Every patch in this package leans on private names of these two libraries; a release that moves
them can break a patch silently (a wrapped method never called, an attribute read as ``None``).
:func:`check_versions` makes the worker refuse to start on a version outside :data:`TESTED`, with
a message naming the library, the version found and the range supported. ``pyproject.toml`` pins
the same ranges; widen both only after the patch tests (``tests/unit/test_worker_patches.py`` and
the tests each patch names) pass on the new version.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable, Mapping
from typing import Final

from connector.errors import ConnectorError

Version = tuple[int, ...]

TESTED: Final[Mapping[str, tuple[Version, Version]]] = {
    "faust-streaming": ((0, 15, 3), (0, 15, 4)),
    "aiokafka": ((0, 14, 0), (0, 15, 0)),
}
"""Distribution -> (lowest version tested, first version not tested)."""


class UnsupportedLibrary(ConnectorError):
    """A library the patches rely on is installed in a version they were not tested against."""


def parse_version(text: str) -> Version:
    """The leading numeric release of a version string (``0.15.3.post1`` -> ``(0, 15, 3)``)."""
    match = re.match(r"\d+(\.\d+)*", text.strip())
    if match is None:
        raise ValueError(f"not a version: {text!r}")
    return tuple(int(part) for part in match.group(0).split("."))


def _show(version: Version) -> str:
    return ".".join(map(str, version))


def check_versions(installed: Callable[[str], str] = importlib.metadata.version) -> None:
    """Raise :class:`UnsupportedLibrary` unless every library in :data:`TESTED` is in range."""
    problems = []
    for name, (lowest, beyond) in TESTED.items():
        try:
            found = installed(name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if not lowest <= parse_version(found) < beyond:
            problems.append(
                f"{name} {found} is installed; the worker's Faust patches are tested with"
                f" >={_show(lowest)},<{_show(beyond)}"
            )
    if problems:
        raise UnsupportedLibrary(
            "; ".join(problems)
            + " (install the tested versions: pip install -e . in a fresh virtualenv;"
            " see docs/known-issues.md)"
        )
