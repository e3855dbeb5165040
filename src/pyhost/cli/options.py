"""What the `pyhost` commands share: error lines, the common options, the consoles and the host preflights.

Errors a user can act on (PyhostError) print one line, `pyhost: error: ...`, on stderr and exit 1; usage
errors exit 2 (click's default). --debug (or PYHOST_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from pyhost.errors import PyhostError
from pyhost.sandbox import sandbox
from pyhost.workspace.inventory import DEFAULT_DIR, ENV_VAR, INDEX_GROUP, Workspace

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
DEBUG_KEY = "pyhost.debug"


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def stderr() -> Console:
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


def set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_KEY] = True


def common(func: Callable[..., Any]) -> Callable[..., Any]:
    """--inventory and --debug, which every command takes."""
    func = click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        callback=set_debug,
        envvar="PYHOST_DEBUG",
        help="Show the full traceback of an error.",
    )(func)
    return click.option(
        "--inventory",
        "-i",
        "inventory",
        metavar="DIR",
        envvar=ENV_VAR,
        default=None,
        help=f"Workspace directory. Default: ${ENV_VAR}, else ./{DEFAULT_DIR}.",
    )(func)


def host_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--host NAME, required: the one server a command works on."""
    return click.option("--host", required=True, help=help_text)


def json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--json: print JSON (HELP_TEXT says what) instead of the table or lines meant for people."""
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def verbose_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--verbose",
        "-v",
        count=True,
        help="Stream Ansible's own output instead of the progress line (-vv: more).",
    )(func)


def index_server(ws: Workspace, host: str) -> None:
    ws.require_host(host)
    if host not in ws.index_servers():
        raise PyhostError(f"host {host!r} is not in the {INDEX_GROUP} group of {ws.path}: add it there")


def require_connection(ws: Workspace, hosts: list[str]) -> None:
    """Hosts reached through docker (the sandbox) need the collection and a running container."""
    for host in hosts:
        values = ws.host_vars(host)
        if values.get("ansible_connection") == "community.docker.docker":
            sandbox.require_docker_connection()
            sandbox.require_container(host, str(values.get("ansible_host") or host))


def server_workspace(inventory: str | None, host: str) -> Workspace:
    """The workspace, once HOST is checked as an index server that can be reached (for --host commands)."""
    ws = Workspace.open(inventory)
    index_server(ws, host)
    require_connection(ws, [host])
    return ws
