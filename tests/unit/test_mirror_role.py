"""roles/mirror without a server: its settings checks, and the files it writes (code, credentials, units).

A local playbook includes the role's settings part (with the role's own defaults and vars) and writes what the
role would write, with the private paths moved under tmp_path. tests/integration/test_mirror_s3.py runs the
written code the way the unit does, against moto.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.roleplay import assert_refused, run_play

SECRET = "mirror/Secret+Key-0042"
PLAY = """\
- name: Render the mirror role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the settings
      ansible.builtin.include_role:
        name: mirror
        tasks_from: settings.yml
        public: true
    - name: Make the directories
      ansible.builtin.file:
        path: "{{ item.path }}"
        state: directory
        mode: "{{ item.mode }}"
      loop: "{{ __mirror_code_entries | selectattr('state', 'defined') | list }}"
    - name: Write the files
      ansible.builtin.copy:
        dest: "{{ item.path }}"
        content: "{{ item.content }}"
        mode: "{{ item.mode | default('0600') }}"
      loop: >-
        {{ __mirror_code_entries | selectattr('content', 'defined') | list + __mirror_unit_entries
        + [{'path': __mirror_env_file, 'content': lookup('template', 'mirror.env.j2'), 'mode': '0600'}] }}
      no_log: true
"""


def render(tmp_path: Path, **settings: Any) -> subprocess.CompletedProcess[str]:
    """Run the role's settings checks, then write its code, units and credentials under tmp_path."""
    for name in ("etc", "units"):
        (tmp_path / name).mkdir(exist_ok=True)
    extra = {
        "pyhost_mirror_target": "s3://team-packages/mirror",
        "pyhost_mirror_environment": {"AWS_ACCESS_KEY_ID": "AKIAMIRROR", "AWS_SECRET_ACCESS_KEY": SECRET},
        "mirror_python": sys.executable,
        "mirror_packages_dir": str(tmp_path / "packages"),
        "__mirror_code_dir": str(tmp_path / "code"),
        "__mirror_etc_dir": str(tmp_path / "etc"),
        "__mirror_unit_dir": str(tmp_path / "units"),
        **settings,
    }
    return run_play(tmp_path, "mirror", PLAY, extra, links=("templates", "files"))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One rendering with an endpoint, for the tests that only read what it wrote (ansible takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("mirror-role")
    done = render(tmp_path, pyhost_mirror_endpoint_url="http://127.0.0.1:9000")
    assert done.returncode == 0, done.stdout[-2000:]
    return tmp_path, done


def test_the_credentials_go_to_a_root_only_file_and_nowhere_else(
    rendered: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp_path, done = rendered
    env = tmp_path / "etc/mirror.env"
    assert f"AWS_SECRET_ACCESS_KEY='{SECRET}'\n" in env.read_text()
    assert env.stat().st_mode & 0o777 == 0o600
    service = (tmp_path / "units/pyhost-mirror.service").read_text()
    assert f"EnvironmentFile={env}\n" in service
    command = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert command == (
        f"ExecStart={sys.executable} -I {tmp_path}/code/pyhost_mirror.py --packages-dir {tmp_path}/packages "
        "--target s3://team-packages/mirror --endpoint-url http://127.0.0.1:9000 "
        "--state /var/lib/pyhost-mirror/pushed.json"
    )
    for path in [*(tmp_path / "units").iterdir(), *(tmp_path / "code").rglob("*.py")]:
        assert SECRET not in path.read_text(), path
    assert SECRET not in done.stdout + done.stderr


def test_the_code_is_the_clis_own_modules(rendered: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    tmp_path, _ = rendered
    source = Path(__file__).resolve().parents[2] / "src/pyhost"
    names = ["__init__.py", "errors.py"] + [
        f"index/{name}" for name in ("__init__.py", "indexgen.py", "targets.py", "browse.py", "mirror.py")
    ]
    for name in names:
        assert (tmp_path / "code/pyhost" / name).read_bytes() == (source / name).read_bytes(), name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_units_pass_systemd_analyze_verify(
    rendered: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp_path, _ = rendered
    units = sorted(str(path) for path in (tmp_path / "units").iterdir())
    assert [Path(unit).name for unit in units] == [
        "pyhost-mirror.path",
        "pyhost-mirror.service",
        "pyhost-mirror.timer",
    ]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pyhost_mirror_target": "s3://team-packages/a b"}, "mirror_target must be s3://BUCKET/PREFIX"),
        ({"pyhost_mirror_endpoint_url": "http://minio:9000/%n"}, "mirror_endpoint_url must be an http(s)://"),
        (
            {"pyhost_mirror_environment": {"AWS_SECRET_ACCESS_KEY": "a'b"}},
            "the value of AWS_SECRET_ACCESS_KEY may not hold a quote",
        ),
    ],
)
def test_bad_settings_fail_before_anything_is_written(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    assert_refused(render(tmp_path, **settings), message, "a'b", tmp_path / "etc/mirror.env")
