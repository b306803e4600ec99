"""A release that changes a schema, made on copies of ``specs/`` and ``schemas/avro/``.

The change is the one the rules in docs/operations.md (section 7) allow: a new enum symbol and a
new optional field, both in ``quality_management.evaluation_completed``.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from connector.avro.codec import EventCodec, load_schemas
from connector.avro.generator import generate
from connector.avro.history import load_history
from connector.paths import avro_schemas_dir, specs_dir
from connector.spec import load_catalog_from

EVENT_TYPE: Final = "quality_management.evaluation_completed"
NEW_SYMBOL: Final = "CALIBRATION"
NEW_FIELD: Final = "calibration_note"


@dataclass(frozen=True)
class Release:
    """A copy of the specs and schemas that can be changed and regenerated."""

    specs: Path
    schemas: Path

    @classmethod
    def copy_of_the_repository(cls, tmp_path: Path) -> Release:
        release = cls(tmp_path / "specs", tmp_path / "schemas")
        shutil.copytree(specs_dir(), release.specs)
        shutil.copytree(avro_schemas_dir(), release.schemas)
        return release

    def codec(self) -> EventCodec:
        """The codec of this release, as the worker builds it (current schemas and history)."""
        return EventCodec(load_schemas(self.schemas), history=load_history(self.schemas))

    def example(self) -> dict[str, Any]:
        return load_catalog_from(self.specs).example(EVENT_TYPE)

    def add_a_symbol_and_a_field(self) -> list[str]:
        """Change the spec, regenerate; returns what ``schemas generate`` wrote."""
        path = self.specs / "quality_management.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        body = document["webhooks"][EVENT_TYPE]["post"]["requestBody"]["content"]
        evaluation = body["application/json"]["schema"]["properties"]["payload"]["properties"][
            "object"
        ]["properties"]
        evaluation["evaluation_type"]["enum"].append(NEW_SYMBOL)
        evaluation[NEW_FIELD] = {"type": "string", "description": "Why it was calibrated."}
        path.write_text(json.dumps(document, indent=2), encoding="utf-8")
        return generate(load_catalog_from(self.specs), self.schemas)


def new_event(old: dict[str, Any]) -> dict[str, Any]:
    """An event only the new schema accepts: the new symbol and the new field."""
    event = copy.deepcopy(old)
    event["payload"]["object"]["evaluation_type"] = NEW_SYMBOL
    event["payload"]["object"][NEW_FIELD] = "second opinion"
    return event
