"""Where the Ansible content (playbooks, roles, example inventory) lives, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

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


def example_inventory() -> Path:
    return content_root() / "inventory"
