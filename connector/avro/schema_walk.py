"""One walk over an Avro schema that builds a function per type: the converter
(:mod:`.convert`) and the writers (:mod:`.writer`) are two such walks.

:class:`SchemaWalk` dispatches on the schema's shape, keeps each named type's function under its
full name (Avro's rules: a dotted name is full, else it takes the enclosing namespace) so later
references reuse it, and treats ``{"type": "long", "logicalType": ...}`` as its underlying type.
A subclass says what each kind of type becomes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

F = TypeVar("F")


class SchemaWalk(Generic[F]):
    """Builds an ``F`` for a schema (module docstring); subclasses give the kinds of types."""

    def __init__(self) -> None:
        self.named: dict[str, F] = {}

    def compile(self, schema: Any, namespace: str | None) -> F:
        if isinstance(schema, str):
            return self.reference(schema, namespace)
        if isinstance(schema, list):
            return self.union(schema, namespace)
        kind = schema["type"]
        if kind == "record":
            return self.record(schema, namespace)
        if kind == "enum":
            return self.enum(schema, namespace)
        if kind == "array":
            return self.array(schema, namespace)
        if kind == "map":
            return self.map(schema, namespace)
        if isinstance(kind, str):  # a primitive with attributes, e.g. a logical type
            return self.reference(kind, namespace)
        return self.compile(kind, namespace)

    def reference(self, name: str, namespace: str | None) -> F:
        """A primitive type, or a named type defined earlier in the walk."""
        primitive = self.primitive(name)
        if primitive is not None:
            return primitive
        full = name if "." in name else f"{namespace}.{name}" if namespace else name
        try:
            return self.named[full]
        except KeyError:
            raise ValueError(f"unknown named type {name!r}") from None

    @staticmethod
    def full_name(schema: Mapping[str, Any], namespace: str | None) -> tuple[str, str | None]:
        """A named type's full name, and the namespace its own fields are in."""
        name: str = schema["name"]
        if "." in name:
            return name, name.rsplit(".", 1)[0]
        space = schema.get("namespace", namespace)
        return (f"{space}.{name}" if space else name), space

    def primitive(self, name: str) -> F | None:
        raise NotImplementedError

    def union(self, branches: list[Any], namespace: str | None) -> F:
        raise NotImplementedError

    def record(self, schema: Mapping[str, Any], namespace: str | None) -> F:
        raise NotImplementedError

    def enum(self, schema: Mapping[str, Any], namespace: str | None) -> F:
        raise NotImplementedError

    def array(self, schema: Mapping[str, Any], namespace: str | None) -> F:
        raise NotImplementedError

    def map(self, schema: Mapping[str, Any], namespace: str | None) -> F:
        raise ValueError("maps are not supported here")
