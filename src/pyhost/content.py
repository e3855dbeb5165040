"""Where the Ansible content (playbooks, roles, example inventory) lives, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyhost.errors import PyhostError


def content_root() -> Path:
    """The directory that holds playbooks/ and roles/.

    A wheel carries them under pyhost/_content; an editable install or a checkout has them at the
    repository root, two levels above this package.
    """
    packaged = Path(__file__).resolve().parent / "_content"
    if (packaged / "playbooks").is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "playbooks").is_dir() and (checkout / "roles").is_dir():
        return checkout
    raise PyhostError("pyhost's playbooks and roles are missing from this installation: reinstall pyhost")


def playbook(name: str) -> Path:
    return content_root() / "playbooks" / name


def roles_dir() -> Path:
    return content_root() / "roles"


def modules_dir() -> Path:
    """Where Ansible finds pyhost's own modules (ANSIBLE_LIBRARY): pyhost_files, used by every role."""
    return content_root() / "plugins" / "modules"


def example_inventory() -> Path:
    return content_root() / "inventory"


def role_defaults(role: str) -> dict[str, Any]:
    """ROLE's default values as a host gets them when its inventory sets none of them: the shared facts
    (roles/pyhost/defaults/main.yml, every role's dependency) below the role's own defaults, rendered with
    Ansible's templar. Values that need the inventory (pyhost_domain) are left out."""
    from ansible.errors import AnsibleError  # noqa: PLC0415 - ansible is slow to import; only the demo asks
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
    from ansible.template import Templar  # noqa: PLC0415

    loader = DataLoader()
    variables: dict[str, Any] = {}
    for name in ("pyhost", role):
        path = roles_dir() / name / "defaults" / "main.yml"
        variables |= loader.load_from_file(str(path), trusted_as_template=True) or {}
    templar = Templar(loader=loader, variables=variables)
    rendered: dict[str, Any] = {}
    for name, value in variables.items():
        try:
            rendered[name] = templar.template(value)
        except AnsibleError:
            continue
    return rendered
