"""The `pyhost` command line: the `pyhost` group and the everyday commands (init, provision, status,
client-config); the other groups of commands live beside it (users, server, sandbox, static).

Errors a user can act on (PyhostError) print one line, `pyhost: error: ...`, on stderr and exit 1; usage
errors exit 2 (click's default). --debug (or PYHOST_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path

import click

from pyhost import __version__, content
from pyhost.ansible import progress, runner
from pyhost.cli import sandbox as sandbox_commands
from pyhost.cli import server as server_commands
from pyhost.cli import users as user_commands
from pyhost.cli.options import (
    CONTEXT_SETTINGS,
    PyhostGroup,
    common,
    host_option,
    index_server,
    json_option,
    server_workspace,
    set_debug,
    stderr,
    stdout,
    verbose_option,
)
from pyhost.cli.static import static
from pyhost.errors import PyhostError
from pyhost.index import clientconfig
from pyhost.server import status
from pyhost.workspace import users
from pyhost.workspace.inventory import DEFAULT_DIR, Workspace, default_dir, scaffold

EXTRA_VAR_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


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
    callback=set_debug,
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
@host_option("Name of the server in the inventory (used by --host later).")
@click.option("--address", required=True, help="IP address or DNS name Ansible connects to over SSH.")
@click.option("--domain", required=True, help="Public DNS name of the index, e.g. pypi.example.com.")
@click.option("--email", required=True, help="Email for the Let's Encrypt (ACME) account.")
@common
def init(
    *, directory: str | None, host: str, address: str, domain: str, email: str, inventory: str | None
) -> None:
    """Create a workspace for one server.

    Scaffolds the inventory (hosts.yml, group_vars, host_vars) from the example. It never overwrites an
    existing workspace. An ansible.cfg you add to the workspace is used by every command.
    """
    if directory and inventory and Path(directory) != Path(inventory):
        raise click.UsageError("give the workspace directory either as DIR or as --inventory, not both")
    target = default_dir(directory or inventory)
    created = scaffold(target, host=host, address=address, domain=domain, email=email)
    out = stdout()
    out.print(f"Created the workspace {created} for {host} ({address}), serving https://{domain}/")
    hint = "" if created.resolve() == (Path.cwd() / DEFAULT_DIR).resolve() else f" --inventory {created}"
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


@main.command(
    epilog="""\b
Examples:
  pyhost provision --host theviji
  pyhost provision --host theviji --tags nginx,certbot
  pyhost provision --host theviji --check --diff
  pyhost provision --host theviji -e pyhost_upload_max_mb=200 -v
"""
)
@host_option("The server to provision.")
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
@verbose_option
@common
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
    ws = server_workspace(inventory, host)
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
        console=stderr(),
        title=f"Provisioning {host}",
    )
    runner.raise_unreachable(ws, result)
    progress.print_recap(result, stdout())
    ctx.exit(result.rc)


# status ---------------------------------------------------------------------------------------------


@main.command(
    "status",
    epilog="""\b
Examples:
  pyhost status --host theviji
  pyhost status --host sandbox --json
""",
)
@host_option("The server to check.")
@json_option("Print the report as JSON.")
@click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False), help="Trust this CA for the HTTPS check."
)
@common
@click.pass_context
def status_command(
    ctx: click.Context, host: str, as_json: bool, ca_file: str | None, inventory: str | None
) -> None:
    """Check the health of one server.

    Reports pypiserver, nginx and the renewal timer, HTTPS through the domain, the certificate's expiry
    and the packages directory. Exits 1 when anything is unhealthy.
    """
    ws = server_workspace(inventory, host)
    data = status.report(ws, host, status.host_endpoint(ws, host, ca_file), stderr())
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        status.print_report(data, stdout())
    ctx.exit(0 if data["healthy"] else 1)


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
@host_option("The server whose index to configure.")
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
@common
def client_config(
    host: str, user_name: str, tool: tuple[str, ...], ask_password: bool, inventory: str | None
) -> None:
    """Print configuration for pip, Poetry, uv and twine.

    pyhost never knows a password: it prints a placeholder, unless --ask-password is given (the answer
    is checked against the stored hash first).
    """
    ws = Workspace.open(inventory)
    index_server(ws, host)
    user = users.UsersFile(ws.users_file).get(user_name)
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
        ca_file=ws.ca_file(host),
        upstream=str(ws.host_vars(host).get("pyhost_upstream_url", clientconfig.Index.upstream)),
    )
    click.echo(clientconfig.render(index, tool or clientconfig.TOOLS), nl=False)


# Commands written beside this module ------------------------------------------------------------------

for command in (*user_commands.COMMANDS, *server_commands.COMMANDS, sandbox_commands.sandbox_group, static):
    main.add_command(command)
