"""The sandbox: a "VPS in a box" on this machine, to run the real roles end to end with nothing external.

Two containers on a private docker network: a systemd host (the test image) that answers as pypi.pyhost.test,
and pebble, a local ACME server that validates that name over HTTP-01 through docker's DNS and issues a real
certificate from its own root. The host is registered in the workspace as `sandbox` (sandbox.yml), pebble's
root is saved as the clients' CA file, and one marked /etc/hosts line makes the URL work from this machine.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import ssl
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from pyhost.ansible.runner import HostUnreachable
from pyhost.errors import PyhostError
from pyhost.sandbox import docker, images, mirrors
from pyhost.sandbox.testbed import default_python_versions
from pyhost.workspace.inventory import INDEX_GROUP, SANDBOX_STATE_DIR, Workspace, default_dir, scaffold_empty

# PYHOST_SANDBOX_NAME gives a sandbox of its own (the tests use one, so that `make test` never touches the
# sandbox a user keeps running); its containers, network, domain and /etc/hosts line all carry the name.
DEFAULT_NAME = "pyhost-sandbox"
SANDBOX_NAME = os.environ.get("PYHOST_SANDBOX_NAME", "").strip() or DEFAULT_NAME
NETWORK = SANDBOX_NAME
PEBBLE_CONTAINER = f"{SANDBOX_NAME}-pebble"
HOST_CONTAINER = f"{SANDBOX_NAME}-host"
HOST_NAME = "sandbox"
DOMAIN = "pypi.pyhost.test" if SANDBOX_NAME == DEFAULT_NAME else f"pypi.{SANDBOX_NAME}.test"
ACME_EMAIL = "admin@pyhost.test"
MIRROR_MOUNT = "/srv/pyhost-mirrors"
ACME_CA_IN_HOST = "/usr/local/share/pyhost/acme-ca.pem"
PEBBLE_LISTENER_CA = "/etc/pebble/ca.pem"
# pebble's root CA, in the workspace (the sandbox host's pyhost_ca_file).
CA_FILE = f"{SANDBOX_STATE_DIR}/ca.pem"
PEBBLE_ROOT_PORT = 15000
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARK = f"# {SANDBOX_NAME}"
LABEL = "pyhost.sandbox=1"
PLATFORM_LABEL = "pyhost.platform"
SYSTEMD_RUN_OPTIONS = (
    "--cap-add",
    "SYS_ADMIN",
    # The firewall role's nftables rules, and fail2ban's bans.
    "--cap-add",
    "NET_ADMIN",
    "--cgroupns=host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
    "--security-opt",
    "seccomp=unconfined",
    # Where AppArmor runs (Ubuntu), docker's default profile forbids the mounts of systemd's sandboxed units.
    "--security-opt",
    "apparmor=unconfined",
)
BOOT_TIMEOUT = 120
PEBBLE_TIMEOUT = 30


@dataclass(frozen=True)
class Prepared:
    host_image: str
    pebble_image: str
    mirrors: mirrors.Mirrors | None
    platform: str = images.DEFAULT_PLATFORM


def require_docker_connection() -> None:
    """Ansible reaches the sandbox through community.docker's connection plugin."""
    try:
        found = importlib.util.find_spec("ansible_collections.community.docker") is not None
    except ModuleNotFoundError:
        # find_spec imports the parents of a dotted name: without the ansible package there is no
        # ansible_collections at all.
        found = False
    if not found:
        raise PyhostError(
            "the community.docker Ansible collection is missing: install pyhost[sandbox] "
            "(pip install 'pyhost[sandbox]'), which brings the ansible package with it"
        )


def require_container(host: str, container: str) -> None:
    """A host reached through docker is unreachable while its container is stopped: say how to start it."""
    docker.require_engine()
    if not docker.container_running(container):
        hint = "start it with `pyhost sandbox up`" if container == HOST_CONTAINER else "start it"
        raise HostUnreachable(
            f"host {host} ({container}) is unreachable: the container is not running: {hint}"
        )


def _mirrors(offline: bool | None, console: Console) -> mirrors.Mirrors | None:
    """The offline pyenv and CPython mirrors; None when online, or when auto and they cannot be prepared."""
    if offline is False:
        return None
    try:
        return mirrors.ensure_mirrors(default_python_versions())
    except PyhostError as exc:
        if offline:
            raise
        console.print(
            f"[yellow]offline mirrors unavailable ({exc}): the sandbox will download pyenv and CPython[/]"
        )
        return None


def prepare(console: Console, offline: bool | None = None, platform: str | None = None) -> Prepared:
    """Build (once) the images and the offline mirrors the sandbox needs, its host on PLATFORM."""
    host = images.platform(platform)
    require_docker_connection()
    docker.require_engine()
    with console.status("Preparing the offline mirrors (pyenv, CPython sources)"):
        found = _mirrors(offline, console)
    with console.status(f"Building the {host.name} systemd host image (first time: a few minutes)"):
        base = images.ensure_base_image(host)
    with console.status("Building the pebble (local ACME server) image"):
        pebble = images.ensure_pebble_image()
    host_image = (
        images.sandbox_host_image(host, default_python_versions(), found.pyenv_ref) if found else base
    )
    return Prepared(host_image=host_image, pebble_image=pebble, mirrors=found, platform=host.name)


# Containers ------------------------------------------------------------------------------------------


def _ensure_network() -> None:
    if not docker.network_exists(NETWORK):
        docker.run(["network", "create", "--label", LABEL, NETWORK])


def _ensure_container(name: str, create_args: list[str]) -> bool:
    """Start NAME, creating it with CREATE_ARGS when absent; True when it was not already running."""
    if docker.container_running(name):
        return False
    if docker.container_exists(name):
        docker.run(["start", name])
    else:
        docker.run(["run", "-d", "--name", name, "--label", LABEL, "--network", NETWORK, *create_args])
    return True


def _host_args(prepared: Prepared) -> list[str]:
    platform = f"{PLATFORM_LABEL}={prepared.platform}"
    args = ["--network-alias", DOMAIN, "--hostname", HOST_NAME, "--label", platform, *SYSTEMD_RUN_OPTIONS]
    if prepared.mirrors:
        args += ["-v", f"{prepared.mirrors.root}:{MIRROR_MOUNT}:ro"]
    return [*args, prepared.host_image, "/lib/systemd/systemd"]


def container_ip(name: str) -> str | None:
    if not docker.container_running(name):
        return None
    out = docker.run(
        [
            "container",
            "inspect",
            "--format",
            f'{{{{(index .NetworkSettings.Networks "{NETWORK}").IPAddress}}}}',
            name,
        ],
        check=False,
    ).strip()
    return out or None


def _wait_for_systemd(console: Console) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    state = ""
    while time.monotonic() < deadline:
        state = docker.run(
            ["exec", HOST_CONTAINER, "systemctl", "is-system-running", "--wait"], check=False
        ).strip()
        if state in ("running", "degraded"):
            break
        time.sleep(1)
    else:
        raise PyhostError(
            f"systemd in {HOST_CONTAINER} did not finish booting in {BOOT_TIMEOUT}s "
            f"(state: {state or 'unknown'}): "
            f"see `docker logs {HOST_CONTAINER}`"
        )
    if state == "degraded":
        failed = docker.run(
            ["exec", HOST_CONTAINER, "systemctl", "--failed", "--plain", "--no-legend"], check=False
        )
        units = ", ".join(line.split()[0] for line in failed.splitlines() if line.strip()) or "unknown units"
        console.print(f"[yellow]systemd in the sandbox is degraded: failed {units}[/]")


def _install_cas(listener_ca: Path) -> None:
    """Into the host container: this machine's extra CAs (its egress intercepts TLS), pebble's listener CA."""
    extra = sorted(HOST_EXTRA_CAS.glob("*.crt"))
    for crt in extra:
        docker.run(["cp", str(crt), f"{HOST_CONTAINER}:/usr/local/share/ca-certificates/{crt.name}"])
    if extra:
        docker.run(["exec", HOST_CONTAINER, "update-ca-certificates"])
    docker.run(["exec", HOST_CONTAINER, "mkdir", "-p", str(Path(ACME_CA_IN_HOST).parent)])
    docker.run(["cp", str(listener_ca), f"{HOST_CONTAINER}:{ACME_CA_IN_HOST}"])


def fetch_pebble_root(address: str, listener_ca: Path, timeout: float = PEBBLE_TIMEOUT) -> str:
    """Pebble's issuing root (new at each start), fetched over TLS verified with pebble's listener CA."""
    context = ssl.create_default_context(cafile=str(listener_ca))
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            with (
                socket.create_connection((address, PEBBLE_ROOT_PORT), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="pebble") as tls,
            ):
                tls.sendall(b"GET /roots/0 HTTP/1.0\r\nHost: pebble\r\n\r\n")
                answer = b""
                while chunk := tls.recv(65536):
                    answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            if b" 200 " in head.split(b"\r\n", 1)[0] and b"BEGIN CERTIFICATE" in body:
                return body.decode()
            last_error = head.split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError as exc:
            last_error = str(exc)
        time.sleep(1)
    raise PyhostError(f"could not fetch pebble's root CA from {address}:{PEBBLE_ROOT_PORT}: {last_error}")


# Workspace registration -------------------------------------------------------------------------------


def host_vars(prepared: Prepared, address: str) -> dict[str, Any]:
    """The sandbox host's inventory: how Ansible reaches it, the roles' local settings, and for pyhost's own
    commands (status, client-config) its HTTPS address on docker's network and the CA that signs it."""
    values: dict[str, Any] = {
        "ansible_connection": "community.docker.docker",
        "ansible_host": HOST_CONTAINER,
        "ansible_python_interpreter": "/usr/bin/python3",
        "pyhost_domain": DOMAIN,
        "pyhost_acme_email": ACME_EMAIL,
        "pyhost_python_version": default_python_versions()[0],
        "certbot_acme_server": "https://pebble:14000/dir",
        "certbot_acme_ca_bundle": ACME_CA_IN_HOST,
        # Only this machine reaches the sandbox, over docker's private networks: tests and demos that try
        # wrong passwords or hit the rate limit must not be banned by fail2ban.
        "pyhost_trusted_networks": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
        "pyhost_https_address": address,
        "pyhost_ca_file": CA_FILE,
    }
    if prepared.mirrors:
        values |= {
            "pyenv_git_url": f"file://{MIRROR_MOUNT}/pyenv.git",
            "pyenv_git_ref": prepared.mirrors.pyenv_ref,
            "pyenv_python_build_mirror_url": f"file://{MIRROR_MOUNT}/cpython",
        }
    return values


def inventory_text(values: dict[str, Any]) -> str:
    document = {"all": {"children": {INDEX_GROUP: {"hosts": {HOST_NAME: values}}}}}
    return (
        "# Written by `pyhost sandbox up`, removed by `pyhost sandbox down`: the local sandbox host.\n"
        + yaml.safe_dump(document, default_flow_style=False, sort_keys=False)
    )


def hosts_text(current: str, address: str | None) -> str:
    """/etc/hosts without our marked line, plus a fresh one when ADDRESS is given."""
    lines = [line for line in current.splitlines() if not line.rstrip().endswith(HOSTS_MARK)]
    if address:
        lines.append(f"{address} {DOMAIN}  {HOSTS_MARK}")
    return "\n".join(lines) + "\n"


def update_hosts_file(address: str | None, path: Path = HOSTS_FILE) -> bool:
    """Put (or remove) the marked line; False when this user may not write the file.

    Written in place, not renamed: in containers /etc/hosts is a bind mount that cannot be replaced.
    """
    current = path.read_text() if path.exists() else ""
    wanted = hosts_text(current, address)
    if wanted == current:
        return True
    if not os.access(path, os.W_OK):
        return False
    with path.open("r+") as handle:
        handle.write(wanted)
        handle.truncate()
    return True


def hosts_line(address: str) -> str:
    return f"{address} {DOMAIN}  {HOSTS_MARK}"


def _workspace_for_sandbox(path: Path) -> Workspace:
    """The workspace to register the sandbox in; a minimal one is created when none exists."""
    if path.is_dir() and any((path / name).is_file() for name in ("hosts.yml", "sandbox.yml")):
        return Workspace(path)
    scaffold_empty(path, email=ACME_EMAIL)
    return Workspace(path)


def _check_workspace_path(path: Path) -> None:
    """Fail before any container starts when the workspace path can never be used."""
    if path.exists() and not path.is_dir():
        raise PyhostError(f"{path} is not a directory: point --inventory at a workspace directory")
    if (
        path.is_dir()
        and any(path.iterdir())
        and not any((path / n).is_file() for n in ("hosts.yml", "sandbox.yml"))
    ):
        raise PyhostError(f"{path} is neither a pyhost workspace nor empty: point --inventory at a workspace")


# Commands ----------------------------------------------------------------------------------------------


def _check_platform(platform: str) -> None:
    """A sandbox host that exists keeps its platform: say how to change it rather than ignore the request."""
    docker.require_engine()
    if not docker.container_exists(HOST_CONTAINER):
        return
    label = f'{{{{index .Config.Labels "{PLATFORM_LABEL}"}}}}'
    current = docker.run(["container", "inspect", "--format", label, HOST_CONTAINER], check=False).strip()
    if current != platform:
        raise PyhostError(
            f"the sandbox host runs {current or 'another platform'}, not {platform}: "
            "remove it with `pyhost sandbox down` first"
        )


def up(
    inventory: str | None, console: Console, offline: bool | None = None, platform: str | None = None
) -> dict[str, Any]:
    path = default_dir(inventory)
    _check_workspace_path(path)
    if platform:
        _check_platform(platform)
    prepared = prepare(console, offline, platform)
    _ensure_network()
    host_existed = docker.container_exists(HOST_CONTAINER)
    with console.status("Starting pebble (local ACME server)"):
        pebble_started = _ensure_container(
            PEBBLE_CONTAINER, ["--network-alias", "pebble", prepared.pebble_image]
        )
    if pebble_started and host_existed:
        console.print(
            "[yellow]pebble restarted with a new root CA: a certificate the sandbox already has no longer "
            "verifies; provision again to get one from the new root[/]"
        )
    with tempfile.TemporaryDirectory(prefix="pyhost-sandbox-") as tmp:
        listener = Path(tmp) / "listener.pem"
        docker.run(["cp", f"{PEBBLE_CONTAINER}:{PEBBLE_LISTENER_CA}", str(listener)])
        with console.status("Starting the sandbox host and waiting for systemd"):
            _ensure_container(HOST_CONTAINER, _host_args(prepared))
            _wait_for_systemd(console)
            _install_cas(listener)
        pebble_ip = container_ip(PEBBLE_CONTAINER)
        host_ip = container_ip(HOST_CONTAINER)
        if not pebble_ip or not host_ip:
            raise PyhostError(
                f"the sandbox containers stopped after starting: see `docker logs {HOST_CONTAINER}`"
            )
        with console.status("Fetching pebble's root CA"):
            root = fetch_pebble_root(pebble_ip, listener)

    workspace = _workspace_for_sandbox(path)
    workspace.sandbox_inventory.write_text(inventory_text(host_vars(prepared, host_ip)))
    workspace.sandbox_state_dir.mkdir(exist_ok=True)
    (workspace.path / CA_FILE).write_text(root)
    if not update_hosts_file(host_ip):
        console.print(
            f"[yellow]{DOMAIN} does not resolve here yet: add this line to {HOSTS_FILE} (as root):[/]\n"
            f"{hosts_line(host_ip)}"
        )
    return status(inventory)


def down(inventory: str | None) -> list[str]:
    """Remove the containers, the network, the /etc/hosts line and the sandbox's files; return what went."""
    docker.require_engine()
    removed = []
    for name in (HOST_CONTAINER, PEBBLE_CONTAINER):
        if docker.container_exists(name):
            docker.run(["rm", "-f", "-v", name])
            removed.append(f"container {name}")
    if docker.network_exists(NETWORK):
        docker.run(["network", "rm", NETWORK])
        removed.append(f"network {NETWORK}")
    if HOSTS_FILE.exists() and HOSTS_MARK in HOSTS_FILE.read_text():
        if update_hosts_file(None):
            removed.append(f"{HOSTS_FILE} line for {DOMAIN}")
        else:
            removed.append(f"nothing from {HOSTS_FILE}: remove the line ending in '{HOSTS_MARK}' by hand")
    path = default_dir(inventory)
    for leftover in (path / "sandbox.yml", path / CA_FILE):
        if leftover.is_file():
            leftover.unlink()
            removed.append(str(leftover))
    if (path / SANDBOX_STATE_DIR).is_dir() and not any((path / SANDBOX_STATE_DIR).iterdir()):
        (path / SANDBOX_STATE_DIR).rmdir()
    return removed


def status(inventory: str | None) -> dict[str, Any]:
    docker.require_engine()
    path = default_dir(inventory)
    host_running = docker.container_running(HOST_CONTAINER)
    pebble_running = docker.container_running(PEBBLE_CONTAINER)
    exists = docker.container_exists(HOST_CONTAINER) or docker.container_exists(PEBBLE_CONTAINER)
    address = container_ip(HOST_CONTAINER)
    ca_file = path / CA_FILE
    registered = (path / "sandbox.yml").is_file()
    hosts_entry = (
        HOSTS_FILE.exists() and bool(address) and hosts_line(address or "") in HOSTS_FILE.read_text()
    )
    return {
        "state": "running" if host_running and pebble_running else ("stopped" if exists else "absent"),
        "url": f"https://{DOMAIN}/",
        "domain": DOMAIN,
        "ca_file": str(ca_file.resolve()) if ca_file.is_file() else None,
        "connect": f"{address}:443" if address else None,
        "container": HOST_CONTAINER,
        "pebble_container": PEBBLE_CONTAINER,
        "network": NETWORK,
        "host": HOST_NAME,
        "inventory": str((path / "sandbox.yml").resolve()) if registered else None,
        "hosts_entry": hosts_entry,
    }
