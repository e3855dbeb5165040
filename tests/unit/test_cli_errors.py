"""Errors every command shares: one line on stderr, exit 1, nothing written; --debug shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from .conftest import snapshot

PYHOST = [sys.executable, "-m", "pyhost"]


def run_pyhost(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point in a child process, as a user runs it."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYHOST_INVENTORY", "PYHOST_DEBUG")}
    return subprocess.run(
        [*PYHOST, *args],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
        check=False,
        timeout=120,
    )


def test_an_error_is_one_line_on_stderr(workspace: Path) -> None:
    proc = run_pyhost("status", "--host", "nope", "--inventory", str(workspace))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"pyhost: error: unknown host 'nope' in {workspace}: valid hosts are theviji"
    ]


@pytest.mark.parametrize("how", ["option", "option-after-command", "environment"])
def test_debug_shows_the_traceback(workspace: Path, how: str) -> None:
    args = ["status", "--host", "nope", "--inventory", str(workspace)]
    env = None
    if how == "option":
        args = ["--debug", *args]
    elif how == "option-after-command":
        args = [*args, "--debug"]
    else:
        env = {"PYHOST_DEBUG": "1"}
    proc = run_pyhost(*args, env=env)
    assert proc.returncode == 1
    assert "Traceback (most recent call last)" in proc.stderr
    assert "PyhostError: unknown host 'nope'" in proc.stderr


COMMANDS_WITH_WORKSPACE = [
    ("provision", "--host", "theviji"),
    ("add-user", "alice", "--no-apply", "--password-stdin"),
    ("remove-user", "alice"),
    ("passwd", "alice", "--password-stdin"),
    ("list-users",),
    ("status", "--host", "theviji"),
    ("client-config", "--host", "theviji", "--user", "alice"),
]


@pytest.mark.parametrize("command", COMMANDS_WITH_WORKSPACE, ids=lambda c: c[0])
def test_missing_inventory(invoke: Callable[..., Result], tmp_path: Path, command: tuple[str, ...]) -> None:
    missing = tmp_path / "nowhere"
    result = invoke(*command, "--inventory", str(missing), input="pw\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"pyhost: error: no pyhost workspace at {missing}: create one with `pyhost init {missing} "
        "--host NAME --address ADDR --domain DOMAIN --email EMAIL`, "
        "or point --inventory (or PYHOST_INVENTORY) at an existing one"
    ]
    assert not missing.exists()


def test_inventory_comes_from_pyhost_inventory(
    invoke: Callable[..., Result], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYHOST_INVENTORY", str(workspace))
    result = invoke("status", "--host", "nope")
    assert "valid hosts are theviji" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("provision", "--host", "nope"),
        ("status", "--host", "nope"),
        ("client-config", "--host", "nope", "--user", "alice"),
        ("add-user", "alice", "--host", "nope", "--password-stdin"),
        ("remove-user", "alice", "--host", "nope"),
    ],
    ids=lambda c: c[0],
)
def test_unknown_host_lists_valid_ones(
    invoke: Callable[..., Result], workspace: Path, command: tuple[str, ...]
) -> None:
    if command[0] in ("client-config", "remove-user"):
        assert (
            invoke(
                "add-user", "alice", "--no-apply", "--password-stdin", "-i", str(workspace), input="pw\n"
            ).exit_code
            == 0
        )
    before = snapshot(workspace)
    result = invoke(*command, "--inventory", str(workspace), input="pw\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"pyhost: error: unknown host 'nope' in {workspace}: valid hosts are theviji"
    ]
    assert snapshot(workspace) == before


def test_usage_errors_exit_2(invoke: Callable[..., Result], workspace: Path) -> None:
    before = snapshot(workspace)
    result = invoke("add-user", "alice", "--role", "admin", "-i", str(workspace))
    assert result.exit_code == 2
    assert "'admin' is not one of 'publisher', 'reader'" in result.stderr
    assert snapshot(workspace) == before


def test_help_shows_examples(invoke: Callable[..., Result]) -> None:
    for command in ("provision", "add-user", "status", "client-config", "init", "sandbox"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "Examples:" in result.stdout
        assert f"pyhost {command}" in result.stdout or command == "sandbox"
