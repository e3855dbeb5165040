"""The workspace: one inventory directory holding the hosts, their settings and the users.

The CLI reads the YAML files itself (hosts.yml, sandbox.yml, host_vars/, group_vars/) to answer quick
questions such as "which hosts exist" or "what is this host's domain" without starting Ansible; Ansible
reads the same files when a playbook runs.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pyhost import content
from pyhost.errors import PyhostError
from pyhost.workspace.users import UsersFile

ENV_VAR = "PYHOST_INVENTORY"
DEFAULT_DIR = "inventory"
INDEX_GROUP = "index_servers"
INVENTORY_FILES = ("hosts.yml", "sandbox.yml")
USERS_FILE = Path("group_vars") / INDEX_GROUP / "users.yml"
SANDBOX_STATE_DIR = ".sandbox"

# Ansible host names: what its YAML inventory accepts and what stays readable in a --limit.
HOST_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DNS_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
DNS_NAME_MAX = 253
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


class _TolerantLoader(yaml.SafeLoader):
    """A safe loader that reads Ansible's tags (`!vault`, `!unsafe`) as plain values instead of failing."""


def _ansible_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_TolerantLoader.add_multi_constructor("!", _ansible_tag)


def load_yaml(path: Path) -> Any:
    """Parse one YAML file of the workspace; a syntax error names the file."""
    try:
        return yaml.load(path.read_text(), Loader=_TolerantLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PyhostError(f"{path}{where} is not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    except OSError as exc:
        raise PyhostError(f"cannot read {path}: {exc.strerror}") from exc


def default_dir(option: str | os.PathLike[str] | None = None) -> Path:
    """The workspace directory: --inventory, else PYHOST_INVENTORY, else ./inventory."""
    chosen = option or os.environ.get(ENV_VAR) or DEFAULT_DIR
    return Path(chosen).expanduser()


@dataclass
class Host:
    name: str
    groups: set[str] = field(default_factory=set)
    inline_vars: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None


class Workspace:
    """An existing, readable workspace directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, option: str | os.PathLike[str] | None = None) -> Workspace:
        path = default_dir(option)
        if not path.is_dir():
            raise PyhostError(
                f"no pyhost workspace at {path}: create one with "
                f"`pyhost init {path} --host NAME --address ADDR "
                f"--domain DOMAIN --email EMAIL`, or point --inventory (or {ENV_VAR}) at an existing one"
            )
        if not any((path / name).is_file() for name in INVENTORY_FILES):
            raise PyhostError(
                f"{path} is not a pyhost workspace (it has neither {' nor '.join(INVENTORY_FILES)}): "
                f"create one with `pyhost init`, or point --inventory at the right directory"
            )
        return cls(path)

    # Inventory sources and hosts -------------------------------------------------------------------

    def inventory_sources(self) -> list[Path]:
        """The inventory files Ansible is given, in a fixed order (hosts.yml, then sandbox.yml)."""
        return [self.path / name for name in INVENTORY_FILES if (self.path / name).is_file()]

    def hosts(self) -> dict[str, Host]:
        found: dict[str, Host] = {}
        for source in self.inventory_sources():
            data = load_yaml(source)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise PyhostError(f"{source} is not an Ansible YAML inventory (expected a mapping of groups)")
            for group, body in data.items():
                self._walk_group(source, str(group), body, [], found)
        return found

    def _walk_group(
        self, source: Path, group: str, body: Any, parents: list[str], found: dict[str, Host]
    ) -> None:
        if body is None:
            return
        if not isinstance(body, dict):
            raise PyhostError(f"{source}: group {group!r} must be a mapping with hosts:, children: or vars:")
        lineage = [*parents, group]
        for name, host_vars in (body.get("hosts") or {}).items():
            host = found.setdefault(str(name), Host(name=str(name), source=source))
            host.groups.update(lineage)
            if isinstance(host_vars, dict):
                host.inline_vars.update(host_vars)
        for child, child_body in (body.get("children") or {}).items():
            self._walk_group(source, str(child), child_body, lineage, found)

    def host_names(self) -> list[str]:
        return sorted(self.hosts())

    def index_servers(self) -> list[str]:
        return sorted(name for name, host in self.hosts().items() if INDEX_GROUP in host.groups)

    def require_host(self, name: str) -> Host:
        hosts = self.hosts()
        if name in hosts:
            return hosts[name]
        valid = ", ".join(sorted(hosts)) or "none yet"
        raise PyhostError(f"unknown host {name!r} in {self.path}: valid hosts are {valid}")

    # Variables --------------------------------------------------------------------------------------

    def _vars_files(self, kind: str, name: str) -> Iterator[Path]:
        """host_vars/NAME.yml or group_vars/NAME.yml, and every YAML file in a directory of that name."""
        base = self.path / kind
        for suffix in (".yml", ".yaml", ""):
            candidate = base / f"{name}{suffix}"
            if candidate.is_file():
                yield candidate
        folder = base / name
        if folder.is_dir():
            yield from sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())

    def _vars_from(self, kind: str, name: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for path in self._vars_files(kind, name):
            data = load_yaml(path)
            if isinstance(data, dict):
                merged.update(data)
        return merged

    def host_vars(self, name: str) -> dict[str, Any]:
        """The plain values that apply to a host: group_vars (all, then its groups), inline vars, host_vars.

        Close to Ansible's precedence for plain values; Jinja expressions stay unrendered.
        """
        host = self.require_host(name)
        merged = self._vars_from("group_vars", "all")
        for group in sorted(host.groups - {"all"}):
            merged.update(self._vars_from("group_vars", group))
        merged.update(host.inline_vars)
        merged.update(self._vars_from("host_vars", name))
        return merged

    def host_address(self, name: str) -> str:
        return str(self.host_vars(name).get("ansible_host") or name)

    def domain(self, name: str) -> str:
        domain = self.host_vars(name).get("pyhost_domain")
        if not domain or not isinstance(domain, str):
            raise PyhostError(
                f"host {name!r} has no pyhost_domain: set it in {self.path / 'host_vars' / name}.yml"
            )
        return domain

    def ca_file(self, name: str) -> str | None:
        """pyhost_ca_file: a CA to trust for the host's HTTPS (relative to the workspace), if it exists."""
        value = self.host_vars(name).get("pyhost_ca_file")
        if not value:
            return None
        path = self.path / str(value)
        return str(path.resolve()) if path.is_file() else None

    def https_address(self, name: str) -> str | None:
        """pyhost_https_address: where this machine reaches the host's HTTPS, rather than the domain's."""
        value = self.host_vars(name).get("pyhost_https_address")
        return str(value) if value else None

    # Files the CLI owns -----------------------------------------------------------------------------

    @property
    def users_file(self) -> Path:
        return self.path / USERS_FILE

    @property
    def sandbox_inventory(self) -> Path:
        return self.path / "sandbox.yml"

    @property
    def sandbox_state_dir(self) -> Path:
        return self.path / SANDBOX_STATE_DIR


# Scaffolding -----------------------------------------------------------------------------------------


def validate_host_name(name: str) -> None:
    if not HOST_NAME_RE.match(name):
        raise PyhostError(
            f"invalid host name {name!r}: use letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def validate_address(address: str) -> None:
    try:
        ipaddress.ip_address(address)
        return
    except ValueError:
        pass
    if not _is_dns_name(address):
        raise PyhostError(
            f"invalid address {address!r}: give an IP address or a DNS name that reaches the server"
        )


def validate_domain(domain: str) -> None:
    if "." not in domain or not _is_dns_name(domain):
        raise PyhostError(
            f"invalid domain {domain!r}: give the public DNS name the index answers on, "
            "such as pypi.example.com"
        )
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return
    raise PyhostError(f"invalid domain {domain!r}: a certificate needs a DNS name, not an IP address")


def validate_email(email: str) -> None:
    if not EMAIL_RE.match(email) or not _is_dns_name(email.rsplit("@", 1)[1]):
        raise PyhostError(
            f"invalid email {email!r}: the ACME account needs an address such as admin@example.com"
        )


def _is_dns_name(name: str) -> bool:
    name = name.rstrip(".")
    return 0 < len(name) <= DNS_NAME_MAX and all(DNS_LABEL_RE.match(label) for label in name.split("."))


def set_top_level_key(text: str, key: str, value: str) -> str:
    """Set `key: "value"` in a YAML document's text, keeping its comments; append the key when missing."""
    line = f"{key}: {json.dumps(value)}"
    pattern = re.compile(rf"^{re.escape(key)}:.*$", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(lambda _: line, text, count=1)
    if text and not text.endswith("\n"):
        text += "\n"
    return f"{text}{line}\n"


def hosts_yaml(hosts: dict[str, dict[str, Any]]) -> str:
    """An inventory file with HOSTS in the index_servers group."""
    document = {"all": {"children": {INDEX_GROUP: {"hosts": hosts}}}}
    header = "# The servers pyhost manages. Settings per host live in host_vars/<host>.yml.\n"
    return header + yaml.safe_dump(document, default_flow_style=False, sort_keys=False)


def scaffold(
    target: Path,
    *,
    host: str,
    address: str,
    domain: str,
    email: str,
    extra_host_vars: dict[str, Any] | None = None,
) -> Path:
    """Create a workspace at TARGET from the example inventory; refuse to touch an existing one.

    Everything is written into a temporary sibling directory first and renamed into place at the end, so
    a failure leaves nothing behind.
    """
    validate_host_name(host)
    validate_address(address)
    validate_domain(domain)
    validate_email(email)
    # The example host's connection settings (e.g. ansible_user) carry over; its address does not.
    defaults = {k: v for k, v in _example_host_vars().items() if k != "ansible_host"}
    return _scaffold(
        target,
        hosts={host: {"ansible_host": address, **defaults, **(extra_host_vars or {})}},
        host_settings={host: {"pyhost_domain": domain}},
        email=email,
    )


def scaffold_empty(target: Path, *, email: str) -> Path:
    """A workspace with no servers yet (the sandbox adds its own host in sandbox.yml)."""
    validate_email(email)
    return _scaffold(target, hosts={}, host_settings={}, email=email)


def _scaffold(
    target: Path, *, hosts: dict[str, dict[str, Any]], host_settings: dict[str, dict[str, str]], email: str
) -> Path:
    target = target.expanduser()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise PyhostError(
            f"{target} already exists and is not empty: pyhost init never overwrites a workspace"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    example = content.example_inventory()
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _copy_example(example, staging)
        (staging / "hosts.yml").write_text(hosts_yaml(hosts))
        _set_email(staging, email)
        for name, settings in host_settings.items():
            _write_host_vars(example, staging, name, settings)
        UsersFile(staging / USERS_FILE).save([])
        staging.chmod(_umask_dir_mode())  # mkdtemp made it 0700; a workspace is an ordinary directory
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _umask_dir_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _example_hosts(example: Path) -> list[str]:
    if not (example / "hosts.yml").is_file():
        return []
    return Workspace(example).host_names()


def _example_host_vars() -> dict[str, Any]:
    example = content.example_inventory()
    hosts = Workspace(example).hosts() if (example / "hosts.yml").is_file() else {}
    return next(iter(hosts.values())).inline_vars if hosts else {}


def _copy_example(example: Path, staging: Path) -> None:
    """Copy the example's shared settings; its hosts, their host_vars and its users are the example's own."""
    skip = {example / "hosts.yml", example / "sandbox.yml", example / USERS_FILE}
    skip.update(
        example / "host_vars" / f"{name}{ext}"
        for name in _example_hosts(example)
        for ext in (".yml", ".yaml")
    )
    for source in sorted(example.rglob("*")):
        if source in skip or SANDBOX_STATE_DIR in source.relative_to(example).parts:
            continue
        destination = staging / source.relative_to(example)
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    (staging / "group_vars" / INDEX_GROUP).mkdir(parents=True, exist_ok=True)
    (staging / "host_vars").mkdir(exist_ok=True)


def _set_email(staging: Path, email: str) -> None:
    main = staging / "group_vars" / INDEX_GROUP / "main.yml"
    text = main.read_text() if main.is_file() else ""
    main.write_text(set_top_level_key(text, "pyhost_acme_email", email))


def _write_host_vars(example: Path, staging: Path, host: str, settings: dict[str, str]) -> None:
    """host_vars/HOST.yml, starting from the example host's file so its comments and overrides carry over."""
    template = next(
        (
            example / "host_vars" / f"{name}.yml"
            for name in _example_hosts(example)
            if (example / "host_vars" / f"{name}.yml").is_file()
        ),
        None,
    )
    text = template.read_text() if template else f"# Settings for {host}; they override group_vars.\n"
    for key, value in settings.items():
        text = set_top_level_key(text, key, value)
    (staging / "host_vars" / f"{host}.yml").write_text(text)
