"""pyhost.index.distcheck: the names and metadata an index accepts, and the stored files a new one aliases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pyhost.index import distcheck


@pytest.mark.parametrize(
    ("filename", "project", "version", "kind"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", "demo-pkg", "1.0", "wheel"),
        (
            "Demo.Pkg-1!2.0rc1-1-cp312-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "demo-pkg",
            "1!2.0rc1",
            "wheel",
        ),
        ("demo-pkg-1.0.post1.tar.gz", "demo-pkg", "1.0.post1", "sdist"),
        ("demo_pkg-1.0.zip", "demo-pkg", "1.0", "sdist"),
    ],
)
def test_accepted_names_give_their_release(filename: str, project: str, version: str, kind: str) -> None:
    key = distcheck.check_filename(filename)
    assert (key.project, str(key.version), key.kind) == (project, version, kind)


@pytest.mark.parametrize(
    ("filename", "says"),
    [
        ("demo_pkg-1.0+local-py3-none-any.whl", "local versions"),
        ("demo_pkg-1.0+local.tar.gz", "local versions"),
        ("demo_pkg-1.0-py3-none-any+x.whl", "not a valid wheel tag"),
        ("demo_pkg-1.0-py3-none.whl", "not a valid distribution file name"),
        ("demo_pkg-one-py3-none-any.whl", "not a valid distribution file name"),
        ("demo_pkg.tar.gz", "not a valid distribution file name"),
        ("demo_pkg-1.0.tar.bz2", "only wheels"),
        ("demo_pkg-1.0.tgz", "only wheels"),
        ("demo_pkg-1.0-py3.8.egg", "only wheels"),
        ("demo_pkg-1.0.win-amd64-py3.8.exe", "only wheels"),
        ("demo_pkg-1.0-py3-none-any.whl.asc", "only wheels"),
    ],
)
def test_refused_names_say_why(filename: str, says: str) -> None:
    with pytest.raises(distcheck.Refused, match=says):
        distcheck.check_filename(filename)


def test_names_are_accepted_up_to_200_bytes() -> None:
    suffix = "-1.0-py3-none-any.whl"
    distcheck.check_filename("a" * (200 - len(suffix)) + suffix)
    with pytest.raises(distcheck.Refused, match="longer than 200 bytes"):
        distcheck.check_filename("a" * (201 - len(suffix)) + suffix)


def test_metadata_must_name_the_same_project_and_version() -> None:
    key = distcheck.check_filename("demo_pkg-1.0-py3-none-any.whl")
    distcheck.check_metadata(key, {"Name": "Demo.Pkg", "Version": "1.0.0"})
    for metadata, says in [
        ({"Name": "other", "Version": "1.0"}, "names project 'other'"),
        ({"Name": "demo-pkg", "Version": "1.0.post1"}, "not the file name's '1.0'"),
        ({"Name": "demo-pkg", "Version": "one"}, "not a valid version"),
        ({"Name": "demo-pkg"}, "not a valid version"),
    ]:
        with pytest.raises(distcheck.Refused, match=says):
            distcheck.check_metadata(key, metadata)


STORED = [
    "demo_pkg-1.0-py3-none-any.whl",
    "demo_pkg-1.0.tar.gz",
    "demo_pkg-2.0-cp312-cp312-win_amd64.whl",
    "demo_pkg_extra-1.0-py3-none-any.whl",
    "README.txt",
    "demo_pkg-1.0-py3-none-any.whl.metadata",
]


@pytest.mark.parametrize(
    ("filename", "same"),
    [
        ("demo_pkg-1.0-py3-none-any.whl", ["demo_pkg-1.0-py3-none-any.whl"]),
        ("DEMO.pkg-1.0.0-7-py3-none-any.whl", ["demo_pkg-1.0-py3-none-any.whl"]),
        ("demo_pkg-v1.0-py2.py3-none-any.whl", ["demo_pkg-1.0-py3-none-any.whl"]),
        ("demo_pkg-1.0.0.zip", ["demo_pkg-1.0.tar.gz"]),
        ("demo_pkg-2.0-cp312-cp312-win_amd64.whl", ["demo_pkg-2.0-cp312-cp312-win_amd64.whl"]),
        # Other files of a release, or of other releases and projects: no alias.
        ("demo_pkg-1.0-cp312-cp312-win_amd64.whl", []),
        ("demo_pkg-2.0.tar.gz", []),
        ("demo_pkg-1.0.post1-py3-none-any.whl", []),
        ("demo_pkg_extra-1.0.tar.gz", []),
        ("demo-1.0-py3-none-any.whl", []),
    ],
)
def test_same_files_finds_every_spelling_of_a_stored_file(filename: str, same: list[str]) -> None:
    assert distcheck.same_files(distcheck.check_filename(filename), STORED) == same


def test_the_pypiserver_role_ships_this_very_file() -> None:
    """serve.py checks uploads with this module: the role's copy is a link to it, and the role installs it."""
    role = Path(__file__).resolve().parents[2] / "roles/pypiserver"
    shipped = role / "files/app/pyhost_distcheck.py"
    assert shipped.is_symlink() and shipped.resolve() == Path(distcheck.__file__).resolve()
    installed = yaml.safe_load((role / "vars/main.yml").read_text())["__pypiserver_app_files"]
    assert "pyhost_distcheck.py" in installed
