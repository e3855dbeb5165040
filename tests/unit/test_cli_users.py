"""add-user, remove-user, passwd, token, list-users: validate, write only hashes, then apply users.yml."""

from __future__ import annotations

import getpass
import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
from click.testing import Result

from pyhost.workspace.users import UsersFile, verify_password, verify_token

from .conftest import FakeContent, snapshot


def users_of(ws: Path) -> UsersFile:
    return UsersFile(ws / "group_vars" / "index_servers" / "users.yml")


def add(
    invoke: Callable[..., Result],
    ws: Path,
    name: str,
    password: str = "pw",  # noqa: S107 - a throwaway password for a test workspace
    *extra: str,
) -> Result:
    return invoke(
        "add-user", "--password-stdin", "--no-apply", *extra, "-i", str(ws), "--", name, input=f"{password}\n"
    )


def test_add_user_stores_only_a_bcrypt_hash(invoke: Callable[..., Result], workspace: Path) -> None:
    result = add(invoke, workspace, "pyjitsejan", "s3cret pass", "--role", "publisher")
    assert result.exit_code == 0, result.output
    assert "Added publisher pyjitsejan" in result.stdout
    assert "pyhost provision --host theviji --tags users" in result.stdout
    [user] = users_of(workspace).load()
    assert (user.name, user.role) == ("pyjitsejan", "publisher")
    assert user.hash.startswith("$2b$10$")
    assert verify_password("s3cret pass", user.hash)
    path = users_of(workspace).path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret" not in path.read_text()


def test_add_user_default_role_is_reader(invoke: Callable[..., Result], workspace: Path) -> None:
    assert add(invoke, workspace, "bob").exit_code == 0
    assert users_of(workspace).get("bob").role == "reader"


@pytest.mark.parametrize("target", [(), ("--host", "theviji")], ids=["every server", "one host"])
def test_add_user_applies_only_the_users_playbook(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent, target: tuple[str, ...]
) -> None:
    result = invoke(
        "add-user",
        "alice",
        "--role",
        "publisher",
        *target,
        "--password-stdin",
        "-i",
        str(workspace),
        input="pw\n",
    )
    assert result.exit_code == 0, result.output
    assert "Applied to theviji." in result.stdout
    seen = json.loads(fake_playbooks.read("users-theviji.json"))
    assert seen == [user.as_dict() for user in users_of(workspace).load()]
    assert not fake_playbooks.exists("common.txt")  # site.yml did not run


def test_unreachable_host_writes_nothing(
    invoke: Callable[..., Result], unreachable_workspace: Path, fake_playbooks: FakeContent
) -> None:
    before = snapshot(unreachable_workspace)
    result = invoke("add-user", "alice", "--password-stdin", "-i", str(unreachable_workspace), input="pw\n")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("pyhost: error: host theviji (127.0.0.1) is unreachable: ")
    )
    assert "Connection refused" in result.stderr
    assert snapshot(unreachable_workspace) == before
    assert not fake_playbooks.exists("users-theviji.json")


def test_failed_apply_keeps_the_user_and_says_how_to_retry(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    (workspace / "host_vars" / "theviji.yml").write_text(
        (workspace / "host_vars" / "theviji.yml").read_text() + "fail_users: true\n"
    )
    result = invoke("add-user", "alice", "--password-stdin", "-i", str(workspace), input="pw\n")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"pyhost: error: Added reader alice in {users_of(workspace).path}, but applying it failed "
        "(the fake users sync was asked to fail): run `pyhost provision --host theviji --tags users` "
        "once the server is fixed"
    )
    assert [u.name for u in users_of(workspace).load()] == ["alice"]


def test_duplicate_user_writes_nothing(invoke: Callable[..., Result], workspace: Path) -> None:
    assert add(invoke, workspace, "alice").exit_code == 0
    before = snapshot(workspace)
    result = add(invoke, workspace, "alice", "other", "--role", "publisher")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "pyhost: error: user 'alice' already exists: change the password with `pyhost passwd alice`"
    ]
    assert snapshot(workspace) == before


@pytest.mark.parametrize("name", ["Alice", "al:ice", "al ice", "-alice", "a" * 33, "alïce", "al/ice"])
def test_invalid_user_name_writes_nothing(invoke: Callable[..., Result], workspace: Path, name: str) -> None:
    before = snapshot(workspace)
    result = add(invoke, workspace, name)
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"pyhost: error: invalid user name {name!r}")
    assert snapshot(workspace) == before


def test_empty_password_from_stdin_writes_nothing(invoke: Callable[..., Result], workspace: Path) -> None:
    before = snapshot(workspace)
    result = invoke("add-user", "alice", "--password-stdin", "--no-apply", "-i", str(workspace), input="\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["pyhost: error: empty password: nothing was changed"]
    assert snapshot(workspace) == before


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        (["one", "two"], "the two passwords do not match: nothing was changed"),
        ([""], "empty password: nothing was changed"),
    ],
)
def test_prompted_password_errors_write_nothing(
    invoke: Callable[..., Result],
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    answers: list[str],
    message: str,
) -> None:
    replies = iter(answers)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(replies))
    before = snapshot(workspace)
    result = invoke("add-user", "alice", "--no-apply", "-i", str(workspace))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"pyhost: error: {message}"]
    assert snapshot(workspace) == before


def test_password_prompt_on_a_terminal(workspace: Path) -> None:
    """The real getpass on a pseudo-terminal: asked twice, nothing echoed."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pyhost", "add-user", "dave", "--no-apply", "-i", str(workspace)],
        encoding="utf-8",
        timeout=60,
    )
    child.expect("Password: ")
    child.sendline("tty secret")
    child.expect("Repeat password: ")
    child.sendline("tty secret")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    assert "tty secret" not in child.before
    assert verify_password("tty secret", users_of(workspace).get("dave").hash)


def test_remove_user(invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent) -> None:
    assert add(invoke, workspace, "alice").exit_code == 0
    assert add(invoke, workspace, "bob").exit_code == 0
    result = invoke("remove-user", "alice", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert [u.name for u in users_of(workspace).load()] == ["bob"]
    assert [u["name"] for u in json.loads(fake_playbooks.read("users-theviji.json"))] == ["bob"]


def test_remove_unknown_user_writes_nothing(invoke: Callable[..., Result], workspace: Path) -> None:
    before = snapshot(workspace)
    result = invoke("remove-user", "ghost", "--no-apply", "-i", str(workspace))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "pyhost: error: no user 'ghost': `pyhost list-users` shows who exists"
    ]
    assert snapshot(workspace) == before


def test_passwd_replaces_the_hash_and_keeps_the_role(invoke: Callable[..., Result], workspace: Path) -> None:
    assert add(invoke, workspace, "alice", "old", "--role", "publisher").exit_code == 0
    result = invoke("passwd", "alice", "--password-stdin", "--no-apply", "-i", str(workspace), input="new\n")
    assert result.exit_code == 0, result.output
    alice = users_of(workspace).get("alice")
    assert verify_password("new", alice.hash)
    assert not verify_password("old", alice.hash)
    assert alice.role == "publisher"


def test_passwd_of_unknown_user_writes_nothing(invoke: Callable[..., Result], workspace: Path) -> None:
    before = snapshot(workspace)
    result = invoke("passwd", "ghost", "--password-stdin", "--no-apply", "-i", str(workspace), input="x\n")
    assert result.exit_code == 1
    assert "no user 'ghost'" in result.stderr
    assert snapshot(workspace) == before


def test_list_users_never_shows_hashes(invoke: Callable[..., Result], workspace: Path) -> None:
    assert "No users yet" in invoke("list-users", "-i", str(workspace)).stdout
    assert add(invoke, workspace, "alice", "pw", "--role", "publisher").exit_code == 0
    assert add(invoke, workspace, "bob").exit_code == 0
    table = invoke("list-users", "-i", str(workspace)).stdout
    rows = [line.split() for line in table.splitlines()]
    assert ["alice", "publisher"] in rows
    assert ["bob", "reader"] in rows
    as_json = json.loads(invoke("list-users", "--json", "-i", str(workspace)).stdout)
    assert as_json == [{"name": "alice", "role": "publisher"}, {"name": "bob", "role": "reader"}]
    assert "$2b$" not in table


TOKEN_LINE = "read token for pip/uv/poetry installs: "


def shown_token(result: Result) -> str:
    [line] = [line for line in result.stdout.splitlines() if line.startswith(TOKEN_LINE)]
    return line.removeprefix(TOKEN_LINE)


def test_add_user_shows_a_read_token_once_and_stores_only_its_hash(
    invoke: Callable[..., Result], workspace: Path
) -> None:
    result = add(invoke, workspace, "alice", "pw", "--role", "publisher")
    assert result.exit_code == 0, result.output
    token = shown_token(result)
    assert len(token) == 43
    alice = users_of(workspace).get("alice")
    assert alice.token_hash is not None and alice.token_hash.startswith("{SSHA}")
    assert verify_token(token, alice.token_hash)
    assert token not in users_of(workspace).path.read_text()
    assert token not in result.stderr


def test_token_replaces_the_read_token_and_keeps_the_password(
    invoke: Callable[..., Result], workspace: Path, fake_playbooks: FakeContent
) -> None:
    first = shown_token(add(invoke, workspace, "alice", "pw", "--role", "publisher"))
    before = users_of(workspace).get("alice")
    result = invoke("token", "alice", "-i", str(workspace))
    assert result.exit_code == 0, result.output
    assert "Made a new read token for alice" in result.stdout
    assert "Applied to theviji." in result.stdout
    second = shown_token(result)
    after = users_of(workspace).get("alice")
    assert second != first
    assert verify_token(second, after.token_hash or "")
    assert not verify_token(first, after.token_hash or "")
    assert (after.hash, after.role) == (before.hash, before.role)
    seen = json.loads(fake_playbooks.read("users-theviji.json"))
    assert seen == [after.as_dict()]


def test_token_of_unknown_user_writes_nothing(invoke: Callable[..., Result], workspace: Path) -> None:
    before = snapshot(workspace)
    result = invoke("token", "ghost", "--no-apply", "-i", str(workspace))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"pyhost: error: no user 'ghost' in {users_of(workspace).path}: `pyhost list-users` shows who exists"
    ]
    assert TOKEN_LINE not in result.stdout
    assert snapshot(workspace) == before


def test_token_on_an_unreachable_host_writes_and_shows_nothing(
    invoke: Callable[..., Result], unreachable_workspace: Path
) -> None:
    users_of(unreachable_workspace).save([])
    assert add(invoke, unreachable_workspace, "alice").exit_code == 0
    before = snapshot(unreachable_workspace)
    result = invoke("token", "alice", "-i", str(unreachable_workspace))
    assert result.exit_code == 1
    assert "is unreachable" in result.stderr
    assert TOKEN_LINE not in result.stdout
    assert snapshot(unreachable_workspace) == before


def test_passwd_keeps_the_read_token(invoke: Callable[..., Result], workspace: Path) -> None:
    token = shown_token(add(invoke, workspace, "alice", "old"))
    result = invoke("passwd", "alice", "--password-stdin", "--no-apply", "-i", str(workspace), input="new\n")
    assert result.exit_code == 0, result.output
    assert TOKEN_LINE not in result.stdout
    assert verify_token(token, users_of(workspace).get("alice").token_hash or "")


def test_list_users_never_shows_token_hashes(invoke: Callable[..., Result], workspace: Path) -> None:
    token = shown_token(add(invoke, workspace, "alice"))
    for args in (("list-users",), ("list-users", "--json")):
        out = invoke(*args, "-i", str(workspace)).stdout
        assert "{SSHA}" not in out and token not in out
