"""`pyhost add-user`, `remove-user`, `passwd`, `token` and `list-users`: the users file, then the servers.

The users file in the workspace is the source of truth; each change is written there first and then applied
to the servers with playbooks/users.yml (or later, with --no-apply).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from rich.table import Table

from pyhost import content
from pyhost.ansible import runner
from pyhost.cli.options import (
    common,
    index_server,
    json_option,
    require_connection,
    stderr,
    stdout,
    verbose_option,
)
from pyhost.errors import PyhostError
from pyhost.workspace import users
from pyhost.workspace.inventory import INDEX_GROUP, Workspace


def _targets(ws: Workspace, host: str | None) -> list[str]:
    if host:
        index_server(ws, host)
        return [host]
    return ws.index_servers()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return users.read_password_stdin(sys.stdin)
    return users.prompt_password(getpass.getpass)


@dataclass(frozen=True)
class _Plan:
    """Where a change of the users goes: the workspace's file, then (unless --no-apply) these servers."""

    ws: Workspace
    host: str | None
    targets: list[str]
    apply: bool
    verbose: int


def _preflight(ws: Workspace, host: str | None, *, apply: bool, verbose: int) -> _Plan:
    """The servers to apply to; each must answer before the users file is touched."""
    targets = _targets(ws, host)
    if apply and targets:
        require_connection(ws, targets)
        runner.check_reachable(ws, ",".join(targets), console=stderr())
    return _Plan(ws, host, targets, apply, verbose)


def _save_and_apply(plan: _Plan, new_users: list[users.User], done: str, token: str | None = None) -> None:
    """Write the users file, then apply it to the plan's servers with playbooks/users.yml.

    A new read TOKEN is printed once, right after the write: the file keeps only its hash, so it must be shown
    before anything else can fail. If applying fails after the write, the file keeps the change (it is the
    source of truth) and the error says how to apply it again.
    """
    ws, host, targets = plan.ws, plan.host, plan.targets
    users.UsersFile(ws.users_file).save(new_users)
    out = stdout()
    out.print(f"{done} in {ws.users_file}")
    if token is not None:
        click.echo(f"{users.TOKEN_ANNOUNCEMENT}{token}")
        out.print("It is shown only this once; `pyhost token NAME` makes a new one.")
    limit_hint = f"--host {host or (targets[0] if len(targets) == 1 else 'HOST')}"
    if not plan.apply:
        out.print(f"Not applied yet: run `pyhost provision {limit_hint} --tags users` to apply.")
        return
    if not targets:
        out.print(f"No server in {INDEX_GROUP} yet: the users apply when you provision one.")
        return
    result = runner.run_playbook(
        ws,
        content.playbook("users.yml"),
        limit=",".join(targets),
        verbose=plan.verbose,
        console=stderr(),
        title=f"Applying the users to {', '.join(targets)}",
    )
    if result.unreachable or not result.ok:
        if result.unreachable:
            first = min(result.unreachable)
            reason = f"host {first} is unreachable: {result.unreachable[first]}"
        else:
            reason = result.failures[0].message if result.failures else f"exit code {result.rc}"
        raise PyhostError(
            f"{done} in {ws.users_file}, but applying it failed ({reason.rstrip('.')}): "
            f"run `pyhost provision {limit_hint} --tags users` once the server is fixed"
        )
    out.print(f"Applied to {', '.join(targets)}.")


def _users_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--no-apply", is_flag=True, help="Only change the users file; apply later.")(func)
    return click.option("--host", help="Apply to this server only (default: every server in index_servers).")(
        func
    )


@click.command(
    "add-user",
    epilog="""\b
Examples:
  pyhost add-user pyjitsejan --role publisher
  pyhost add-user ci-bot --role reader --host theviji
  printf '%s\\n' "$PASSWORD" | pyhost add-user ci-bot --password-stdin
""",
)
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(users.ROLES),
    default="reader",
    show_default=True,
    help="publisher: upload and read; reader: read only.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)
@_users_options
@verbose_option
@common
def add_user(
    *,
    name: str,
    role: str,
    password_stdin: bool,
    host: str | None,
    no_apply: bool,
    verbose: int,
    inventory: str | None,
) -> None:
    """Add a user of the index.

    The password is asked twice, hashed with bcrypt on this machine, and only the hash is stored in the
    workspace (group_vars/index_servers/users.yml, mode 0600). A random read token is made too and printed
    once: pip, uv and Poetry use it to install (the server checks it much faster than a password); only its
    hash is stored. Then only the users part of the playbook runs on the server(s). If that fails, the file
    keeps the user: apply it again with `pyhost provision --host HOST --tags users`.
    """
    ws = Workspace.open(inventory)
    users.validate_name(name)
    current = users.UsersFile(ws.users_file).load()
    users.added(current, users.User(name, "", role))  # fails early on a duplicate
    password = _read_password(True) if password_stdin else None
    plan = _preflight(ws, host, apply=not no_apply, verbose=verbose)
    hashed = users.hash_password(password if password is not None else _read_password(False))
    user, token = users.with_new_token(users.User(name, hashed, role))
    _save_and_apply(plan, users.added(current, user), f"Added {role} {name}", token=token)


@click.command(
    "remove-user",
    epilog="""\b
Examples:
  pyhost remove-user pyjitsejan
  pyhost remove-user pyjitsejan --host theviji
""",
)
@click.argument("name")
@_users_options
@verbose_option
@common
def remove_user(name: str, host: str | None, no_apply: bool, verbose: int, inventory: str | None) -> None:
    """Remove a user of the index.

    After applying, the server no longer accepts the user's password.
    """
    ws = Workspace.open(inventory)
    users.validate_name(name)
    remaining = users.removed(users.UsersFile(ws.users_file).load(), name)
    plan = _preflight(ws, host, apply=not no_apply, verbose=verbose)
    _save_and_apply(plan, remaining, f"Removed {name}")


@click.command(
    epilog="""\b
Examples:
  pyhost passwd pyjitsejan
  printf '%s\\n' "$NEW_PASSWORD" | pyhost passwd ci-bot --password-stdin
"""
)
@click.argument("name")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)
@_users_options
@verbose_option
@common
def passwd(
    *, name: str, password_stdin: bool, host: str | None, no_apply: bool, verbose: int, inventory: str | None
) -> None:
    """Change a user's password.

    Asked twice; only the new bcrypt hash is stored, then applied to the server(s).
    """
    ws = Workspace.open(inventory)
    users.validate_name(name)
    store = users.UsersFile(ws.users_file)
    current = store.load()
    old = store.get(name)
    password = _read_password(True) if password_stdin else None
    plan = _preflight(ws, host, apply=not no_apply, verbose=verbose)
    hashed = users.hash_password(password if password is not None else _read_password(False))
    _save_and_apply(
        plan,
        users.replaced(current, dataclasses.replace(old, hash=hashed)),
        f"Changed the password of {name}",
    )


@click.command(
    epilog="""\b
Examples:
  pyhost token pyjitsejan
  pyhost token ci-bot --host theviji
"""
)
@click.argument("name")
@_users_options
@verbose_option
@common
def token(*, name: str, host: str | None, no_apply: bool, verbose: int, inventory: str | None) -> None:
    """Make a new read token for a user, replacing the old one.

    pip, uv and Poetry install with the token (user name and token, as basic auth); the server checks it in
    microseconds, where a password costs a bcrypt check on every request. The token is printed once and only
    its hash is stored. After applying, the old token no longer works; the password is unchanged.
    """
    ws = Workspace.open(inventory)
    users.validate_name(name)
    store = users.UsersFile(ws.users_file)
    current = store.load()
    user, new = users.with_new_token(store.get(name))
    plan = _preflight(ws, host, apply=not no_apply, verbose=verbose)
    _save_and_apply(plan, users.replaced(current, user), f"Made a new read token for {name}", token=new)


@click.command(
    "list-users",
    epilog="""\b
Examples:
  pyhost list-users
  pyhost list-users --json
""",
)
@json_option("Print a JSON list of {name, role}.")
@common
def list_users(as_json: bool, inventory: str | None) -> None:
    """List the users and their roles (never their hashes)."""
    ws = Workspace.open(inventory)
    found = users.UsersFile(ws.users_file).load()
    if as_json:
        click.echo(json.dumps([{"name": u.name, "role": u.role} for u in found], indent=2))
        return
    if not found:
        click.echo("No users yet: add one with `pyhost add-user NAME --role publisher`.")
        return
    table = Table(show_edge=False, pad_edge=False, box=None)
    table.add_column("name", style="bold")
    table.add_column("role")
    for user in found:
        table.add_row(user.name, user.role)
    stdout().print(table)


COMMANDS = (add_user, remove_user, passwd, token, list_users)
