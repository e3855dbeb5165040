"""restic backups to S3-compatible storage: roles/backup's wrapper and script against a real S3 API (moto on
loopback), from an empty bucket to a restored file, with no secret in any output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration import conftest_static as helpers
from tests.unit.test_backup_role import PASSWORD, render, run

pytestmark = pytest.mark.integration
SECRET_KEY = "moto-Secret-Sentinel-0042"


def test_backup_and_restore_through_s3(tmp_path: Path) -> None:
    if shutil.which("restic") is None:
        pytest.fail("restic is not installed here: `make prereqs` installs it (apt-get install restic)")
    packages = tmp_path / "packages"
    (packages / ".pyhost-records").mkdir(parents=True)
    release = packages / "demo-1.0-py3-none-any.whl"
    release.write_bytes(b"a release\x00\x01")
    (packages / ".pyhost-records/demo-1.0-py3-none-any.whl.json").write_text('{"uploaded": 1}')
    with helpers.moto_s3(public_bucket=None) as endpoint:
        done = render(
            tmp_path,
            pyhost_backup_repository=f"s3:{endpoint}/pyhost-backups/pypi",
            pyhost_backup_environment={
                "AWS_ACCESS_KEY_ID": "AKIAPYHOSTTEST",
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1",
            },
            backup_packages_dir=str(packages),
            backup_config_dir=str(tmp_path / "config"),
            backup_letsencrypt_dir=str(tmp_path / "letsencrypt"),
        )
        assert done.returncode == 0, done.stdout[-2000:]
        restic, script = str(tmp_path / "sbin/pyhost-restic"), str(tmp_path / "sbin/pyhost-backup")
        outputs = [run(tmp_path, restic, "init"), run(tmp_path, script, "snapshot")]
        assert [proc.returncode for proc in outputs] == [0, 0], [proc.stderr for proc in outputs]
        listed = helpers.s3_client(endpoint).list_objects_v2(Bucket="pyhost-backups", Prefix="pypi/")
        assert any(obj["Key"] == "pypi/config" for obj in listed.get("Contents", []))
        snapshots = json.loads(run(tmp_path, restic, "snapshots", "--json").stdout)
        assert len(snapshots) == 1
        target = tmp_path / "restored"
        outputs.append(run(tmp_path, restic, "restore", snapshots[0]["id"], "--target", str(target)))
        assert outputs[-1].returncode == 0, outputs[-1].stderr
    assert (target / str(release).lstrip("/")).read_bytes() == release.read_bytes()
    record = target / str(packages).lstrip("/") / ".pyhost-records/demo-1.0-py3-none-any.whl.json"
    assert record.read_text() == '{"uploaded": 1}'
    for proc in outputs:
        assert SECRET_KEY not in proc.stdout + proc.stderr
        assert PASSWORD not in proc.stdout + proc.stderr
