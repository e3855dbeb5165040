"""The workspace: finding hosts and their settings, and scaffolding a new one from the example."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyhost.errors import PyhostError
from pyhost.workspace.inventory import Workspace, default_dir, scaffold, scaffold_empty, set_top_level_key

from .conftest import make_workspace, snapshot

ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")


def ansible_host_vars(ws: Path, host: str) -> dict:
    sources = [
        arg for name in ("hosts.yml", "sandbox.yml") if (ws / name).exists() for arg in ("-i", str(ws / name))
    ]
    out = subprocess.run(
        [ANSIBLE_INVENTORY, *sources, "--host", host], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_hosts_come_from_hosts_yml_and_sandbox_yml(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "sandbox.yml").write_text(
        "all:\n  children:\n    index_servers:\n      hosts:\n        sandbox:\n          ansible_host: box\n"
    )
    workspace = Workspace.open(ws)
    assert workspace.host_names() == ["sandbox", "theviji"]
    assert workspace.index_servers() == ["sandbox", "theviji"]
    assert workspace.host_address("theviji") == "127.0.0.1"
    assert workspace.host_address("sandbox") == "box"
    assert [p.name for p in workspace.inventory_sources()] == ["hosts.yml", "sandbox.yml"]


def test_host_vars_follow_ansible_precedence_for_plain_values(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "group_vars" / "index_servers" / "main.yml").write_text(
        "pyhost_domain: group.example.com\nonly_group: 1\n"
    )
    workspace = Workspace.open(ws)
    values = workspace.host_vars("theviji")
    assert values["pyhost_domain"] == "pypi.example.com"  # host_vars beat group_vars
    assert values["only_group"] == 1
    assert workspace.domain("theviji") == ansible_host_vars(ws, "theviji")["pyhost_domain"]


def test_vault_values_do_not_break_reading(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "group_vars" / "index_servers" / "vault.yml").write_text(
        "vault_secret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n"
    )
    assert Workspace.open(ws).domain("theviji") == "pypi.example.com"


def test_unknown_host_lists_the_valid_ones(tmp_path: Path) -> None:
    workspace = Workspace.open(make_workspace(tmp_path / "ws"))
    with pytest.raises(PyhostError, match=r"unknown host 'nope' .*valid hosts are theviji$"):
        workspace.require_host("nope")


def test_missing_workspace_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(PyhostError, match=r"no pyhost workspace at .*pyhost init"):
        Workspace.open(tmp_path / "absent")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    with pytest.raises(PyhostError, match="is not a pyhost workspace"):
        Workspace.open(tmp_path / "other")


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "hosts.yml").write_text("all:\n  children: [\n")
    with pytest.raises(PyhostError, match=r"hosts.yml line \d+ is not valid YAML"):
        Workspace.open(ws).host_names()


def test_default_dir_prefers_option_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYHOST_INVENTORY", "/from/env")
    assert default_dir("/from/option") == Path("/from/option")
    assert default_dir(None) == Path("/from/env")
    monkeypatch.delenv("PYHOST_INVENTORY")
    assert default_dir(None) == Path("inventory")


def test_scaffold_builds_an_inventory_ansible_reads(tmp_path: Path) -> None:
    ws = scaffold(
        tmp_path / "new",
        host="web1",
        address="198.51.100.7",
        domain="pypi.example.org",
        email="ops@example.org",
    )
    values = ansible_host_vars(ws, "web1")
    assert values["ansible_host"] == "198.51.100.7"
    assert values["pyhost_domain"] == "pypi.example.org"
    assert values["pyhost_acme_email"] == "ops@example.org"
    assert values["pyhost_users"] == []
    assert not (ws / "host_vars" / "theviji.yml").exists()  # the example's host stays in the example
    assert (ws / "group_vars" / "index_servers" / "users.yml").stat().st_mode & 0o777 == 0o600


def test_scaffold_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    before = snapshot(ws)
    with pytest.raises(PyhostError, match="never overwrites"):
        make_workspace(ws)
    assert snapshot(ws) == before


def test_scaffold_fills_an_existing_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert (make_workspace(tmp_path / "empty") / "hosts.yml").is_file()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("host", "bad host", "invalid host name"),
        ("address", "not an address!", "invalid address"),
        ("domain", "localhost", "invalid domain"),
        ("domain", "192.0.2.1", "invalid domain"),
        ("email", "nobody", "invalid email"),
    ],
)
def test_scaffold_validates_before_writing(tmp_path: Path, field: str, value: str, message: str) -> None:
    args = {"host": "web1", "address": "192.0.2.1", "domain": "pypi.example.org", "email": "a@example.org"}
    args[field] = value
    with pytest.raises(PyhostError, match=message):
        scaffold(tmp_path / "new", **args)
    assert list(tmp_path.iterdir()) == []


def test_scaffold_empty_has_no_hosts(tmp_path: Path) -> None:
    ws = Workspace.open(scaffold_empty(tmp_path / "ws", email="admin@pyhost.test"))
    assert ws.host_names() == []


def test_set_top_level_key_keeps_comments() -> None:
    text = "# a comment\npyhost_domain: old.example.com  # trailing\nother: 1\n"
    assert set_top_level_key(text, "pyhost_domain", "new.example.com") == (
        '# a comment\npyhost_domain: "new.example.com"\nother: 1\n'
    )
    assert (
        set_top_level_key("other: 1", "pyhost_acme_email", "a@b.c")
        == 'other: 1\npyhost_acme_email: "a@b.c"\n'
    )
