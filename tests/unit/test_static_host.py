"""`pyhost static publish|list --host`: the real playbooks on a local connection, results read from set_stats.

The "server" is this machine: the packages directory and the application directory are temporary, found
through the shared facts (pyhost_data_dir) and the pypiserver role's options, as an inventory would set them.
"""

from __future__ import annotations

import getpass
import grp
import json
import os
import sys
from pathlib import Path

import pytest
from rich.console import Console

from pyhost.ansible.results import RunResult
from pyhost.errors import PyhostError
from pyhost.index import indexgen
from pyhost.index.host_target import PUBLISHED_DATA, HostTarget
from pyhost.index.targets import load_distributions
from pyhost.workspace.inventory import Workspace
from tests.integration.conftest_static import build_sdist, build_wheel

from .conftest import LOCAL_HOST_VARS, make_workspace

ROOT = Path(__file__).resolve().parents[2]


def server_workspace(tmp_path: Path) -> tuple[Workspace, Path]:
    """A workspace whose host is this machine, with its data under tmp_path/srv (pyhost_data_dir)."""
    data = tmp_path / "srv"
    for name in ("packages", "simple", "metadata"):
        (data / name).mkdir(parents=True)
    app = tmp_path / "app"
    (app / ".venv" / "bin").mkdir(parents=True)
    (app / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (app / "pyhost_indexgen.py").symlink_to(Path(indexgen.__file__).resolve())
    path = make_workspace(
        tmp_path / "ws",
        **LOCAL_HOST_VARS,
        pyhost_data_dir=str(data),
        pypiserver_app_dir=str(app),
        pypiserver_user=getpass.getuser(),
        pypiserver_readers_group=grp.getgrgid(os.getgid()).gr_name,
    )
    return Workspace(path), data


def server_target(tmp_path: Path) -> tuple[HostTarget, Path, Path]:
    """The target of `server_workspace`, its data directory, and an empty directory for distributions."""
    workspace, data = server_workspace(tmp_path)
    dist = tmp_path / "dist"
    dist.mkdir()
    return HostTarget(workspace, "theviji", Console(stderr=True, quiet=True)), data, dist


def test_list_reads_the_packages_directory_of_the_shared_data_dir(tmp_path: Path) -> None:
    workspace, data = server_workspace(tmp_path)
    (data / "packages" / "demo-1.0.tar.gz").write_bytes(b"x")
    (data / "packages" / ".pyhost-incoming-x").mkdir()
    (data / "packages" / ".hidden.whl").write_bytes(b"x")
    target = HostTarget(workspace, "theviji", Console(stderr=True, quiet=True))
    assert target.filenames() == ["demo-1.0.tar.gz"]


@pytest.mark.skipif(os.geteuid() != 0, reason="publish.yml runs the generator with runuser, which needs root")
def test_publish_reports_what_the_generator_added(tmp_path: Path) -> None:
    target, data, dist = server_target(tmp_path)
    files = [build_wheel(dist, "demo-pkg", "1.0"), build_sdist(dist, "demo-pkg", "1.0")]

    report = target.publish(load_distributions(files))
    assert sorted(report.uploaded) == sorted(path.name for path in files)
    assert report.unchanged == []
    assert (data / "simple" / "demo-pkg" / "index.html").is_file()

    again = target.publish(load_distributions(files))
    assert again.uploaded == []
    assert sorted(again.unchanged) == sorted(path.name for path in files)
    assert sorted(target.filenames()) == sorted(path.name for path in files)


@pytest.mark.skipif(os.geteuid() != 0, reason="yank.yml runs the generator with runuser, which needs root")
def test_yank_reports_the_files_the_generator_marked(tmp_path: Path) -> None:
    target, data, dist = server_target(tmp_path)
    target.publish(load_distributions([build_wheel(dist, "demo-pkg", v) for v in ("1.0", "2.0")]))

    assert target.set_yanked("Demo_Pkg", "2.0.0", "broken") == ["demo_pkg-2.0-py3-none-any.whl"]
    page = json.loads((data / "simple" / "demo-pkg" / indexgen.JSON_PAGE).read_bytes())
    assert [entry["yanked"] for entry in page["files"]] == [False, "broken"]
    assert target.set_yanked("demo-pkg", "2.0", False) == ["demo_pkg-2.0-py3-none-any.whl"]
    page = json.loads((data / "simple" / "demo-pkg" / indexgen.JSON_PAGE).read_bytes())
    assert [entry["yanked"] for entry in page["files"]] == [False, False]


@pytest.mark.skipif(os.geteuid() != 0, reason="publish.yml runs the generator with runuser, which needs root")
def test_a_symlinked_dist_is_published_as_its_file(tmp_path: Path) -> None:
    target, data, dist = server_target(tmp_path)
    (tmp_path / "build").mkdir()
    real = build_wheel(tmp_path / "build", "pkg-a", "1.0")
    link = dist / real.name
    link.symlink_to(Path("..") / "build" / real.name)  # as a dist/ of links made by a build tool

    report = target.publish(load_distributions([link]))

    placed = data / "packages" / real.name
    assert report.uploaded == [real.name]
    assert not placed.is_symlink() and placed.read_bytes() == real.read_bytes()


class SkippingServer(HostTarget):
    """A HostTarget whose server's generator placed nothing (as with a file it cannot read) and said so."""

    def _run(self, playbook: str, title: str, extravars: object = None, action: str = "") -> RunResult:
        report = {"added": [], "unchanged": [], "skipped": {}}
        return RunResult(rc=0, status="successful", data={PUBLISHED_DATA: {self.host: report}})


def test_a_given_file_that_was_not_placed_fails_the_publish(tmp_path: Path) -> None:
    workspace, _ = server_workspace(tmp_path)
    target = SkippingServer(workspace, "theviji", Console(stderr=True, quiet=True))
    dists = load_distributions([build_wheel(tmp_path, "pkg-a", "1.0")])

    with pytest.raises(PyhostError, match=r"did not place pkg_a-1\.0-py3-none-any\.whl$"):
        target.publish(dists)
