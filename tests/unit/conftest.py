"""Fixtures for the CLI tests: real temporary workspaces, small playbooks on a local connection, fake docker.

Nothing here touches this machine's system files: the test playbooks only write under pytest's tmp_path,
and runner calls use `ansible_connection: local` (or SSH to a closed loopback port, for "unreachable").
"""

from __future__ import annotations

import datetime
import http.server
import os
import socket
import ssl
import stat
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pyhost import content
from pyhost.cli.main import main
from pyhost.workspace.inventory import scaffold

LOCAL_HOST_VARS = {
    "ansible_connection": "local",
    "ansible_become": False,
    "ansible_python_interpreter": sys.executable,
}


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run `pyhost ARGS` in-process; stdout and stderr are kept apart (result.stdout, result.stderr)."""
    monkeypatch.delenv("PYHOST_INVENTORY", raising=False)
    monkeypatch.delenv("PYHOST_DEBUG", raising=False)

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return run


def make_workspace(path: Path, **host_vars: object) -> Path:
    """`pyhost init` for host theviji on loopback, plus the given connection variables."""
    return scaffold(
        path,
        host="theviji",
        address="127.0.0.1",
        domain="pypi.example.com",
        email="admin@example.com",
        extra_host_vars=host_vars,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A real workspace whose host theviji runs Ansible on this machine (local connection)."""
    return make_workspace(tmp_path / "ws", **LOCAL_HOST_VARS)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable_workspace(tmp_path: Path) -> Path:
    """A workspace whose host theviji is 127.0.0.1 over SSH on a closed port: connection refused."""
    return make_workspace(
        tmp_path / "ws-unreachable",
        ansible_connection="ssh",
        ansible_port=closed_port(),
        ansible_user="nobody",
        ansible_ssh_common_args="-o ConnectTimeout=5 -o BatchMode=yes",
    )


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under PATH with its bytes and mode, to assert that a command wrote nothing."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@dataclass
class FakeContent:
    """Stand-ins for site.yml and users.yml that record what Ansible saw under RECORD."""

    record: Path

    def read(self, name: str) -> str:
        return (self.record / name).read_text()

    def exists(self, name: str) -> bool:
        return (self.record / name).exists()


@pytest.fixture
def fake_playbooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeContent:
    """site.yml and users.yml replaced by small playbooks; status.yml stays pyhost's real one."""
    books = tmp_path / "playbooks"
    record = tmp_path / "record"
    books.mkdir()
    record.mkdir()
    (books / "site.yml").write_text(
        textwrap.dedent(
            f"""\
            - name: Fake site
              hosts: index_servers
              gather_facts: false
              tasks:
                - name: Record the domain (common)
                  ansible.builtin.copy:
                    dest: {record}/common.txt
                    content: "{{{{ pyhost_domain }}}}"
                    mode: "0644"
                  tags: [common]
                - name: Record that nginx ran
                  ansible.builtin.copy:
                    dest: {record}/nginx.txt
                    content: nginx
                    mode: "0644"
                  tags: [nginx]
                - name: Record an extra variable
                  ansible.builtin.copy:
                    dest: {record}/extra.txt
                    content: "{{{{ greeting | default('none') }}}}"
                    mode: "0644"
                  tags: [always]
                - name: Fail when asked
                  ansible.builtin.fail:
                    msg: the fake site was asked to fail
                  when: fail_now | default(false) | bool
            """
        )
    )
    (books / "users.yml").write_text(
        textwrap.dedent(
            f"""\
            - name: Fake users sync
              hosts: index_servers
              gather_facts: false
              tasks:
                - name: Fail when the host asks for it
                  ansible.builtin.fail:
                    msg: the fake users sync was asked to fail
                  when: fail_users | default(false) | bool
                - name: Record the users Ansible received
                  ansible.builtin.copy:
                    dest: "{record}/users-{{{{ inventory_hostname }}}}.json"
                    content: "{{{{ pyhost_users | to_json }}}}"
                    mode: "0600"
            """
        )
    )
    real = content.playbook

    def playbook(name: str) -> Path:
        return books / name if (books / name).exists() else real(name)

    monkeypatch.setattr(content, "playbook", playbook)
    return FakeContent(record=record)


# A fake docker client -----------------------------------------------------------------------------------


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Path]:
    """Put a fake `docker` first on PATH. Modes: 'down' (no engine answers), 'empty' (an engine with nothing
    in it), 'missing' (no docker client at all). Returns the log of the calls it received."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    log = tmp_path / "docker-calls.log"

    def install(mode: str) -> Path:
        if mode == "missing":
            monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}")
            return log
        script = {
            "down": 'echo "Cannot connect to the Docker daemon" >&2; exit 1',
            "empty": textwrap.dedent(
                """\
                case "$1" in
                  info) echo 27.0.0 ;;
                  *) echo "Error: No such object" >&2; exit 1 ;;
                esac"""
            ),
        }[mode]
        docker = bin_dir / "docker"
        docker.write_text(f'#!/bin/sh\necho "$@" >> {log}\n{script}\n')
        docker.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        return log

    return install


# A local HTTPS server with its own CA ---------------------------------------------------------------------


@dataclass
class TLSServer:
    domain: str
    port: int
    ca_file: Path
    status: int


def _certificates(directory: Path, domain: str, days: int) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyhost test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_file, cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Callable[..., TLSServer]]:
    """Start an HTTPS server on 127.0.0.1 for DOMAIN, answering STATUS to every GET."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(domain: str = "pypi.example.com", status: int = 401, days: int = 90) -> TLSServer:
        directory = tmp_path / f"tls-{len(servers)}"
        directory.mkdir()
        ca_file, cert_file, key_file = _certificates(directory, domain, days)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return TLSServer(domain=domain, port=server.server_address[1], ca_file=ca_file, status=status)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
