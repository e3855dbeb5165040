"""`pyhost init`: scaffold a workspace, never overwrite one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pyhost.workspace.inventory import Workspace

from .conftest import snapshot

ARGS = (
    "--host",
    "theviji",
    "--address",
    "203.0.113.10",
    "--domain",
    "pypi.example.com",
    "--email",
    "me@example.com",
)


def test_init_creates_a_workspace(invoke: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / "prod"
    result = invoke("init", str(target), *ARGS)
    assert result.exit_code == 0, result.output
    assert f"pyhost provision --host theviji --inventory {target}" in result.stdout
    ws = Workspace.open(target)
    assert ws.host_names() == ["theviji"]
    assert ws.host_address("theviji") == "203.0.113.10"
    assert ws.domain("theviji") == "pypi.example.com"
    assert ws.host_vars("theviji")["pyhost_acme_email"] == "me@example.com"
    assert ws.users_file.stat().st_mode & 0o777 == 0o600


def test_init_defaults_to_pyhost_inventory(
    invoke: Callable[..., Result], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("init", *ARGS).exit_code == 0
    assert (tmp_path / "inventory" / "hosts.yml").is_file()
    monkeypatch.setenv("PYHOST_INVENTORY", str(tmp_path / "from-env"))
    assert invoke("init", *ARGS).exit_code == 0
    assert (tmp_path / "from-env" / "hosts.yml").is_file()


def test_init_refuses_to_overwrite(invoke: Callable[..., Result], tmp_path: Path) -> None:
    target = tmp_path / "prod"
    assert invoke("init", str(target), *ARGS).exit_code == 0
    before = snapshot(target)
    result = invoke("init", str(target), *ARGS[:-1], "other@example.com")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"pyhost: error: {target} already exists and is not empty: pyhost init never overwrites a workspace"
    ]
    assert snapshot(target) == before


def test_init_with_bad_input_writes_nothing(invoke: Callable[..., Result], tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "prod"), *ARGS[:5], "not_a_domain", *ARGS[6:])
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "invalid domain 'not_a_domain'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_two_different_directories(invoke: Callable[..., Result], tmp_path: Path) -> None:
    result = invoke("init", str(tmp_path / "a"), "--inventory", str(tmp_path / "b"), *ARGS)
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []
