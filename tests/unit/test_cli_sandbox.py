"""`pyhost sandbox`: errors without Docker write nothing; the files it writes are what Ansible and users need.

No container is started here: a fake `docker` stands in for the engine. The integration tests run the
real sandbox.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pyhost.sandbox import mirrors, sandbox

from .conftest import snapshot
from .test_workspace import ansible_host_vars

SANDBOX_COMMANDS = [("up",), ("down",), ("status",), ("status", "--json"), ("prepare",)]


@pytest.mark.parametrize("command", SANDBOX_COMMANDS, ids=" ".join)
def test_no_docker_engine_is_one_line_and_writes_nothing(
    invoke: Callable[..., Result],
    fake_docker: Callable[[str], Path],
    tmp_path: Path,
    command: tuple[str, ...],
) -> None:
    fake_docker("down")
    ws = tmp_path / "ws"
    result = invoke("sandbox", *command, "-i", str(ws))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "pyhost: error: no Docker engine answers: "
        "start dockerd (or run `make prereqs` as root), then try again"
    ]
    assert not ws.exists()


def test_no_docker_client_is_one_line(
    invoke: Callable[..., Result], fake_docker: Callable[[str], Path], tmp_path: Path
) -> None:
    fake_docker("missing")
    result = invoke("sandbox", "up", "-i", str(tmp_path / "ws"))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith("pyhost: error: no docker client found: install Docker")
    assert not (tmp_path / "ws").exists()


def test_up_refuses_a_directory_that_is_not_a_workspace_before_docker(
    invoke: Callable[..., Result], fake_docker: Callable[[str], Path], tmp_path: Path
) -> None:
    calls = fake_docker("empty")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    result = invoke("sandbox", "up", "-i", str(other))
    assert result.exit_code == 1
    assert "is neither a pyhost workspace nor empty" in result.stderr
    assert snapshot(other) == {"notes.txt": (b"mine", 0o644)}
    assert not calls.exists()  # docker was never called


class _NoAnsibleCollections(importlib.abc.MetaPathFinder):
    """Python without the ansible package (pip install pyhost, no extra): no ansible_collections at all."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".", maxsplit=1)[0] == "ansible_collections":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


@pytest.fixture
def without_ansible_collections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "ansible_collections"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoAnsibleCollections(), *sys.meta_path])


@pytest.mark.usefixtures("without_ansible_collections")
def test_missing_docker_collection_says_what_to_install(
    invoke: Callable[..., Result], tmp_path: Path
) -> None:
    result = invoke("sandbox", "up", "-i", str(tmp_path / "ws"))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "pyhost: error: the community.docker Ansible collection is missing: install pyhost[sandbox] "
        "(pip install 'pyhost[sandbox]'), which brings the ansible package with it"
    ]
    assert not (tmp_path / "ws").exists()


def test_status_of_an_absent_sandbox(
    invoke: Callable[..., Result], fake_docker: Callable[[str], Path], tmp_path: Path
) -> None:
    fake_docker("empty")
    result = invoke("sandbox", "status", "--json", "-i", str(tmp_path / "ws"))
    assert result.exit_code == 1
    info = json.loads(result.stdout)
    assert info["state"] == "absent"
    assert info["url"] == "https://pypi.pyhost.test/"
    assert info["domain"] == "pypi.pyhost.test"
    assert info["container"] == "pyhost-sandbox-host"
    assert info["connect"] is None
    assert info["ca_file"] is None


def test_provision_of_a_stopped_sandbox_says_how_to_start_it(
    invoke: Callable[..., Result], fake_docker: Callable[[str], Path], workspace: Path
) -> None:
    fake_docker("empty")
    prepared = sandbox.Prepared(host_image="img", pebble_image="pebble", mirrors=None)
    (workspace / "sandbox.yml").write_text(sandbox.inventory_text(sandbox.host_vars(prepared, "172.30.0.3")))
    for command in (("provision", "--host", "sandbox"), ("status", "--host", "sandbox")):
        result = invoke(*command, "-i", str(workspace))
        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            "pyhost: error: host sandbox (pyhost-sandbox-host) is unreachable: the container is not running: "
            "start it with `pyhost sandbox up`"
        ]


def test_sandbox_inventory_is_what_ansible_reads(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    found = mirrors.Mirrors(
        root=tmp_path, pyenv_git=tmp_path / "pyenv.git", pyenv_ref="f" * 40, cpython=tmp_path
    )
    prepared = sandbox.Prepared(host_image="img", pebble_image="pebble", mirrors=found)
    (ws / "sandbox.yml").write_text(sandbox.inventory_text(sandbox.host_vars(prepared, "172.30.0.3")))
    values = ansible_host_vars(ws, "sandbox")
    assert values["ansible_connection"] == "community.docker.docker"
    assert values["ansible_host"] == "pyhost-sandbox-host"
    assert values["pyhost_domain"] == "pypi.pyhost.test"
    assert values["pyhost_python_version"] == "3.13.5"
    assert values["certbot_acme_server"] == "https://pebble:14000/dir"
    assert values["certbot_acme_ca_bundle"] == "/usr/local/share/pyhost/acme-ca.pem"
    assert values["pyhost_acme_email"] == "admin@pyhost.test"
    assert values["pyhost_trusted_networks"] == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert values["pyenv_git_url"] == "file:///srv/pyhost-mirrors/pyenv.git"
    assert values["pyenv_git_ref"] == "f" * 40
    assert values["pyenv_python_build_mirror_url"] == "file:///srv/pyhost-mirrors/cpython"
    # What pyhost's own commands read, like any host's variables: no sandbox branches in status or
    # client-config.
    assert values["pyhost_https_address"] == "172.30.0.3"
    assert values["pyhost_ca_file"] == ".sandbox/ca.pem"


def test_online_sandbox_has_no_mirror_settings() -> None:
    values = sandbox.host_vars(
        sandbox.Prepared(host_image="img", pebble_image="pebble", mirrors=None), "172.30.0.3"
    )
    assert not any(key.startswith("pyenv_") for key in values)


def test_hosts_line_is_added_replaced_and_removed(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n")
    assert sandbox.update_hosts_file("172.30.0.3", hosts)
    assert (
        hosts.read_text()
        == "127.0.0.1 localhost\n::1 localhost\n172.30.0.3 pypi.pyhost.test  # pyhost-sandbox\n"
    )
    assert sandbox.update_hosts_file("172.30.0.9", hosts)
    assert hosts.read_text().count("pypi.pyhost.test") == 1
    assert "172.30.0.9 pypi.pyhost.test  # pyhost-sandbox" in hosts.read_text()
    assert sandbox.update_hosts_file(None, hosts)
    assert hosts.read_text() == "127.0.0.1 localhost\n::1 localhost\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any file")
def test_hosts_file_not_writable_is_reported(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    hosts.chmod(0o444)
    assert sandbox.update_hosts_file("172.30.0.3", hosts) is False
    assert hosts.read_text() == "127.0.0.1 localhost\n"
