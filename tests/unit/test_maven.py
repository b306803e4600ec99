"""Running the machine's ``mvn`` for the local broker and registry: arguments, failures, lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector.errors import ConnectorError
from connector.maven import locked, run_maven


class _Failed(ConnectorError):
    pass


def _fake_mvn(tmp_path: Path, body: str) -> Path:
    mvn = tmp_path / "mvn"
    mvn.write_text(f"#!/bin/sh\n{body}\n")
    mvn.chmod(0o755)
    return mvn


def test_maven_gets_quiet_batch_mode_and_the_arguments(tmp_path: Path) -> None:
    mvn = _fake_mvn(tmp_path, 'echo "$@" > "$PWD/args"')
    run_maven(mvn, ["dependency:copy", "-Dx=1"], cwd=tmp_path, env=os.environ, timeout=10,
              error=_Failed)  # fmt: skip
    assert (tmp_path / "args").read_text().split() == ["-q", "-B", "dependency:copy", "-Dx=1"]


def test_a_failing_maven_names_its_exit_code_and_the_end_of_its_output(tmp_path: Path) -> None:
    mvn = _fake_mvn(tmp_path, "for i in $(seq 1 20); do echo line $i; done; exit 3")
    with pytest.raises(_Failed) as raised:
        run_maven(mvn, [], cwd=tmp_path, env=os.environ, timeout=10, error=_Failed)
    message = str(raised.value)
    assert message.startswith("`mvn` exited with 3:")
    assert "line 20" in message and "line 6\n" in message and "line 5\n" not in message


def test_a_maven_that_cannot_run_is_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(_Failed, match="could not run"):
        run_maven(tmp_path / "missing", [], cwd=tmp_path, env=os.environ, timeout=10,
                  error=_Failed)  # fmt: skip


def test_the_lock_is_taken_and_given_back(tmp_path: Path) -> None:
    with locked(tmp_path / ".lock"):
        assert (tmp_path / ".lock").exists()
    with locked(tmp_path / ".lock"):  # not held any more: taken again at once
        pass
