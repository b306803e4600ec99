"""Schema changes Avro's resolution accepts but this project forbids: removed enum symbols.

Avro reads a symbol the reader's enum lacks as the enum's default, so a registry's ``BACKWARD``
rule and a read-back test both accept a schema that drops a symbol. Records already written with
that symbol would then silently read as ``UNKNOWN``: the schema rules (docs/operations.md,
section 7) say never to remove or rename one. :func:`removed_enum_symbols` finds such removals;
``schemas check`` (against the released schemas in ``schemas/avro/history/``) and the worker's
registration (against the subject's latest version) refuse them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def removed_enum_symbols(old: Any, new: Any) -> dict[str, list[str]]:
    """Enum full name -> the symbols ``old`` has and ``new`` lacks (enums in both schemas)."""
    new_enums = dict(_enums(new))
    removed: dict[str, list[str]] = {}
    for name, symbols in _enums(old):
        if name in new_enums:
            gone = [symbol for symbol in symbols if symbol not in new_enums[name]]
            if gone:
                removed[name] = gone
    return removed


def _enums(schema: Any, namespace: str = "") -> Iterator[tuple[str, list[str]]]:
    """Every enum of an Avro schema (JSON form), by full name, with its symbols."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _enums(branch, namespace)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if isinstance(kind, (dict, list)):
        yield from _enums(kind, namespace)
        return
    if kind in ("record", "error", "enum", "fixed"):
        name = str(schema.get("name", ""))
        if "." in name:
            full, namespace = name, name.rsplit(".", 1)[0]
        else:
            namespace = str(schema.get("namespace", namespace))
            full = f"{namespace}.{name}" if namespace else name
        if kind == "enum":
            yield full, [str(symbol) for symbol in schema.get("symbols", [])]
        for field in schema.get("fields", []) if kind in ("record", "error") else []:
            yield from _enums(field.get("type"), namespace)
    elif kind == "array":
        yield from _enums(schema.get("items"), namespace)
    elif kind == "map":
        yield from _enums(schema.get("values"), namespace)
