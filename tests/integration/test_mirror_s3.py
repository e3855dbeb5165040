"""The S3 read mirror (pyhost.index.mirror, as the server runs it) against a real S3 API: moto on loopback.

A server's packages directory is made by the server's own code (indexgen.add_files for an upload,
indexgen.set_yanked for a yank); each push runs as the mirror unit runs it, in a subprocess with the
credentials in its environment. pip then installs from the bucket alone, as when the server is down.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pyhost.index import indexgen, mirror
from tests.integration import conftest_static as helpers
from tests.unit import test_mirror_role as mirror_role

pytestmark = pytest.mark.integration
PREFIX = "mirror"
SECRET = helpers.AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"]


class Server:
    """A server's packages and pages directories, changed the way the index changes them."""

    def __init__(self, root: Path) -> None:
        self.packages, self.pages, self.incoming = root / "packages", root / "simple", root / "incoming"
        for folder in (self.packages, self.pages, self.incoming):
            folder.mkdir(parents=True)

    def upload(self, name: str, version: str) -> str:
        wheel = helpers.build_wheel(self.incoming, name, version)
        staged = self.packages / ".upload" / wheel.name
        staged.parent.mkdir(exist_ok=True)
        staged.write_bytes(wheel.read_bytes())
        indexgen.add_files(self.packages, self.pages, [staged])
        staged.unlink()
        return wheel.name

    def record(self, filename: str) -> dict[str, object]:
        return json.loads(indexgen.record_path(self.packages, filename).read_bytes())


def push(server: Server, endpoint: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pyhost.index.mirror",
            "--packages-dir",
            str(server.packages),
            "--target",
            f"s3://{helpers.BUCKET}/{PREFIX}",
            "--endpoint-url",
            endpoint,
            "--state",
            str(state),
        ],
        env=helpers.clean_env(**helpers.AWS_TEST_ENV),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def bucket_page(endpoint: str, project: str) -> dict[str, object]:
    """The project's page as an installer reads it from the bucket: anonymously, over HTTP."""
    url = f"{endpoint}/{helpers.BUCKET}/{PREFIX}/simple/{project}/"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_uploads_yanks_and_deletions_reach_the_mirror_and_pip_installs_from_it(tmp_path: Path) -> None:
    server, state = Server(tmp_path / "server"), tmp_path / "state/pushed.json"
    state.parent.mkdir()
    first = server.upload("mirror-demo", "1.0")
    outputs = []
    with helpers.moto_s3() as endpoint:
        outputs.append(push(server, endpoint, state))
        assert outputs[-1].returncode == 0, outputs[-1].stderr
        assert "1 uploaded" in outputs[-1].stdout
        page = bucket_page(endpoint, "mirror-demo")
        assert [(f["filename"], f["upload-time"], f["yanked"]) for f in page["files"]] == [
            (first, server.record(first)["upload-time"], False)
        ]

        second = server.upload("mirror-demo", "2.0")
        outputs.append(push(server, endpoint, state))
        assert "1 uploaded, 0 record(s) updated" in outputs[-1].stdout, outputs[-1].stderr
        index = f"{endpoint}/{helpers.BUCKET}/{PREFIX}/simple/"
        assert helpers.pip_install(index, tmp_path / "venv-1", "mirror-demo") == {"mirror-demo": "2.0"}

        indexgen.set_yanked(server.packages, server.pages, "mirror-demo", "2.0", "broken on Python 3.14")
        outputs.append(push(server, endpoint, state))
        assert "0 uploaded, 1 record(s) updated" in outputs[-1].stdout, outputs[-1].stderr
        yanked = {f["filename"]: f["yanked"] for f in bucket_page(endpoint, "mirror-demo")["files"]}
        assert yanked == {first: False, second: "broken on Python 3.14"}
        stored = helpers.s3_client(endpoint).get_object(
            Bucket=helpers.BUCKET, Key=f"{PREFIX}/packages/.pyhost-records/{second}.json"
        )
        assert json.loads(stored["Body"].read()) == server.record(second)
        assert helpers.pip_install(index, tmp_path / "venv-2", "mirror-demo") == {"mirror-demo": "1.0"}

        # Nothing changed: no page is written again.
        outputs.append(push(server, endpoint, state))
        assert "pages of 0 project(s)" in outputs[-1].stdout

        (server.packages / first).unlink()
        indexgen.generate(server.packages, server.pages)
        outputs.append(push(server, endpoint, state))
        assert "1 removed" in outputs[-1].stdout, outputs[-1].stderr
        assert [f["filename"] for f in bucket_page(endpoint, "mirror-demo")["files"]] == [second]
    for proc in outputs:
        assert SECRET not in proc.stdout + proc.stderr


def test_a_lost_state_pushes_every_record_again(tmp_path: Path) -> None:
    server, state = Server(tmp_path / "server"), tmp_path / "pushed.json"
    name = server.upload("mirror-demo", "1.0")
    with helpers.moto_s3() as endpoint:
        assert push(server, endpoint, state).returncode == 0
        indexgen.set_yanked(server.packages, server.pages, "mirror-demo", "1.0", True)
        state.unlink()
        done = push(server, endpoint, state)
        assert "0 uploaded, 1 record(s) updated" in done.stdout, done.stderr
        assert [f["yanked"] for f in bucket_page(endpoint, "mirror-demo")["files"]] == [True]
    assert json.loads(state.read_text()) == {
        name: hashlib.sha256(indexgen.record_path(server.packages, name).read_bytes()).hexdigest()
    }


def test_an_unreachable_mirror_fails_with_one_line_and_no_secret(tmp_path: Path) -> None:
    server = Server(tmp_path / "server")
    server.upload("mirror-demo", "1.0")
    done = push(server, "http://127.0.0.1:9", tmp_path / "pushed.json")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("pyhost-mirror: error: cannot reach http://127.0.0.1:9"), done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_the_code_the_role_installs_pushes_as_its_unit_runs_it(tmp_path: Path) -> None:
    """The role's files (as tests/unit/test_mirror_role.py renders them), run with the unit's command line,
    with the environment systemd reads from its credentials file."""
    server = Server(tmp_path / "server")
    server.upload("mirror-demo", "1.0")
    with helpers.moto_s3() as endpoint:
        settings = {
            "mirror_packages_dir": str(server.packages),
            "pyhost_mirror_target": f"s3://{helpers.BUCKET}/{PREFIX}",
            "pyhost_mirror_endpoint_url": endpoint,
            "pyhost_mirror_environment": {
                k: v for k, v in helpers.AWS_TEST_ENV.items() if k.startswith("AWS_") and "FILE" not in k
            },
        }
        (tmp_path / "role").mkdir()
        assert mirror_role.render(tmp_path / "role", **settings).returncode == 0
        unit = (tmp_path / "role/units/pyhost-mirror.service").read_text()
        command = shlex.split(next(line for line in unit.splitlines() if line.startswith("ExecStart=")))
        command[0] = command[0].removeprefix("ExecStart=")
        command[command.index("--state") + 1] = str(tmp_path / "pushed.json")
        env_file = (tmp_path / "role/etc/mirror.env").read_text()
        environment = dict(
            shlex.split(line)[0].split("=", 1) for line in env_file.splitlines() if line and line[0] != "#"
        )
        done = subprocess.run(
            command,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **environment},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "1 uploaded" in done.stdout
        # The role's copy ran, not the test venv's pyhost: its bytecode cache is beside it (under -I, Python
        # 3.11+ leaves the script's directory off sys.path unless the script puts it there).
        assert (tmp_path / "role/code/pyhost/index/__pycache__").is_dir()
        index = f"{endpoint}/{helpers.BUCKET}/{PREFIX}/simple/"
        assert helpers.pip_install(index, tmp_path / "venv", "mirror-demo") == {"mirror-demo": "1.0"}
    assert SECRET not in done.stdout + done.stderr


def test_a_new_server_leaves_the_mirror_to_readers_until_it_is_restored(tmp_path: Path) -> None:
    old = Server(tmp_path / "old")
    first = old.upload("mirror-demo", "1.0")
    new = Server(tmp_path / "new")
    with helpers.moto_s3() as endpoint:
        assert push(old, endpoint, tmp_path / "old.json").returncode == 0
        empty = push(new, endpoint, tmp_path / "new.json")
        assert empty.returncode == 0, empty.stderr
        assert "nothing to push" in empty.stdout
        # Half restored: one file back, another new one uploaded; the old server's file stays listed.
        second = new.upload("mirror-demo", "2.0")
        partial = push(new, endpoint, tmp_path / "new.json")
        assert "1 uploaded" in partial.stdout and "0 removed" in partial.stdout, partial.stderr
        listed = [f["filename"] for f in bucket_page(endpoint, "mirror-demo")["files"]]
    assert listed == [first, second]


class _Recorder:
    """A stand-in for the bucket: counts pushes, and lands an upload during the first, as a burst does."""

    def __init__(self, server: Server) -> None:
        self.server, self.pushes = server, 0

    def push(self, packages_dir: Path, state: dict[str, str]) -> mirror.Pushed:
        self.pushes += 1
        if self.pushes == 1:
            self.server.upload("mirror-demo", "2.0")
        return mirror.Pushed(uploaded=[f"round {self.pushes}"])


def test_changes_during_a_push_get_another_round(tmp_path: Path) -> None:
    server = Server(tmp_path / "server")
    server.upload("mirror-demo", "1.0")
    recorder = _Recorder(server)
    outcome = mirror.push_until_still(recorder, server.packages, {})  # type: ignore[arg-type]
    assert recorder.pushes == 2
    assert outcome.uploaded == ["round 1", "round 2"]
    quiet = _Recorder(server)
    quiet.pushes = 1  # no upload this time
    mirror.push_until_still(quiet, server.packages, {})  # type: ignore[arg-type]
    assert quiet.pushes == 2
