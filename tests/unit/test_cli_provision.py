"""`pyhost provision`: site.yml on one host through ansible-runner, with progress, recap and exit code."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from rich.console import Console

from pyhost import content
from pyhost.ansible import runner
from pyhost.workspace.inventory import Workspace

from .conftest import FakeContent


def test_provision_runs_site_yml_and_prints_the_recap(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    result = invoke("provision", "--host", "theviji", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert fake_playbooks.read("common.txt") == "pypi.example.com"
    assert fake_playbooks.read("nginx.txt") == "nginx"
    recap = next(line for line in result.stdout.splitlines() if line.startswith("theviji"))
    assert recap.split()[1:] == ["│", "3", "│", "3", "│", "0", "│", "0", "│", "1", "│", "0", "│", "0"]
    assert "Playbook succeeded." in result.stdout
    # Not a terminal: one line per play and task on stderr, with the elapsed time.
    assert "] PLAY Fake site" in result.stderr
    assert "] TASK Record that nginx ran" in result.stderr


def test_tags_and_skip_tags(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    assert invoke("provision", "--host", "theviji", "--tags", "nginx", "-i", str(workspace)).exit_code == 0
    assert fake_playbooks.exists("nginx.txt")
    assert not fake_playbooks.exists("common.txt")
    (fake_playbooks.record / "nginx.txt").unlink()
    assert (
        invoke(
            "provision", "--host", "theviji", "--skip-tags", "nginx,common", "-i", str(workspace)
        ).exit_code
        == 0
    )
    assert not fake_playbooks.exists("nginx.txt")
    assert not fake_playbooks.exists("common.txt")
    assert fake_playbooks.exists("extra.txt")


def test_extra_vars_stay_whole_strings(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    value = 'hello world, it\'s "quoted" = yes'
    result = invoke("provision", "--host", "theviji", "-e", f"greeting={value}", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert fake_playbooks.read("extra.txt") == value


def test_bad_extra_var_is_a_usage_error(invoke: Callable[..., Result], workspace: Path) -> None:
    result = invoke("provision", "--host", "theviji", "-e", "no-equals-sign", "-i", str(workspace))
    assert result.exit_code == 2
    assert "is not KEY=VALUE" in result.stderr


def test_check_mode_changes_nothing(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    result = invoke("provision", "--host", "theviji", "--check", "--diff", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert list(fake_playbooks.record.iterdir()) == []


def test_a_failing_playbook_sets_the_exit_code(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    result = invoke("provision", "--host", "theviji", "-e", "fail_now=true", "-i", str(workspace))
    assert result.exit_code == 2  # ansible-playbook's code for failed tasks
    assert "failed theviji | Fail when asked: the fake site was asked to fail" in result.stdout
    assert "Playbook failed (exit code 2)." in result.stdout


def test_unreachable_host_is_one_line(
    invoke: Callable[..., Result], unreachable_workspace: Path, fake_playbooks: FakeContent
) -> None:
    result = invoke("provision", "--host", "theviji", "-i", str(unreachable_workspace))
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("pyhost: error:")]
    assert len(errors) == 1
    assert errors[0].startswith("pyhost: error: host theviji (127.0.0.1) is unreachable: ")
    assert "Connection refused" in errors[0]
    assert "Recap" not in result.stdout


def test_verbose_streams_ansible_output(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    result = invoke("provision", "--host", "theviji", "-v", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert "PLAY [Fake site]" in result.stdout
    assert "TASK [Record that nginx ran]" in result.stdout
    assert "PLAY RECAP" in result.stdout


def test_host_outside_index_servers_is_refused(invoke: Callable[..., Result], workspace: Path) -> None:
    (workspace / "hosts.yml").write_text(
        (workspace / "hosts.yml").read_text() + "    other:\n      hosts:\n        monitor: {}\n"
    )
    result = invoke("provision", "--host", "monitor", "-i", str(workspace))
    assert result.exit_code == 1
    assert "host 'monitor' is not in the index_servers group" in result.stderr


def test_live_display_shows_play_task_and_elapsed(workspace: Path, fake_playbooks: FakeContent) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140)
    result = runner.run_playbook(
        Workspace.open(workspace), content.playbook("site.yml"), limit="theviji", console=console
    )
    assert result.ok
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    assert "Fake site > Record that nginx ran" in screen
    assert "0:00:0" in screen  # the total elapsed time column
    assert "task 0:0" in screen  # the current task's own elapsed time
    assert result.recap["theviji"]["changed"] == 3


def test_runner_environment(workspace: Path) -> None:
    ws = Workspace.open(workspace)
    (workspace / "ansible.cfg").write_text("[defaults]\nforks = 3\n")
    env = runner.envvars(ws)
    assert env["ANSIBLE_ROLES_PATH"] == str(content.roles_dir())
    assert env["ANSIBLE_CONFIG"] == str((workspace / "ansible.cfg").resolve())
    assert "StrictHostKeyChecking=accept-new" in env["ANSIBLE_SSH_COMMON_ARGS"]
    assert env["ANSIBLE_PIPELINING"] == "True"


def test_pipelining_is_left_to_a_workspace_that_sets_it(workspace: Path) -> None:
    ws = Workspace.open(workspace)
    (workspace / "ansible.cfg").write_text("[connection]\npipelining = False\n")
    assert "ANSIBLE_PIPELINING" not in runner.envvars(ws)


def test_pipelining_is_left_to_the_environment(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_PIPELINING", "False")
    assert "ANSIBLE_PIPELINING" not in runner.envvars(Workspace.open(workspace))
