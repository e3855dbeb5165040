"""The wheel carries the playbooks and roles: pyhost installed from it, outside the checkout, finds them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_wheel_installs_into_a_fresh_venv_and_finds_its_playbooks(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("pyhost-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "--quiet", "-c", str(REPO / "constraints.txt"), str(wheel)],
        check=True,
    )

    empty = tmp_path / "elsewhere"
    empty.mkdir()
    help_text = subprocess.run(
        [str(venv / "bin/pyhost"), "--help"], cwd=empty, check=True, capture_output=True, text=True
    ).stdout
    assert "provision" in help_text
    assert "add-user" in help_text

    located = subprocess.run(
        [
            str(venv / "bin/python"),
            "-c",
            "from pyhost import content; print(content.playbook('site.yml')); print(content.roles_dir())",
        ],
        cwd=empty,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    site, roles = Path(located[0]), Path(located[1])
    assert site.is_file() and str(site).startswith(str(venv)), site
    assert (roles / "common/tasks/main.yml").is_file()
    assert (roles / "pyhost/defaults/main.yml").is_file()  # the shared facts every role depends on
    module = roles.parent / "plugins/modules/pyhost_files.py"  # a copy of the link's target, found by Ansible
    assert not module.is_symlink() and "def main()" in module.read_text()
    assert "hosts: index_servers" in site.read_text()

    # No sandbox extra here: `pyhost sandbox up` says in one line what to install, and makes nothing.
    sandbox = subprocess.run(
        [str(venv / "bin/pyhost"), "sandbox", "up", "-i", str(empty / "ws")],
        cwd=empty,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sandbox.returncode == 1
    assert sandbox.stderr.splitlines() == [
        "pyhost: error: the community.docker Ansible collection is missing: install pyhost[sandbox] "
        "(pip install 'pyhost[sandbox]'), which brings the ansible package with it"
    ]
    assert not (empty / "ws").exists()
