"""``zoom-connector schemas generate|check``: ``specs/`` to ``schemas/avro/<event type>.avsc``.

Stages: load the spec catalog -> map each event's JSON Schema to an Avro dict
(:mod:`connector.avro.mapping`, pure) -> render deterministically (fixed key order from the spec,
two-space indent, UTF-8, trailing newline), so a re-run writes byte-identical files and
``check`` can compare bytes. Each schema is also kept in ``schemas/avro/history/`` by fingerprint
(:mod:`connector.avro.history`), so records written under an older one stay readable.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from connector.avro.history import history_problems, record_released
from connector.avro.mapping import avro_schema_for
from connector.paths import avro_schemas_dir
from connector.spec import WebhookCatalog, load_catalog

GENERATED_SUFFIX = ".avsc"


def render(schema: dict[str, Any]) -> bytes:
    """An Avro schema as the bytes of its ``.avsc`` file."""
    return (json.dumps(schema, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def generated_files(catalog: WebhookCatalog) -> dict[str, bytes]:
    """File name -> content, for every event type of the catalog."""
    files: dict[str, bytes] = {}
    for event_type in catalog.event_types:
        event = catalog.event(event_type)
        schema = avro_schema_for(event_type, event.schema, event.summary)
        files[f"{event_type}{GENERATED_SUFFIX}"] = render(schema)
    return files


def _by_event_type(files: dict[str, bytes]) -> dict[str, bytes]:
    return {name[: -len(GENERATED_SUFFIX)]: content for name, content in files.items()}


def generate(catalog: WebhookCatalog, folder: Path) -> list[str]:
    """Write every schema into ``folder`` and its history; returns the files that changed.

    Names are relative to ``folder`` (``<event type>.avsc``, ``history/<event type>/<fp>.avsc``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    files = generated_files(catalog)
    for name, content in files.items():
        path = folder / name
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            changed.append(name)
    for path in record_released(folder, _by_event_type(files)):
        changed.append(str(path.relative_to(folder)))
    return changed


def stale_files(catalog: WebhookCatalog, folder: Path) -> list[str]:
    """Lines naming each generated file that is missing or differs from what the specs give."""
    problems = []
    for name, content in generated_files(catalog).items():
        path = folder / name
        if not path.exists():
            problems.append(f"missing: {path}")
        elif path.read_bytes() != content:
            problems.append(f"stale: {path}")
    return problems + history_problems(folder, _by_event_type(generated_files(catalog)))


def generate_command() -> int:
    folder = avro_schemas_dir()
    catalog = load_catalog()
    changed = generate(catalog, folder)
    for name in changed:
        print(f"wrote {folder / name}")
    print(f"{len(catalog.event_types)} schemas in {folder}, {len(changed)} changed")
    for line in stale_files(catalog, folder):  # only incompatibilities can be left
        print(f"warning: {line} (see docs/operations.md, section 7)", file=sys.stderr)
    return 0


def check_command() -> int:
    folder = avro_schemas_dir()
    problems = stale_files(load_catalog(), folder)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("run `zoom-connector schemas generate` and commit the result", file=sys.stderr)
        return 1
    print(f"schemas in {folder} are up to date")
    return 0
