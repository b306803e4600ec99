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


def _in_checkout() -> bool:
    return (REPO_DIR / "pyproject.toml").is_file() and (REPO_DIR / "specs").is_dir()


def specs_dir() -> Path:
    """The folder of OpenAPI webhook specs, the one source of truth for event fields."""
    return REPO_DIR / "specs" if _in_checkout() else _DATA_DIR / "specs"


def avro_schemas_dir() -> Path:
    """The folder of generated, committed ``.avsc`` files."""
    return REPO_DIR / "schemas" / "avro" if _in_checkout() else _DATA_DIR / "schemas" / "avro"
