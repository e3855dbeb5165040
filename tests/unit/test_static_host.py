"""pyhost.static_host: what `static publish --host` sends to the server, and when it reports success.

The server side is faked by what playbooks/static-publish.yml does with the archive: unpack it into a staging
directory and run the page generator's --add on it (indexgen.main, the same code as on the server).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pyhost import indexgen, runner, static
from pyhost.errors import PyhostError
from pyhost.static_host import PUBLISH_TASK, HostTarget
from tests.integration import conftest_static as helpers


class FakeServer(HostTarget):
    """A HostTarget whose playbook run is done here, into `root` (packages/, simple/, incoming/)."""

    def __init__(self, root: Path) -> None:
        static.Target.__init__(self, None)
        self.host, self.domain, self.root = "srv", "pypi.example.test", root
        for name in ("packages", "simple", "incoming"):
            (root / name).mkdir(parents=True)

    def _run(self, playbook: str, title: str, extravars: dict[str, Any] | None = None) -> runner.RunResult:
        assert extravars is not None
        stage = self.root / "incoming"
        with tarfile.open(extravars["pypiserver_publish_archive"]) as tar:
            tar.extractall(stage, filter="tar")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = indexgen.main(
                ["--packages-dir", str(self.root / "packages"), "--output", str(self.root / "simple"),
                 "--add", str(stage)]
            )  # fmt: skip
        assert code == 0
        return runner.RunResult(
            rc=0, status="successful", results={(self.host, PUBLISH_TASK): {"stdout": out.getvalue()}}
        )


def test_a_symlinked_dist_is_published_as_its_file(tmp_path: Path) -> None:
    (tmp_path / "build").mkdir()
    real = helpers.build_wheel(tmp_path / "build", "pkg-a", "1.0")
    (tmp_path / "dist").mkdir()
    link = tmp_path / "dist" / real.name
    link.symlink_to(Path("..") / "build" / real.name)  # as a dist/ of links made by a build tool
    server = FakeServer(tmp_path / "server")

    report = server.publish(static.load_distributions([link]))

    placed = server.root / "packages" / real.name
    assert report.uploaded == [real.name]
    assert not placed.is_symlink() and placed.read_bytes() == real.read_bytes()


def test_a_given_file_that_was_not_placed_fails_the_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FakeServer(tmp_path / "server")
    dists = static.load_distributions([helpers.build_wheel(tmp_path, "pkg-a", "1.0")])
    # The server's generator skipping the file (as it does with one it cannot read) must not read as success.
    monkeypatch.setattr(indexgen, "add_files", lambda *args, **kwargs: indexgen.Added())

    with pytest.raises(PyhostError, match=r"did not place pkg_a-1\.0-py3-none-any\.whl$"):
        server.publish(dists)
