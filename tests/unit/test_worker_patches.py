"""The patch wing's borders: only connector/worker/patches/ touches private names of faust, mode
or aiokafka, the rest of the package imports the wing through its facade, and the worker refuses
library versions the patches were not tested against."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

import pytest

from connector.worker import patches
from connector.worker.patches import TESTED, UnsupportedLibrary, check_versions
from connector.worker.patches.versions import parse_version

PACKAGE = Path(__file__).resolve().parents[2] / "connector"
WING = PACKAGE / "worker" / "patches"
LIBRARIES = ("faust", "mode", "aiokafka")


def _modules_outside_the_wing() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if WING not in p.parents]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _violations(path: Path) -> list[str]:
    """Underscore names imported from faust, mode or aiokafka in ``path``; in the worker (where
    Faust's objects are handled) also private names of other objects: ``x._name`` where ``x`` is
    not ``self`` or ``cls``."""
    tree = ast.parse(path.read_text(), str(path))
    in_worker = PACKAGE / "worker" in path.parents
    found = []
    for node in ast.walk(tree):
        if in_worker and isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            # librdkafka's local error codes are public API spelled with an underscore
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls", "KafkaError")):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] in LIBRARIES
        ):
            found += [
                f"{path.name}:{node.lineno} {node.module}.{a.name}"
                for a in node.names
                if _private(a.name)
            ]
    return found


def test_no_private_name_of_the_libraries_outside_the_wing() -> None:
    violations = [v for path in _modules_outside_the_wing() for v in _violations(path)]
    assert violations == []


def test_the_check_finds_private_names() -> None:
    """The control: the wing itself is full of them, so the check can fail."""
    assert _violations(WING / "commits.py")
    assert any("_current_event" in v for v in _violations(WING / "current_event.py"))


def test_the_rest_of_the_package_imports_the_wing_through_its_facade() -> None:
    imports = []
    for path in _modules_outside_the_wing():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("connector.worker.patches.")
            ):
                imports.append(f"{path.relative_to(PACKAGE)}: {node.module}")
    assert imports == []


def test_every_patch_module_says_what_pins_it_and_when_it_can_go() -> None:
    for path in sorted(WING.glob("*.py")):
        if path.name in ("__init__.py", "versions.py"):
            continue
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert "Patch:" in doc, path.name
        assert "Pinned by" in doc, path.name
        assert "Remove when" in doc or "Remove with" in doc, path.name


def test_the_facade_exports_what_it_lists() -> None:
    for name in patches.__all__:
        assert hasattr(patches, name), name


def test_installed_versions_are_the_tested_ones() -> None:
    check_versions()  # the virtualenv the tests run in is what pyproject.toml pins
    for name, (lowest, beyond) in TESTED.items():
        assert lowest <= parse_version(importlib.metadata.version(name)) < beyond


@pytest.mark.parametrize(
    ("installed", "named"),
    [
        ({"faust-streaming": "0.16.0", "aiokafka": "0.14.0"}, "faust-streaming 0.16.0"),
        ({"faust-streaming": "0.15.2", "aiokafka": "0.14.0"}, "faust-streaming 0.15.2"),
        ({"faust-streaming": "0.15.3", "aiokafka": "0.13.1"}, "aiokafka 0.13.1"),
        ({"faust-streaming": "0.15.3"}, "aiokafka is not installed"),
    ],
)
def test_an_untested_version_fails_loudly(installed: dict[str, str], named: str) -> None:
    def version(name: str) -> str:
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    with pytest.raises(UnsupportedLibrary) as raised:
        check_versions(version)
    assert named in str(raised.value)
    assert "tested with" in str(raised.value) or "not installed" in str(raised.value)


def test_tested_versions_pass() -> None:
    check_versions({"faust-streaming": "0.15.3", "aiokafka": "0.14.0"}.__getitem__)
    assert parse_version("0.15.3.post1") == (0, 15, 3)
    assert parse_version("0.14.0rc1") == (0, 14, 0)


def test_pyproject_pins_the_tested_ranges() -> None:
    import tomllib

    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    pins = {d.split(">=")[0]: d for d in pyproject["project"]["dependencies"] if ">=" in d}
    for name, (lowest, beyond) in TESTED.items():
        shown = (".".join(map(str, lowest)), ".".join(map(str, beyond)))
        assert pins[name] == f"{name}>={shown[0]},<{shown[1]}"
