"""The `pyhost` command line: thin commands over the workspace, users, runner, status and sandbox modules.

Errors a user can act on (PyhostError) print one line, `pyhost: error: ...`, on stderr and exit 1; usage
errors exit 2 (click's default). --debug (or PYHOST_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pyhost import (
    __version__,
    backup,
    bans,
    clientconfig,
    content,
    images,
    runner,
    sandbox,
    stats,
    stats_host,
    status,
    upstream,
    users,
    workspace,
)
from pyhost.errors import PyhostError
from pyhost.static_cli import static
from pyhost.testbed import default_python_versions
from pyhost.workspace import Workspace

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
DEBUG_KEY = "pyhost.debug"
EXTRA_VAR_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


class PyhostGroup(click.Group):
    """Turns PyhostError into one line on stderr and exit status 1, unless --debug asks for the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PyhostError as exc:
            if ctx.meta.get(DEBUG_KEY):
                raise
            click.echo(f"pyhost: error: {' '.join(str(exc).split())}", err=True)
            ctx.exit(1)


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_KEY] = True


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    """--inventory and --debug, which every command takes."""
    func = click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        callback=_set_debug,
        envvar="PYHOST_DEBUG",
        help="Show the full traceback of an error.",
    )(func)
    return click.option(
        "--inventory",
        "-i",
        "inventory",
        metavar="DIR",
        envvar=workspace.ENV_VAR,
        default=None,
        help=f"Workspace directory. Default: ${workspace.ENV_VAR}, else ./{workspace.DEFAULT_DIR}.",
    )(func)


def _verbose(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--verbose",
        "-v",
        count=True,
        help="Stream Ansible's own output instead of the progress line (-vv: more).",
    )(func)


@click.group(
    cls=PyhostGroup,
    context_settings=CONTEXT_SETTINGS,
    epilog="""\b
Examples:
  pyhost init --host theviji --address 203.0.113.10 --domain pypi.example.com --email me@example.com
  pyhost provision --host theviji
  pyhost add-user pyjitsejan --role publisher
  pyhost token pyjitsejan
  pyhost client-config --host theviji --user pyjitsejan --tool pip
  pyhost status --host theviji
""",
)
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    callback=_set_debug,
    envvar="PYHOST_DEBUG",
    help="Show the full traceback of an error (also PYHOST_DEBUG=1).",
)
@click.version_option(__version__, prog_name="pyhost")
def main() -> None:
    """Turn a bare Ubuntu or Debian server into a private Python package index."""


# init -----------------------------------------------------------------------------------------------


@main.command(
    epilog="""\b
Examples:
  pyhost init --host theviji --address 203.0.113.10 --domain pypi.example.com --email me@example.com
  pyhost init ~/pyhost-prod --host prod1 --address prod1.example.net \
      --domain pypi.example.com --email me@example.com
"""
)
@click.argument("directory", required=False, metavar="[DIR]")
@click.option("--host", required=True, help="Name of the server in the inventory (used by --host later).")
@click.option("--address", required=True, help="IP address or DNS name Ansible connects to over SSH.")
@click.option("--domain", required=True, help="Public DNS name of the index, e.g. pypi.example.com.")
@click.option("--email", required=True, help="Email for the Let's Encrypt (ACME) account.")
@_common
def init(
    *, directory: str | None, host: str, address: str, domain: str, email: str, inventory: str | None
) -> None:
    """Create a workspace for one server.

    Scaffolds the inventory (hosts.yml, group_vars, host_vars) from the example. It never overwrites an
    existing workspace. An ansible.cfg you add to the workspace is used by every command.
    """
    if directory and inventory and Path(directory) != Path(inventory):
        raise click.UsageError("give the workspace directory either as DIR or as --inventory, not both")
    target = workspace.default_dir(directory or inventory)
    created = workspace.scaffold(target, host=host, address=address, domain=domain, email=email)
    out = _stdout()
    out.print(f"Created the workspace {created} for {host} ({address}), serving https://{domain}/")
    hint = (
        ""
        if created.resolve() == (Path.cwd() / workspace.DEFAULT_DIR).resolve()
        else f" --inventory {created}"
    )
    out.print(f"Next: pyhost provision --host {host}{hint}")


# provision ------------------------------------------------------------------------------------------


def parse_extra_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    """-e KEY=VALUE, repeated: each value stays one string, whatever spaces or quotes it holds."""
    values: dict[str, str] = {}
    for pair in pairs:
        match = EXTRA_VAR_RE.match(pair)
        if not match:
            raise click.BadParameter(
                f"{pair!r} is not KEY=VALUE (KEY: letters, digits, '_')", param_hint="-e"
            )
        values[match.group(1)] = match.group(2)
    return values


def _split(values: tuple[str, ...]) -> list[str]:
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def _index_server(ws: Workspace, host: str) -> None:
    ws.require_host(host)
    if host not in ws.index_servers():
        raise PyhostError(
            f"host {host!r} is not in the {workspace.INDEX_GROUP} group of {ws.path}: add it there"
        )


def _require_connection(ws: Workspace, hosts: list[str]) -> None:
    """Hosts reached through docker (the sandbox) need the collection and a running container."""
    for host in hosts:
        values = ws.host_vars(host)
        if values.get("ansible_connection") == "community.docker.docker":
            sandbox.require_docker_connection()
            sandbox.require_container(host, str(values.get("ansible_host") or host))


@main.command(
    epilog="""\b
Examples:
  pyhost provision --host theviji
  pyhost provision --host theviji --tags nginx,certbot
  pyhost provision --host theviji --check --diff
  pyhost provision --host theviji -e pyhost_upload_max_mb=200 -v
"""
)
@click.option("--host", required=True, help="The server to provision.")
@click.option(
    "--tags", "-t", multiple=True, metavar="TAGS", help="Only these roles or jobs (comma-separated)."
)
@click.option(
    "--skip-tags", multiple=True, metavar="TAGS", help="Skip these roles or jobs (comma-separated)."
)
@click.option("--check", is_flag=True, help="Dry run: report what would change, change nothing.")
@click.option("--diff", is_flag=True, help="Show the differences in changed files.")
@click.option(
    "--extra-vars", "-e", "extra", multiple=True, metavar="KEY=VALUE", help="Set a variable (repeatable)."
)
@_verbose
@_common
@click.pass_context
def provision(
    ctx: click.Context,
    *,
    host: str,
    tags: tuple[str, ...],
    skip_tags: tuple[str, ...],
    check: bool,
    diff: bool,
    extra: tuple[str, ...],
    verbose: int,
    inventory: str | None,
) -> None:
    """Install or update everything on one server.

    Runs playbooks/site.yml limited to --host, shows progress, prints the recap and exits with the
    playbook's exit code.
    """
    extravars = parse_extra_vars(extra)
    ws = Workspace.open(inventory)
    _index_server(ws, host)
    _require_connection(ws, [host])
    result = runner.run_playbook(
        ws,
        content.playbook("site.yml"),
        limit=host,
        tags=_split(tags),
        skip_tags=_split(skip_tags),
        check=check,
        diff=diff,
        extravars=extravars,
        verbose=verbose,
        console=_stderr(),
        title=f"Provisioning {host}",
    )
    runner.raise_unreachable(ws, result)
    runner.print_recap(result, _stdout())
    ctx.exit(result.rc)


# users ----------------------------------------------------------------------------------------------


def _targets(ws: Workspace, host: str | None) -> list[str]:
    if host:
        _index_server(ws, host)
        return [host]
    return ws.index_servers()


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return users.read_password_stdin(sys.stdin)
    return users.prompt_password(getpass.getpass)


def _preflight(ws: Workspace, host: str | None, apply: bool) -> list[str]:
    """The servers to apply to; each must answer before the users file is touched."""
    targets = _targets(ws, host)
    if apply and targets:
        _require_connection(ws, targets)
        runner.check_reachable(ws, ",".join(targets), console=_stderr())
    return targets


def _save_and_apply(
    ws: Workspace,
    host: str | None,
    targets: list[str],
    new_users: list[users.User],
    done: str,
    *,
    apply: bool,
    verbose: int,
    token: str | None = None,
) -> None:
    """Write the users file, then apply it to TARGETS with playbooks/users.yml.

    A new read TOKEN is printed once, right after the write: the file keeps only its hash, so it must be shown
    before anything else can fail. If applying fails after the write, the file keeps the change (it is the
    source of truth) and the error says how to apply it again.
    """
    users.UsersFile(ws.users_file).save(new_users)
    out = _stdout()
    out.print(f"{done} in {ws.users_file}")
    if token is not None:
        click.echo(f"{users.TOKEN_ANNOUNCEMENT}{token}")
        out.print("It is shown only this once; `pyhost token NAME` makes a new one.")
    limit_hint = f"--host {host or (targets[0] if len(targets) == 1 else 'HOST')}"
    if not apply:
        out.print(f"Not applied yet: run `pyhost provision {limit_hint} --tags users` to apply.")
        return
    if not targets:
        out.print(f"No server in {workspace.INDEX_GROUP} yet: the users apply when you provision one.")
        return
    result = runner.run_playbook(
        ws,
        content.playbook("users.yml"),
        limit=",".join(targets),
        verbose=verbose,
        console=_stderr(),
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


@main.command(
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
@_verbose
@_common
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
    targets = _preflight(ws, host, not no_apply)
    hashed = users.hash_password(password if password is not None else _read_password(False))
    user, token = users.with_new_token(users.User(name, hashed, role))
    _save_and_apply(
        ws,
        host,
        targets,
        users.added(current, user),
        f"Added {role} {name}",
        apply=not no_apply,
        verbose=verbose,
        token=token,
    )


@main.command(
    "remove-user",
    epilog="""\b
Examples:
  pyhost remove-user pyjitsejan
  pyhost remove-user pyjitsejan --host theviji
""",
)
@click.argument("name")
@_users_options
@_verbose
@_common
def remove_user(name: str, host: str | None, no_apply: bool, verbose: int, inventory: str | None) -> None:
    """Remove a user of the index.

    After applying, the server no longer accepts the user's password.
    """
    ws = Workspace.open(inventory)
    users.validate_name(name)
    remaining = users.removed(users.UsersFile(ws.users_file).load(), name)
    targets = _preflight(ws, host, not no_apply)
    _save_and_apply(ws, host, targets, remaining, f"Removed {name}", apply=not no_apply, verbose=verbose)


@main.command(
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
@_verbose
@_common
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
    targets = _preflight(ws, host, not no_apply)
    hashed = users.hash_password(password if password is not None else _read_password(False))
    _save_and_apply(
        ws,
        host,
        targets,
        users.replaced(current, dataclasses.replace(old, hash=hashed)),
        f"Changed the password of {name}",
        apply=not no_apply,
        verbose=verbose,
    )


@main.command(
    epilog="""\b
Examples:
  pyhost token pyjitsejan
  pyhost token ci-bot --host theviji
"""
)
@click.argument("name")
@_users_options
@_verbose
@_common
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
    targets = _preflight(ws, host, not no_apply)
    _save_and_apply(
        ws,
        host,
        targets,
        users.replaced(current, user),
        f"Made a new read token for {name}",
        apply=not no_apply,
        verbose=verbose,
        token=new,
    )


@main.command(
    "list-users",
    epilog="""\b
Examples:
  pyhost list-users
  pyhost list-users --json
""",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of {name, role}.")
@_common
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
    _stdout().print(table)


# status ---------------------------------------------------------------------------------------------


def _is_sandbox(ws: Workspace, host: str) -> bool:
    return ws.require_host(host).source == ws.sandbox_inventory


@main.command(
    "status",
    epilog="""\b
Examples:
  pyhost status --host theviji
  pyhost status --host sandbox --json
""",
)
@click.option("--host", required=True, help="The server to check.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False), help="Trust this CA for the HTTPS check."
)
@_common
@click.pass_context
def status_command(
    ctx: click.Context, host: str, as_json: bool, ca_file: str | None, inventory: str | None
) -> None:
    """Check the health of one server.

    Reports pypiserver, nginx and the renewal timer, HTTPS through the domain, the certificate's expiry
    and the packages directory. Exits 1 when anything is unhealthy.
    """
    ws = Workspace.open(inventory)
    _index_server(ws, host)
    _require_connection(ws, [host])
    domain = ws.domain(host)
    if _is_sandbox(ws, host):
        info = sandbox.status(inventory)
        if not info["connect"]:
            raise PyhostError("the sandbox is not running: start it with `pyhost sandbox up`")
        address, port = info["connect"].rsplit(":", 1)
        endpoint = status.Endpoint(domain, address, int(port), ca_file or info["ca_file"])
    else:
        endpoint = status.resolve_endpoint(domain, ca_file)
    data = status.report(ws, host, endpoint, _stderr())
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        status.print_report(data, _stdout())
    ctx.exit(0 if data["healthy"] else 1)


# yank -----------------------------------------------------------------------------------------------


def _set_yanked(
    inventory: str | None, host: str, project: str, version: str, *, reason: str | None, yank: bool
) -> None:
    """Through the inventory's connection (playbooks/yank.yml), like every other change to the server."""
    from pyhost import indexgen, static_cli  # noqa: PLC0415 - the static route's modules load on use
    from pyhost.static_host import HostTarget  # noqa: PLC0415

    ws = Workspace.open(inventory)
    _index_server(ws, host)
    _require_connection(ws, [host])
    try:
        value = indexgen.yank_value(reason) if yank else False
    except indexgen.InvalidDistribution as exc:
        raise PyhostError(str(exc)) from None
    static_cli.set_yanked(HostTarget(ws, host, console=_stderr()), project, version, value)


@main.command(
    epilog="""\b
Examples:
  pyhost yank acme-lib 2.0 --host theviji --reason "corrupt wheel, use 2.0.1"
  pyhost unyank acme-lib 2.0 --host theviji
"""
)
@click.argument("project")
@click.argument("version")
@click.option("--host", required=True, help="The server whose index holds the release.")
@click.option("--reason", metavar="TEXT", help="Why: installers show it to whoever still pins the release.")
@_common
def yank(project: str, version: str, host: str, reason: str | None, inventory: str | None) -> None:
    """Mark every file of PROJECT VERSION yanked (PEP 592).

    Installers then skip the release unless it is pinned with == (lock files keep working); nothing is
    deleted. The server records the yank next to the files (a dot-directory of the packages directory, which
    its backups carry) and regenerates the project's pages. It runs over the inventory's connection, as the
    service's account: no new HTTP endpoint, so a publisher's password cannot yank.
    """
    _set_yanked(inventory, host, project, version, reason=reason, yank=True)


@main.command(
    epilog="""\b
Example:
  pyhost unyank acme-lib 2.0 --host theviji
"""
)
@click.argument("project")
@click.argument("version")
@click.option("--host", required=True, help="The server whose index holds the release.")
@_common
def unyank(project: str, version: str, host: str, inventory: str | None) -> None:
    """Take back the yank of PROJECT VERSION: installers consider it again."""
    _set_yanked(inventory, host, project, version, reason=None, yank=False)


# stats ----------------------------------------------------------------------------------------------


@main.command(
    "stats",
    epilog="""\b
Examples:
  pyhost stats --host theviji
  pyhost stats --host theviji --since 30d --by version
  pyhost stats --host theviji --project requests --by day --json
""",
)
@click.option("--host", required=True, help="The server whose access logs to read.")
@click.option(
    "--since", metavar="PERIOD", help="Only the last 30d, 12h, 2w or 90m, or since a date (YYYY-MM-DD)."
)
@click.option("--project", metavar="NAME", help="Only this project.")
@click.option(
    "--by",
    type=click.Choice(stats.BY_CHOICES),
    default="project",
    show_default=True,
    help="One row per project, version (of a project), file, user or day.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@_common
def stats_command(
    *, host: str, since: str | None, project: str | None, by: str, as_json: bool, inventory: str | None
) -> None:
    """Count the downloads of the index.

    Reads nginx's access logs on the server, the rotated and compressed ones too (nginx keeps 14 days by
    default), and counts completed downloads of distribution files: not 304s, HEADs, metadata files or
    aborted transfers. Users are the names clients logged in with.
    """
    argv = stats_host.server_arguments(since, project, by)
    ws = Workspace.open(inventory)
    _index_server(ws, host)
    _require_connection(ws, [host])
    summary = stats_host.gather(ws, host, argv, _stderr())
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        stats_host.print_summary(host, summary, _stdout())


# unban ----------------------------------------------------------------------------------------------


@main.command(
    "unban",
    epilog="""\b
Examples:
  pyhost unban --host theviji 203.0.113.7
  pyhost unban --host theviji 2001:db8::7
""",
)
@click.argument("address", metavar="IP")
@click.option("--host", required=True, help="The server that banned the address.")
@_common
def unban_command(address: str, host: str, inventory: str | None) -> None:
    """Lift fail2ban's ban of an address (in every jail).

    The server bans an address that keeps failing: wrong passwords on the index, rate-limit hits, SSH
    logins (`pyhost status` lists the bans). Add networks that must never be banned to
    pyhost_trusted_networks.
    """
    ip = bans.parse_address(address)
    ws = Workspace.open(inventory)
    _index_server(ws, host)
    _require_connection(ws, [host])
    jails = bans.unban(ws, host, ip, _stderr())
    if jails:
        _stdout().print(f"Unbanned {ip} on {host} ({jails} jail{'s' if jails > 1 else ''}).")
    else:
        _stdout().print(f"{ip} was not banned on {host}: nothing to do.")


# backups --------------------------------------------------------------------------------------------


def _backup_host(inventory: str | None, host: str) -> Workspace:
    ws = Workspace.open(inventory)
    _index_server(ws, host)
    _require_connection(ws, [host])
    return ws


@main.command(
    "backup",
    epilog="""\b
Examples:
  pyhost backup --host theviji
""",
)
@click.option("--host", required=True, help="The server to back up.")
@_verbose
@_common
def backup_command(host: str, verbose: int, inventory: str | None) -> None:
    """Back up one server now.

    A restic snapshot of the packages (with their records), the users' files and the certificate, to the
    repository named by pyhost_backup_repository. The server also backs up by itself within a minute of each
    upload, and daily.
    """
    ws = _backup_host(inventory, host)
    snap = backup.back_up(ws, host, verbose=verbose, console=_stderr())
    _stdout().print(f"Backed up {host}: snapshot {snap.short_id} at {snap.time:%Y-%m-%d %H:%M:%S} UTC")


@main.command(
    "backups",
    epilog="""\b
Examples:
  pyhost backups --host theviji
  pyhost backups --host theviji --json
""",
)
@click.option("--host", required=True, help="The server whose backups to list.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {snapshots: [{id, time, hostname, paths}], last_runs} as JSON.",
)
@_verbose
@_common
def backups_command(host: str, as_json: bool, verbose: int, inventory: str | None) -> None:
    """List the snapshots in a server's backup repository, newest first, with their age."""
    ws = _backup_host(inventory, host)
    snapshots, last_runs = backup.list_snapshots(ws, host, verbose=verbose, console=_stderr())
    if as_json:
        listed = [
            {"id": s.id, "time": s.time.isoformat(), "hostname": s.hostname, "paths": list(s.paths)}
            for s in reversed(snapshots)
        ]
        click.echo(json.dumps({"snapshots": listed, "last_runs": last_runs}, indent=2))
        return
    if not snapshots:
        click.echo(f"No snapshot yet: `pyhost backup --host {host}` makes one.")
        return
    backup.print_snapshots(snapshots, _stdout())


@main.group("upstream", cls=PyhostGroup)
def upstream_group() -> None:
    """The upstream index behind the private one (pyhost_upstream_url)."""


@upstream_group.command(
    "held",
    epilog="""\b
Examples:
  pyhost upstream held requests --host theviji
  pyhost upstream held requests --host theviji --json
""",
)
@click.argument("project")
@click.option("--host", required=True, help="The server to ask.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a list.")
@_common
def upstream_held_command(project: str, host: str, as_json: bool, inventory: str | None) -> None:
    """What the cooldown or the cutoff holds back of PROJECT's upstream files, and until when."""
    ws = Workspace.open(inventory)
    _index_server(ws, host)
    files = upstream.held(ws, host, project, console=_stderr())
    if as_json:
        listed = [
            {"filename": f.filename, "version": f.version, "upload-time": f.upload_time, "until": f.until}
            for f in files
        ]
        click.echo(json.dumps({"project": project, "held": listed}, indent=2))
        return
    upstream.print_held(project, files, _stdout())


@main.command(
    "restore",
    epilog="""\b
Examples:
  pyhost provision --host newvps && pyhost restore --host newvps
  pyhost restore --host newvps --snapshot 3248f871
  pyhost restore --host theviji --snapshot 3248f871 --force
""",
)
@click.option("--host", required=True, help="The (freshly provisioned) server to restore onto.")
@click.option("--snapshot", metavar="ID", help="The snapshot (its id or a prefix). Default: the newest.")
@click.option("--force", is_flag=True, help="Restore even though the server already holds releases.")
@_verbose
@_common
def restore_command(
    host: str, snapshot: str | None, force: bool, verbose: int, inventory: str | None
) -> None:
    """Restore a server from its backup repository.

    Provision the new server first (same inventory, same pyhost_backup_repository and password). The
    packages and their records come back byte for byte, the certificate with its ACME account too; the pages
    are rebuilt. Users come from the inventory, the source of truth: the snapshot's password files are
    compared with it, not copied. A server that already holds releases is refused unless --force.
    """
    if snapshot is not None and not re.fullmatch(r"[0-9a-f]{4,64}", snapshot):
        raise click.BadParameter("a snapshot id is 4 to 64 hexadecimal digits", param_hint="--snapshot")
    ws = _backup_host(inventory, host)
    outcome = backup.restore(ws, host, snapshot=snapshot, force=force, verbose=verbose, console=_stderr())
    out = _stdout()
    out.print(
        f"Restored {host} from snapshot {str(outcome['snapshot'])[:8]} "
        f"({outcome['hostname']}, {outcome['time']}); pages rebuilt."
    )
    if str(outcome.get("users_match")).lower() != "true":
        out.print(
            "Note: the snapshot's users differ from the inventory's; the inventory's are live "
            "(pyhost_users is the source of truth). Differences: "
            + "; ".join(outcome.get("users_differ") or ["unknown"]),
            markup=False,
        )


# client-config --------------------------------------------------------------------------------------


@main.command(
    "client-config",
    epilog="""\b
Examples:
  pyhost client-config --host theviji --user pyjitsejan
  pyhost client-config --host theviji --user pyjitsejan --tool poetry
  pyhost client-config --host sandbox --user alice --tool twine --ask-password
""",
)
@click.option("--host", required=True, help="The server whose index to configure.")
@click.option("--user", "user_name", required=True, help="The user the tools log in as.")
@click.option(
    "--tool",
    type=click.Choice(clientconfig.TOOLS),
    multiple=True,
    help="pip, poetry, uv or twine (repeatable). Default: all that fit the user's role.",
)
@click.option(
    "--ask-password",
    is_flag=True,
    help="Ask the password (checked against the stored hash) and print it instead of a placeholder.",
)
@_common
def client_config(
    host: str, user_name: str, tool: tuple[str, ...], ask_password: bool, inventory: str | None
) -> None:
    """Print configuration for pip, Poetry, uv and twine.

    pyhost never knows a password: it prints a placeholder, unless --ask-password is given (the answer
    is checked against the stored hash first).
    """
    ws = Workspace.open(inventory)
    _index_server(ws, host)
    user = users.UsersFile(ws.users_file).get(user_name)
    ca_file = None
    if _is_sandbox(ws, host):
        ca = ws.sandbox_state_dir / "ca.pem"
        ca_file = str(ca.resolve()) if ca.is_file() else None
    password = None
    if ask_password:
        password = getpass.getpass(f"Password of {user_name}: ")
        if not users.verify_password(password, user.hash):
            raise PyhostError(f"that is not the password of {user_name}: nothing printed")
    index = clientconfig.Index(
        name=clientconfig.index_name(host),
        domain=ws.domain(host),
        user=user,
        password=password,
        ca_file=ca_file,
        upstream=str(ws.host_vars(host).get("pyhost_upstream_url", clientconfig.Index.upstream)),
    )
    click.echo(clientconfig.render(index, tool or clientconfig.TOOLS), nl=False)


# sandbox --------------------------------------------------------------------------------------------


@main.group(
    "sandbox",
    cls=PyhostGroup,
    epilog="""\b
Examples:
  pyhost sandbox up
  pyhost provision --host sandbox
  pyhost add-user alice --role publisher --host sandbox
  pyhost client-config --host sandbox --user alice --tool pip
  pyhost sandbox down
""",
)
def sandbox_group() -> None:
    """A local "VPS in a box" to try pyhost.

    A systemd container and a local ACME server (pebble) on a private docker network, registered in the
    workspace as host `sandbox`, serving https://pypi.pyhost.test/ with a certificate from the local CA.
    """


_OFFLINE = click.option(
    "--offline/--online",
    default=None,
    help="Use the offline pyenv/CPython mirrors (default: when they can be prepared) or download them.",
)


_PLATFORM = click.option(
    "--platform",
    type=click.Choice(list(images.SUITES)),
    envvar=images.PLATFORM_ENV,
    default=None,
    help=f"The sandbox host's system (default {images.DEFAULT_PLATFORM}; also {images.PLATFORM_ENV}).",
)


def _print_sandbox(info: dict[str, Any], out: Console) -> None:
    for key in ("state", "url", "domain", "connect", "ca_file", "container", "inventory"):
        out.print(f"{key:10} {info.get(key) or '-'}")


@sandbox_group.command("up")
@_OFFLINE
@_PLATFORM
@_common
def sandbox_up(offline: bool | None, platform: str | None, inventory: str | None) -> None:
    """Start the sandbox (or keep it running) and register it as host `sandbox`.

    A running sandbox keeps its platform: `pyhost sandbox down` first to change it.
    """
    info = sandbox.up(inventory, _stderr(), offline, platform)
    out = _stdout()
    _print_sandbox(info, out)
    hint = "" if inventory is None else f" --inventory {inventory}"
    out.print(f"Next: pyhost provision --host {sandbox.HOST_NAME}{hint}")


@sandbox_group.command("down")
@_common
def sandbox_down(inventory: str | None) -> None:
    """Remove the sandbox: containers, network, /etc/hosts line, sandbox.yml."""
    removed = sandbox.down(inventory)
    click.echo(
        "Removed: " + ", ".join(removed) if removed else "Nothing to remove: the sandbox is not there."
    )


@sandbox_group.command("status")
@click.option(
    "--json", "as_json", is_flag=True, help="Print url, domain, ca_file, connect, container, ... as JSON."
)
@_common
@click.pass_context
def sandbox_status(ctx: click.Context, as_json: bool, inventory: str | None) -> None:
    """Show whether the sandbox runs and how to reach it.

    Exits 1 when it is not running.
    """
    info = sandbox.status(inventory)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        _print_sandbox(info, _stdout())
    ctx.exit(0 if info["state"] == "running" else 1)


@sandbox_group.command("prepare")
@_OFFLINE
@_PLATFORM
@_common
def sandbox_prepare(offline: bool | None, platform: str | None, inventory: str | None) -> None:
    """Build the images and the offline mirrors only."""
    prepared = sandbox.prepare(_stderr(), offline, platform)
    out = _stdout()
    out.print(f"host image    {prepared.host_image}")
    out.print(f"pebble image  {prepared.pebble_image}")
    if prepared.mirrors:
        out.print(
            f"mirrors       {prepared.mirrors.root} "
            f"(pyenv {prepared.mirrors.pyenv_ref[:12]}, CPython {', '.join(default_python_versions())})"
        )
    else:
        out.print("mirrors       none (online: pyenv and CPython are downloaded by the roles)")


# Commands written elsewhere --------------------------------------------------------------------------

main.add_command(static)
