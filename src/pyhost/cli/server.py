"""Looking after a provisioned server: `pyhost yank`, `unyank`, `stats`, `unban`, `backup(s)`, `restore`,
`upstream held`.

Each command checks the host first (an index server that answers), then runs its job from pyhost.server or
the static route over the inventory's connection.
"""

from __future__ import annotations

import json
import re

import click

from pyhost.cli.options import (
    PyhostGroup,
    common,
    host_option,
    json_option,
    server_workspace,
    stderr,
    stdout,
    verbose_option,
)
from pyhost.errors import PyhostError
from pyhost.server import backup, bans, stats, stats_host, upstream

# yank -----------------------------------------------------------------------------------------------


def _set_yanked(
    inventory: str | None, host: str, project: str, version: str, *, reason: str | None, yank: bool
) -> None:
    """Through the inventory's connection (playbooks/yank.yml), like every other change to the server."""
    from pyhost.cli import static as static_cli  # noqa: PLC0415 - the static route's modules load on use
    from pyhost.index import indexgen  # noqa: PLC0415
    from pyhost.index.host_target import HostTarget  # noqa: PLC0415

    ws = server_workspace(inventory, host)
    try:
        value = indexgen.yank_value(reason) if yank else False
    except indexgen.InvalidDistribution as exc:
        raise PyhostError(str(exc)) from None
    static_cli.set_yanked(HostTarget(ws, host, console=stderr()), project, version, value)


@click.command(
    epilog="""\b
Examples:
  pyhost yank acme-lib 2.0 --host theviji --reason "corrupt wheel, use 2.0.1"
  pyhost unyank acme-lib 2.0 --host theviji
"""
)
@click.argument("project")
@click.argument("version")
@host_option("The server whose index holds the release.")
@click.option("--reason", metavar="TEXT", help="Why: installers show it to whoever still pins the release.")
@common
def yank(project: str, version: str, host: str, reason: str | None, inventory: str | None) -> None:
    """Mark every file of PROJECT VERSION yanked (PEP 592).

    Installers then skip the release unless it is pinned with == (lock files keep working); nothing is
    deleted. The server records the yank next to the files (a dot-directory of the packages directory, which
    its backups carry) and regenerates the project's pages. It runs over the inventory's connection, as the
    service's account: no new HTTP endpoint, so a publisher's password cannot yank.
    """
    _set_yanked(inventory, host, project, version, reason=reason, yank=True)


@click.command(
    epilog="""\b
Example:
  pyhost unyank acme-lib 2.0 --host theviji
"""
)
@click.argument("project")
@click.argument("version")
@host_option("The server whose index holds the release.")
@common
def unyank(project: str, version: str, host: str, inventory: str | None) -> None:
    """Take back the yank of PROJECT VERSION: installers consider it again."""
    _set_yanked(inventory, host, project, version, reason=None, yank=False)


# stats ----------------------------------------------------------------------------------------------


@click.command(
    "stats",
    epilog="""\b
Examples:
  pyhost stats --host theviji
  pyhost stats --host theviji --since 30d --by version
  pyhost stats --host theviji --project requests --by day --json
  pyhost stats --host theviji --upstream --since 30d --by version
""",
)
@host_option("The server whose access logs to read.")
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
@click.option(
    "--upstream",
    is_flag=True,
    help="Count the public packages pulled through the upstream index instead of the private ones.",
)
@json_option("Print the summary as JSON.")
@common
def stats_command(
    *,
    host: str,
    since: str | None,
    project: str | None,
    by: str,
    upstream: bool,
    as_json: bool,
    inventory: str | None,
) -> None:
    """Count the downloads of the index.

    Reads nginx's access logs on the server, the rotated and compressed ones too (nginx keeps 14 days by
    default), and counts completed downloads of distribution files: not 304s, HEADs, metadata files or
    aborted transfers. Users are the names clients logged in with. The private index's files by default;
    with --upstream, the files of public packages that came through the upstream index (PyPI), as they
    were served from its cache or fetched: which projects and versions a team actually pulls.
    """
    argv = stats_host.server_arguments(since, project, by, upstream=upstream)
    ws = server_workspace(inventory, host)
    summary = stats_host.gather(ws, host, argv, stderr())
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        stats_host.print_summary(host, summary, stdout())


# unban ----------------------------------------------------------------------------------------------


@click.command(
    "unban",
    epilog="""\b
Examples:
  pyhost unban --host theviji 203.0.113.7
  pyhost unban --host theviji 2001:db8::7
""",
)
@click.argument("address", metavar="IP")
@host_option("The server that banned the address.")
@common
def unban_command(address: str, host: str, inventory: str | None) -> None:
    """Lift fail2ban's ban of an address (in every jail).

    The server bans an address that keeps failing: wrong passwords on the index, rate-limit hits, SSH
    logins (`pyhost status` lists the bans). Add networks that must never be banned to
    pyhost_trusted_networks.
    """
    ip = bans.parse_address(address)
    ws = server_workspace(inventory, host)
    jails = bans.unban(ws, host, ip, stderr())
    if jails:
        stdout().print(f"Unbanned {ip} on {host} ({jails} jail{'s' if jails > 1 else ''}).")
    else:
        stdout().print(f"{ip} was not banned on {host}: nothing to do.")


# backups --------------------------------------------------------------------------------------------


@click.command(
    "backup",
    epilog="""\b
Examples:
  pyhost backup --host theviji
""",
)
@host_option("The server to back up.")
@verbose_option
@common
def backup_command(host: str, verbose: int, inventory: str | None) -> None:
    """Back up one server now.

    A restic snapshot of the packages (with their records), the users' files and the certificate, to the
    repository named by pyhost_backup_repository. The server also backs up by itself within a minute of each
    upload, and daily.
    """
    ws = server_workspace(inventory, host)
    snap = backup.back_up(ws, host, verbose=verbose, console=stderr())
    stdout().print(f"Backed up {host}: snapshot {snap.short_id} at {snap.time:%Y-%m-%d %H:%M:%S} UTC")


@click.command(
    "backups",
    epilog="""\b
Examples:
  pyhost backups --host theviji
  pyhost backups --host theviji --json
""",
)
@host_option("The server whose backups to list.")
@json_option("Print {snapshots: [{id, time, hostname, paths}], last_runs} as JSON.")
@verbose_option
@common
def backups_command(host: str, as_json: bool, verbose: int, inventory: str | None) -> None:
    """List the snapshots in a server's backup repository, newest first, with their age."""
    ws = server_workspace(inventory, host)
    snapshots, last_runs = backup.list_snapshots(ws, host, verbose=verbose, console=stderr())
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
    backup.print_snapshots(snapshots, stdout())


@click.command(
    "restore",
    epilog="""\b
Examples:
  pyhost provision --host newvps && pyhost restore --host newvps
  pyhost restore --host newvps --snapshot 3248f871
  pyhost restore --host theviji --snapshot 3248f871 --force
""",
)
@host_option("The (freshly provisioned) server to restore onto.")
@click.option("--snapshot", metavar="ID", help="The snapshot (its id or a prefix). Default: the newest.")
@click.option("--force", is_flag=True, help="Restore even though the server already holds releases.")
@verbose_option
@common
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
    ws = server_workspace(inventory, host)
    outcome = backup.restore(ws, host, snapshot=snapshot, force=force, verbose=verbose, console=stderr())
    out = stdout()
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


# upstream -------------------------------------------------------------------------------------------


@click.group("upstream", cls=PyhostGroup)
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
@host_option("The server to ask.")
@json_option("Print JSON instead of a list.")
@common
def upstream_held_command(project: str, host: str, as_json: bool, inventory: str | None) -> None:
    """What the cooldown or the cutoff holds back of PROJECT's upstream files, and until when."""
    ws = server_workspace(inventory, host)
    files = upstream.held(ws, host, project, console=stderr())
    if as_json:
        listed = [
            {"filename": f.filename, "version": f.version, "upload-time": f.upload_time, "until": f.until}
            for f in files
        ]
        click.echo(json.dumps({"project": project, "held": listed}, indent=2))
        return
    upstream.print_held(project, files, stdout())


COMMANDS = (
    yank,
    unyank,
    stats_command,
    unban_command,
    backup_command,
    backups_command,
    restore_command,
    upstream_group,
)
