"""`pyhost static`: publish to, list, yank in and unyank in a static index in an S3 bucket or a directory.

The main CLI adds this group with `main.add_command(static)`; `python -m pyhost.cli.static` runs it alone.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pyhost.errors import PyhostError
from pyhost.index import indexgen
from pyhost.index.targets import Target, load_distributions, parse_target

TARGET_HELP = "Where the index lives: s3://BUCKET/PREFIX or file:///PATH."
HOST_HELP = (
    "A host pyhost provisioned (in the workspace's inventory): its packages directory and the pages nginx "
    "serves, reached over the inventory's connection."
)
INVENTORY_HELP = "Workspace directory (for --host). Default: $PYHOST_INVENTORY, else ./inventory."
ENDPOINT_HELP = "S3 endpoint for S3-compatible stores (MinIO, Ceph, moto); AWS needs none."
PUBLIC_URL_HELP = (
    "URL at which the target's root is served (a CloudFront or website endpoint, or the web server "
    "serving a directory); the printed index URL is built from it."
)
YANK_PUBLIC_URL_HELP = (
    "The --public-url the target was published with: the regenerated pages for people show install "
    "commands with it."
)


def _target(
    target: str | None,
    host: str | None,
    endpoint_url: str | None,
    public_url: str | None,
    inventory: str | None,
) -> Target:
    if host is not None:
        if target is not None:
            raise PyhostError("give either --target or --host, not both")
        if endpoint_url or public_url:
            raise PyhostError("--endpoint-url and --public-url apply to --target, not --host")
        from pyhost.index.host_target import HostTarget  # noqa: PLC0415 - Ansible is only needed for --host
        from pyhost.workspace.inventory import Workspace  # noqa: PLC0415

        return HostTarget(Workspace.open(inventory), host)
    if target is None:
        raise PyhostError("missing --target or --host: give s3://BUCKET/PREFIX, file:///PATH or a host NAME")
    return parse_target(target, endpoint_url, public_url)


@click.group()
def static() -> None:
    """Publish wheels and sdists to a static index that pip installs from.

    The index is plain files (PEP 503 and PEP 691 pages with sha256 hashes, requires-python and PEP 658
    metadata) in an S3 bucket or a directory; no server process is needed. AWS credentials come from the
    usual environment variables and config files. With --host, the files go straight into the packages
    directory of an index server pyhost provisioned, over the inventory's connection (SSH), and are served
    at https://DOMAIN/simple/ like uploads.

    \b
    Examples:
      pyhost static publish dist/* --target s3://acme-packages/pypi
      pyhost static publish dist/* --target s3://pkgs/pypi --endpoint-url http://127.0.0.1:9000
      pyhost static publish dist/* --target file:///srv/www/pypi --public-url https://pypi.acme.test
      pyhost static publish dist/* --host theviji
      pyhost static list --target s3://acme-packages/pypi
      pyhost static yank acme-lib 2.0 --reason "breaks on Windows" --target s3://acme-packages/pypi
    """


@static.command()
@click.argument("dist_files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--target", metavar="URL", help=TARGET_HELP)
@click.option("--host", metavar="NAME", help=HOST_HELP)
@click.option("--endpoint-url", metavar="URL", help=ENDPOINT_HELP)
@click.option("--public-url", metavar="URL", help=PUBLIC_URL_HELP)
@click.option("-i", "--inventory", metavar="DIR", help=INVENTORY_HELP)
def publish(
    *,
    dist_files: tuple[Path, ...],
    target: str | None,
    host: str | None,
    endpoint_url: str | None,
    public_url: str | None,
    inventory: str | None,
) -> None:
    """Upload DIST_FILES and update the index pages of their projects.

    Pages are regenerated from everything the target holds, so other projects and earlier versions stay
    listed. A file that already exists with the same content is skipped; one with different content is
    refused, and nothing is uploaded.

    Installers read an S3 index anonymously: let the bucket policy allow s3:GetObject on the prefix, or put
    CloudFront in front and pass its URL as --public-url. After an S3 publish the index is read the way an
    installer reads it, and a warning says what policy to add if it is refused. The settings printed at the
    end take the published projects from this index only (uv, Poetry), never from PyPI.

    \b
    Examples:
      pyhost static publish dist/* --target s3://acme-packages/pypi
      uv pip install --index-url https://acme-packages.s3.eu-west-1.amazonaws.com/pypi/simple/ acme-lib
    """
    destination = _target(target, host, endpoint_url, public_url, inventory)
    dists = load_distributions(dist_files)
    report = destination.publish(dists)
    for name in report.uploaded:
        click.echo(f"uploaded   {name}")
    for name in report.unchanged:
        click.echo(f"unchanged  {name} (already published with the same content)")
    for name, reason in sorted(report.skipped.items()):
        click.echo(f"warning: left {name} out of the pages: {reason}", err=True)
    click.echo(f"pages updated for: {', '.join(report.projects)}")
    click.echo(f"index URL: {report.index_url}")
    click.echo(f"pages for people: {report.index_url.removesuffix('simple/')}")
    warning = destination.access_warning(report.projects)
    if warning:
        click.echo(warning, err=True)
    for line in destination.client_hints(report.projects):
        click.echo(line)


@static.command(name="list")
@click.option("--target", metavar="URL", help=TARGET_HELP)
@click.option("--host", metavar="NAME", help=HOST_HELP)
@click.option("--endpoint-url", metavar="URL", help=ENDPOINT_HELP)
@click.option("-i", "--inventory", metavar="DIR", help=INVENTORY_HELP)
def list_command(
    *, target: str | None, host: str | None, endpoint_url: str | None, inventory: str | None
) -> None:
    """List the projects and files a static index holds, oldest version first.

    \b
    Example:
      pyhost static list --target s3://acme-packages/pypi
    """
    destination = _target(target, host, endpoint_url, None, inventory)
    listing = destination.list_files()
    if not listing:
        click.echo(f"no packages in {destination.describe()}")
        return
    for project, names in listing.items():
        click.echo(project)
        for name in names:
            click.echo(f"  {name}")
    total = sum(len(names) for names in listing.values())
    click.echo(f"{len(listing)} project(s), {total} file(s) in {destination.describe()}")


def _yank_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("-i", "--inventory", metavar="DIR", help=INVENTORY_HELP)(func)
    func = click.option("--public-url", metavar="URL", help=YANK_PUBLIC_URL_HELP)(func)
    func = click.option("--endpoint-url", metavar="URL", help=ENDPOINT_HELP)(func)
    func = click.option("--host", metavar="NAME", help=HOST_HELP)(func)
    func = click.option("--target", metavar="URL", help=TARGET_HELP)(func)
    func = click.argument("version")(func)
    return click.argument("project")(func)


def set_yanked(destination: Target, project: str, version: str, yanked: bool | str) -> None:
    """Yank or unyank on any target, and say which files changed."""
    names = destination.set_yanked(project, version, yanked)
    state = "unyanked" if yanked is False else "yanked"
    reason = f" ({yanked})" if isinstance(yanked, str) else ""
    for name in names:
        click.echo(f"{state:10} {name}{reason}")


def yank_value(reason: str | None) -> bool | str:
    try:
        return indexgen.yank_value(reason)
    except indexgen.InvalidDistribution as exc:
        raise PyhostError(str(exc)) from None


@static.command()
@_yank_options
@click.option("--reason", metavar="TEXT", help="Why: installers show it to whoever still pins the release.")
def yank(*, project: str, version: str, reason: str | None, **where: str | None) -> None:
    """Mark every file of PROJECT VERSION yanked (PEP 592).

    Installers then skip the release unless it is pinned with == (so lock files keep working); nothing is
    deleted. The yank is recorded next to the files (packages/.pyhost-records) and the project's pages are
    regenerated. `pyhost static unyank` takes it back.

    \b
    Examples:
      pyhost static yank acme-lib 2.0 --reason "corrupt wheel, use 2.0.1" --target s3://acme-packages/pypi
      pyhost static yank acme-lib 2.0 --target file:///srv/www/pypi --public-url https://pypi.acme.test
    """
    value = yank_value(reason)
    set_yanked(_target(**where), project, version, value)


@static.command()
@_yank_options
def unyank(*, project: str, version: str, **where: str | None) -> None:
    """Take back the yank of PROJECT VERSION: installers consider it again.

    \b
    Example:
      pyhost static unyank acme-lib 2.0 --target s3://acme-packages/pypi
    """
    set_yanked(_target(**where), project, version, False)


def run() -> None:
    """Run the group on its own, with the main CLI's one-line errors and exit status 1."""
    try:
        static.main(prog_name="pyhost static")
    except PyhostError as exc:
        click.echo(f"pyhost: error: {' '.join(str(exc).split())}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    run()
