"""pyhost.index.indexgen: upload times (PEP 700), yanks (PEP 592), their records and PEP 440 version order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

from pyhost.index import indexgen
from tests.integration import conftest_static as helpers
from tests.unit.test_indexgen import INDEXGEN, Anchors, sample

REASON = 'broken "build" <script>alert(1)</script> & more'
OLD = 1_600_000_000  # 2020-09-13T12:26:40Z, an mtime from before records existed


def page_json(simple: Path, project: str = "pkg-a") -> dict:
    return json.loads((simple / project / "index.v1+json").read_bytes())


def entries(simple: Path, project: str = "pkg-a") -> dict[str, dict]:
    return {entry["filename"]: entry for entry in page_json(simple, project)["files"]}


def index_with(tmp_path: Path, *versions: str, old: bool = False) -> tuple[Path, Path, list[Path]]:
    """packages/ holding a wheel of pkg-a per version (from before records when `old`), and its pages."""
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    wheels = [helpers.build_wheel(packages, "pkg-a", version) for version in versions]
    for wheel in wheels if old else []:
        os.utime(wheel, (OLD, OLD))
    indexgen.generate(packages, simple)
    return packages, simple, wheels


# ---------------------------------------------------------------- page format


def test_html_marks_a_yank_with_its_reason_escaped_and_carries_the_upload_time() -> None:
    files = [
        sample("pkg_a-1.0.tar.gz", yanked=REASON, upload_time="2026-12-01T23:05:30.123456Z"),
        sample("pkg_a-2.0.tar.gz", yanked=True),
        sample("pkg_a-3.0.tar.gz"),
    ]
    page = indexgen.render_project_html("pkg-a", files, "../../packages/")
    assert b"<script>" not in page
    links = Anchors(page).links
    # An HTML parser (an installer's) gets the reason back exactly, quotes and all.
    assert links["pkg_a-1.0.tar.gz"]["data-yanked"] == REASON
    assert links["pkg_a-1.0.tar.gz"]["data-upload-time"] == "2026-12-01T23:05:30.123456Z"
    assert links["pkg_a-2.0.tar.gz"]["data-yanked"] == ""  # PEP 592: yanked, no reason
    assert "data-yanked" not in links["pkg_a-3.0.tar.gz"]
    assert "data-upload-time" not in links["pkg_a-3.0.tar.gz"]


def test_json_carries_upload_time_and_yank_as_pep_700_and_592_say() -> None:
    files = [
        sample("pkg_a-1.0.tar.gz", yanked=REASON, upload_time="2026-12-01T23:05:30.123456Z"),
        sample("pkg_a-2.0.tar.gz", yanked=True, upload_time="2026-12-02T00:00:00.000000Z"),
        sample("pkg_a-3.0.tar.gz"),
    ]
    page = json.loads(indexgen.render_project_json("pkg-a", files, "../../packages/"))
    assert Version(page["meta"]["api-version"]) >= Version("1.1")
    first, second, third = page["files"]
    assert first["yanked"] == REASON and first["upload-time"] == "2026-12-01T23:05:30.123456Z"
    assert second["yanked"] is True
    assert third["yanked"] is False and "upload-time" not in third


def test_upload_time_is_utc_iso_8601_with_microseconds_and_z() -> None:
    stamp = indexgen.now()
    assert len(stamp) == len("2026-12-01T23:05:30.123456Z") and stamp.endswith("Z")
    assert stamp[10] == "T" and stamp[19] == "."
    parsed = indexgen.parse_time(stamp)
    assert parsed is not None and parsed.utcoffset().total_seconds() == 0
    assert indexgen.parse_time("2026-12-01T23:05:30") is None  # no zone: not an upload time


def test_cache_keeps_upload_time_and_yank() -> None:
    files = [sample("pkg_a-1.0.tar.gz", yanked=REASON, upload_time="2026-12-01T23:05:30.123456Z")]
    page = indexgen.render_project_json("pkg-a", files, "")
    assert indexgen.files_from_json(page, "pkg-a") == {files[0].filename: files[0]}


VERSIONS = [
    "1.10", "1.9", "1.0", "1.0.0.post1", "1.0.post0", "1.0-1", "1.0rc1", "1.0c2", "1.0a1", "1.0b1",
    "1.0.dev1", "1.0a1.dev1", "1.0+local.7", "1.0+local.abc", "1.0+2", "1!0.5", "2.0", "1.1.dev0",
    "1.0.1", "1.0.0",
    "1.0rc1.post1", "0.9", "10.0", "1.0.post1.dev2", "1.0A2", "1.0-beta.3", "1.0_preview4",
]  # fmt: skip


def test_versions_follow_pep_440_order_as_packaging_does() -> None:
    files = [sample(f"pkg_a-{v}.tar.gz") for v in ["1.9", "1.10", "1.0rc1", "1.0", "1!0.1", "1.0.post1"]]
    page = json.loads(indexgen.render_project_json("pkg-a", files, ""))
    assert page["versions"] == ["1.0rc1", "1.0", "1.0.post1", "1.9", "1.10", "1!0.1"]
    assert sorted(VERSIONS, key=indexgen.version_key) == sorted(VERSIONS, key=Version)
    for a in VERSIONS:
        for b in VERSIONS:
            assert (indexgen.version_key(a) == indexgen.version_key(b)) == (Version(a) == Version(b)), (a, b)


# ---------------------------------------------------------------- records


def test_a_record_is_made_once_and_survives_regeneration(tmp_path: Path) -> None:
    packages, simple, [wheel] = index_with(tmp_path, "1.0", old=True)
    stamp = entries(simple)[wheel.name]["upload-time"]
    # A file from before records: its mtime, once.
    assert stamp == "2020-09-13T12:26:40.000000Z"
    record = json.loads(indexgen.record_path(packages, wheel.name).read_bytes())
    assert record == {"sha256": indexgen.sha256_of(wheel), "upload-time": stamp, "yanked": False}

    os.utime(wheel, (OLD + 86400, OLD + 86400))  # a copy or a restore that changes the mtime
    indexgen.generate(packages, simple)  # every page again, as the service's start does
    indexgen.generate(packages, simple, ["pkg-a"], refresh=[wheel.name])  # as after an upload
    assert entries(simple)[wheel.name]["upload-time"] == stamp
    for page in simple.rglob("index*"):
        page.unlink()  # pages are not backed up: they come back from the records
    indexgen.generate(packages, simple)
    assert entries(simple)[wheel.name]["upload-time"] == stamp


def test_a_new_file_gets_the_time_it_was_stored(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    indexgen.generate(packages, simple)
    before = indexgen.now()
    wheel = helpers.build_wheel(packages, "pkg-a", "1.0")  # as an upload stores it
    indexgen.generate(packages, simple, ["pkg-a"], refresh=[wheel.name])
    assert before <= entries(simple)[wheel.name]["upload-time"] <= indexgen.now()


def test_an_import_records_its_own_time_not_the_files_mtime(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    staged = packages / ".incoming"
    staged.mkdir(parents=True)
    wheel = helpers.build_wheel(staged, "pkg-a", "1.0")
    os.utime(wheel, (OLD, OLD))  # as the archive from the controller left it
    before = indexgen.now()
    indexgen.add_files(packages, simple, [wheel])
    assert before <= entries(simple)[wheel.name]["upload-time"] <= indexgen.now()


def test_another_file_under_a_deleted_ones_name_starts_a_new_record(tmp_path: Path) -> None:
    packages, simple, [wheel] = index_with(tmp_path, "1.0", old=True)
    indexgen.set_yanked(packages, simple, "pkg-a", "1.0", "bad")
    wheel.unlink()
    indexgen.generate(packages, simple, ["pkg-a"])
    helpers.build_wheel(packages, "pkg-a", "1.0", requires_python=">=3.9")  # other bytes, same name
    indexgen.generate(packages, simple, ["pkg-a"], refresh=[wheel.name])
    entry = entries(simple)[wheel.name]
    assert entry["yanked"] is False and entry["upload-time"] > "2021"


def test_the_full_regeneration_drops_records_of_files_that_are_gone(tmp_path: Path) -> None:
    packages, simple, [gone, kept] = index_with(tmp_path, "1.0", "2.0")
    gone.unlink()
    indexgen.generate(packages, simple)
    assert sorted(p.name for p in (packages / indexgen.RECORDS_DIR).iterdir()) == [kept.name + ".json"]


def test_a_broken_record_is_replaced_instead_of_breaking_the_page(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    wheel = helpers.build_wheel(packages, "pkg-a", "1.0")
    os.utime(wheel, (OLD, OLD))
    record = indexgen.record_path(packages, wheel.name)
    record.parent.mkdir()
    record.write_text('{"upload-time": "yesterday"')
    indexgen.generate(packages, simple)
    assert entries(simple)[wheel.name]["upload-time"] == "2020-09-13T12:26:40.000000Z"


# ---------------------------------------------------------------- yanking


def test_yank_and_unyank_change_the_pages_and_nothing_else(tmp_path: Path) -> None:
    packages, simple, [wheel, other] = index_with(tmp_path, "1.0.0", "2.0")
    sdist = helpers.build_sdist(packages, "pkg-a", "1.0.0")
    indexgen.generate(packages, simple, gzip_pages=True)
    stamps = {name: entry["upload-time"] for name, entry in entries(simple).items()}

    names = indexgen.set_yanked(packages, simple, "PKG_A", "1.0", REASON, gzip_pages=True)
    assert sorted(names) == sorted([wheel.name, sdist.name])  # 1.0 is 1.0.0 (PEP 440)
    yanked = entries(simple)
    assert yanked[wheel.name]["yanked"] == yanked[sdist.name]["yanked"] == REASON
    assert yanked[other.name]["yanked"] is False
    assert {name: entry["upload-time"] for name, entry in yanked.items()} == stamps
    links = Anchors((simple / "pkg-a" / "index.html").read_bytes()).links
    assert links[wheel.name]["data-yanked"] == REASON and "data-yanked" not in links[other.name]
    # A yank survives regenerating every page, the way the service's start does.
    indexgen.generate(packages, simple, gzip_pages=True)
    assert entries(simple)[wheel.name]["yanked"] == REASON

    indexgen.set_yanked(packages, simple, "pkg-a", "1.0.0", False, gzip_pages=True)
    assert {entry["yanked"] for entry in entries(simple).values()} == {False}
    assert {name: entry["upload-time"] for name, entry in entries(simple).items()} == stamps


def test_yanking_what_the_index_does_not_have_says_what_it_has(tmp_path: Path) -> None:
    packages, simple, _ = index_with(tmp_path, "1.9", "1.10")
    before = {p: p.read_bytes() for p in simple.rglob("index*")}
    with pytest.raises(indexgen.NotFound, match=r"no files of pkg-a 3\.0: it has 1\.9, 1\.10$"):
        indexgen.set_yanked(packages, simple, "pkg-a", "3.0", True)
    with pytest.raises(indexgen.NotFound, match="the index has no such project"):
        indexgen.set_yanked(packages, simple, "pkg-b", "1.0", True)
    with pytest.raises(indexgen.InvalidDistribution, match="not a valid PEP 440 version"):
        indexgen.set_yanked(packages, simple, "pkg-a", "one", True)
    assert {p: p.read_bytes() for p in simple.rglob("index*")} == before


def test_yank_command_prints_json_and_fails_in_one_line(tmp_path: Path) -> None:
    packages, simple, [wheel] = index_with(tmp_path, "1.0")
    command = [sys.executable, "-I", str(INDEXGEN), "--packages-dir", str(packages), "--output", str(simple)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], capture_output=True, text=True, check=False)

    done = run("--yank", "pkg-a", "1.0", "--reason", "  use\n 1.1 ")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"files": [wheel.name], "yanked": "use 1.1"}
    assert entries(simple)[wheel.name]["yanked"] == "use 1.1"
    assert json.loads(run("--unyank", "pkg-a", "1.0").stdout)["yanked"] is False
    assert json.loads(run("--yank", "pkg-a", "1.0").stdout)["yanked"] is True
    missing = run("--yank", "pkg-a", "2.0")
    assert missing.returncode == 4
    assert missing.stderr == "indexgen: error: no files of pkg-a 2.0: it has 1.0\n"
    long_reason = run("--yank", "pkg-a", "1.0", "--reason", "x" * 1001)
    assert long_reason.returncode == 4 and long_reason.stderr.count("\n") == 1
    assert run("--unyank", "pkg-a", "1.0", "--reason", "why").returncode == 2


def test_the_full_regeneration_reads_every_record_again(tmp_path: Path) -> None:
    """A yank recorded but not on the pages yet (its run stopped in between) shows after a restart."""
    packages, simple, [wheel] = index_with(tmp_path, "1.0")
    record = indexgen.read_record(packages, wheel.name)
    assert record is not None
    indexgen.write_record(packages, wheel.name, indexgen.Record(record.upload_time, record.sha256, "late"))
    indexgen.generate(packages, simple, ["pkg-a"])  # a project's regeneration trusts its page
    assert entries(simple)[wheel.name]["yanked"] is False
    indexgen.generate(packages, simple)
    assert entries(simple)[wheel.name]["yanked"] == "late"
