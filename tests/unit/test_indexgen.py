"""pyhost.index.indexgen: filename parsing, metadata extraction, page rendering and directory regeneration."""

from __future__ import annotations

import ast
import gzip
import hashlib
import html.parser
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from pyhost.index import indexgen
from tests.integration import conftest_static as helpers
from tests.unit import hostile

INDEXGEN = Path(indexgen.__file__)


class Anchors(html.parser.HTMLParser):
    """The <a> tags of a page, with their attributes, the way an installer's HTML parser sees them."""

    def __init__(self, page: bytes) -> None:
        super().__init__()
        self.links: dict[str, dict[str, str | None]] = {}
        self._current: dict[str, str | None] | None = None
        self.feed(page.decode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._current = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self.links[data] = self._current
            self._current = None


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("requests-2.32.3-py3-none-any.whl", ("requests", "2.32.3")),
        ("Foo.Bar_baz-1.0-1-py3-none-any.whl", ("foo-bar-baz", "1.0")),
        ("numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ("numpy", "2.0.0")),
        ("my_pkg-1.0rc1.tar.gz", ("my-pkg", "1.0rc1")),
        ("Legacy-Name-0.3.post1.zip", ("legacy-name", "0.3.post1")),
        ("pkg-1!2.0.dev3+local.1.tar.gz", ("pkg", "1!2.0.dev3+local.1")),
    ],
)
def test_parse_filename_gives_normalized_project_and_version(
    filename: str, expected: tuple[str, str]
) -> None:
    assert indexgen.parse_filename(filename) == expected


@pytest.mark.parametrize(
    "filename",
    [
        "notes.txt",
        "pkg-1.0.tar.bz2",
        "pkg-1.0-py3-none.whl",
        "pkg-1.0-x-py3-none-any.whl",
        "pkg-not.a.version-py3-none-any.whl",
        "pkg.tar.gz",
        "-1.0.tar.gz",
        "../pkg-1.0.tar.gz",
        ".pkg-1.0.tar.gz",
    ],
)
def test_parse_filename_rejects_what_is_not_a_distribution(filename: str) -> None:
    with pytest.raises(indexgen.InvalidDistribution):
        indexgen.parse_filename(filename)


def test_inspect_wheel_reads_requires_python_and_hashes_its_metadata(tmp_path: Path) -> None:
    wheel = helpers.build_wheel(tmp_path, "pkg-a", "1.0", requires_python=">=3.9, <4")
    dist, metadata = indexgen.inspect_distribution(wheel)
    with zipfile.ZipFile(wheel) as archive:
        assert metadata == archive.read("pkg_a-1.0.dist-info/METADATA")
    assert dist == indexgen.DistFile(
        filename=wheel.name,
        project="pkg-a",
        version="1.0",
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        size=wheel.stat().st_size,
        requires_python=">=3.9, <4",
        core_metadata_sha256=hashlib.sha256(metadata).hexdigest(),
    )


def test_inspect_sdist_reads_pkg_info_but_offers_no_pep658_metadata(tmp_path: Path) -> None:
    sdist = helpers.build_sdist(tmp_path, "pkg-a", "1.0", requires_python=">=3.10")
    dist, metadata = indexgen.inspect_distribution(sdist)
    assert b"Name: pkg-a" in metadata
    assert (dist.project, dist.version, dist.requires_python) == ("pkg-a", "1.0", ">=3.10")
    assert dist.core_metadata_sha256 is None


def test_inspect_zip_sdist(tmp_path: Path) -> None:
    path = tmp_path / "pkg_a-1.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("pkg_a-1.0/PKG-INFO", "Metadata-Version: 2.1\nName: pkg-a\nVersion: 1.0\n")
    dist, _ = indexgen.inspect_distribution(path)
    assert (dist.project, dist.requires_python) == ("pkg-a", None)


def test_inspect_rejects_broken_and_mismatched_archives(tmp_path: Path) -> None:
    not_zip = tmp_path / "pkg_a-1.0-py3-none-any.whl"
    not_zip.write_bytes(b"plain text")
    not_gzip = tmp_path / "pkg_a-1.0.tar.gz"
    not_gzip.write_bytes(b"plain text")
    no_metadata = tmp_path / "pkg_b-1.0-py3-none-any.whl"
    with zipfile.ZipFile(no_metadata, "w") as archive:
        archive.writestr("pkg_b.py", "")
    other_name = tmp_path / "elsewhere"
    other_name.mkdir()
    renamed = helpers.build_wheel(other_name, "pkg-c", "1.0").rename(tmp_path / "pkg_d-1.0-py3-none-any.whl")
    for path, reason in [
        (not_zip, "not a readable archive"),
        (not_gzip, "not a readable archive"),
        (no_metadata, "dist-info/METADATA"),
        (renamed, "dist-info/METADATA"),
    ]:
        with pytest.raises(indexgen.InvalidDistribution, match=reason):
            indexgen.inspect_distribution(path)


def test_metadata_naming_another_project_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pkg_a-1.0.tar.gz"
    helpers.build_sdist(tmp_path, "pkg-z", "1.0").rename(path)
    with pytest.raises(indexgen.InvalidDistribution, match="names project 'pkg-z'"):
        indexgen.inspect_distribution(path)


HOSTILE = {
    "encrypted METADATA": (hostile.encrypted_metadata, "pkg_a-1.0-py3-none-any.whl", "RuntimeError"),
    "compression method 97": (
        hostile.unknown_compression,
        "pkg_a-1.0-py3-none-any.whl",
        "NotImplementedError",
    ),
    "invalid UTF-8 member name": (
        hostile.invalid_utf8_name,
        "pkg_a-1.0-py3-none-any.whl",
        "UnicodeDecodeError",
    ),
    "15 MiB of headers": (hostile.header_bomb, "pkg_a-1.0-py3-none-any.whl", "larger than 1048576"),
    "10,001 headers in 30 KB": (
        lambda d, f: hostile.many_headers(d, f, 10_001),
        "pkg_a-1.0-py3-none-any.whl",
        "more than 10000 headers",
    ),
    "200,000 zip entries": (
        lambda d, f: hostile.many_zip_members(d, f, 200_000),
        "pkg_a-1.0-py3-none-any.whl",
        "more than 50000 members",
    ),
    "200,000 tar members": (
        lambda d, f: hostile.many_tar_members(d, f, 200_000),
        "pkg_a-1.0.tar.gz",
        "first 10000 members",
    ),
    "a 300 MiB tar member first": (
        lambda d, f: hostile.large_tar_member(d, f, 300 * 2**20),
        "pkg_a-1.0.tar.gz",
        "ends past byte 268435456",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_archives_are_one_invalid_distribution_each(tmp_path: Path, case: str) -> None:
    build, filename, reason = HOSTILE[case]
    path = build(tmp_path, filename)
    with pytest.raises(indexgen.InvalidDistribution, match=reason) as raised:
        indexgen.inspect_distribution(path)
    assert str(raised.value).startswith(filename)


def test_a_zip_just_under_the_member_limit_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indexgen, "MAX_ZIP_MEMBERS", 1003)
    # 1,000 filler entries and the wheel's own METADATA (the filler shares one name, as zips allow).
    path = hostile.many_zip_members(tmp_path, "pkg_a-1.0-py3-none-any.whl", 1000)
    assert indexgen.inspect_distribution(path)[0].project == "pkg-a"
    monkeypatch.setattr(indexgen, "MAX_ZIP_MEMBERS", 1000)
    with pytest.raises(indexgen.InvalidDistribution, match="more than 1000 members"):
        indexgen.inspect_distribution(path)


def test_tar_reading_stops_at_the_decompressed_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A member whose long name makes a pax header: tarfile reads such a header whole, whatever its size.
    monkeypatch.setattr(indexgen, "MAX_TAR_BYTES", 64 * 1024)
    path = tmp_path / "pkg_a-1.0.tar.gz"
    data = hostile.metadata("pkg-a", "1.0")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(tarfile.TarInfo("pkg_a-1.0/" + "x" * 100_000))
        info = tarfile.TarInfo("pkg_a-1.0/PKG-INFO")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(indexgen.InvalidDistribution, match="more than 65536 bytes before its PKG-INFO"):
        indexgen.inspect_distribution(path)
    monkeypatch.setattr(indexgen, "MAX_TAR_BYTES", 256 * 1024)
    assert indexgen.inspect_distribution(path)[0].project == "pkg-a"


def test_a_bomb_is_refused_quickly(tmp_path: Path) -> None:
    # The review measured 18 s for each of these; the limits stop reading long before.
    for build, filename in [
        (lambda d, f: hostile.many_tar_members(d, f, 200_000), "pkg_a-1.0.tar.gz"),
        (hostile.header_bomb, "pkg_b-1.0-py3-none-any.whl"),
    ]:
        path = build(tmp_path, filename)
        started = time.monotonic()
        with pytest.raises(indexgen.InvalidDistribution):
            indexgen.inspect_distribution(path)
        assert time.monotonic() - started < 2


def sample(filename: str, **fields: object) -> indexgen.DistFile:
    project, version = indexgen.parse_filename(filename)
    values: dict[str, object] = {"sha256": "ab" * 32, "size": 10, **fields}
    return indexgen.DistFile(filename, project, version, **values)  # type: ignore[arg-type]


def test_project_html_links_files_with_hash_requires_python_and_metadata() -> None:
    files = [
        sample("pkg_a-2.0-py3-none-any.whl", requires_python=">=3.8,<4", core_metadata_sha256="cd" * 32),
        sample("pkg_a-1.0.tar.gz"),
    ]
    links = Anchors(indexgen.render_project_html("pkg-a", files, "../../packages/")).links
    assert list(links) == ["pkg_a-1.0.tar.gz", "pkg_a-2.0-py3-none-any.whl"]
    wheel = links["pkg_a-2.0-py3-none-any.whl"]
    assert wheel["href"] == f"../../packages/pkg_a-2.0-py3-none-any.whl#sha256={'ab' * 32}"
    assert wheel["data-requires-python"] == ">=3.8,<4"
    assert wheel["data-core-metadata"] == wheel["data-dist-info-metadata"] == f"sha256={'cd' * 32}"
    sdist = links["pkg_a-1.0.tar.gz"]
    assert "data-core-metadata" not in sdist and "data-requires-python" not in sdist


def test_project_html_escapes_requires_python() -> None:
    page = indexgen.render_project_html("pkg-a", [sample("pkg_a-1.0.tar.gz", requires_python='<4,>=3"')], "")
    assert b'data-requires-python="&lt;4,&gt;=3&quot;"' in page


def test_project_json_follows_pep_691_and_700() -> None:
    files = [
        sample("pkg_a-2.0-py3-none-any.whl", requires_python=">=3.8", core_metadata_sha256="cd" * 32),
        sample("pkg_a-1.0.tar.gz", size=7),
    ]
    page = json.loads(indexgen.render_project_json("pkg-a", files, "../../packages/"))
    assert page["meta"] == {"api-version": "1.1"}
    assert page["name"] == "pkg-a"
    assert page["versions"] == ["1.0", "2.0"]
    sdist, wheel = page["files"]
    assert sdist == {
        "filename": "pkg_a-1.0.tar.gz",
        "url": "../../packages/pkg_a-1.0.tar.gz",
        "hashes": {"sha256": "ab" * 32},
        "size": 7,
        "core-metadata": False,
        "dist-info-metadata": False,
        "yanked": False,
    }
    assert wheel["requires-python"] == ">=3.8"
    assert wheel["core-metadata"] == wheel["dist-info-metadata"] == {"sha256": "cd" * 32}


def test_json_page_round_trips_into_the_cache() -> None:
    files = [sample("pkg_a-2.0-py3-none-any.whl", requires_python=">=3.8", core_metadata_sha256="cd" * 32)]
    page = indexgen.render_project_json("pkg-a", files, "../../packages/")
    assert indexgen.files_from_json(page, "pkg-a") == {files[0].filename: files[0]}
    assert indexgen.files_from_json(b"<html>not json</html>", "pkg-a") == {}


def test_root_pages_list_each_project_once() -> None:
    links = Anchors(indexgen.render_root_html(["pkg-b", "pkg-a", "pkg-b"])).links
    assert links == {"pkg-a": {"href": "pkg-a/"}, "pkg-b": {"href": "pkg-b/"}}
    root = json.loads(indexgen.render_root_json(["pkg-b", "pkg-a"]))
    assert root == {"meta": {"api-version": "1.1"}, "projects": [{"name": "pkg-a"}, {"name": "pkg-b"}]}


def test_pages_are_deterministic() -> None:
    files = [sample("pkg_a-1.0.tar.gz"), sample("pkg_a-2.0.tar.gz")]
    first = indexgen.render_project_html("pkg-a", files, "x/") + indexgen.render_project_json(
        "pkg-a", files, "x/"
    )
    files.reverse()
    assert first == indexgen.render_project_html("pkg-a", files, "x/") + indexgen.render_project_json(
        "pkg-a", files, "x/"
    )


def test_generate_merges_projects_and_writes_metadata_files(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    wheel_a = helpers.build_wheel(packages, "pkg-a", "1.0", requires_python=">=3.8")
    result = indexgen.generate(packages, simple)
    assert result.projects == ["pkg-a"]
    helpers.build_wheel(packages, "pkg-b", "1.0")
    assert indexgen.generate(packages, simple, projects=["PKG_B"]).projects == ["pkg-b"]

    assert set(Anchors((simple / "index.html").read_bytes()).links) == {"pkg-a", "pkg-b"}
    root_json = json.loads((simple / "index.v1+json").read_bytes())
    assert [p["name"] for p in root_json["projects"]] == ["pkg-a", "pkg-b"]
    link = Anchors((simple / "pkg-a" / "index.html").read_bytes()).links[wheel_a.name]
    metadata = packages / (wheel_a.name + ".metadata")
    with zipfile.ZipFile(wheel_a) as archive:
        assert metadata.read_bytes() == archive.read("pkg_a-1.0.dist-info/METADATA")
    assert link["data-core-metadata"] == f"sha256={hashlib.sha256(metadata.read_bytes()).hexdigest()}"
    assert link["data-requires-python"] == ">=3.8"


def test_generate_never_lists_a_file_that_is_gone(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    old = helpers.build_wheel(packages, "pkg-a", "1.0")
    new = helpers.build_wheel(packages, "pkg-a", "2.0")
    lone = helpers.build_wheel(packages, "pkg-b", "1.0")
    indexgen.generate(packages, simple)
    old.unlink()
    lone.unlink()
    indexgen.generate(packages, simple)
    assert list(Anchors((simple / "pkg-a" / "index.html").read_bytes()).links) == [new.name]
    assert not (simple / "pkg-b" / "index.html").exists()
    assert set(Anchors((simple / "index.html").read_bytes()).links) == {"pkg-a"}


def test_generate_skips_unreadable_files_and_says_why(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    good = helpers.build_wheel(packages, "pkg-a", "1.0")
    (packages / "pkg_a-2.0-py3-none-any.whl").write_bytes(b"truncated upload")
    (packages / "README.txt").write_text("hello")
    result = indexgen.generate(packages, simple)
    assert set(result.skipped) == {"pkg_a-2.0-py3-none-any.whl", "README.txt"}
    assert list(Anchors((simple / "pkg-a" / "index.html").read_bytes()).links) == [good.name]


def put_bad_files(packages: Path) -> set[str]:
    """Files no upload could store, as an older version or a hand copy leaves them: each broke generate()."""
    return {
        hostile.encrypted_metadata(packages, "aaa_poison-1.0-py3-none-any.whl").name,
        hostile.unknown_compression(packages, "pkg_a-3.0-py3-none-any.whl").name,
        hostile.invalid_utf8_name(packages, "pkg_b-1.0-py3-none-any.whl").name,
        # Its metadata file's name is too long for the file system (ENAMETOOLONG, an OSError).
        helpers.build_wheel(packages, "long" + "g" * 230, "1.0").name,
    }


def test_bad_files_on_disk_are_skipped_and_every_other_page_is_written(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    bad = put_bad_files(packages)
    good_a = helpers.build_wheel(packages, "pkg-a", "1.0")
    good_z = helpers.build_wheel(packages, "zzz", "1.0")
    result = indexgen.generate(packages, simple)
    assert set(result.skipped) == bad
    assert list(Anchors((simple / "pkg-a" / "index.html").read_bytes()).links) == [good_a.name]
    assert list(Anchors((simple / "zzz" / "index.html").read_bytes()).links) == [good_z.name]
    assert set(Anchors((simple / "index.html").read_bytes()).links) == {"pkg-a", "zzz"}
    assert set(indexgen.read_skipped(simple)) == bad


def test_main_exits_0_with_bad_files_and_reports_each_on_stderr(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    bad = put_bad_files(packages)
    helpers.build_wheel(packages, "pkg-a", "1.0")
    run = subprocess.run(
        [sys.executable, "-I", str(INDEXGEN), "--packages-dir", str(packages), "--output", str(simple)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    reported = {
        line.split()[2].rstrip(":")
        for line in run.stderr.splitlines()
        if line.startswith("indexgen: skipped")
    }
    assert reported == bad
    assert (simple / "pkg-a" / "index.html").is_file()


def test_the_skipped_record_keeps_files_of_projects_not_regenerated(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    poison = hostile.encrypted_metadata(packages, "pkg_a-2.0-py3-none-any.whl")
    helpers.build_wheel(packages, "pkg-a", "1.0")
    helpers.build_wheel(packages, "pkg-b", "1.0")
    indexgen.generate(packages, simple)
    assert set(indexgen.read_skipped(simple)) == {poison.name}
    indexgen.generate(packages, simple, ["pkg-b"])
    assert set(indexgen.read_skipped(simple)) == {poison.name}
    poison.unlink()
    indexgen.generate(packages, simple, ["pkg-b"])
    assert indexgen.read_skipped(simple) == {}
    assert (simple / indexgen.SKIPPED_FILE).name.startswith(".")


def test_project_names_that_are_not_names_are_refused(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "index.html").write_text("not ours")
    for name in (str(outside), "../outside", "a/b", ""):
        with pytest.raises(ValueError, match="not a valid project name"):
            indexgen.generate(packages, simple, [name])
        assert (
            indexgen.main(["--packages-dir", str(packages), "--output", str(simple), "--project", name]) == 2
        )
    assert (outside / "index.html").read_text() == "not ours"


def test_write_atomic_takes_the_umask_and_any_name_the_file_system_takes(tmp_path: Path) -> None:
    old = os.umask(0o007)
    try:
        long_name = tmp_path / ("p" * 250)
        indexgen.write_atomic(long_name, b"data")
    finally:
        os.umask(old)
    assert long_name.read_bytes() == b"data"
    assert stat.S_IMODE(long_name.stat().st_mode) == 0o660
    assert os.listdir(tmp_path) == [long_name.name]


def test_generate_trusts_its_previous_page_only_while_the_file_is_unchanged(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    wheel = helpers.build_wheel(packages, "pkg-a", "1.0")
    indexgen.generate(packages, simple)
    page = simple / "pkg-a" / "index.v1+json"
    forged = json.loads(page.read_bytes())
    forged["files"][0]["requires-python"] = ">=3.99"
    page.write_text(json.dumps(forged))
    indexgen.generate(packages, simple)
    assert json.loads(page.read_bytes())["files"][0]["requires-python"] == ">=3.99"
    forged["files"][0]["size"] = 1  # a different size means a different file: read it again
    page.write_text(json.dumps(forged))
    indexgen.generate(packages, simple)
    entry = json.loads(page.read_bytes())["files"][0]
    assert "requires-python" not in entry
    assert entry["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_generated_files_are_world_readable_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    helpers.build_wheel(packages, "pkg-a", "1.0")
    indexgen.generate(packages, simple)
    written = [p for p in [*packages.rglob("*"), *simple.rglob("*")] if p.is_file()]
    assert not [p for p in written if p.name.startswith(".tmp-")]
    for path in written:
        if path.name != indexgen.LOCK_FILE:
            assert path.stat().st_mode & stat.S_IROTH, path


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch) -> None:
    page = tmp_path / "index.html"
    page.write_bytes(b"old")

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        indexgen.write_atomic(page, b"new")
    assert page.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["index.html"]


def test_module_imports_only_the_standard_library() -> None:
    tree = ast.parse(INDEXGEN.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(sys.stdlib_module_names)


def test_runs_as_a_standalone_script_without_site_packages(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    helpers.build_wheel(packages, "pkg-a", "1.0")
    helpers.build_sdist(packages, "pkg-b", "1.0")
    script = tmp_path / "indexgen.py"
    script.write_bytes(INDEXGEN.read_bytes())
    # As on the server: the pages for people come from the file next to it.
    (tmp_path / "pyhost_browse.py").write_bytes(INDEXGEN.with_name("browse.py").read_bytes())
    command = [
        sys.executable,
        "-S",
        "-I",
        str(script),
        "--packages-dir",
        str(packages),
        "--output",
        str(simple),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "wrote pages for 2 project(s)" in result.stdout
    assert set(Anchors((simple / "index.html").read_bytes()).links) == {"pkg-a", "pkg-b"}
    front = Anchors((simple / ".browse" / "projects.html").read_bytes()).links
    assert {name: front[name]["href"] for name in ("pkg-a", "pkg-b")} == {
        "pkg-a": "project/pkg-a/",
        "pkg-b": "project/pkg-b/",
    }

    missing = subprocess.run(
        [sys.executable, "-S", "-I", str(script), "--packages-dir", str(tmp_path / "nope"), "--output", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert "is not a directory" in missing.stderr


OLD_PYTHONS = sorted(Path.home().glob(".pyenv/versions/3.[89].*/bin/python"))


@pytest.mark.skipif(not OLD_PYTHONS, reason="no Python 3.8 or 3.9 under ~/.pyenv to try")
def test_an_old_server_python_writes_the_same_pages(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    packages.mkdir()
    helpers.build_wheel(packages, "pkg-a", "1.0", requires_python=">=3.8")
    helpers.build_sdist(packages, "pkg-a", "1.0")
    old, new = tmp_path / "old", tmp_path / "new"
    command = [
        str(OLD_PYTHONS[0]),
        "-S",
        str(INDEXGEN),
        "--packages-dir",
        str(packages),
        "--output",
        str(old),
    ]
    subprocess.run(command, check=True, capture_output=True)
    indexgen.generate(packages, new)
    for page in ("index.html", "index.v1+json", "pkg-a/index.html", "pkg-a/index.v1+json"):
        assert (old / page).read_bytes() == (new / page).read_bytes(), page


def test_main_regenerates_only_the_named_project(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    helpers.build_wheel(packages, "pkg-a", "1.0")
    helpers.build_wheel(packages, "pkg-b", "1.0")
    assert (
        indexgen.main(["--packages-dir", str(packages), "--output", str(simple), "--project", "pkg-a"]) == 0
    )
    assert (simple / "pkg-a" / "index.html").exists()
    assert not (simple / "pkg-b").exists()
    # The root only links pages that exist, so pkg-b stays out until its page is generated.
    assert set(Anchors((simple / "index.html").read_bytes()).links) == {"pkg-a"}


def test_metadata_can_live_in_a_directory_of_its_own(tmp_path: Path) -> None:
    packages, simple, metadata = tmp_path / "packages", tmp_path / "simple", tmp_path / "metadata"
    packages.mkdir()
    wheel = helpers.build_wheel(packages, "pkg-a", "1.0")
    indexgen.generate(packages, simple, metadata_dir=metadata)
    assert sorted(p.name for p in packages.iterdir()) == [indexgen.RECORDS_DIR, wheel.name]
    stored = metadata / (wheel.name + ".metadata")
    link = Anchors((simple / "pkg-a" / "index.html").read_bytes()).links[wheel.name]
    assert link["data-core-metadata"] == f"sha256={hashlib.sha256(stored.read_bytes()).hexdigest()}"
    # The link still points next to the file: the web server maps <file>.metadata to the other directory.
    assert link["href"].startswith(f"../../packages/{wheel.name}#")

    stored.unlink()  # a cached entry whose metadata file is missing is read again
    indexgen.generate(packages, simple, metadata_dir=metadata)
    assert stored.is_file()


def test_excluded_files_are_left_out_and_lose_their_metadata(tmp_path: Path) -> None:
    packages, simple, metadata = tmp_path / "packages", tmp_path / "simple", tmp_path / "metadata"
    packages.mkdir()
    old = helpers.build_wheel(packages, "pkg-a", "1.0")
    new = helpers.build_wheel(packages, "pkg-a", "2.0")
    lone = helpers.build_wheel(packages, "pkg-b", "1.0")
    indexgen.generate(packages, simple, metadata_dir=metadata)
    assert (metadata / (old.name + ".metadata")).is_file()

    indexgen.generate(
        packages, simple, ["pkg-a", "pkg-b"], metadata_dir=metadata, exclude={old.name, lone.name}
    )
    assert old.exists() and lone.exists()  # generate never deletes distributions
    assert list(Anchors((simple / "pkg-a" / "index.html").read_bytes()).links) == [new.name]
    assert [
        f["filename"] for f in json.loads((simple / "pkg-a" / "index.v1+json").read_bytes())["files"]
    ] == [new.name]
    assert not (simple / "pkg-b").exists()
    assert set(Anchors((simple / "index.html").read_bytes()).links) == {"pkg-a"}
    assert sorted(p.name for p in metadata.iterdir()) == [new.name + ".metadata"]


def test_main_takes_a_metadata_directory(tmp_path: Path) -> None:
    packages, simple, metadata = tmp_path / "packages", tmp_path / "simple", tmp_path / "metadata"
    packages.mkdir()
    wheel = helpers.build_wheel(packages, "pkg-a", "1.0")
    argv = ["--packages-dir", str(packages), "--output", str(simple), "--metadata-dir", str(metadata)]
    assert indexgen.main(argv) == 0
    assert (metadata / (wheel.name + ".metadata")).is_file()
    assert not (packages / (wheel.name + ".metadata")).exists()


def test_refresh_reads_a_replaced_file_again(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    wheel = helpers.build_wheel(packages, "pkg-a", "1.0", requires_python=">=3.8")
    indexgen.generate(packages, simple)
    other = tmp_path / "other"
    other.mkdir()
    replacement = helpers.build_wheel(other, "pkg-a", "1.0", requires_python=">=3.7")
    assert replacement.stat().st_size == wheel.stat().st_size  # same size: the cache alone cannot tell
    replacement.replace(wheel)
    page = simple / "pkg-a" / "index.v1+json"
    indexgen.generate(packages, simple, ["pkg-a"])
    assert json.loads(page.read_bytes())["files"][0]["requires-python"] == ">=3.8"
    indexgen.generate(packages, simple, ["pkg-a"], refresh={wheel.name})
    entry = json.loads(page.read_bytes())["files"][0]
    assert entry["requires-python"] == ">=3.7"
    assert entry["hashes"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()


def test_the_pypiserver_role_ships_this_very_file() -> None:
    """The server regenerates pages with the same generator: the role's copy is a link to this module."""
    shipped = Path(__file__).resolve().parents[2] / "roles/pypiserver/files/app/pyhost_indexgen.py"
    assert shipped.read_bytes() == INDEXGEN.read_bytes()
    assert shipped.is_symlink() and shipped.resolve() == INDEXGEN.resolve()


def _incoming(packages: Path) -> Path:
    staged = packages / ".incoming"
    staged.mkdir(parents=True)
    return staged


def test_add_files_places_new_files_keeps_others_and_lists_them(tmp_path: Path) -> None:
    packages, simple, metadata = tmp_path / "packages", tmp_path / "simple", tmp_path / "metadata"
    packages.mkdir()
    helpers.build_wheel(packages, "other", "1.0")
    indexgen.generate(packages, simple, metadata_dir=metadata)
    staged = _incoming(packages)
    new = helpers.build_wheel(staged, "pkg-a", "2.0", requires_python=">=3.9")
    added = indexgen.add_files(packages, simple, [new], metadata_dir=metadata)
    assert added.added == [new.name] and added.unchanged == [] and added.projects == ["pkg-a"]
    assert (packages / new.name).read_bytes() == new.read_bytes()
    assert (metadata / (new.name + ".metadata")).is_file()
    assert set(Anchors((simple / "index.html").read_bytes()).links) == {"other", "pkg-a"}
    link = Anchors((simple / "pkg-a" / "index.html").read_bytes()).links[new.name]
    assert link["data-requires-python"] == ">=3.9"
    # The same file again: nothing to do, and no error.
    again = indexgen.add_files(packages, simple, [new], metadata_dir=metadata)
    assert again.added == [] and again.unchanged == [new.name]


def test_add_files_refuses_other_content_under_a_taken_name_and_places_nothing(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    published = helpers.build_wheel(packages, "pkg-a", "1.0")
    before = published.read_bytes()
    staged = _incoming(packages)
    fresh = helpers.build_wheel(staged, "pkg-b", "1.0")
    clash = helpers.build_wheel(staged, "pkg-a", "1.0", requires_python=">=3.12")  # same name, other bytes
    with pytest.raises(indexgen.Conflict):
        indexgen.add_files(packages, simple, [fresh, clash])
    assert published.read_bytes() == before
    assert not (packages / fresh.name).exists(), "a file was placed although the publish was refused"


def test_add_files_rejects_a_file_that_is_not_a_distribution(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    bogus = _incoming(packages) / "pkg-1.0-py3-none-any.whl"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(indexgen.InvalidDistribution):
        indexgen.add_files(packages, simple, [bogus])
    assert not (packages / bogus.name).exists()


def test_add_command_prints_json_and_exits_3_on_a_conflict(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    staged = _incoming(packages)
    wheel = helpers.build_wheel(staged, "pkg-a", "1.0")
    command = [sys.executable, "-I", str(INDEXGEN), "--packages-dir", str(packages), "--output", str(simple)]
    done = subprocess.run([*command, "--add", str(wheel)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["added"] == [wheel.name]
    wheel.unlink()
    other = helpers.build_wheel(staged, "pkg-a", "1.0", requires_python=">=3.12")
    refused = subprocess.run([*command, "--add", str(other)], capture_output=True, text=True, check=False)
    assert refused.returncode == 3
    assert refused.stderr.count("\n") == 1 and "different content" in refused.stderr


def test_gzip_copies_follow_their_pages_and_never_go_stale(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    wheel = helpers.build_wheel(packages, "pkg-a", "1.0")
    indexgen.generate(packages, simple, gzip_pages=True)
    for page in (simple / "index.html", simple / "pkg-a" / "index.html", simple / "pkg-a" / "index.v1+json"):
        assert gzip.decompress(page.with_name(page.name + ".gz").read_bytes()) == page.read_bytes()
    indexgen.generate(packages, simple)  # copies off: none is left to go stale
    assert not list(simple.rglob("*.gz"))
    indexgen.generate(packages, simple, gzip_pages=True)
    wheel.unlink()
    indexgen.generate(packages, simple, gzip_pages=True)
    assert not (simple / "pkg-a").exists()
    assert b"pkg-a" not in gzip.decompress((simple / "index.html.gz").read_bytes())


def test_add_command_takes_a_directory_of_files(tmp_path: Path) -> None:
    packages, simple = tmp_path / "packages", tmp_path / "simple"
    packages.mkdir()
    staged = _incoming(packages)
    wheels = [helpers.build_wheel(staged, "pkg-a", "1.0"), helpers.build_sdist(staged, "pkg-b", "2.0")]
    command = [sys.executable, "-I", str(INDEXGEN), "--packages-dir", str(packages), "--output", str(simple)]
    done = subprocess.run([*command, "--add", str(staged)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)["added"]) == sorted(w.name for w in wheels)
