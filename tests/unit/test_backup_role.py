"""roles/backup without a server: its settings checks, the files it writes, its scripts run with restic here.

A local playbook includes the role's settings part (with the role's own defaults and vars) and writes what the
role would write, with the private paths moved under tmp_path through extra variables. The scripts then run
against a repository in tmp_path with this machine's restic (Debian's package), when it is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyhost import content
from tests.unit.roleplay import assert_refused, run_play

ROLE = content.roles_dir() / "backup"
PASSWORD = "Sentinel-backup-pass-0042"
# The role's settings part with its defaults and vars, then what the role would write (its secret files and
# scripts), at the paths the extra variables give.
PLAY = """\
- name: Render the backup role
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the settings
      ansible.builtin.include_role:
        name: backup
        tasks_from: settings.yml
        public: true
    - name: Write the files
      ansible.builtin.copy:
        dest: "{{ item.path }}"
        content: "{{ item.content }}"
        mode: "{{ item.mode }}"
      loop: "{{ __backup_secret_entries | selectattr('content', 'defined') | list + __backup_scripts }}"
      vars:
        __backup_scripts:
          - path: "{{ __backup_restic }}"
            content: "{{ lookup('template', 'pyhost-restic.j2') }}"
            mode: "0700"
          - path: "{{ __backup_script }}"
            content: "{{ lookup('template', 'pyhost-backup.j2') }}"
            mode: "0700"
      no_log: true
"""
needs_restic = pytest.mark.skipif(shutil.which("restic") is None, reason="restic is not installed here")


def render(tmp_path: Path, **settings: Any) -> subprocess.CompletedProcess[str]:
    """Run the role's settings checks, then write its secret files and scripts under tmp_path."""
    for name in ("etc", "state", "cache", "sbin"):
        (tmp_path / name).mkdir(exist_ok=True)
    extra = {
        "pyhost_domain": "pypi.example.com",
        "pyhost_backup_password": PASSWORD,
        "__backup_etc_dir": str(tmp_path / "etc"),
        "__backup_state_dir": str(tmp_path / "state"),
        "__backup_cache_dir": str(tmp_path / "cache"),
        "__backup_restic": str(tmp_path / "sbin/pyhost-restic"),
        "__backup_script": str(tmp_path / "sbin/pyhost-backup"),
        **settings,
    }
    return run_play(tmp_path, "backup", PLAY, extra)


def render_local(tmp_path: Path, packages: Path, **settings: Any) -> subprocess.CompletedProcess[str]:
    """`render` with a repository, packages, configuration and certificate directories under tmp_path."""
    return render(
        tmp_path,
        pyhost_backup_repository=str(tmp_path / "repo"),
        backup_packages_dir=str(packages),
        backup_config_dir=str(tmp_path / "config"),
        backup_letsencrypt_dir=str(tmp_path / "letsencrypt"),
        **settings,
    )


def test_s3_settings_go_to_a_root_only_file_and_no_ssh_files(tmp_path: Path) -> None:
    secret = "aws/Secret+Key-0042"
    done = render(
        tmp_path,
        pyhost_backup_repository="s3:http://127.0.0.1:9000/bucket/pypi",
        pyhost_backup_environment={"AWS_ACCESS_KEY_ID": "AKIAPYHOST", "AWS_SECRET_ACCESS_KEY": secret},
    )
    assert done.returncode == 0, done.stdout[-2000:]
    env = (tmp_path / "etc/restic.env").read_text()
    assert "RESTIC_REPOSITORY='s3:http://127.0.0.1:9000/bucket/pypi'\n" in env
    assert f"AWS_SECRET_ACCESS_KEY='{secret}'\n" in env
    assert PASSWORD not in env  # the password has its own file
    assert (tmp_path / "etc/password").read_text() == PASSWORD + "\n"
    assert (tmp_path / "etc/restic.env").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "etc/ssh_key").exists()
    assert "sftp.command" not in (tmp_path / "sbin/pyhost-restic").read_text()
    assert secret not in done.stdout and PASSWORD not in done.stdout


def test_sftp_repository_gets_its_ssh_command(tmp_path: Path) -> None:
    done = render(
        tmp_path,
        pyhost_backup_repository="sftp:restic@backup.example.net:/srv/restic/pypi",
        pyhost_backup_sftp_private_key="-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH KEY-----",
        pyhost_backup_sftp_known_hosts="backup.example.net ssh-ed25519 AAAAC3Nza",
    )
    assert done.returncode == 0, done.stdout[-2000:]
    wrapper = (tmp_path / "sbin/pyhost-restic").read_text()
    assert f'"sftp.command=ssh -F {tmp_path}/etc/ssh_config restic@backup.example.net -s sftp"' in wrapper
    config = (tmp_path / "etc/ssh_config").read_text()
    assert f"UserKnownHostsFile {tmp_path}/etc/known_hosts" in config
    assert "StrictHostKeyChecking yes" in config
    assert (tmp_path / "etc/ssh_key").read_text().endswith("\nabc\n-----END OPENSSH KEY-----\n")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pyhost_backup_repository": "backups/here"}, "backup_repository must be an absolute path"),
        ({"pyhost_backup_repository": "/srv/b", "pyhost_backup_password": "short"}, "12 characters or more"),
        ({"pyhost_backup_repository": "sftp:u@h:/r"}, "an sftp: repository needs backup_sftp_private_key"),
        (
            {
                "pyhost_backup_repository": "/srv/b",
                "pyhost_backup_environment": {"AWS_SECRET_ACCESS_KEY": "a'b"},
            },
            "the value of AWS_SECRET_ACCESS_KEY may not hold a single quote",
        ),
        (
            {"pyhost_backup_repository": "/srv/b", "pyhost_backup_environment": {"aws key": "x"}},
            "aws key is not an environment variable name",
        ),
    ],
)
def test_bad_settings_fail_before_anything_is_written(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    assert_refused(render(tmp_path, **settings), message, "a'b", tmp_path / "etc/restic.env")


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, cwd=tmp_path)


@needs_restic
def test_the_backup_script_records_each_run(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    (packages / ".pyhost-records").mkdir(parents=True)
    done = render_local(tmp_path, packages, backup_coalesce_seconds=1)
    assert done.returncode == 0, done.stdout[-2000:]
    restic, script = str(tmp_path / "sbin/pyhost-restic"), str(tmp_path / "sbin/pyhost-backup")
    status = tmp_path / "state/status"
    assert run(tmp_path, restic, "init").returncode == 0

    (packages / ".staging-lock").write_text("")  # dot-files are no releases
    empty = run(tmp_path, script, "upload")
    assert empty.returncode == 0 and "nothing to back up" in empty.stdout
    assert "last_result=empty\n" in status.read_text() and "last_success=\n" in status.read_text()

    (packages / "demo-1.0.tar.gz").write_bytes(b"release")
    (packages / ".pyhost-records/demo-1.0.tar.gz.json").write_text('{"yanked": "x"}')
    assert run(tmp_path, script, "upload").returncode == 0
    first = dict(line.split("=", 1) for line in status.read_text().splitlines())
    assert first["last_result"] == "ok" and first["last_success"].isdigit()
    listed = run(tmp_path, restic, "ls", "--json", "latest").stdout
    assert '"name":"demo-1.0.tar.gz.json"' in listed and '"name":"demo-1.0.tar.gz"' in listed
    snapshots = json.loads(run(tmp_path, restic, "snapshots", "--json").stdout)
    assert [(s["hostname"], s["tags"]) for s in snapshots] == [("pypi.example.com", ["pyhost"])]

    (tmp_path / "etc/password").write_text("not the password\n")
    assert run(tmp_path, script, "snapshot").returncode != 0
    failed = dict(line.split("=", 1) for line in status.read_text().splitlines())
    assert failed["last_result"] == "failed" and failed["last_success"] == first["last_success"]

    (tmp_path / "etc/password").write_text(PASSWORD + "\n")
    assert run(tmp_path, script, "daily").returncode == 0
    assert run(tmp_path, script, "check").returncode == 0
    last = dict(line.split("=", 1) for line in status.read_text().splitlines())
    assert last["last_result"] == "ok" and last["check_result"] == "ok"
    assert run(tmp_path, script, "bogus").returncode == 2


@needs_restic
def test_the_daily_retention_keeps_every_recent_snapshot(tmp_path: Path) -> None:
    """After a bad `rm`, the day's earlier snapshots (each upload's) must survive the daily run, which would
    otherwise keep only the day's last one (--keep-daily): --keep-within keeps a week of them."""
    packages = tmp_path / "packages"
    packages.mkdir()
    done = render_local(tmp_path, packages)
    assert done.returncode == 0, done.stdout[-2000:]
    restic, script = str(tmp_path / "sbin/pyhost-restic"), str(tmp_path / "sbin/pyhost-backup")
    assert run(tmp_path, restic, "init").returncode == 0
    for version in ("1.0", "2.0"):
        (packages / f"demo-{version}.tar.gz").write_bytes(version.encode())
        assert run(tmp_path, script, "snapshot").returncode == 0
    (packages / "demo-1.0.tar.gz").unlink()  # the mistake
    assert run(tmp_path, script, "daily").returncode == 0
    snapshots = json.loads(run(tmp_path, restic, "snapshots", "--json").stdout)
    assert len(snapshots) == 3


def test_a_retention_that_is_no_duration_is_refused(tmp_path: Path) -> None:
    done = render(tmp_path, pyhost_backup_repository="/srv/b", pyhost_backup_keep_within="7d; rm -rf /")
    assert done.returncode != 0
    assert "backup_keep_within must be a restic duration" in done.stdout, done.stdout[-2000:]
