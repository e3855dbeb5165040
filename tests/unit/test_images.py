"""Which host images the tests and the sandbox use: Debian 12 and 13 built here, or PYHOST_TEST_IMAGE."""

from __future__ import annotations

import pytest

from pyhost.errors import PyhostError
from pyhost.sandbox import images


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(images.IMAGE_ENV, raising=False)
    monkeypatch.delenv(images.PLATFORM_ENV, raising=False)


def test_the_matrix_is_debian_12_and_13_built_here() -> None:
    matrix = images.matrix_platforms()
    assert [(host.name, host.suite) for host in matrix] == [("debian12", "bookworm"), ("debian13", "trixie")]
    tags = [images.base_image_tag(host) for host in matrix]
    assert tags[0].startswith("pyhost-debian12-systemd:")
    assert tags[1].startswith("pyhost-debian13-systemd:")
    assert len({images.python_image_tag(host, ["3.13.5"], "abc") for host in matrix}) == 2


def test_a_test_image_replaces_every_platform_but_not_pebbles(monkeypatch: pytest.MonkeyPatch) -> None:
    pebble = images.pebble_image_tag()
    monkeypatch.setenv(images.IMAGE_ENV, "geerlingguy/docker-ubuntu2404-ansible:latest")
    (host,) = images.matrix_platforms()
    assert host.pulled
    assert images.base_image_tag(host) == "geerlingguy/docker-ubuntu2404-ansible:latest"
    assert images.platform("debian13") == host
    assert images.pebble_image_tag() == pebble


def test_the_platform_comes_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert images.platform().name == "debian12"
    monkeypatch.setenv(images.PLATFORM_ENV, "debian13")
    assert images.platform().suite == "trixie"
    assert images.platform("debian12").suite == "bookworm"


def test_an_unknown_platform_names_the_known_ones() -> None:
    with pytest.raises(PyhostError, match=r"^unknown platform 'debian14': choose one of debian12, debian13$"):
        images.platform("debian14")


def test_apt_sources_follow_the_suite() -> None:
    assert images.apt_sources("trixie").splitlines() == [
        f"deb {images.DEBIAN_MIRROR} trixie main",
        f"deb {images.DEBIAN_MIRROR} trixie-updates main",
        "deb http://deb.debian.org/debian-security trixie-security main",
    ]
