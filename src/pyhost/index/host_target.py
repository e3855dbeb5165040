"""`pyhost static publish --host NAME`: the static route into an index server that pyhost provisioned.

The server's index is already static (nginx serves the pages and files that pypiserver keeps in step), so
publishing there means: copy the files over the inventory's connection into the packages directory and
regenerate their projects' pages with the server's own page generator (playbooks/static-publish.yml). The
generator never replaces a file and refuses a name taken by other content, placing nothing then. pip then
installs from https://DOMAIN/simple/ with a user's read token, as it does after an upload.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from pyhost import content
from pyhost.ansible import results, runner
from pyhost.errors import PyhostError
from pyhost.index.targets import LocalDist, PublishReport, Target
from pyhost.workspace.inventory import Workspace

# The set_stats keys of roles/pypiserver/tasks/publish.yml (playbooks/static-publish.yml), tasks/yank.yml
# (playbooks/yank.yml) and playbooks/static-list.yml: a report or a list per host, keyed by host name.
PUBLISHED_DATA = "pyhost_published"
YANKED_DATA = "pyhost_yanked"
FILES_DATA = "pyhost_static_files"
CONFLICT_MARK = "different content"


class HostTarget(Target):
    """The packages directory and static pages of a provisioned index server, reached through Ansible."""

    def __init__(self, workspace: Workspace, host: str, console: Console | None = None) -> None:
        super().__init__(None)
        workspace.require_host(host)
        if host not in workspace.index_servers():
            raise PyhostError(f"host {host} is not in the index_servers group of {workspace.path}")
        self.workspace = workspace
        self.host = host
        self.domain = workspace.domain(host)
        self.console = console or Console(stderr=True)

    def describe(self) -> str:
        return f"host {self.host} (https://{self.domain}/)"

    def default_base_url(self) -> str:
        return f"https://{self.domain}"

    def client_hints(self, projects: Sequence[str]) -> list[str]:
        # The index needs credentials for reads: a user's name and read token (pyhost add-user, pyhost token).
        url = f"https://USER:READ-TOKEN@{self.domain}/simple/"
        return [
            f"  pip install --index-url {url} {' '.join(projects)}",
            f"  (pip's settings for a user: pyhost client-config --host {self.host} --user USER --tool pip)",
        ]

    def _run(
        self,
        playbook: str,
        title: str,
        extravars: dict[str, Any] | None = None,
        action: str = "publishing to",
    ) -> results.RunResult:
        # Nothing on this machine changes, so no ping first: an unreachable host fails the run, in one line.
        result = runner.run_playbook(
            self.workspace,
            content.playbook(playbook),
            limit=self.host,
            extravars=extravars,
            console=self.console,
            title=title,
        )
        runner.raise_unreachable(self.workspace, result)
        if not result.ok:
            reason = result.failures[0].message if result.failures else f"exit code {result.rc}"
            raise PyhostError(self._explain(reason, action))
        return result

    def _explain(self, reason: str, action: str = "publishing to") -> str:
        # The generator's own one-line errors, without Ansible's wrapping.
        marker = "indexgen: error: "
        if marker in reason:
            reason = reason.split(marker, 1)[1].strip()
            if CONFLICT_MARK in reason:
                reason += "; bump the version (or a build tag) and publish again"
        return f"{action} {self.describe()} failed: {reason}"

    def publish(self, dists: Sequence[LocalDist]) -> PublishReport:
        with tempfile.TemporaryDirectory(prefix="pyhost-publish-") as scratch:
            # One archive travels and is unpacked on the server, whatever the number of files.
            archive = Path(scratch) / "dists.tar"
            with tarfile.open(archive, "w") as tar:
                for dist in dists:
                    _add_file(tar, dist)
            result = self._run(
                "static-publish.yml",
                f"Publishing {len(dists)} file(s) to {self.host}",
                {"pypiserver_publish_archive": str(archive)},
            )
        done = (result.data.get(PUBLISHED_DATA) or {}).get(self.host)
        if not isinstance(done, dict):
            raise PyhostError(f"publishing to {self.describe()} reported nothing: run it again with -v")
        _require_placed(dists, done, self.describe())
        return PublishReport(
            self.index_url(),
            uploaded=list(done.get("added", [])),
            unchanged=list(done.get("unchanged", [])),
            projects=sorted({dist.info.project for dist in dists}),
            skipped=dict(done.get("skipped", {})),
        )

    def set_yanked(self, project: str, version: str, yanked: bool | str) -> list[str]:
        verb = "yanking" if yanked is not False else "unyanking"
        extravars = {
            "pypiserver_yank_project": project,
            "pypiserver_yank_version": version,
            "pypiserver_yank_state": "yanked" if yanked is not False else "unyanked",
            "pypiserver_yank_reason": yanked if isinstance(yanked, str) else "",
        }
        title = f"{verb.capitalize()} {project} {version} on {self.host}"
        result = self._run("yank.yml", title, extravars, action=f"{verb} {project} {version} on")
        done = (result.data.get(YANKED_DATA) or {}).get(self.host)
        if not isinstance(done, dict):
            raise PyhostError(f"{verb} on {self.describe()} reported nothing: run it again with -v")
        return list(done.get("files", []))

    def filenames(self) -> list[str]:
        result = self._run("static-list.yml", f"Listing the packages of {self.host}")
        listed = (result.data.get(FILES_DATA) or {}).get(self.host) or []
        return [str(name) for name in listed if name]


def _add_file(tar: tarfile.TarFile, dist: LocalDist) -> None:
    """Add the file's content as a regular member: a symbolic link (a dist/ of links) travels as the file it
    points to, never as a link that the server would place, or skip when its target is missing there."""
    with dist.path.open("rb") as file:
        member = tar.gettarinfo(arcname=dist.info.filename, fileobj=file)
        if not member.isfile():
            raise PyhostError(f"{dist.path}: not a regular file; pass wheel and sdist files")
        member.mode, member.uid, member.gid, member.uname, member.gname = 0o644, 0, 0, "", ""
        tar.addfile(member, file)


def _require_placed(dists: Sequence[LocalDist], done: dict[str, Any], where: str) -> None:
    """Every file given is now in the index (added, or there with the same content), or the publish fails."""
    placed = set(done.get("added", [])) | set(done.get("unchanged", []))
    skipped = dict(done.get("skipped", {}))
    missing = [dist.info.filename for dist in dists if dist.info.filename not in placed]
    if missing:
        reasons = ", ".join(f"{name} ({skipped[name]})" if name in skipped else name for name in missing)
        raise PyhostError(f"publishing to {where} did not place {reasons}")
