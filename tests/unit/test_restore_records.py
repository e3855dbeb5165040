"""Upload times and yanks survive a backup and a restore byte for byte: the restore drill's data path, here.

The index's own code changes the packages directory (an upload's regeneration, a yank as `pyhost yank` runs
it), the backup role's script takes the snapshot with this machine's restic, restic restores it to a staging
directory and the restore job's own script (roles/backup/tasks/restore.yml) puts it in place; then every page
is rebuilt as pypiserver's start does. molecule/default/verify/backup.yml runs the same on a real server.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import yaml

from pyhost import content
from pyhost.index import indexgen
from tests.integration.conftest_static import build_wheel
from tests.unit.test_backup_role import needs_restic, render_local, run


def put_script() -> str:
    """The restore job's script that puts a restored snapshot in place."""
    tasks = yaml.safe_load((content.roles_dir() / "backup/tasks/restore.yml").read_text())
    block = next(task for task in tasks if "block" in task)["block"]
    put = next(task for task in block if task["name"].startswith("Put the packages"))
    return put["vars"]["__backup_put_script"]


def checksums(packages: Path) -> dict[str, str]:
    """Every file under packages/ (records included) with its sha256, as the drill takes them."""
    return {
        str(path.relative_to(packages)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(packages.rglob("*"))
        if path.is_file() and not path.name.startswith(".indexgen")
    }


def upload(server: Path, name: str, version: str) -> str:
    """A file stored as the app stores an upload, then its project's pages, as the app regenerates them."""
    wheel = build_wheel(server / "incoming", name, version)
    shutil.copy2(wheel, server / "packages" / wheel.name)
    indexgen.generate(server / "packages", server / "simple", [name], refresh=[wheel.name])
    return wheel.name


def start(server: Path) -> None:
    """pypiserver's start: every page rebuilt from the packages directory (ExecStartPre)."""
    indexgen.generate(server / "packages", server / "simple", metadata_dir=server / "metadata")


@needs_restic
def test_upload_times_and_yanks_are_byte_identical_after_a_restore(tmp_path: Path) -> None:
    server = tmp_path / "server"
    for folder in ("packages", "simple", "metadata", "incoming"):
        (server / folder).mkdir(parents=True)
    done = render_local(tmp_path, server / "packages")
    assert done.returncode == 0, done.stdout[-2000:]
    restic, script = str(tmp_path / "sbin/pyhost-restic"), str(tmp_path / "sbin/pyhost-backup")
    assert run(tmp_path, restic, "init").returncode == 0

    first = upload(server, "drill-probe", "1.0")
    upload(server, "drill-probe", "2.0")
    indexgen.set_yanked(server / "packages", server / "simple", "drill-probe", "1.0", "pyhost backup drill")
    start(server)
    before = checksums(server / "packages")
    page_before = (server / "simple/drill-probe/index.v1+json").read_bytes()
    assert f".pyhost-records/{first}.json" in before
    assert run(tmp_path, script, "snapshot").returncode == 0

    # The server dies: a new one has empty data directories.
    for folder in ("packages", "simple", "metadata"):
        shutil.rmtree(server / folder)
        (server / folder).mkdir()
    staging = tmp_path / "staging"
    assert run(tmp_path, restic, "restore", "latest", "--target", str(staging)).returncode == 0
    owner = f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"
    subprocess.run(
        [
            "sh",
            "-euc",
            put_script(),
            "sh",
            str(staging),
            str(server / "packages"),
            owner,
            str(server / "packages"),
        ],
        check=True,
    )
    start(server)

    assert checksums(server / "packages") == before
    assert (server / "simple/drill-probe/index.v1+json").read_bytes() == page_before
    record = indexgen.read_record(server / "packages", first)
    assert record is not None and record.yanked == "pyhost backup drill"


def test_a_record_the_index_cannot_read_is_rewritten_at_the_start(tmp_path: Path) -> None:
    """Why the drill once failed: it wrote a yank by hand in an older format ({"yanked": ...}, no sha256 and
    no upload time), which the start's regeneration treats as no record and replaces, so it differed after
    the restore. The drill now yanks with `pyhost yank`."""
    server = tmp_path / "server"
    for folder in ("packages", "simple", "incoming"):
        (server / folder).mkdir(parents=True)
    name = upload(server, "drill-probe", "1.0")
    stand_in = indexgen.record_path(server / "packages", name)
    stand_in.write_text('{"yanked": "pyhost backup drill"}')
    start(server)
    record = indexgen.read_record(server / "packages", name)
    assert record is not None and record.yanked is False
    assert stand_in.read_text() != '{"yanked": "pyhost backup drill"}'
