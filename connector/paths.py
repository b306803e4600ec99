"""Where the connector's data files live: ``specs/`` and ``schemas/avro/``.

In a source checkout (and an editable install) they are the repository's own folders; an installed
wheel carries copies under ``connector/_data/``. The repository's folders win when both exist, so
``schemas generate`` always writes the committed files.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
_DATA_DIR = PACKAGE_DIR / "_data"


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def specs_dir() -> Path:
    """The folder of OpenAPI webhook specs, the one source of truth for event fields."""
    return _first_existing(REPO_DIR / "specs", _DATA_DIR / "specs")


def avro_schemas_dir() -> Path:
    """The folder of generated, committed ``.avsc`` files."""
    return _first_existing(REPO_DIR / "schemas" / "avro", _DATA_DIR / "schemas" / "avro")
