"""Backups: `pyhost backup`, `pyhost backups`, `pyhost restore` and the backup part of `pyhost status`.

The commands run small local playbooks that hand their results over with set_stats, as the real ones do; the
real roles/backup is exercised by molecule's default scenario (verify/backup.yml).
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from pyhost import content
from pyhost.server import backup, status

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
SNAPSHOTS = [
    {
        "time": "2026-12-01T11:59:30.123456789Z",
        "paths": ["/etc/pyhost", "/srv/pypi/packages"],
        "hostname": "pypi.example.com",
        "tags": ["pyhost"],
        "id": "b" * 64,
    },
    {
        "time": "2026-11-28T03:17:00.5+01:00",
        "paths": ["/srv/pypi/packages"],
        "hostname": "pypi.example.com",
        "id": "a" * 64,
    },
]


def facts(record: str = "", units: str = "", enabled: object = "True") -> dict[str, object]:
    return {"backup_enabled": enabled, "backup_status": record, "backup_units": units}


def record(*, success_age: timedelta | None, result: str = "ok", check: str = "") -> str:
    success = "" if success_age is None else str(int((NOW - success_age).timestamp()))
    return f"last_success={success}\nlast_result={result}\ncheck_result={check}\nmax_age_hours=48\n"


def test_restic_times_with_nanoseconds_and_offsets() -> None:
    assert backup.parse_time("2026-12-01T11:59:30.123456789Z") == datetime(
        2026, 12, 1, 11, 59, 30, 123456, tzinfo=UTC
    )
    assert backup.parse_time("2026-11-28T03:17:00.5+01:00") == datetime(
        2026, 11, 28, 2, 17, 0, 500000, tzinfo=UTC
    )


def test_snapshots_oldest_first_and_junk_ignored() -> None:
    found = backup.parse_snapshots([*SNAPSHOTS, {"id": "c"}, "junk"])
    assert [snap.short_id for snap in found] == ["aaaaaaaa", "bbbbbbbb"]
    assert backup.parse_snapshots(None) == []


def test_human_age() -> None:
    assert backup.human_age(42) == "42 s"
    assert backup.human_age(125) == "2 min"
    assert backup.human_age(3 * 3600 + 60) == "3 h 1 min"
    assert backup.human_age(5 * 86400) == "5 days"


def test_backups_off_are_healthy_and_silent() -> None:
    report = backup.evaluate(facts(enabled="False"), package_files=10, now=NOW)
    assert report == {"enabled": False, "ok": True, "problems": []}


def test_a_recent_success_is_healthy() -> None:
    report = backup.evaluate(facts(record(success_age=timedelta(hours=47))), package_files=3, now=NOW)
    assert report["ok"] is True, report["problems"]
    assert report["age_seconds"] == 47 * 3600


@pytest.mark.parametrize(
    ("text", "files", "problem"),
    [
        (record(success_age=timedelta(hours=49)), 3, "the last successful backup is 2 days old (limit 48 h)"),
        (record(success_age=timedelta(minutes=1), result="failed"), 3, "the last backup failed"),
        (record(success_age=timedelta(minutes=1), check="failed"), 3, "the last repository check failed"),
        ("", 3, "no successful backup yet"),
    ],
)
def test_unhealthy_backups(text: str, files: int, problem: str) -> None:
    report = backup.evaluate(facts(text), package_files=files, now=NOW)
    assert report["ok"] is False
    assert any(p.startswith(problem) for p in report["problems"]), report["problems"]


def test_an_empty_index_needs_no_backup_yet() -> None:
    assert backup.evaluate(facts(""), package_files=0, now=NOW)["ok"] is True


def test_a_stopped_upload_watch_is_unhealthy() -> None:
    units = (
        "Id=pyhost-backup-upload.path\nLoadState=loaded\nActiveState=inactive\n\n"
        "Id=pyhost-backup-daily.timer\nLoadState=not-found\nActiveState=inactive\n"
    )
    report = backup.evaluate(facts(record(success_age=timedelta(0)), units), package_files=1, now=NOW)
    assert report["problems"] == [
        "pyhost-backup-daily.timer is not installed",
        "pyhost-backup-upload.path is inactive",
    ]


def test_status_counts_backup_problems() -> None:
    data = {
        "units": "",
        "package_files_rc": "0",
        "package_files": "2",
        **facts(record(success_age=timedelta(days=3))),
    }
    report = status.evaluate(data, {"ok": True}, now=NOW)
    assert any(p.startswith("backup: the last successful backup is 3 days old") for p in report["problems"])
    assert report["backup"]["ok"] is False


# The commands, over local playbooks that hand results over through set_stats -----------------------------


@pytest.fixture
def fake_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """backup.yml, backups.yml and restore.yml replaced by local playbooks; restore records its variables."""
    books = tmp_path / "jobs"
    books.mkdir()
    stats = {
        "backup_snapshots": SNAPSHOTS,
        "backup_status": {"last_result": "{{ last_result | default('ok') }}"},
    }
    listing = textwrap.dedent(
        f"""\
        - name: Fake job
          hosts: index_servers
          gather_facts: false
          tasks:
            - name: Fail when asked
              ansible.builtin.fail:
                msg: the backup repository does not answer
              when: fail_job | default(false) | bool
            - name: Hand the snapshots over
              ansible.builtin.set_stats:
                data: {json.dumps(stats)}
        """
    )
    (books / "backup.yml").write_text(listing)
    (books / "backups.yml").write_text(listing)
    (books / "restore.yml").write_text(
        textwrap.dedent(
            f"""\
            - name: Fake restore
              hosts: index_servers
              gather_facts: false
              tasks:
                - name: Record the variables
                  ansible.builtin.copy:
                    dest: {tmp_path}/restore-vars.json
                    content: "{{{{ {{'snapshot': backup_restore_snapshot | default(''),
                                  'force': backup_restore_force}} | to_json }}}}"
                    mode: "0600"
                - name: Hand the outcome over
                  ansible.builtin.set_stats:
                    data:
                      backup_restore:
                        snapshot: "{"b" * 64}"
                        time: "2026-12-01T11:59:30Z"
                        hostname: pypi.example.com
                        users_match: "{{{{ users_match | default(true) }}}}"
                        users_differ: ["Files /a and /b differ"]
            """
        )
    )
    real = content.playbook
    monkeypatch.setattr(
        content, "playbook", lambda name: books / name if (books / name).exists() else real(name)
    )
    return tmp_path


def add_host_var(workspace: Path, line: str) -> None:
    host_vars = workspace / "host_vars/theviji.yml"
    host_vars.write_text(host_vars.read_text() + line + "\n")


def test_backups_lists_newest_first_with_ages(
    invoke: Callable[..., Result], workspace: Path, fake_jobs: Path
) -> None:
    result = invoke("backups", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    rows = [line.split()[:2] for line in result.stdout.splitlines() if re.match(r"[0-9a-f]{8} ", line)]
    assert rows == [["bbbbbbbb", "2026-12-01"], ["aaaaaaaa", "2026-11-28"]]
    as_json = json.loads(invoke("backups", "--host", "theviji", "--json", "-i", str(workspace)).stdout)
    assert [s["id"][:1] for s in as_json["snapshots"]] == ["b", "a"]
    assert as_json["last_runs"] == {"last_result": "ok"}


def test_backup_names_the_new_snapshot(
    invoke: Callable[..., Result], workspace: Path, fake_jobs: Path
) -> None:
    result = invoke("backup", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Backed up theviji: snapshot bbbbbbbb at 2026-12-01 11:59:30 UTC"


def test_backup_of_an_empty_index_says_so(
    invoke: Callable[..., Result], workspace: Path, fake_jobs: Path
) -> None:
    add_host_var(workspace, "last_result: empty")
    result = invoke("backup", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == "pyhost: error: nothing to back up: theviji holds no release yet"
    )


def test_a_failed_job_is_one_line(invoke: Callable[..., Result], workspace: Path, fake_jobs: Path) -> None:
    result = invoke("backup", "--host", "theviji", "-i", str(workspace), "-e", "x=1")
    assert result.exit_code == 2  # backup takes no extra variables
    add_host_var(workspace, "fail_job: true")
    result = invoke("backup", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "pyhost: error: backing up theviji failed: the backup repository does not answer"
    )


def test_restore_passes_snapshot_and_force(
    invoke: Callable[..., Result], workspace: Path, fake_jobs: Path
) -> None:
    result = invoke("restore", "--host", "theviji", "--snapshot", "bbbb", "--force", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert json.loads((fake_jobs / "restore-vars.json").read_text()) == {"snapshot": "bbbb", "force": True}
    assert result.stdout.startswith("Restored theviji from snapshot bbbbbbbb (pypi.example.com,")
    assert "differ" not in result.stdout
    invoke("restore", "--host", "theviji", "-i", str(workspace))
    assert json.loads((fake_jobs / "restore-vars.json").read_text()) == {"snapshot": "", "force": False}


def test_restore_says_when_the_snapshot_users_differ(
    invoke: Callable[..., Result], workspace: Path, fake_jobs: Path
) -> None:
    add_host_var(workspace, "users_match: false")
    result = invoke("restore", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert "the snapshot's users differ from the inventory's" in result.stdout
    assert "Files /a and /b differ" in result.stdout


def test_restore_refuses_a_malformed_snapshot_id(
    invoke: Callable[..., Result], workspace: Path, fake_jobs: Path
) -> None:
    result = invoke("restore", "--host", "theviji", "--snapshot", "latest; rm", "-i", str(workspace))
    assert result.exit_code == 2
    assert "hexadecimal" in result.stderr
    assert not (fake_jobs / "restore-vars.json").exists()
