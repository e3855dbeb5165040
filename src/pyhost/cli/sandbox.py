"""`pyhost sandbox up`, `down`, `status` and `prepare`: the local "VPS in a box" (pyhost.sandbox).

Besides the docker connection preflight (options.require_connection), this is the one place where the
product's command line reaches into the sandbox.
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console

from pyhost.cli.options import PyhostGroup, common, json_option, stderr, stdout
from pyhost.sandbox import images, sandbox
from pyhost.sandbox.testbed import default_python_versions


@click.group(
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
@common
def sandbox_up(offline: bool | None, platform: str | None, inventory: str | None) -> None:
    """Start the sandbox (or keep it running) and register it as host `sandbox`.

    A running sandbox keeps its platform: `pyhost sandbox down` first to change it.
    """
    info = sandbox.up(inventory, stderr(), offline, platform)
    out = stdout()
    _print_sandbox(info, out)
    hint = "" if inventory is None else f" --inventory {inventory}"
    out.print(f"Next: pyhost provision --host {sandbox.HOST_NAME}{hint}")


@sandbox_group.command("down")
@common
def sandbox_down(inventory: str | None) -> None:
    """Remove the sandbox: containers, network, /etc/hosts line, sandbox.yml."""
    removed = sandbox.down(inventory)
    click.echo(
        "Removed: " + ", ".join(removed) if removed else "Nothing to remove: the sandbox is not there."
    )


@sandbox_group.command("status")
@json_option("Print url, domain, ca_file, connect, container, ... as JSON.")
@common
@click.pass_context
def sandbox_status(ctx: click.Context, as_json: bool, inventory: str | None) -> None:
    """Show whether the sandbox runs and how to reach it.

    Exits 1 when it is not running.
    """
    info = sandbox.status(inventory)
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        _print_sandbox(info, stdout())
    ctx.exit(0 if info["state"] == "running" else 1)


@sandbox_group.command("prepare")
@_OFFLINE
@_PLATFORM
@common
def sandbox_prepare(offline: bool | None, platform: str | None, inventory: str | None) -> None:
    """Build the images and the offline mirrors only."""
    prepared = sandbox.prepare(stderr(), offline, platform)
    out = stdout()
    out.print(f"host image    {prepared.host_image}")
    out.print(f"pebble image  {prepared.pebble_image}")
    if prepared.mirrors:
        out.print(
            f"mirrors       {prepared.mirrors.root} "
            f"(pyenv {prepared.mirrors.pyenv_ref[:12]}, CPython {', '.join(default_python_versions())})"
        )
    else:
        out.print("mirrors       none (online: pyenv and CPython are downloaded by the roles)")
