"""The common role's platform check, run by Ansible on fake facts: supported platforms pass, others stop the
run with one line naming the supported ones (the line `pyhost provision` prints)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import yaml
from rich.console import Console

from pyhost import content
from pyhost.ansible import runner
from pyhost.workspace.inventory import INDEX_GROUP, Workspace

SUPPORTED_LINE = "pyhost runs on Debian 12, Debian 13, Ubuntu 22.04 and Ubuntu 24.04."


def _facts(distribution: str, version: str) -> dict[str, str]:
    return {
        "distribution": distribution,
        "distribution_version": version,
        "distribution_major_version": version.split(".", maxsplit=1)[0],
    }


HOSTS = {
    "bookworm": _facts("Debian", "12.11"),
    "trixie": _facts("Debian", "13.2"),
    "jammy": _facts("Ubuntu", "22.04"),
    "noble": _facts("Ubuntu", "24.04"),
    "bullseye": _facts("Debian", "11.9"),
    "focal": _facts("Ubuntu", "20.04"),
    "oracular": _facts("Ubuntu", "24.10"),
    "fedora": _facts("Fedora", "41"),
    "no-facts": {},
}


def _failures(tmp_path: Path) -> dict[str, str]:
    """Each host's failure line, from the role's own task file run on that host's fake facts."""
    hosts = {
        name: {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "fake_facts": facts,
        }
        for name, facts in HOSTS.items()
    }
    (tmp_path / "hosts.yml").write_text(
        yaml.safe_dump({"all": {"children": {INDEX_GROUP: {"hosts": hosts}}}})
    )
    playbook = tmp_path / "check.yml"
    playbook.write_text(
        textwrap.dedent(
            """\
            - name: Check the platform on fake facts
              hosts: index_servers
              gather_facts: false
              tasks:
                - name: Run the common role's platform check
                  ansible.builtin.include_role:
                    name: common
                    tasks_from: platform
                  vars:
                    ansible_facts: "{{ fake_facts }}"
            """
        )
    )
    result = runner.run_playbook(Workspace(tmp_path), playbook, console=Console(quiet=True))
    assert set(result.recap) == set(HOSTS), result.recap
    return {failure.host: failure.message for failure in result.failures}


def test_supported_platforms_pass_and_others_get_one_line(tmp_path: Path) -> None:
    assert content.roles_dir().joinpath("common/tasks/platform.yml").is_file()
    failures = _failures(tmp_path)
    assert failures == {
        "bullseye": f"Debian 11.9 is not supported: {SUPPORTED_LINE}",
        "focal": f"Ubuntu 20.04 is not supported: {SUPPORTED_LINE}",
        "oracular": f"Ubuntu 24.10 is not supported: {SUPPORTED_LINE}",
        "fedora": f"Fedora 41 is not supported: {SUPPORTED_LINE}",
        "no-facts": f"an unknown system is not supported: {SUPPORTED_LINE}",
    }
