"""The facts the roles share (roles/pyhost/defaults/main.yml), rendered with Ansible's own Templar.

Trellis-style render tests: the roles' defaults are loaded as Ansible loads them (the pyhost role first, as
every role's dependency; then the role's own defaults; then the inventory, which wins over both), and the
templates that go to the server are rendered from them. Changing one shared fact in the inventory must move
every part that uses it, and the parts must still agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from pyhost import content

ROLES = Path(__file__).resolve().parents[2] / "roles"
PLAYBOOKS = ROLES.parent / "playbooks"
LOADER = DataLoader()


def _load(path: Path) -> Any:
    return LOADER.load_from_file(str(path), trusted_as_template=True) if path.is_file() else None


def _dependencies(role: str) -> list[str]:
    meta = yaml.safe_load((ROLES / role / "meta" / "main.yml").read_text()) or {}
    return [dep if isinstance(dep, str) else dep["role"] for dep in meta.get("dependencies") or []]


def _defaults(role: str) -> dict[str, Any]:
    """A role's defaults with its dependencies' below them, as Role.get_default_vars combines them."""
    merged: dict[str, Any] = {}
    for dep in _dependencies(role):
        merged |= _defaults(dep)
    return merged | (_load(ROLES / role / "defaults" / "main.yml") or {})


def _task_vars(role: str, tasks_file: str) -> dict[str, Any]:
    """Every task-level `vars:` of a tasks file (the template lookups read them), and a stand-in for each
    registered result: no certificate yet, every cipher supported."""
    merged: dict[str, Any] = {}
    for task in _load(ROLES / role / "tasks" / tasks_file) or []:
        merged |= task.get("vars") or {}
        if "register" in task:
            merged[task["register"]] = {"stat": {"exists": False}, "rc": 0, "stdout": "", "changed": False}
    return merged


def render(role: str, template: str, inventory: dict[str, Any], tasks_file: str = "main.yml") -> str:
    """TEMPLATE of ROLE as the role's task writes it, on a host whose inventory sets INVENTORY."""
    variables: dict[str, Any] = {}
    for other in ("pyhost", "pypiserver", "nginx", "certbot"):
        variables |= _defaults(other)
    variables |= {"pyhost_domain": "pypi.example.test", "pyhost_acme_email": "admin@example.test"}
    variables |= inventory
    for name in ("main.yml", "default.yml"):
        variables |= _load(ROLES / role / "vars" / name) or {}
    variables |= _task_vars(role, tasks_file)
    variables |= {"ansible_managed": "Ansible managed", "ansible_facts": {"all_ipv6_addresses": []}}
    if role == "nginx":
        # What `openssl ciphers` lists on the host: everything the role asks for.
        variables["__nginx_openssl_ciphers"]["stdout"] = ":".join(variables["nginx_ssl_ciphers"])
    text = trust_as_template((ROLES / role / "templates" / template).read_text())
    return str(Templar(loader=LOADER, variables=variables).template(text))


def value(name: str, inventory: dict[str, Any]) -> Any:
    """A role option's value on a host whose inventory sets INVENTORY."""
    variables: dict[str, Any] = {}
    for role in ("pyhost", "pypiserver", "nginx", "certbot", "common", "pyenv", "poetry"):
        variables |= _defaults(role)
    variables |= inventory
    return Templar(loader=LOADER, variables=variables).template(variables[name])


def nginx_site(**inventory: Any) -> str:
    return render("nginx", "pyhost.conf.j2", inventory, tasks_file="vhost.yml")


def pypiserver_unit(**inventory: Any) -> str:
    return render("pypiserver", "pypiserver.service.j2", inventory)


def proxied_to(site: str) -> str:
    """The one unix socket every proxying location of the site passes to, but the upstream index's (its own
    filter, tests/unit/test_upstream_site.py)."""
    upstream_location = r"\n    location (@pyhost_upstream_\S+|/upstream-files/) \{\n.*?\n    \}\n"
    site = re.sub(upstream_location, "\n", site, flags=re.S)
    found = set(re.findall(r"proxy_pass http://(\S+);", site))
    assert found, "the site proxies nowhere"
    assert len(found) == 1, f"the site proxies to {sorted(found)}"
    match = re.fullmatch(r"unix:(/\S+):", found.pop())
    assert match, "the site proxies to something other than a unix socket"
    return match[1]


def listens_on(unit: str) -> str:
    match = re.search(r"--unix-socket (\S+)", unit)
    assert match, "the unit names no socket"
    assert "--port" not in unit, "the unit names a TCP port too"
    return match[1]


OTHER_SOCKET = {"pyhost_app_socket": "/run/index-app/sock/index.sock"}


@pytest.mark.parametrize("inventory", [{}, OTHER_SOCKET], ids=["default", "other-socket"])
def test_nginx_proxies_to_where_pypiserver_listens(inventory: dict[str, Any]) -> None:
    site, unit = nginx_site(**inventory), pypiserver_unit(**inventory)
    socket = inventory.get("pyhost_app_socket", "/run/pypiserver/socket/pypiserver.sock")
    assert proxied_to(site) == listens_on(unit) == socket
    # The unit makes the socket's directories: its runtime directory is the socket's /run/DIR.
    assert re.search(rf"^RuntimeDirectory={socket.split('/')[2]}$", unit, re.M)


def test_the_data_dir_moves_writer_and_reader_together() -> None:
    site, unit = nginx_site(pyhost_data_dir="/data/index"), pypiserver_unit(pyhost_data_dir="/data/index")
    for name in ("packages", "simple", "metadata"):
        assert f"/data/index/{name}" in site
        assert f"/data/index/{name}" in unit
    assert "/srv/pypi" not in site + unit


@pytest.mark.parametrize("read_passwords", [False, True])
def test_nginx_checks_requests_against_the_files_pypiserver_writes(read_passwords: bool) -> None:
    inventory = {"pyhost_config_dir": "/etc/index-auth", "nginx_read_passwords": read_passwords}
    site = nginx_site(**inventory)
    files = set(re.findall(r"auth_basic_user_file (\S+);", site))
    # Reads take read tokens, and passwords (the readers' file) only with nginx_read_passwords; anything but a
    # read takes a publisher's password.
    assert files == {
        value("pypiserver_read_tokens_file", inventory),
        value("pypiserver_nginx_publishers_file", inventory),
    } | ({value("pypiserver_readers_file", inventory)} if read_passwords else set())
    assert all(path.startswith("/etc/index-auth/") for path in files)


def test_nginx_serves_the_webroot_certbot_writes() -> None:
    inventory = {"pyhost_acme_webroot": "/srv/acme"}
    roots = re.findall(
        r"location \^~ /\.well-known/acme-challenge/ \{\s*root (\S+);", nginx_site(**inventory)
    )
    assert roots == [value("certbot_webroot", inventory)] == ["/srv/acme"]


def test_one_python_version_for_pyenv_poetry_and_pypiserver() -> None:
    inventory = {"pyhost_python_version": "3.12.9", "pyhost_pyenv_root": "/usr/local/pyenv"}
    python = "/usr/local/pyenv/versions/3.12.9/bin/python3"
    assert value("pyenv_python_versions", inventory) == ["3.12.9"]
    assert value("pyenv_python_global", inventory) == "3.12.9"
    assert value("pyenv_root", inventory) == "/usr/local/pyenv"
    assert value("poetry_python", inventory) == python
    assert value("pypiserver_python", inventory) == python
    assert value("poetry_link", inventory) == value("pypiserver_poetry", inventory)


def test_a_role_option_set_in_the_inventory_still_wins() -> None:
    elsewhere = "/run/elsewhere/s/app.sock"
    assert proxied_to(nginx_site(nginx_upstream_socket=elsewhere)) == elsewhere
    assert value("certbot_webroot", {"certbot_webroot": "/elsewhere"}) == "/elsewhere"


def test_every_role_carries_the_shared_facts() -> None:
    """A role used alone (a playbook of its own, molecule's pyenv scenario) still has every pyhost_* value."""
    roles = sorted(path.name for path in ROLES.iterdir() if (path / "tasks").is_dir())
    assert roles
    for role in roles:
        assert "pyhost" in _dependencies(role), role
    for playbook in ("status.yml", "static-list.yml"):
        plays = yaml.safe_load((PLAYBOOKS / playbook).read_text())
        assert all({"role": "pyhost"} in play.get("roles", []) for play in plays), playbook


# Values that have one home, roles/pyhost/defaults/main.yml: written anywhere else, they can drift apart.
SHARED_VALUES = re.compile(
    r"/srv/pypi\b|/etc/pyhost/|/var/www/acme|/opt/pyenv\b|/usr/local/bin/poetry|\b3\.13\.5\b"
    r"|/run/pypiserver/|127\.0\.0\.1:\d|--port \d|cache_valid_time: \d"
)


def test_shared_values_are_written_once() -> None:
    home = ROLES / "pyhost" / "defaults" / "main.yml"
    sources = [
        path
        for path in [*ROLES.rglob("*.yml"), *ROLES.rglob("*.j2"), *PLAYBOOKS.glob("*.yml")]
        if path != home and "files" not in path.relative_to(ROLES.parent).parts
    ]
    # Comments and argument spec descriptions may name a value; defaults, vars, tasks and templates may not.
    found = [
        f"{path.relative_to(ROLES.parent)}: {line.strip()}"
        for path in sources
        if path.parent.name != "meta"
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#") and SHARED_VALUES.search(line)
    ]
    assert found == []


def test_argument_specs_state_the_defaults() -> None:
    """Each default in defaults/main.yml is the default its argument spec documents, word for word."""
    for role in sorted(path.name for path in ROLES.iterdir()):
        defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}
        specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        options = {
            name: spec for entry in specs.values() for name, spec in (entry.get("options") or {}).items()
        }
        for name, default in defaults.items():
            assert name in options, f"{role}: {name} has no argument spec"
            if "default" in options[name]:
                assert options[name]["default"] == default, f"{role}: {name}"


def test_the_python_side_reads_the_same_defaults() -> None:
    """What demo.py uses to reach the server's data: the roles' defaults, rendered, not copies of them."""
    nginx, pypiserver = content.role_defaults("nginx"), content.role_defaults("pypiserver")
    assert (
        nginx["nginx_packages_dir"]
        == pypiserver["pypiserver_packages_dir"]
        == value("pyhost_packages_dir", {})
    )
    assert nginx["nginx_upstream_socket"] == pypiserver["pypiserver_socket"] == value("pyhost_app_socket", {})
    assert "nginx_server_name" not in nginx  # needs the inventory's pyhost_domain
